"""The simulated annotator of benchmarks/annotation_effort.py: how many clicks a polygon
takes, and the action count on hand-made images whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.annotator import (
    BRUSH_FIX,
    GOOD_IOU,
    POLYGON_FIX,
    SECONDS,
    Shown,
    Truth,
    annotate_image,
    baseline_image,
    cheapest_fix,
    corrections,
    fix_options,
    grabcut_cost,
    mask_iou,
    min_polygon,
    polygon_cost,
)
from benchmarks.brush_model import (
    APP_BRUSH_RADIUS,
    MIN_BRUSH_RADIUS,
    brush_radius,
    error_parts,
)
from benchmarks.brush_model import brush_strokes as _strokes
from mrcnn.editing.mask_tools import polygon_mask

SIZE = 128


def brush_strokes(start, target, *, radius):
    """The annotator's strokes: to its goal, IoU >= GOOD_IOU."""
    return _strokes(start, target, radius=radius, goal=GOOD_IOU)


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


def test_a_straight_cut_is_corrected_with_polygon_strokes_when_cheaper():
    gt = square(20, 20, 60)
    pred = gt.copy()
    pred[:, 56:] = False  # 40 % of the square missing: a rectangle, 4 clicks and a close
    fix = corrections(pred, gt)
    assert fix == {"vertex": 4, "close": 1}
    effort = annotate_image([Truth("square", gt)], [Shown("square", pred)], n_categories=2,
                            tools=("polygon",))
    # redrawing costs as many clicks plus the delete and the category; the brush needs 6
    # strokes of a 6 px brush to paint a 60x24 block
    assert effort.outcomes == {POLYGON_FIX: 1}
    assert effort.counts == {"check": 1, "select": 1, "vertex": 4, "close": 1, "review": 1}


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


def test_box_to_mask_draws_what_the_model_knows_where_grabcut_cannot():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)  # no edge to follow
    gt = disc(60, 60, 20)
    boxes = []

    def box_model(box):
        boxes.append(box)
        return gt.copy()  # a model that knows the object

    effort = annotate_image([Truth("disc", gt)], [], n_categories=1, rgb=rgb,
                            box_model=box_model)
    assert effort.outcomes == {"boxmask": 1}
    assert effort.actions == 2  # one drag, Mark Reviewed
    x0, y0, x1, y1 = boxes[0]
    assert x0 < 40 < 80 < x1 and y0 < 40 < 80 < y1  # the box a person drags around it
    # a model that does not know it: the annotator draws it another way
    lost = annotate_image([Truth("disc", gt)], [], n_categories=1, rgb=rgb,
                          box_model=lambda box: np.zeros_like(gt))
    assert "boxmask" not in lost.outcomes and lost.actions > 2


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


# ---------------------------------------------------------------- brush and eraser
def eroded(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.erode(mask.astype(np.uint8), k).astype(bool)


def shifted_to_iou(gt: np.ndarray, iou: float) -> np.ndarray:
    """`gt` moved right until its IoU with itself first falls to `iou` or below."""
    for dx in range(1, SIZE):
        moved = np.roll(gt, dx, axis=1)
        if mask_iou(moved, gt) <= iou:
            return moved
    raise AssertionError("never that far off")


def cost_seconds(cost) -> float:
    return sum(n * SECONDS[k][0] for k, n in cost.items())


def test_the_brush_is_sized_to_the_object_and_starts_where_the_app_does():
    assert brush_radius(disc(64, 64, 30)) == pytest.approx(3.0, abs=0.01)  # 60 px: 6 px
    assert brush_radius(square(60, 60, 3)) == MIN_BRUSH_RADIUS
    assert brush_radius(disc(64, 64, 30)) < brush_radius(square(0, 0, 120))


def test_app_brush_defaults_are_the_models():
    pytest.importorskip("PySide6")
    from app.canvas.tools.base import MIN_RADIUS, ToolOptions

    assert ToolOptions().brush_radius == APP_BRUSH_RADIUS
    assert MIN_RADIUS == MIN_BRUSH_RADIUS


def test_error_parts_split_paint_from_erase_and_sweep_near_bits_together():
    gt = square(30, 30, 40)
    pred = gt.copy()
    pred[30:40, 30:40] = False  # a corner to paint
    pred[80:90, 50:60] = True  # a bump to erase
    parts = error_parts(pred, gt, radius=2.0)
    assert [(p.pixels, p.erase) for p in parts] == [(100, False), (100, True)]
    assert parts[0].length == pytest.approx(20, abs=2)  # half of a 10x10 square's outline
    speckled = gt.copy()
    speckled[30:70:2, 30:70:2] = False  # 400 one-pixel holes, 2 px apart
    assert len(error_parts(speckled, gt, radius=2.0)) == 1  # one stroke path sweeps them
    assert len(error_parts(speckled, gt, radius=0.4)) == 400  # a 1 px brush does not


def test_a_2px_erosion_of_a_60px_disc_takes_a_few_brush_strokes_not_a_redraw():
    gt = disc(64, 64, 30)
    pred = eroded(gt, 2)
    assert 0.85 < mask_iou(pred, gt) < GOOD_IOU
    strokes = brush_strokes(pred, gt, radius=brush_radius(gt))
    assert strokes is not None and set(strokes) == {"brush"}
    assert 1 <= strokes["brush"] <= 3  # the whole ring would take 7: IoU 0.9 comes sooner
    effort = annotate_image([Truth("disc", gt)], [Shown("disc", pred)], n_categories=1,
                            tools=("polygon",))
    assert effort.outcomes == {BRUSH_FIX: 1}
    # select, resize the app's 8 px brush to 3 px, the strokes, Mark Reviewed
    assert effort.actions == 1 + 1 + strokes["brush"] + 1
    redraw = annotate_image([Truth("disc", gt)], [], n_categories=1, tools=("polygon",))
    assert effort.actions < redraw.actions + 1  # + 1: deleting the prediction first


def test_a_missing_quarter_takes_a_handful_of_strokes():
    gt = disc(64, 64, 30)
    pred = gt.copy()
    pred[64:, 64:] = False
    assert mask_iou(pred, gt) == pytest.approx(0.75, abs=0.01)
    strokes = brush_strokes(pred, gt, radius=brush_radius(gt))
    assert strokes is not None and 2 <= strokes["brush"] <= 5 and set(strokes) == {"brush"}
    # more than the 2 px ring: a blob of 700 px needs swaths, not only a pass along it
    assert strokes["brush"] > brush_strokes(eroded(gt, 2), gt, radius=brush_radius(gt))["brush"]
    effort = annotate_image([Truth("disc", gt)], [Shown("disc", pred)], n_categories=1)
    assert effort.outcomes == {BRUSH_FIX: 1}


def test_a_prediction_at_iou_0_3_is_redrawn():
    gt = disc(64, 64, 30)
    pred = shifted_to_iou(gt, 0.3)
    strokes = brush_strokes(pred, gt, radius=brush_radius(gt))
    assert strokes["brush"] > 5 and strokes["eraser"] > 5  # both crescents, nearly whole
    effort = annotate_image([Truth("disc", gt)], [Shown("disc", pred)], n_categories=1,
                            tools=("polygon",))
    assert effort.outcomes == {"redrawn (polygon)": 1}
    assert effort.paths() == {"as-is": 0, "brush": 0, "polygon strokes": 0, "redrawn": 1,
                              "drawn": 0}
    drawing = polygon_cost(min_polygon(gt))
    assert effort.counts == {"check": 1, "delete": 1, **drawing, "review": 1}


@pytest.mark.parametrize("case", ["eroded", "quarter", "shifted", "cut square", "dilated",
                                  "wrong category"])
def test_the_chosen_path_is_the_cheapest(case):
    gt = square(20, 20, 60) if case == "cut square" else disc(64, 64, 30)
    pred = {"eroded": lambda: eroded(gt, 2), "quarter": lambda: gt & ~square(64, 64, 64),
            "shifted": lambda: shifted_to_iou(gt, 0.3),
            "cut square": lambda: gt & ~square(0, 56, 128),
            "dilated": lambda: ~eroded(~gt, 3), "wrong category": lambda: eroded(gt, 2)}[case]()
    assert mask_iou(pred, gt) < GOOD_IOU
    truth = Truth("disc", gt)
    wrong = case == "wrong category"
    options = fix_options(pred, truth, None, tools=("polygon",), wrong_category=wrong,
                          n_categories=2)
    assert {o.path for o in options} >= {BRUSH_FIX, "redrawn"}
    chosen = cheapest_fix(pred, truth, None, tools=("polygon",), wrong_category=wrong,
                          n_categories=2)
    assert chosen.actions == min(o.actions for o in options)
    ties = [o for o in options if o.actions == chosen.actions]
    assert cost_seconds(chosen.cost) == min(cost_seconds(o.cost) for o in ties)
    effort = annotate_image([truth], [Shown("other" if wrong else "disc", pred)],
                            n_categories=2, tools=("polygon",))
    assert effort.actions == chosen.actions + 1  # + Mark Reviewed
    assert chosen.cost["category"] == int(wrong or chosen.path == "redrawn")


def test_each_path_wins_somewhere():
    def path(gt, pred):
        return cheapest_fix(pred, Truth("x", gt), None, tools=("polygon",),
                            wrong_category=False, n_categories=2).path

    d = disc(64, 64, 30)
    s = square(20, 20, 60)
    assert path(d, eroded(d, 2)) == BRUSH_FIX
    assert path(s, s & ~square(0, 56, 128)) == POLYGON_FIX
    assert path(d, shifted_to_iou(d, 0.3)) == "redrawn"


def test_the_accounting_of_a_hand_made_image_adds_up():
    n = 256
    yy, xx = np.mgrid[:n, :n]

    def circle(cy, cx, r):
        return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r

    def box(y0, x0, side):
        m = np.zeros((n, n), bool)
        m[y0:y0 + side, x0:x0 + side] = True
        return m

    disc_a, disc_b = circle(40, 40, 30), circle(40, 120, 30)
    cut_gt = box(90, 10, 60)
    cut = cut_gt.copy()
    cut[:, 46:] = False
    off_gt = circle(120, 130, 30)
    off = circle(120, 156, 30)
    kept, missed = box(180, 10, 30), box(180, 200, 30)
    truth = [Truth("disc", disc_a), Truth("disc", disc_b), Truth("square", cut_gt),
             Truth("disc", off_gt), Truth("square", kept), Truth("square", missed)]
    shown = [Shown("disc", eroded(disc_a, 2)), Shown("disc", eroded(disc_b, 2)),
             Shown("square", cut), Shown("disc", off), Shown("square", kept),
             Shown("disc", circle(230, 120, 8))]  # the last: a false positive
    assert mask_iou(off, off_gt) < 0.4
    effort = annotate_image(truth, shown, n_categories=2, tools=("polygon",))

    radius = brush_radius(disc_a)
    assert radius == pytest.approx(brush_radius(disc_b))  # one resize serves both discs
    fix_a = brush_strokes(eroded(disc_a, 2), disc_a, radius=radius)
    fix_b = brush_strokes(eroded(disc_b, 2), disc_b, radius=radius)
    fix_cut = corrections(cut, cut_gt)
    redraw_off = polygon_cost(min_polygon(off_gt))
    draw_missed = polygon_cost(min_polygon(missed))
    expected = (fix_a + fix_b + fix_cut + redraw_off + draw_missed)
    expected.update(check=6, select=3, brush_size=1, delete=2, category=2, accept_all=1,
                    review=1)
    assert effort.counts == expected
    assert effort.outcomes == {"accepted": 1, BRUSH_FIX: 2, POLYGON_FIX: 1,
                               "redrawn (polygon)": 1, "polygon": 1}
    assert effort.paths() == {"as-is": 1, "brush": 2, "polygon strokes": 1, "redrawn": 1,
                              "drawn": 1}
    assert sum(effort.paths().values()) == effort.instances == 6
    assert effort.seconds() == pytest.approx(cost_seconds(expected))
