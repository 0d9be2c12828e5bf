"""Refining a predicted mask with image evidence, and the rule that turns it on only where it
raises the IoU of validation instances (`mrcnn.editing.refine`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mrcnn.editing import refine
from mrcnn.editing.refine import (
    MIN_KEEP_IOU,
    RefinementDecision,
    decide_refinement,
    mask_iou,
    refine_mask,
    refinement_crop,
)
from mrcnn.errors import MaskToolError

SIZE = 128


def _ellipse(rng: np.random.Generator) -> np.ndarray:
    truth = np.zeros((SIZE, SIZE), np.uint8)
    cx, cy = (int(v) for v in 64 + rng.integers(-10, 10, 2))
    cv2.ellipse(truth, (cx, cy), (int(28 + rng.integers(0, 8)), 20), int(rng.integers(0, 180)),
                0, 360, 1, -1)
    return truth.astype(bool)


def _spilled(truth: np.ndarray) -> np.ndarray:
    """What a coarse mask head gives: the object dilated by 4 px, its edge blurred."""
    grown = cv2.dilate(truth.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                         (9, 9)))
    return cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 3) > 0.5


def sharp_object(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, predicted, truth): a red, sharp-edged object on green; the prediction spills
    over its edge."""
    rng = np.random.default_rng(seed)
    truth = _ellipse(rng)
    image = np.full((SIZE, SIZE, 3), (40, 120, 40), np.uint8)
    image[truth] = (200, 60, 50)
    image += rng.integers(0, 12, image.shape, dtype=np.uint8)
    return image, _spilled(truth), truth


def misleading_object(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, predicted, truth): an object only half of which stands out (the other half
    has the background's colour); the prediction is already exact."""
    rng = np.random.default_rng(seed)
    truth = _ellipse(rng)
    image = np.full((SIZE, SIZE, 3), (40, 120, 40), np.uint8)
    half = truth.copy()
    half[:, :64] = False
    image[half] = (200, 60, 50)
    image += rng.integers(0, 12, image.shape, dtype=np.uint8)
    return image, truth.copy(), truth


def textured_scene(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, predicted, truth): noise everywhere, nothing marks the object's edge; the
    prediction is exact."""
    rng = np.random.default_rng(seed)
    truth = _ellipse(rng)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return image, truth.copy(), truth


@pytest.mark.parametrize("method", ["grabcut", "guided"])
def test_a_spilled_mask_snaps_to_a_sharp_edge(method):
    image, predicted, truth = sharp_object(0)
    before = mask_iou(predicted, truth)
    after = mask_iou(refine_mask(image, predicted, method=method), truth)
    assert before < 0.8
    assert after > before + 0.1


def test_refinement_is_on_where_it_helps():
    decision = decide_refinement([sharp_object(s) for s in range(4)])
    assert decision.on
    assert decision.instances == 4
    assert decision.gain >= 0.1
    assert decision.iou_after == max(decision.by_method.values())
    line = decision.describe()
    assert line.startswith("Mask refinement: on (")
    assert f"+{decision.gain:.3f} mean IoU on 4 validation instances" in line


@pytest.mark.parametrize("scene", [misleading_object, textured_scene])
def test_refinement_is_off_where_it_hurts(scene):
    decision = decide_refinement([scene(s) for s in range(3)])
    assert not decision.on
    assert decision.iou_before == 1.0
    assert decision.gain < 0
    assert decision.describe().startswith("Mask refinement: off (")
    assert f"\u2212{abs(decision.gain):.3f} mean IoU" in decision.describe()


def test_a_gain_below_the_margin_stays_off():
    pairs = [sharp_object(0)]
    gain = decide_refinement(pairs).gain
    assert not decide_refinement(pairs, min_gain=gain + 0.001).on


def test_nothing_to_measure_is_off():
    decision = decide_refinement([])
    assert not decision.on and decision.instances == 0 and decision.method is None
    assert "no validation instance" in decision.describe()


def test_the_decision_round_trips_as_plain_data():
    decision = decide_refinement([sharp_object(1)], model_key="v2", images=1)
    again = RefinementDecision.from_dict(decision.to_dict() | {"later": 1})
    assert again == decision
    assert again.model_key == "v2"


@pytest.mark.parametrize("method", ["grabcut", "guided"])
def test_never_empty_on_a_featureless_image(method):
    image = np.full((64, 64, 3), 90, np.uint8)
    for box in [(slice(20, 40), slice(20, 40)), (slice(30, 31), slice(30, 31))]:
        mask = np.zeros((64, 64), bool)
        mask[box] = True
        out = refine_mask(image, mask, method=method)
        assert out.any()
        assert mask_iou(out, mask) >= MIN_KEEP_IOU


@pytest.mark.parametrize("found", ["a speck", "nothing"])
def test_a_wildly_different_or_empty_result_keeps_the_input(found, monkeypatch):
    """Whatever the image evidence says, refinement never empties a mask nor swaps it for
    something else (IoU < 0.5 with it): the input comes back as it was."""
    image, predicted, _truth = sharp_object(0)

    def wild(pixels, seed, band, iterations):
        out = np.zeros_like(seed)
        if found == "a speck":
            out[seed.shape[0] // 2, seed.shape[1] // 2] = True
        return out

    monkeypatch.setattr(refine, "_grabcut_refine", wild)
    out = refine_mask(image, predicted)
    assert np.array_equal(out, predicted)


def test_a_mask_filling_the_image_comes_back_unchanged():
    image, _predicted, _truth = sharp_object(2)
    full = np.ones((SIZE, SIZE), bool)
    assert np.array_equal(refine_mask(image, full), full)


def test_the_input_is_left_alone():
    image, predicted, _truth = sharp_object(3)
    image_before, predicted_before = image.copy(), predicted.copy()
    refine_mask(image, predicted)
    assert np.array_equal(image, image_before) and np.array_equal(predicted, predicted_before)


@pytest.mark.parametrize("method", ["grabcut", "guided"])
def test_only_a_crop_around_the_mask_is_processed(method, monkeypatch):
    """On a 2000 x 2000 image a 30 x 40 px mask costs a crop of a few dozen pixels a side."""
    seen: list[tuple[int, ...]] = []
    real_grabcut, real_guided = refine.grabcut_labels, refine.guided_filter

    def spy_grabcut(pixels, labels, **kw):
        seen.append(pixels.shape)
        return real_grabcut(pixels, labels, **kw)

    def spy_guided(guide, src, radius, eps=1e-3):
        seen.append(guide.shape)
        return real_guided(guide, src, radius, eps)

    monkeypatch.setattr(refine, "grabcut_labels", spy_grabcut)
    monkeypatch.setattr(refine, "guided_filter", spy_guided)
    image = np.full((2000, 2000, 3), (40, 120, 40), np.uint8)
    image[1000:1030, 1000:1040] = (200, 60, 50)
    mask = np.zeros((2000, 2000), bool)
    mask[998:1032, 998:1042] = True
    out = refine_mask(image, mask, method=method)
    crop = refinement_crop(mask)
    assert len(seen) == 1
    assert seen[0][:2] == (crop.height, crop.width)
    assert crop.height < 60 and crop.width < 70
    outside = np.ones_like(mask)
    outside[crop.slices] = False
    assert not out[outside].any()
    assert mask_iou(out, image[:, :, 0] == 200) > mask_iou(mask, image[:, :, 0] == 200)


def test_bad_input_is_a_mask_tool_error():
    image, predicted, _truth = sharp_object(0)
    with pytest.raises(MaskToolError, match="does not match"):
        refine_mask(image[:64], predicted)
    with pytest.raises(MaskToolError, match="unknown refinement"):
        refine_mask(image, predicted, method="magic")  # type: ignore[arg-type]
