"""The simulated annotator of benchmarks/annotation_effort.py: how many clicks a polygon
takes, and the action count on hand-made images whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.annotator import (
    GOOD_IOU,
    Shown,
    Truth,
    annotate_image,
    baseline_image,
    corrections,
    grabcut_cost,
    mask_iou,
    min_polygon,
    polygon_cost,
)
from mrcnn.editing.mask_tools import polygon_mask

SIZE = 128


def disc(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r


def square(y0: int, x0: int, side: int) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), bool)
    m[y0:y0 + side, x0:x0 + side] = True
    return m


def drawn(rings) -> np.ndarray:
    out = np.zeros((SIZE, SIZE), bool)
    for r in rings:
        region = polygon_mask(r.points, out.shape)
        out = out & ~region if r.hole else out | region
    return out


def test_a_square_takes_four_clicks_and_a_close():
    rings = min_polygon(square(30, 40, 40))
    assert polygon_cost(rings) == {"vertex": 4, "close": 1}


def test_a_tilted_square_takes_four_or_five_vertices():
    m = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(m, [np.array([[64, 20], [100, 56], [64, 92], [28, 56]], np.int32)], 1)
    rings = min_polygon(m.astype(bool))
    assert 4 <= polygon_cost(rings)["vertex"] <= 5
    assert mask_iou(drawn(rings), m.astype(bool)) >= GOOD_IOU


def test_a_disc_takes_more_vertices_than_a_square_and_reaches_the_goal():
    d = disc(64, 64, 20)
    rings = min_polygon(d)
    n = polygon_cost(rings)["vertex"]
    # an n-gon on the circle covers n/(2π)·sin(2π/n) of it: 8 vertices are the first past 0.9
    assert 8 <= n <= 10
    assert mask_iou(drawn(rings), d) >= GOOD_IOU
    # and the goal is a real constraint: asking for more needs more clicks
    assert polygon_cost(min_polygon(d, target=0.97))["vertex"] > n


def test_a_ring_is_an_outline_and_a_cut_hole():
    ring = disc(64, 64, 24) & ~disc(64, 64, 14)
    rings = min_polygon(ring)
    assert [r.hole for r in rings] == [False, True]
    assert mask_iou(drawn(rings), ring) >= GOOD_IOU
    assert polygon_cost(rings)["close"] == 2


def test_one_match_one_false_positive_one_miss():
    a, b = square(10, 10, 30), square(70, 70, 30)
    truth = [Truth("square", a), Truth("disc", b)]
    shown = [Shown("square", a, 0.9), Shown("square", disc(20, 100, 8), 0.8)]
    effort = annotate_image(truth, shown, n_categories=2, tools=("polygon",))
    # accept-all 1 + delete the false positive 1 + the missed square: 4 clicks, close,
    # its category + Mark Reviewed 1
    assert effort.counts["accept_all"] == 1
    assert effort.counts["delete"] == 1
    assert effort.counts["vertex"] == 4 and effort.counts["close"] == 1
    assert effort.counts["category"] == 1
    assert effort.actions == 9
    assert effort.instances == 2
    assert effort.outcomes == {"accepted": 1, "polygon": 1}
    assert effort.counts["check"] == 2  # both shown predictions looked at, no action


def test_a_wrong_category_is_one_fix_and_needs_no_accept():
    a = square(10, 10, 30)
    effort = annotate_image([Truth("square", a)], [Shown("disc", a)], n_categories=2,
                            tools=("polygon",))
    assert effort.counts["category"] == 1
    assert effort.counts["accept_all"] == 0
    assert effort.actions == 2  # the fix and Mark Reviewed


def test_a_poor_prediction_is_corrected_when_cheaper_than_redrawing():
    gt = disc(64, 64, 30)  # a redraw costs ~10 clicks
    pred = gt.copy()
    pred[64:, 75:] = False  # a square bite out of it: IoU < 0.9
    assert mask_iou(pred, gt) < GOOD_IOU
    fix = corrections(pred, gt)
    assert fix is not None and sum(fix.values()) < 10
    effort = annotate_image([Truth("disc", gt)], [Shown("disc", pred)], n_categories=1,
                            tools=("polygon",))
    assert effort.outcomes == {"corrected": 1}
    assert effort.actions == 1 + sum(fix.values()) + 1  # select, the strokes, Mark Reviewed


def test_corrections_give_up_on_what_a_polygon_cannot_fix():
    gt = square(30, 30, 40)
    speckled = gt.copy()
    speckled[30:70:2, 30:70:2] = False  # a quarter of the pixels missing, one by one
    assert corrections(speckled, gt, max_steps=3) is None


def test_grabcut_draws_a_clear_object_with_one_drag():
    rgb = np.full((SIZE, SIZE, 3), 40, np.uint8)
    gt = square(40, 30, 36)
    rgb[gt] = (220, 200, 30)
    assert grabcut_cost(rgb, gt) == {"box": 1}
    effort = annotate_image([Truth("square", gt)], [], n_categories=3, rgb=rgb)
    assert effort.outcomes == {"grabcut": 1}
    assert effort.actions == 3  # drag, category, Mark Reviewed


@pytest.mark.parametrize("n_categories, category_clicks", [(1, 0), (4, 3)])
def test_baseline_is_a_polygon_per_instance_and_a_save(n_categories, category_clicks):
    truth = [Truth("square", square(5 + 40 * i, 10, 30)) for i in range(3)]
    effort = baseline_image(truth, n_categories=n_categories)
    assert effort.actions == 3 * 5 + category_clicks + 1
    assert effort.counts["box"] == 0 and effort.counts["accept_all"] == 0
    assert effort.per_instance() == pytest.approx(effort.actions / 3)


def test_seconds_follow_the_time_model():
    truth = [Truth("square", square(10, 10, 30))]
    effort = baseline_image(truth, n_categories=1)
    model = {"vertex": (2.0, ""), "close": (1.0, ""), "review": (3.0, "")}
    assert effort.seconds(model) == 4 * 2.0 + 1.0 + 3.0
