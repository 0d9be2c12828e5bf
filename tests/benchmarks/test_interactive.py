"""benchmarks/interactive.py: the clicker of the interactive-segmentation protocol, and the
table of clicks to 85% / 90% IoU per tool (stand-in models, no torch)."""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.annotator import mask_iou
from benchmarks.interactive import (
    BOX_CLICKS,
    MAX_CLICKS,
    Offers,
    Tally,
    clicks_to,
    correction_click,
    format_table,
    innermost_point,
    measure_instance,
)


def disc(cx: int, cy: int, r: int, shape=(80, 100)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


def test_each_click_lands_in_the_deepest_error_and_only_fixes_pixels():
    truth = disc(50, 40, 20)
    start = disc(47, 40, 20)  # shifted: a missed crescent on the right, a false one left
    x, y, depth = innermost_point(truth & ~start)
    assert truth[y, x] and not start[y, x] and depth >= 2
    after = correction_click(start, truth)
    assert mask_iou(after, truth) > mask_iou(start, truth)
    assert not (after & ~start & ~truth).any()  # a positive click paints only missed pixels
    assert clicks_to(truth, truth, BOX_CLICKS, 0.9) == BOX_CLICKS  # already right: the box
    assert clicks_to(None, truth, BOX_CLICKS, 0.9) == MAX_CLICKS  # nothing made
    n85, n90 = (clicks_to(start, truth, BOX_CLICKS, t) for t in (0.85, 0.9))
    assert BOX_CLICKS < n85 <= n90 < MAX_CLICKS


def test_the_table_counts_clicks_per_tool():
    truth = disc(50, 40, 18)
    rgb = np.full((80, 100, 3), 60, np.uint8)
    rgb[truth] = (220, 40, 40)  # crisp: GrabCut finds it
    offers = Offers(np.stack([disc(50, 40, 10), truth]), np.array([0.3, 0.2], np.float32))
    tally = Tally()
    measure_instance(tally, rgb, truth, 1, lambda _iid, _box: truth.copy(), offers)
    assert tally.noc("box → mask", 0.9) == BOX_CLICKS  # the model's mask is exact
    # the innermost point is under both offers; the second is exact: 2 clicks + accept
    assert tally.noc("pick, else box → mask", 0.9) == 3
    assert tally.noc("polygon", 0.9) >= tally.noc("polygon", 0.85) >= 4
    table = format_table(tally, {"box": [10.0, 12.0, 30.0], "predict": [400.0, 420.0]})
    lines = table.splitlines()
    assert lines[0].split() == ["tool", "NoC@85", "NoC@90", ">", "20", "@90"]
    assert [ln.split("  ")[0] for ln in lines[1:6]] == [
        "polygon", "box → grabcut", "box → mask, raw", "box → mask", "pick, else box → mask"]
    assert "(1 instances)" in lines[6]
    assert lines[7].startswith("box → mask from kept features: median 12 ms, p95 ")
    assert lines[7].endswith("median ratio 34.2x")


def test_the_apps_refinement_applies_to_the_models_masks_not_to_the_raw_row():
    truth = disc(50, 40, 18)
    rgb = np.full((80, 100, 3), 60, np.uint8)
    rgb[truth] = (220, 40, 40)
    rough = disc(50, 40, 14)  # the model's mask falls short of the edge
    offers = Offers(rough[None], np.array([0.8], np.float32))
    tally = Tally()
    measure_instance(tally, rgb, truth, 1, lambda _iid, _box: rough.copy(), offers,
                     refine=lambda _rgb, _mask: truth.copy())  # snaps it to the edge
    assert tally.noc("box → mask", 0.9) == BOX_CLICKS
    assert tally.noc("pick, else box → mask", 0.9) == 2  # a click and the accept
    assert tally.noc("box → mask, raw", 0.9) > BOX_CLICKS
