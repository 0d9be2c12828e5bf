"""Keypoints in the project: a category's schema and an instance's points are durable,
undoable one gesture at a time, checked, and never stranded by a schema or category change."""

from __future__ import annotations

import numpy as np
import pytest

from mrcnn import keypoints as kp
from mrcnn import masks
from mrcnn.editing.document import ImageDocument
from mrcnn.errors import EditError, ProjectError
from mrcnn.keypoints import COCO_PERSON, KeypointSchema
from mrcnn.store.project import Project

TRIANGLE = KeypointSchema(("apex", "left_base", "right_base"), ((0, 1), (1, 2), (2, 0)))


def _box(y0, y1, x0, x1, shape=(60, 80)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return masks.encode(m)


@pytest.fixture
def proj(tmp_path, open_projects):
    images = tmp_path / "images"
    images.mkdir()
    p = Project.create(tmp_path / "proj", images)
    open_projects.append(p)
    image = p.add_image(images / "a.png", 80, 60, "a" * 64)
    tri = p.add_category("triangle")
    box = p.add_category("box")
    p.set_category_keypoints(tri.id, TRIANGLE)
    inst = p.add_instance(image.id, tri.id, _box(10, 40, 10, 50))
    return p, image.id, tri.id, box.id, inst.id


def test_schema_and_points_survive_reopening(proj, tmp_path):
    p, image_id, tri, _, iid = proj
    p.set_instance_keypoints(iid, [(30, 10, 2), (10, 40, 1), (0, 0, 0)])
    p.close()
    with Project.open(tmp_path / "proj", read_only=True) as again:
        assert again.category_by_name("triangle").keypoints == TRIANGLE
        assert again.category_by_name("box").keypoints is None
        assert again.instance(iid).keypoints == ((30.0, 10.0, 2), (10.0, 40.0, 1),
                                                 (0.0, 0.0, 0))
        assert again.keypoint_schemas() == {"triangle": TRIANGLE}


def test_points_that_break_the_schema_are_refused_and_nothing_changes(proj):
    p, image_id, tri, box, iid = proj
    with pytest.raises(ProjectError, match="2 points for 3"):
        p.set_instance_keypoints(iid, [(1, 1, 2), (2, 2, 2)])
    with pytest.raises(ProjectError, match="visibility 5"):
        p.set_instance_keypoints(iid, [(1, 1, 5), (2, 2, 2), (3, 3, 2)])
    other = p.add_instance(image_id, box, _box(0, 5, 0, 5))
    with pytest.raises(ProjectError, match="no keypoint schema"):
        p.set_instance_keypoints(other.id, [(1, 1, 2)])
    assert p.instance(iid).keypoints is None


def test_a_schema_change_that_would_strand_points_is_refused(proj):
    p, _, tri, box, iid = proj
    p.set_instance_keypoints(iid, [(30, 10, 2), (10, 40, 2), (50, 40, 2)])
    with pytest.raises(ProjectError, match="1 instance.*carry keypoints"):
        p.set_category_keypoints(tri, COCO_PERSON)
    with pytest.raises(ProjectError, match="carry keypoints"):
        p.set_category_keypoints(tri, None)
    renamed = KeypointSchema(("top", "left_foot", "right_foot"))
    p.set_category_keypoints(tri, renamed)  # same number of names: a rename
    assert p.category_schema(tri) == renamed
    with pytest.raises(ProjectError, match="cannot hold"):
        p.set_instance_category(iid, box)
    with pytest.raises(ProjectError, match="cannot hold"):
        p.merge_categories(tri, box)
    assert p.instance(iid).category_id == tri


def test_predictions_carry_points_as_pending(proj):
    p, image_id, tri, box, _ = proj
    points = ((20.0, 12.0, 2), (12.0, 38.0, 2), (48.0, 38.0, 1))
    added = p.replace_predictions(image_id, "v1", [(tri, _box(5, 45, 5, 55), 0.8, points),
                                                   (box, _box(0, 9, 0, 9), 0.6)])
    assert [a.keypoints for a in added] == [points, None]
    assert p.instance(added[0].id).state == "pending"


def test_each_keypoint_gesture_is_one_undoable_step(proj, tmp_path):
    p, image_id, tri, box, iid = proj
    doc = ImageDocument(p, image_id)
    placed = None
    for i, (x, y) in enumerate([(30, 10), (10, 40), (50, 40)]):
        assert kp.next_unlabelled(placed, TRIANGLE) == i
        placed = kp.with_point(placed, TRIANGLE, i, x, y)
        doc.set_keypoints(iid, placed, label="place keypoint")
    toggled = kp.toggled(placed, TRIANGLE, 1)
    doc.set_keypoints(iid, toggled, label="toggle visibility")
    assert p.instance(iid).keypoints[1][2] == kp.OCCLUDED
    doc.undo()
    assert p.instance(iid).keypoints == placed
    doc.undo()
    assert p.instance(iid).keypoints[2] == (0.0, 0.0, 0)
    doc.redo()
    doc.redo()
    assert p.instance(iid).keypoints == toggled
    assert doc.set_keypoints(iid, toggled) is None  # nothing changed: no step
    with pytest.raises(EditError, match="visibility"):
        doc.set_keypoints(iid, [(1, 1, 7), (0, 0, 0), (0, 0, 0)])
    other = p.add_instance(image_id, box, _box(0, 5, 0, 5))
    doc2 = ImageDocument(p, image_id)
    with pytest.raises(EditError, match="no keypoints"):
        doc2.set_keypoints(other.id, [(1, 1, 2)])
    p.close()
    with Project.open(tmp_path / "proj", read_only=True) as again:
        assert again.instance(iid).keypoints == toggled


def test_correcting_a_predicted_pose_accepts_it_and_delete_undo_keeps_points(proj):
    p, image_id, tri, _, _ = proj
    points = ((20.0, 12.0, 2), (12.0, 38.0, 2), (48.0, 38.0, 1))
    pred = p.replace_predictions(image_id, "v1", [(tri, _box(5, 45, 5, 55), 0.8, points)])[0]
    doc = ImageDocument(p, image_id)
    doc.set_keypoints(pred.id, kp.with_point(points, TRIANGLE, 2, 47, 39))
    assert p.instance(pred.id).state == "accepted"
    doc.delete_instances([pred.id])
    doc.undo()
    assert p.instance(pred.id).keypoints[2] == (47.0, 39.0, 1)


def test_the_category_schema_is_one_undoable_step(proj):
    p, image_id, tri, box, _ = proj
    doc = ImageDocument(p, image_id)
    doc.set_category_keypoints(box, COCO_PERSON)
    assert p.category_schema(box) == COCO_PERSON
    doc.undo()
    assert p.category_schema(box) is None
