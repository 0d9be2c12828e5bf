"""The mirror-consistency uncertainty: objects the model finds the same way in an image and
its mirror image, with high scores, make the image certain; objects that move, change class
or come and go make it uncertain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrcnn.model import uncertainty as u
from mrcnn.model.device import DeviceChoice
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model
from mrcnn.testing.synthetic import draw_image

H = W = 40


def square(y: int, x: int, side: int = 10) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y:y + side, x:x + side] = True
    return m


def dets(*objects: tuple[int, float, np.ndarray]) -> u.Detections:
    if not objects:
        return u.Detections(np.zeros(0, np.int64), np.zeros(0, np.float32),
                            np.zeros((0, H, W), bool))
    labels, scores, masks = zip(*objects, strict=True)
    return u.Detections(np.array(labels), np.array(scores, np.float32), np.stack(masks))


def test_the_same_confident_objects_in_both_passes_are_nearly_certain():
    a = dets((1, 0.98, square(2, 2)), (2, 0.95, square(20, 20)))
    assert u.image_uncertainty(a, a) == pytest.approx(1 - 0.98 * 0.95, abs=1e-6)


def test_each_further_unsure_object_makes_the_image_more_worth_a_look():
    one = dets((1, 0.6, square(2, 2)), (2, 0.97, square(20, 20)))
    two = dets((1, 0.6, square(2, 2)), (2, 0.6, square(20, 20)))
    lone = dets((1, 0.6, square(2, 2)))
    assert u.image_uncertainty(two, two) > u.image_uncertainty(one, one) + 0.1
    # confident objects beside an unsure one do not make the image look safer
    assert u.image_uncertainty(one, one) >= u.image_uncertainty(lone, lone)


def test_each_kind_of_disagreement_raises_the_uncertainty():
    base = dets((1, 0.95, square(2, 2)), (2, 0.95, square(20, 20)))
    same = u.image_uncertainty(base, base)
    moved = dets((1, 0.95, square(3, 3)), (2, 0.95, square(20, 20)))  # IoU 0.68
    missing = dets((2, 0.95, square(20, 20)))
    other_class = dets((3, 0.95, square(2, 2)), (2, 0.95, square(20, 20)))
    low_score = dets((1, 0.55, square(2, 2)), (2, 0.95, square(20, 20)))
    for second in (moved, missing, other_class, low_score):
        assert u.image_uncertainty(base, second) > same + 0.05
    # a class change is worse than a small shift: two half-found objects instead of one
    assert u.image_uncertainty(base, other_class) > u.image_uncertainty(base, moved)


def test_noise_below_the_score_floor_is_ignored_and_an_empty_image_is_undecided():
    a = dets((1, 0.95, square(2, 2)))
    noisy = dets((1, 0.95, square(2, 2)), (2, 0.1, square(25, 25)))
    assert u.image_uncertainty(a, noisy) == u.image_uncertainty(a, a)
    assert u.image_uncertainty(dets(), dets()) == u.EMPTY
    assert u.image_uncertainty(dets((1, 0.1, square(2, 2))), dets()) == u.EMPTY


def test_matching_is_one_to_one():
    """Two objects on one side cannot both match the same object on the other."""
    a = dets((1, 0.9, square(2, 2)), (1, 0.9, square(3, 3)))
    b = dets((1, 0.9, square(2, 2)))
    objects = u.object_certainties(a, b)
    assert sorted(o.occurrence for o in objects) == [0.5, 1.0]


def test_prediction_with_uncertainty_keeps_the_detections():
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, min_size=96, max_size=96)
    # fp32: the image's own detections do not depend on the batch they run in
    fp32 = DeviceChoice(torch.device("cpu"), "test", None, False)
    predictor = Predictor(model, device=fp32, score_threshold=0.0)
    rgb, _ = draw_image(np.random.default_rng(0), 96)
    plain = predictor.predict_one(rgb)
    with_u = predictor.predict_one(rgb, uncertainty=True)
    assert plain.uncertainty is None
    assert with_u.uncertainty is not None and 0.0 <= with_u.uncertainty <= 1.0
    assert len(with_u) == len(plain)
    np.testing.assert_allclose(with_u.scores, plain.scores, atol=1e-4)
    np.testing.assert_allclose(with_u.boxes, plain.boxes, atol=0.05)
    assert with_u[:1].uncertainty == with_u.uncertainty  # a subset keeps the image's value
