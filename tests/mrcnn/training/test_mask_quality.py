"""Mask quality: Boundary IoU sees outline errors that mask IoU forgives on large objects, the
matched shares count ground truth accepted-as-is at each IoU, and both split by COCO size."""

from __future__ import annotations

import numpy as np
import pytest

from mrcnn import masks
from mrcnn.training.mask_quality import (
    boundary_iou,
    mask_quality,
    match_greedy,
    size_class,
)

H = W = 256


def _square(y: int, x: int, side: int, h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y:y + side, x:x + side] = True
    return m


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# ---------------------------------------------------------------- Boundary IoU
def test_identical_masks_have_boundary_iou_one():
    m = _square(40, 50, 60)
    assert boundary_iou(m, m) == 1.0


def test_disjoint_masks_have_boundary_iou_zero():
    assert boundary_iou(_square(10, 10, 30), _square(100, 100, 30)) == 0.0
    assert boundary_iou(_square(10, 10, 30), np.zeros((H, W), bool)) == 0.0


def test_a_one_pixel_shift_costs_boundary_iou_and_more_than_mask_iou_on_large_objects():
    small, large = _square(20, 20, 10), _square(60, 60, 120)
    b_small = boundary_iou(small, np.roll(small, 1, axis=1))
    b_large = boundary_iou(large, np.roll(large, 1, axis=1))
    assert b_small < 1.0 and b_large < 1.0
    assert b_large > b_small  # a large object's outline still overlaps more
    # mask IoU of the shifted large square is ~0.99; Boundary IoU does not saturate
    assert _iou(large, np.roll(large, 1, axis=1)) > 0.98
    assert b_large < 0.9
    # a small object lies wholly within d of its contour: there the two measures agree
    assert b_small == pytest.approx(_iou(small, np.roll(small, 1, axis=1)))


def test_boundary_iou_band_follows_the_image_diagonal():
    big = _square(60, 60, 120)
    shifted = np.roll(big, 1, axis=1)
    # a wider band (larger ratio) dilutes a 1 px error: closer to mask IoU
    assert boundary_iou(big, shifted, ratio=0.1) > boundary_iou(big, shifted, ratio=0.02)
    with pytest.raises(ValueError, match="shape"):
        boundary_iou(big, big[:-1])


# ---------------------------------------------------------------- matching
def test_greedy_matching_takes_predictions_by_score_one_per_ground_truth():
    ious = np.array([[0.6, 0.0],    # score 0.3
                     [0.7, 0.55]])  # score 0.9: takes GT 0 first
    assert match_greedy(ious, [0.3, 0.9], 0.5) == [1, None]
    assert match_greedy(np.zeros((0, 2)), [], 0.5) == [None, None]


def _trimmed(m: np.ndarray, rows: int) -> np.ndarray:
    """The square with its first `rows` rows removed (IoU = 1 - rows / side)."""
    out = m.copy()
    ys = np.nonzero(m.any(axis=1))[0]
    out[ys[:rows]] = False
    return out


def _coco(gt_masks, cats, preds) -> tuple[dict, list[dict]]:
    """One image: ground truth (mask, category) and results (mask, category, score)."""
    anns = [{"id": i + 1, "image_id": 1, "category_id": c,
             "segmentation": masks.encode(m).to_coco(), "area": int(m.sum()),
             "bbox": list(masks.encode(m).bbox), "iscrowd": 0}
            for i, (m, c) in enumerate(zip(gt_masks, cats, strict=True))]
    gt = {"images": [{"id": 1, "width": W, "height": H}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": anns}
    results = [{"image_id": 1, "category_id": c, "score": s,
                "bbox": list(masks.encode(m).bbox), "segmentation": masks.encode(m).to_coco()}
               for m, c, s in preds]
    return gt, results


def test_matched_shares_on_predictions_at_known_ious():
    gts = [_square(10, 10, 20), _square(10, 100, 20), _square(100, 10, 20)]
    # IoU 0.95, 0.8 and 0.4 with the three ground-truth squares (20 rows each)
    preds = [(_trimmed(gts[0], 1), 1, 0.9), (_trimmed(gts[1], 4), 1, 0.8),
             (_trimmed(gts[2], 12), 1, 0.7)]
    assert [_iou(g, p) for g, (p, _, _) in zip(gts, preds, strict=True)] == pytest.approx(
        [0.95, 0.8, 0.4])
    q = mask_quality(*_coco(gts, [1, 1, 1], preds))
    everything = q.by_size["all"]
    assert everything.instances == 3
    assert everything.matched[0.9] == pytest.approx(1 / 3)
    assert everything.matched[0.75] == pytest.approx(2 / 3)
    assert everything.matched[0.5] == pytest.approx(2 / 3)
    assert everything.boundary_iou is not None and 0 < everything.boundary_iou < 1
    assert 0 < everything.mask_ap < 1


def test_only_same_category_and_shown_predictions_match():
    g = _square(10, 10, 20)
    wrong_category = mask_quality(*_coco([g], [1], [(g, 2, 0.9)])).by_size["all"]
    assert wrong_category.matched[0.5] == 0.0 and wrong_category.boundary_iou is None
    hidden = mask_quality(*_coco([g], [1], [(g, 1, 0.3)])).by_size["all"]
    assert hidden.matched[0.9] == 0.0  # below the score the app shows
    assert hidden.mask_ap == pytest.approx(1.0)  # AP still ranks it
    perfect = mask_quality(*_coco([g], [1], [(g, 1, 0.3)]), match_score=0.0).by_size["all"]
    assert perfect.matched[0.9] == 1.0 and perfect.boundary_iou == 1.0


# ---------------------------------------------------------------- size classes
def test_size_classes_are_cocos():
    assert size_class(31 * 31) == "small"
    assert size_class(32 * 32 - 1) == "small"
    assert size_class(32 * 32) == "medium"
    assert size_class(96 * 96 - 1) == "medium"
    assert size_class(96 * 96) == "large"


def test_quality_is_split_by_object_size():
    small, medium, large = _square(5, 5, 20), _square(5, 60, 50), _square(100, 100, 120)
    # the small one is found exactly; the medium one missed; the large one found roughly
    q = mask_quality(*_coco([small, medium, large], [1, 1, 1],
                            [(small, 1, 0.9), (_trimmed(large, 30), 1, 0.8)]))
    s = q.by_size
    assert [s[k].instances for k in ("all", "small", "medium", "large")] == [3, 1, 1, 1]
    assert s["small"].matched[0.9] == 1.0 and s["small"].boundary_iou == 1.0
    assert s["medium"].matched[0.5] == 0.0 and s["medium"].boundary_iou is None
    assert s["large"].matched[0.75] == 1.0 and s["large"].matched[0.9] == 0.0
    assert s["all"].matched[0.9] == pytest.approx(1 / 3)
    assert s["small"].mask_ap == pytest.approx(1.0) and s["medium"].mask_ap == 0.0
    plain = q.to_dict()
    assert plain["by_size"]["small"]["matched"]["0.9"] == 1.0
    empty = mask_quality(*_coco([small], [1], []))
    assert empty.by_size["large"].instances == 0 and empty.by_size["large"].matched[0.5] is None
    assert empty.by_size["large"].mask_ap == -1.0
