"""Mask tools on known synthetic images: every tool changes exactly the pixels it says.

References are computed independently: exact rational arithmetic for brush discs, scikit-image
(`skimage.draw.polygon`, a centre-in-polygon test) and pycocotools for polygons, plain numpy
for the rest.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import skimage.draw

from mrcnn.editing import mask_tools as mt
from mrcnn.editing.mask_tools import Rect
from mrcnn.errors import MaskToolError
from mrcnn.masks import mask_to_polygons, polygons_to_mask


# ---------------------------------------------------------------- references
def _dist2_to_segment(px: Fraction, py: Fraction, a, b) -> Fraction:
    ax, ay, bx, by = (Fraction(v) for v in (*a, *b))
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = Fraction(0) if length2 == 0 else min(Fraction(1), max(
        Fraction(0), ((px - ax) * dx + (py - ay) * dy) / length2))
    ex, ey = px - ax - t * dx, py - ay - t * dy
    return ex * ex + ey * ey


def stroke_reference(shape, points, radius) -> np.ndarray:
    """Pixels whose centre is within `radius` of the polyline, in exact arithmetic."""
    h, w = shape
    r2 = Fraction(radius) ** 2
    segs = list(zip(points[:-1], points[1:], strict=True)) or [(points[0], points[0])]
    out = np.zeros(shape, bool)
    for row in range(h):
        for col in range(w):
            cx, cy = Fraction(2 * col + 1, 2), Fraction(2 * row + 1, 2)
            out[row, col] = any(_dist2_to_segment(cx, cy, a, b) <= r2 for a, b in segs)
    return out


def disk(shape, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r


def blobs(seed: int, shape=(40, 50), p: float = 0.45) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.random(shape) < p
    # Smooth a little so that there are parts, holes and diagonal touches.
    s = m.astype(int)
    s[1:-1, 1:-1] = m[:-2, 1:-1] + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:] + m[1:-1, 1:-1]
    return s >= 3


# ---------------------------------------------------------------- brush and eraser
def test_a_disc_covers_exactly_the_pixels_whose_centre_is_within_the_radius():
    shape = (12, 12)
    one = mt.brush(np.zeros(shape, bool), [(5.5, 5.5)], 0.5)
    assert np.argwhere(one).tolist() == [[5, 5]]
    plus = mt.brush(np.zeros(shape, bool), [(5.5, 5.5)], 1)
    assert sorted(map(tuple, np.argwhere(plus).tolist())) == [
        (4, 5), (5, 4), (5, 5), (5, 6), (6, 5)]
    square = mt.brush(np.zeros(shape, bool), [(5, 5)], 1)  # at a pixel corner
    assert sorted(map(tuple, np.argwhere(square).tolist())) == [(4, 4), (4, 5), (5, 4), (5, 5)]
    assert mt.brush(np.zeros(shape, bool), [(5, 5)], 0.75).sum() == 4
    assert not mt.brush(np.zeros(shape, bool), [(5, 5)], 0.5).any()  # centres are 0.707 away


@pytest.mark.parametrize("points, radius", [
    ([(10.25, 7.5)], 4),
    ([(3, 4), (30, 20)], 3),
    ([(2.5, 25.75), (20, 3), (36.5, 22), (36.5, 22.25)], 2.5),
    ([(-3, -2), (45, 33)], 5),  # runs off the image on both ends
    ([(12, 12), (12, 12)], 0),  # a zero-length segment of zero radius: no centre on it
])
def test_brush_adds_exactly_the_stroked_disc_pixels_and_eraser_removes_them(points, radius):
    shape = (30, 40)
    ref = stroke_reference(shape, points, radius)
    base = blobs(1, shape)
    assert np.array_equal(mt.brush(base, points, radius), base | ref)
    assert np.array_equal(mt.erase(base, points, radius), base & ~ref)
    rect, crop = mt.stroke_footprint(points, radius, shape)
    full = np.zeros(shape, bool)
    full[rect.slices] = crop
    assert np.array_equal(full, ref)
    before = base.copy()
    assert mt.brush(base, points, radius) is not base and np.array_equal(base, before)


def test_incremental_segments_paint_the_same_as_the_whole_stroke_and_report_dirty_rects():
    shape = (60, 80)
    points = [(5.0, 5.0), (20.3, 40.1), (21.0, 41.0), (70.2, 12.9), (40.0, 55.5)]
    whole = mt.brush(np.zeros(shape, bool), points, 3.5)
    live = np.zeros(shape, bool)
    for a, b in zip(points[:-1], points[1:], strict=True):
        before = live.copy()
        rect = mt.paint_stroke(live, [a, b], 3.5)
        changed = mt.changed_rect(before, live)
        assert changed.intersect(rect) == changed  # every change lies in the dirty rect
    assert np.array_equal(live, whole)
    erased = whole.copy()
    mt.paint_stroke(erased, points, 3.5, erase=True)
    assert not erased.any()


@pytest.mark.parametrize("points, radius", [([], 3), ([(1, float("nan"))], 3), ([(1, 2)], -1),
                                            ([(1, 2, 3)], 1), ([(1, 2)], float("inf"))])
def test_bad_strokes_are_refused_with_a_typed_error(points, radius):
    with pytest.raises(MaskToolError):
        mt.brush(np.zeros((5, 5), bool), points, radius)


# ---------------------------------------------------------------- polygons
def test_a_polygon_fills_its_interior():
    m = mt.polygon_mask([2, 3, 10, 3, 10, 8, 2, 8], (12, 14))
    ref = np.zeros((12, 14), bool)
    ref[3:8, 2:10] = True
    assert np.array_equal(m, ref)
    assert np.array_equal(mt.polygon_mask([(2, 3), (10, 3), (10, 8), (2, 8)], (12, 14)), ref)
    two = mt.polygon_mask([[0, 0, 2, 0, 2, 2, 0, 2], [(4, 4), (6, 4), (6, 7)]], (12, 14))
    assert two.sum() == 4 + 3
    tri = mt.polygon_mask(np.array([[0, 0], [8, 0], [0, 8]]), (8, 8))
    yy, xx = np.mgrid[:8, :8]
    assert np.array_equal(tri, (xx + 0.5) + (yy + 0.5) < 8)  # centres on the slant: outside


@pytest.mark.parametrize("seed", range(6))
def test_polygons_follow_the_pixel_centre_rule_like_skimage(seed):
    rng = np.random.default_rng(seed)
    shape = (40, 50)
    for _ in range(25):
        pts = rng.random((int(rng.integers(3, 9)), 2)) * [60, 50] - [5, 5]
        rr, cc = skimage.draw.polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, shape)
        ref = np.zeros(shape, bool)
        ref[rr, cc] = True
        assert np.array_equal(mt.polygon_mask(pts, shape), ref)


@pytest.mark.parametrize("seed", range(5))
def test_pixel_edge_polygons_rasterise_exactly_like_pycocotools_holes_included(seed):
    m = blobs(seed)
    m[5:35, 30:48] = True
    m[8:30, 33:45] &= blobs(seed + 10, (22, 12), 0.6)  # holes, islands in holes
    outer, holes = mask_to_polygons(m)
    assert holes  # the test means something only with holes
    assert np.array_equal(mt.polygon_mask(outer + holes, m.shape), m)
    assert np.array_equal(mt.polygon_mask(outer, m.shape), polygons_to_mask(outer, *m.shape))


def test_polygon_add_and_cut_touch_only_the_interior():
    base = blobs(3)
    poly = [4.2, 3.1, 30.7, 6.3, 22.2, 33.9]
    inside = mt.polygon_mask(poly, base.shape)
    assert inside.sum() > 100
    assert np.array_equal(mt.polygon_add(base, poly), base | inside)
    assert np.array_equal(mt.polygon_cut(base, poly), base & ~inside)
    for bad in ([1, 2, 3, 4], [1, 2, 3], [[1, 2, 3], [4, 5, 6]], [], [(0, 0), (1, "x"), (2, 2)]):
        with pytest.raises(MaskToolError):
            mt.polygon_mask(bad, base.shape)


# ---------------------------------------------------------------- topology
def test_fill_holes_fills_enclosed_background_only():
    shape = (40, 40)
    ring = disk(shape, 20, 20, 12) & ~disk(shape, 20, 20, 5)
    notch = np.zeros(shape, bool)
    notch[0:10, 0:10] = True
    notch[0:4, 3:6] = False  # open to the image border: not a hole
    m = ring | notch
    filled = mt.fill_holes(m)
    assert np.array_equal(filled, disk(shape, 20, 20, 12) | notch)
    assert np.array_equal(mt.fill_holes(m, max_area=10), m)  # the hole is bigger than 10
    assert not mt.fill_holes(np.zeros(shape, bool)).any()


def test_remove_specks_drops_parts_smaller_than_the_area():
    m = np.zeros((30, 30), bool)
    m[2:12, 2:12] = True  # 100
    m[20:23, 20:23] = True  # 9
    m[25, 2] = True  # 1
    m[27, 27] = m[28, 28] = True  # 2 pixels, touching diagonally (one part with 8-conn)
    kept = mt.remove_specks(m, 9)
    expected = np.zeros_like(m)
    expected[2:12, 2:12] = True
    expected[20:23, 20:23] = True
    assert np.array_equal(kept, expected)
    assert mt.remove_specks(m, 2).sum() == 111
    assert mt.remove_specks(m, 2, connectivity=4).sum() == 109


def test_remove_specks_never_removes_the_object_itself():
    """A small object (7 x 7 px, below the 64 px default) is not a speck of itself: only the
    parts beside its largest one go, so Remove Specks over many small objects keeps them."""
    small = np.zeros((30, 30), bool)
    small[5:12, 5:12] = True  # 49 pixels
    assert np.array_equal(mt.remove_specks(small, 64), small)
    with_speck = small.copy()
    with_speck[20, 20] = True
    assert np.array_equal(mt.remove_specks(with_speck, 64), small)
    twins = np.zeros((30, 30), bool)
    twins[2:5, 2:5] = twins[20:23, 20:23] = True  # tied for largest: both stay
    assert np.array_equal(mt.remove_specks(twins, 64), twins)
    assert not mt.remove_specks(np.zeros((5, 5), bool), 64).any()


def test_split_gives_each_connected_part_largest_first_and_merge_puts_them_back():
    m = np.zeros((20, 20), bool)
    m[1:4, 1:4] = True  # 9
    m[10:15, 10:15] = True  # 25
    m[4, 4] = True  # diagonal to the 3x3 square
    parts = mt.split_components(m)
    assert [p.sum() for p in parts] == [25, 10]
    assert np.array_equal(mt.merge_masks(parts), m)
    assert [p.sum() for p in mt.split_components(m, connectivity=4)] == [25, 9, 1]
    assert mt.split_components(np.zeros((5, 5), bool)) == []
    with pytest.raises(MaskToolError):
        mt.merge_masks([m, np.zeros((3, 3), bool)])
    with pytest.raises(MaskToolError):
        mt.merge_masks([])


# ---------------------------------------------------------------- rectangles and colour
def test_rect_of_mask_union_intersect_and_changed_rect():
    m = np.zeros((10, 12), bool)
    assert Rect.of_mask(m).empty
    m[2, 3] = m[6, 9] = True
    assert Rect.of_mask(m) == Rect(3, 2, 10, 7)
    assert Rect(0, 0, 2, 2).union(Rect(5, 5, 6, 7)) == Rect(0, 0, 6, 7)
    assert Rect(0, 0, 2, 2).intersect(Rect(5, 5, 6, 7)).empty
    assert Rect(-3, -1, 50, 4).clip(m.shape) == Rect(0, 0, 12, 4)
    n = m.copy()
    n[8, 1] = True
    assert mt.changed_rect(m, n) == Rect(1, 8, 2, 9)


def test_colorize_region_colours_exactly_the_mask_pixels_of_the_rectangle():
    m = blobs(2, (30, 40))
    rect = Rect(5, 3, 33, 25)
    px = mt.colorize_region(m, rect, (10, 20, 30, 255))
    assert px.shape == (22, 28, 4) and px.dtype == np.uint8
    crop = m[3:25, 5:33]
    assert (px[crop] == (10, 20, 30, 255)).all()
    assert (px[~crop] == 0).all()
    assert mt.colorize_region(m, Rect(35, 25, 60, 60), (1, 2, 3, 4)).shape == (5, 5, 4)
