"""Masks are the truth, RLE is how they are stored, polygons are a view: check all three agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as cocomask
from scipy import ndimage as ndi

from mrcnn.masks import (
    Rle,
    _compressed_total,
    decode,
    decode_crop,
    encode,
    exact_polygons,
    from_coco_segmentation,
    mask_to_polygons,
    polygons_to_mask,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- strategies


@st.composite
def masks(draw, max_side: int = 64) -> np.ndarray:
    """Random (H, W) bool masks made of rectangles and discs, added or cut out.

    Cutting shapes out of earlier ones makes holes and splits parts into several components.
    """
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    m = np.zeros((h, w), bool)
    rows, cols = np.mgrid[:h, :w]
    n = draw(st.integers(0, 6))
    for _ in range(n):
        kind = draw(st.sampled_from(["rect", "disc"]))
        add = draw(st.booleans()) or not m.any()
        if kind == "rect":
            y0 = draw(st.integers(0, h - 1))
            x0 = draw(st.integers(0, w - 1))
            y1 = draw(st.integers(y0 + 1, h))
            x1 = draw(st.integers(x0 + 1, w))
            shape = np.zeros_like(m)
            shape[y0:y1, x0:x1] = True
        else:
            cy = draw(st.floats(-2, h + 1, allow_nan=False))
            cx = draw(st.floats(-2, w + 1, allow_nan=False))
            r = draw(st.floats(0.5, max(h, w) / 2 + 1, allow_nan=False))
            shape = (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
        m = m | shape if add else m & ~shape
    return m


def tight_bbox(m: np.ndarray) -> tuple[float, float, float, float]:
    if not m.any():
        return (0.0, 0.0, 0.0, 0.0)
    ys, xs = np.nonzero(m)
    return (
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1),
    )


def uncompressed_counts(m: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts: column-major runs, starting with a (maybe empty) 0-run."""
    flat = np.asarray(m, bool).flatten(order="F")
    counts: list[int] = []
    current, run = False, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = bool(v), 1
    counts.append(run)
    return counts


def ring_mask() -> np.ndarray:
    """A 7x7 mask: a 5x5 square with a 1-pixel hole in its middle."""
    m = np.zeros((7, 7), bool)
    m[1:6, 1:6] = True
    m[3, 3] = False
    return m


# --------------------------------------------------------------------------- RLE


@SETTINGS
@given(masks())
def test_encode_decode_roundtrip_keeps_every_pixel(m):
    rle = encode(m)
    assert (rle.height, rle.width) == m.shape
    back = decode(rle)
    assert back.dtype == bool
    assert back.shape == m.shape
    np.testing.assert_array_equal(back, m)
    np.testing.assert_array_equal(rle.decode(), m)


@SETTINGS
@given(masks(), st.data())
def test_a_crop_read_from_the_runs_is_the_crop_of_the_whole_mask(m, data):
    h, w = m.shape
    x0 = data.draw(st.integers(0, w))
    x1 = data.draw(st.integers(x0, w))
    y0 = data.draw(st.integers(0, h))
    y1 = data.draw(st.integers(y0, h))
    crop = decode_crop(encode(m), x0, y0, x1, y1)
    assert crop.dtype == bool
    np.testing.assert_array_equal(crop, m[y0:y1, x0:x1])


def test_a_crop_outside_the_mask_is_refused():
    with pytest.raises(ValueError, match="outside the 4x3 mask"):
        decode_crop(encode(np.ones((3, 4), bool)), 0, 0, 5, 3)


@SETTINGS
@given(masks())
def test_rle_area_and_bbox_come_from_the_mask(m):
    rle = encode(m)
    assert rle.area == int(m.sum())
    assert rle.bbox == tight_bbox(m)


def test_encode_accepts_any_dtype_nonzero_is_inside():
    m = np.array([[0, 3, 0], [255, 0, -1]], np.int16)
    np.testing.assert_array_equal(decode(encode(m)), m != 0)
    f = np.array([[0.0, 0.25], [0.0, 1.0]])
    np.testing.assert_array_equal(decode(encode(f)), f != 0)


def test_encode_rejects_non_2d_masks():
    with pytest.raises(ValueError, match="2-D"):
        encode(np.zeros((4, 4, 3), bool))
    with pytest.raises(ValueError, match="2-D"):
        encode(np.zeros(5, bool))


def test_rle_to_coco_is_json_ready_and_readable_by_pycocotools():
    m = np.zeros((5, 8), bool)
    m[1:4, 2:7] = True
    coco = encode(m).to_coco()
    assert coco["size"] == [5, 8]
    assert isinstance(coco["counts"], str)
    back = cocomask.decode({"size": coco["size"], "counts": coco["counts"].encode()})
    np.testing.assert_array_equal(back.astype(bool), m)


def test_rle_of_empty_and_full_masks():
    empty = encode(np.zeros((3, 4), bool))
    assert empty.area == 0
    assert empty.bbox == (0.0, 0.0, 0.0, 0.0)
    full = encode(np.ones((3, 4), bool))
    assert full.area == 12
    assert full.bbox == (0.0, 0.0, 4.0, 3.0)


def test_rle_is_a_value_equal_rles_compare_equal():
    m = np.eye(6, dtype=bool)
    assert encode(m) == encode(m.astype(np.uint8) * 7)
    assert encode(m) != encode(~m)


# --------------------------------------------------------------------------- _compressed_total


@SETTINGS
@given(masks())
def test_compressed_total_equals_pixel_count_for_pycocotools_rles(m):
    raw = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))["counts"]
    assert _compressed_total(raw) == m.shape[0] * m.shape[1]


@SETTINGS
@given(
    st.lists(st.integers(0, 100_000), min_size=1, max_size=30),
)
def test_compressed_total_handles_long_runs_and_negative_deltas(runs):
    # Arbitrary run lengths (multi-character numbers, runs shrinking and growing) through
    # pycocotools' own compressor.
    total = sum(runs)
    if total == 0:
        runs = [1]
        total = 1
    r = cocomask.frPyObjects({"size": [total, 1], "counts": runs}, total, 1)
    assert _compressed_total(r["counts"]) == total


def test_compressed_total_rejects_a_string_cut_mid_number():
    raw = cocomask.encode(np.asfortranarray(np.zeros((100, 100), np.uint8)))["counts"]
    assert len(raw) > 1  # 10000 needs several characters
    with pytest.raises(ValueError, match="middle of a number"):
        _compressed_total(raw[:-1])


# --------------------------------------------------------------------------- polygons


def test_single_pixel_polygon_is_its_four_corners():
    m = np.zeros((3, 4), bool)
    m[1, 2] = True
    outer, holes = mask_to_polygons(m)
    assert holes == []
    assert len(outer) == 1
    corners = {(outer[0][i], outer[0][i + 1]) for i in range(0, len(outer[0]), 2)}
    assert corners == {(2.0, 1.0), (3.0, 1.0), (3.0, 2.0), (2.0, 2.0)}
    np.testing.assert_array_equal(polygons_to_mask(outer, 3, 4), m)


def test_polygons_follow_pixel_edges_at_the_image_border():
    m = np.ones((4, 5), bool)
    outer, holes = mask_to_polygons(m)
    assert holes == []
    assert len(outer) == 1
    xs, ys = outer[0][0::2], outer[0][1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (0.0, 0.0, 5.0, 4.0)


def test_empty_mask_has_no_polygons():
    assert mask_to_polygons(np.zeros((4, 4), bool)) == ([], [])
    assert exact_polygons(np.zeros((4, 4), bool)) is None
    assert not polygons_to_mask([], 4, 4).any()
    assert polygons_to_mask([], 4, 4).shape == (4, 4)


def test_mask_to_polygons_reports_each_part_and_the_hole():
    m = np.pad(ring_mask(), ((0, 1), (0, 1)))
    m[7, 7] = True  # a separate one-pixel part (touches nothing, not even a corner)
    outer, holes = mask_to_polygons(m)
    assert len(outer) == 2
    assert len(holes) == 1
    # The hole polygon lies inside the hole pixel (3, 3) and rasterises to exactly it.
    hole = holes[0]
    assert all(3.0 <= v <= 4.0 for v in hole)
    only_hole = np.zeros((8, 8), bool)
    only_hole[3, 3] = True
    np.testing.assert_array_equal(polygons_to_mask(holes, 8, 8), only_hole)
    # Outer polygons filled, minus the hole, is the mask again.
    filled = polygons_to_mask(outer, 8, 8)
    assert filled.sum() == m.sum() + 1
    np.testing.assert_array_equal(filled & ~polygons_to_mask(holes, 8, 8), m)


def test_island_inside_a_hole_is_an_outer_polygon():
    m = np.zeros((9, 9), bool)
    m[0:9, 0:9] = True
    m[2:7, 2:7] = False
    m[4, 4] = True
    outer, holes = mask_to_polygons(m)
    assert len(outer) == 2
    assert len(holes) == 1


def test_exact_polygons_is_none_for_a_mask_with_a_hole():
    assert exact_polygons(ring_mask()) is None


def test_exact_polygons_for_diagonal_pixels_and_thin_lines():
    m = np.eye(5, dtype=bool)  # parts touching only at corners
    m[4, 0:5] = True  # one-pixel-thick line
    polys = exact_polygons(m)
    assert polys is not None
    np.testing.assert_array_equal(polygons_to_mask(polys, 5, 5), m)


@SETTINGS
@given(masks())
def test_exact_polygons_reproduce_every_hole_free_mask(m):
    m = ndi.binary_fill_holes(m)  # holes are background not 4-connected to the outside
    polys = exact_polygons(m)
    if not m.any():
        assert polys is None
        return
    assert polys is not None
    for p in polys:
        assert len(p) % 2 == 0 and len(p) >= 6
        assert all(math.isfinite(v) for v in p)
    np.testing.assert_array_equal(polygons_to_mask(polys, *m.shape), m)
    # And the COCO import of those polygons gives the same mask.
    np.testing.assert_array_equal(decode(from_coco_segmentation(polys, *m.shape)), m)


@SETTINGS
@given(masks())
def test_exact_polygons_never_return_a_lossy_answer(m):
    polys = exact_polygons(m)
    if polys is not None:
        np.testing.assert_array_equal(polygons_to_mask(polys, *m.shape), m)
    if ndi.binary_fill_holes(m).sum() != m.sum():
        assert polys is None  # the mask has a hole


# --------------------------------------------------------------------------- COCO segmentation


def test_polygon_and_both_rle_forms_give_the_same_mask():
    h, w = 12, 10
    m = np.zeros((h, w), bool)
    m[2:9, 3:8] = True
    m[5:9, 5:8] = False  # an L shape
    m[0, 0] = True  # and a second part
    polys = exact_polygons(m)
    assert polys is not None and len(polys) == 2
    compressed = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
    forms = [
        polys,
        {"size": [h, w], "counts": uncompressed_counts(m)},
        {"size": [h, w], "counts": compressed},
    ]
    results = [from_coco_segmentation(f, h, w) for f in forms]
    for r in results:
        assert isinstance(r, Rle)
        assert (r.height, r.width) == (h, w)
        np.testing.assert_array_equal(decode(r), m)
    # What is stored is canonical: the same mask always gives the same counts.
    assert len({r.counts for r in results}) == 1


def test_float_polygon_from_another_tool():
    # labelme/CVAT write float vertices; a triangle covering the pixel centres it encloses.
    rle = from_coco_segmentation([[0.0, 0.0, 10.0, 0.0, 0.0, 10.0]], 10, 10)
    m = decode(rle)
    assert m[0, 0] and m[1, 1] and not m[9, 9]
    assert 40 <= rle.area <= 60


@SETTINGS
@given(masks())
def test_uncompressed_rle_import_matches_the_mask(m):
    h, w = m.shape
    rle = from_coco_segmentation({"size": [h, w], "counts": uncompressed_counts(m)}, h, w)
    np.testing.assert_array_equal(decode(rle), m)
    assert rle == encode(m)


@pytest.mark.parametrize(
    ("seg", "match"),
    [
        ([[0, 0, 5, 0]], "2 points; at least 3"),
        ([[0, 0]], "1 points; at least 3"),
        ([[0, 0, 5, 0, 5]], "odd number of coordinates"),
        ([[0, 0, 5, 0, 5, 5, 1]], "odd number of coordinates"),
        ([[0, 0, 5, float("nan"), 5, 5]], "non-finite"),
        ([[0, 0, 5, float("inf"), 5, 5]], "non-finite"),
        ([[0, 0, 5, 0, "5", 5]], "flat list of numbers"),
        ([[0, 0, 5, 0, True, 5]], "flat list of numbers"),
        ([[0, 0, 5, 0, None, 5]], "flat list of numbers"),
        ([[[0, 0], [5, 0], [5, 5]]], "flat list of numbers"),
        ([(0, 0, 5, 0, 5, 5)], "flat list of numbers"),
        ([], "empty polygon list"),
        ({"size": [10, 12], "counts": [120]}, "does not match image size"),
        ({"size": [10], "counts": [100]}, r"'size' must be \[height, width\]"),
        ({"size": "10x10", "counts": [100]}, r"'size' must be \[height, width\]"),
        ({"size": [10.0, 10.0], "counts": [100]}, r"'size' must be \[height, width\]"),
        ({"counts": [100]}, r"'size' must be \[height, width\]"),
        ({"size": [10, 10], "counts": [50, 49]}, "sum to 99, not height\\*width = 100"),
        ({"size": [10, 10], "counts": [50, 51]}, "sum to 101"),
        ({"size": [10, 10], "counts": [50, -1, 51]}, "non-negative integers"),
        ({"size": [10, 10], "counts": [50.0, 50]}, "non-negative integers"),
        ({"size": [10, 10], "counts": "abc def"}, "invalid characters"),
        ({"size": [10, 10], "counts": "P1~"}, "invalid characters"),
        ({"size": [10, 10], "counts": "P1é"}, "non-ASCII"),
        ({"size": [10, 10], "counts": "0"}, "sum to 0, not height\\*width = 100"),
        ({"size": [10, 10], "counts": 100}, "'counts' must be a string or a list"),
        ({"size": [10, 10]}, "'counts' must be a string or a list"),
        ("polygon", "polygon list or an RLE object"),
        (None, "polygon list or an RLE object"),
        (np.zeros((10, 10)), "polygon list or an RLE object"),
    ],
)
def test_malformed_segmentation_is_refused_with_the_reason(seg, match):
    with pytest.raises(ValueError, match=match):
        from_coco_segmentation(seg, 10, 10)


def test_compressed_rle_with_a_wrong_total_names_both_numbers():
    m = np.ones((4, 5), bool)
    counts = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
    with pytest.raises(ValueError, match="sum to 20, not height\\*width = 100"):
        from_coco_segmentation({"size": [10, 10], "counts": counts}, 10, 10)


def test_compressed_rle_cut_short_is_refused():
    m = np.zeros((100, 100), bool)
    m[10:20, 10:20] = True
    counts = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
    with pytest.raises(ValueError, match="RLE"):
        from_coco_segmentation({"size": [100, 100], "counts": counts[:-1]}, 100, 100)


def test_compressed_rle_decoding_to_a_negative_run_is_refused():
    # 'O' is one character with value bits 0x0F and the sign bit 0x10 set, no continuation:
    # the number -1. As a first run (no delta) that is a negative run length.
    assert _compressed_total(b"4") == 4
    with pytest.raises(ValueError, match="negative run"):
        _compressed_total(b"O")
    with pytest.raises(ValueError, match="negative run"):
        from_coco_segmentation({"size": [2, 2], "counts": "4O"}, 2, 2)
