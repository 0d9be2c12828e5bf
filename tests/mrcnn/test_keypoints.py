"""The keypoint rules every part shares (`mrcnn.keypoints`): schemas, points, COCO's triplets,
the flip map from names, the tool's gestures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrcnn import keypoints as kp
from mrcnn.keypoints import COCO_PERSON, KeypointError, KeypointSchema

TRIANGLE = KeypointSchema(("apex", "left_base", "right_base"), ((0, 1), (1, 2), (2, 0)))


def test_coco_person_template_matches_coco():
    assert COCO_PERSON.size == 17
    assert COCO_PERSON.coco_skeleton()[0] == [16, 14]
    flip = COCO_PERSON.flip_indices()
    names = COCO_PERSON.names
    assert names[flip[names.index("left_eye")]] == "right_eye"
    assert names[flip[names.index("nose")]] == "nose"
    assert len(kp.oks_sigmas(names)) == 17 and kp.oks_sigmas(["nose"]) == [0.026]
    assert kp.oks_sigmas(["apex"]) == [kp.DEFAULT_SIGMA]


@pytest.mark.parametrize("names,pairs", [
    (("left_eye", "right_eye", "nose"), {"left_eye": "right_eye"}),
    (("eye.L", "eye.R"), {"eye.L": "eye.R"}),
    (("front-left-leg", "front-right-leg", "back-left-leg", "back-right-leg"),
     {"front-left-leg": "front-right-leg", "back-left-leg": "back-right-leg"}),
    (("LeftHand", "RightHand"), {}),  # no separator: nothing is guessed
    (("left_eye", "nose"), {}),  # no mirror name: stays
])
def test_flip_map_from_names(names, pairs):
    flip = kp.derive_flip(names)
    expected = {a: b for a, b in pairs.items()} | {b: a for a, b in pairs.items()}
    for i, name in enumerate(names):
        assert names[flip[i]] == expected.get(name, name)


@pytest.mark.parametrize("make,message", [
    (lambda: KeypointSchema(()), "at least one"),
    (lambda: KeypointSchema(("a", "a")), "unique"),
    (lambda: KeypointSchema(("a", "b"), ((0, 2),)), "skeleton"),
    (lambda: KeypointSchema(("a", "b"), ((1, 1),)), "skeleton"),
    (lambda: KeypointSchema(("a", "b"), flip=(0, 0)), "flip"),
    (lambda: KeypointSchema.from_names(["a", "b"], [["a", "c"]]), "no keypoint named c"),
])
def test_bad_schemas_are_refused(make, message):
    with pytest.raises(KeypointError, match=message):
        make()


def test_schema_json_round_trip_keeps_an_explicit_flip():
    schema = KeypointSchema(("a", "b", "c"), ((0, 1),), flip=(1, 0, 2))
    assert KeypointSchema.from_json(schema.to_json()) == schema
    assert schema.flip_indices() == (1, 0, 2)


@pytest.mark.parametrize("flat,message", [
    ([1, 2, 2, 3, 4, 2], "6 numbers where 3 keypoints need 9"),
    ([1, 2, 3] * 3, "visibility 3"),
    ([1, 2, 2, 1, 2, -1, 5, 5, 1], "visibility -1"),
    ([1, 2, 2, float("nan"), 2, 2, 5, 5, 1], "coordinates"),
    ([1, 2, 2, -4, 2, 2, 5, 5, 1], "outside the image"),
    ("1 2 2", "str"),
])
def test_bad_coco_triplets_are_refused_naming_the_problem(flat, message):
    with pytest.raises(KeypointError, match=message):
        kp.points_from_coco(flat, TRIANGLE, "annotation 7")


def test_unlabelled_points_are_zero_and_not_counted():
    points = kp.points_from_coco([10, 20, 2, 33, 44, 0, 5.5, 6, 1], TRIANGLE)
    assert points[1] == (0.0, 0.0, 0)
    assert kp.labelled_count(points) == 2
    assert kp.points_to_coco(points) == [10, 20, 2, 0, 0, 0, 5.5, 6, 1]


@given(st.lists(st.tuples(st.floats(0, 5000, allow_nan=False), st.floats(0, 5000),
                          st.sampled_from([0, 1, 2])), min_size=3, max_size=3))
def test_coco_triplets_round_trip(points):
    checked = kp.check_points(points, TRIANGLE)
    again = kp.points_from_coco(kp.points_to_coco(checked), TRIANGLE)
    assert again == checked
    assert kp.points_from_json(kp.points_to_json(checked)) == checked


def test_tool_gestures():
    assert kp.next_unlabelled(None, TRIANGLE) == 0
    p = kp.with_point(None, TRIANGLE, 0, 5, 6)
    assert p[0] == (5.0, 6.0, 2) and kp.next_unlabelled(p, TRIANGLE) == 1
    p = kp.toggled(p, TRIANGLE, 0)
    assert p[0][2] == kp.OCCLUDED
    p = kp.with_point(p, TRIANGLE, 0, 7, 8)  # a move keeps the visibility
    assert p[0] == (7.0, 8.0, 1)
    assert kp.nearest_point(p, 8, 8, 3) == 0 and kp.nearest_point(p, 20, 20, 3) is None
    assert kp.without_point(p, TRIANGLE, 0) is None


def test_slot_layout_gives_each_category_its_own_slots():
    layout = kp.slot_layout({"person": COCO_PERSON, "triangle": TRIANGLE})
    assert layout == {"person": (0, 17), "triangle": (17, 3)}
