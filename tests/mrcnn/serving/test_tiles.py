"""Tiled prediction's rules (`mrcnn.serving.tiles`): the grid, the auto rule, the merge of
hand-made tile detections, masks kept as crops. No model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn import masks
from mrcnn.serving.tiles import (
    WHOLE,
    CropMasks,
    Piece,
    Tile,
    mask_rles,
    merge,
    overlap_for,
    parse_tiles,
    tile_grid,
    tile_pieces,
    tile_size_for,
    whole_pieces,
)


@settings(max_examples=300, deadline=None)
@given(height=st.integers(1, 5000), width=st.integers(1, 5000), tile=st.integers(32, 1500),
       data=st.data())
def test_tile_grid_covers_the_image_with_the_stated_overlap(height, width, tile, data):
    overlap = data.draw(st.one_of(st.none(), st.integers(0, tile - 1)), label="overlap")
    grid = tile_grid(height, width, tile, overlap)
    want = overlap_for(tile) if overlap is None else overlap
    xs = sorted({t.x0 for t in grid})
    ys = sorted({t.y0 for t in grid})
    assert len(grid) == len(xs) * len(ys)  # a full grid, no tile twice
    for t in grid:  # inside the image, tile-sized (smaller only along a shorter side)
        assert 0 <= t.x0 < t.x1 <= width and 0 <= t.y0 < t.y1 <= height
        assert t.width == min(tile, width) and t.height == min(tile, height)
    for starts, length in ((xs, width), (ys, height)):
        side = min(tile, length)
        assert starts[0] == 0 and starts[-1] + side == length  # edge to edge
        for a, b in zip(starts, starts[1:], strict=False):
            assert a + side - b >= want  # neighbours overlap by at least the overlap
        if len(starts) > 1:  # the fewest tiles: one fewer could not keep that overlap
            n = len(starts) - 1
            assert n == 1 or (n - 1) * (side - want) < length - side
    covered = np.zeros((min(height, 600), min(width, 600)), bool)
    for t in grid:
        covered[t.y0:t.y1, t.x0:t.x1] = True
    assert covered.all()  # every pixel (of the first 600 x 600)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(40, 6000), tile=st.integers(32, 1024), data=st.data())
def test_an_object_no_wider_than_the_overlap_lies_whole_in_some_tile(length, tile, data):
    grid = tile_grid(1, length, tile)
    size = data.draw(st.integers(1, min(overlap_for(tile), length)), label="object size")
    start = data.draw(st.integers(0, length - size), label="object start")
    assert any(t.x0 <= start and start + size <= t.x1 for t in grid)


def test_parse_tiles():
    assert parse_tiles("auto") == "auto" and parse_tiles(" OFF ") == "off"
    assert parse_tiles("640") == 640 and parse_tiles(512) == 512
    for bad in ("big", "16", 0, -5, True, "1e3"):
        with pytest.raises(ValueError, match="tiles must be 'auto', 'off'"):
            parse_tiles(bad)


def test_auto_tiles_images_longer_than_twice_the_models_longest_input_and_2666_px():
    size = {"input_short": 800, "input_long": 1333}
    assert tile_size_for("auto", 4000, 6000, **size) == 800
    assert tile_size_for("auto", 2000, 2667, **size) == 800
    assert tile_size_for("auto", 2666, 2666, **size) is None  # exactly 2x: whole
    assert tile_size_for("auto", 1024, 768, **size) is None
    assert tile_size_for("off", 40000, 60000, **size) is None
    assert tile_size_for(512, 600, 400, **size) == 512  # a size: any image larger than it
    assert tile_size_for(512, 512, 300, **size) is None
    small = {"input_short": 256, "input_long": 426}  # the CPU recipe's r18
    assert tile_size_for("auto", 1500, 2000, **small) is None  # a photo: whole, as trained
    assert tile_size_for("auto", 2000, 3000, **small) == 256
    large = {"input_short": 1600, "input_long": 2000}
    assert tile_size_for("auto", 3000, 4000, **large) is None  # not over 2 x 2000
    assert tile_size_for("auto", 3000, 4001, **large) == 1600


# ---------------------------------------------------------------- the merge, by hand
H, W = 200, 300
#: two tiles side by side overlapping in columns 100-159 (their seam band)
TILES = [Tile(0, 0, 160, 200), Tile(100, 0, 300, 200)]


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def disc(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def seen(tile_index: int, full_masks: list[np.ndarray], labels: list[int],
         scores: list[float] | None = None) -> list[Piece]:
    """What a perfect model gives for one tile: each object's part inside the tile."""
    t = TILES[tile_index]
    masks = [m[t.y0:t.y1, t.x0:t.x1] for m in full_masks]
    boxes = np.array([[0, 0, 1, 1]] * len(masks), np.float32)
    return tile_pieces(tile_index, t, boxes, np.array(labels),
                       np.array(scores or [0.9] * len(masks)), masks, height=H, width=W)


def full(piece: Piece) -> np.ndarray:
    return CropMasks.of(H, W, [piece])[0]


def test_an_object_split_across_a_seam_becomes_one_instance_with_the_union_mask():
    # wider than the overlap: each tile sees only its part, cut at its edge
    obj = disc(100, 130, 50)
    pieces = seen(0, [obj], [1], [0.8]) + seen(1, [obj], [1], [0.9])
    assert [p.cut for p in pieces] == [True, True]
    (one,) = merge(pieces, TILES)
    assert one.label == 1 and one.score == pytest.approx(0.9)
    assert np.array_equal(full(one), obj)
    assert one.box == (80.0, 50.0, 181.0, 151.0)  # the union's box


def test_two_touching_objects_of_different_classes_stay_apart():
    left, right = rect(90, 40, 130, 90), rect(130, 40, 200, 90)  # meet at x = 130
    pieces = seen(0, [left, right], [1, 2]) + seen(1, [left, right], [1, 2])
    out = merge(pieces, TILES)
    assert sorted(p.label for p in out) == [1, 2]
    by_label = {p.label: full(p) for p in out}
    assert np.array_equal(by_label[1], left) and np.array_equal(by_label[2], right)


def test_two_touching_objects_of_one_class_stay_apart():
    a, b = rect(110, 40, 130, 60), rect(130, 40, 150, 60)  # both inside the seam band
    out = merge(seen(0, [a, b], [1, 1]) + seen(1, [a, b], [1, 1]), TILES)
    assert len(out) == 2
    assert sorted(int(full(p).argmax()) for p in out) == sorted(
        [int(a.argmax()), int(b.argmax())])


def test_duplicates_from_overlapping_tiles_are_removed():
    # inside the band: both tiles see it whole; the better score is kept
    obj = disc(60, 130, 12)
    pieces = seen(0, [obj], [3], [0.7]) + seen(1, [obj], [3], [0.95])
    assert [p.cut for p in pieces] == [False, False]
    (one,) = merge(pieces, TILES)
    assert one.score == pytest.approx(0.95) and np.array_equal(full(one), obj)


def test_a_cut_view_is_dropped_when_another_tile_sees_the_object_whole():
    obj = disc(60, 100, 10)  # whole in tile 0; tile 1 starts at x = 100: its right half, cut
    pieces = seen(0, [obj], [1], [0.6]) + seen(1, [obj], [1], [0.99])
    assert [p.cut for p in pieces] == [False, True]
    (one,) = merge(pieces, TILES)
    assert one.tile == 0 and one.score == pytest.approx(0.6)  # the whole view, not the cut
    assert np.array_equal(full(one), obj)


def test_image_edges_do_not_cut():
    obj = rect(250, 0, 300, 30)  # touches the image's top and right edges, in tile 1 only
    (p,) = seen(1, [obj], [1])
    assert not p.cut


def whole_pass(full_masks: list[np.ndarray], labels: list[int], scale: int = 4,
               scores: list[float] | None = None) -> list[Piece]:
    """The whole-image pass: the masks at 1/scale, scaled back up."""
    small = [m[::scale, ::scale] for m in full_masks]
    boxes = np.array([[0, 0, 1, 1]] * len(small), np.float32)
    return whole_pieces(boxes, np.array(labels), np.array(scores or [0.5] * len(small)), small,
                        height=H, width=W)


def test_the_whole_image_pass_keeps_objects_tiles_see_only_in_parts():
    big = rect(20, 20, 280, 180)  # larger than either tile: cut in both
    pieces = seen(0, [big], [2]) + seen(1, [big], [2]) + whole_pass([big], [2])
    (one,) = merge(pieces, TILES)
    assert one.tile == WHOLE and one.score == pytest.approx(0.5)  # the pass's detection...
    assert np.array_equal(full(one), big)  # ...with the tiles' full-resolution mask


def test_the_whole_image_pass_is_dropped_where_tiles_saw_objects_whole():
    a, b = disc(50, 40, 8), disc(50, 56, 8)  # small neighbours, whole in tile 0
    blob = disc(50, 48, 13)  # the resized pass ran them together
    pieces = seen(0, [a, b], [1, 1]) + seen(1, [a, b], [1, 1]) + whole_pass([blob], [1])
    out = merge(pieces, TILES)
    assert len(out) == 2 and all(p.tile == 0 for p in out)
    same = disc(100, 40, 20)  # one object, seen whole by tile 0 and by the pass
    (one,) = merge(seen(0, [same], [2]) + whole_pass([same], [2]), TILES)
    assert one.tile == 0 and np.array_equal(full(one), same)


def test_objects_tiles_saw_whole_are_never_lost_to_the_whole_image_pass():
    a, b = disc(50, 40, 8), disc(50, 70, 8)
    blob = disc(50, 55, 30)  # a coarse detection far larger than what it covers
    out = merge(seen(0, [a, b], [1, 1]) + whole_pass([blob], [1]), TILES)
    assert sorted(p.tile for p in out) == [WHOLE, 0, 0]


def test_the_whole_image_pass_keeps_what_the_tiles_missed():
    obj = disc(100, 200, 30)
    (one,) = merge(whole_pass([obj], [4]), TILES)
    assert one.label == 4 and (full(one) & obj).sum() / obj.sum() > 0.9


def test_crop_masks_read_like_a_stack_of_full_masks():
    a, b = rect(0, 0, 10, 10), disc(100, 200, 20)
    pieces = seen(0, [a], [1]) + seen(1, [b], [2]) + seen(0, [a], [1])
    stack = CropMasks.of(H, W, pieces)
    assert stack.shape == (3, H, W) and len(stack) == 3
    assert np.array_equal(stack[1], b) and np.array_equal(list(stack)[2], a)
    sub = stack[np.array([False, True, True])]
    assert isinstance(sub, CropMasks) and len(sub) == 2 and np.array_equal(sub[0], b)
    assert np.array_equal(np.asarray(stack[1:]), np.stack([b, a]))


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 60), width=st.integers(1, 60), data=st.data())
def test_a_crops_rle_is_the_full_masks(height, width, data):
    h, w = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
    y0, x0 = data.draw(st.integers(0, height - h)), data.draw(st.integers(0, width - w))
    seed = data.draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    crop = rng.random((h, w)) < rng.random()
    stack = CropMasks(height, width, [(x0, y0, crop)])
    assert stack.rle(0) == masks.encode(stack[0])
    full = np.asarray(stack)
    assert [r == masks.encode(m) if m.any() else r is None
            for r, m in zip(mask_rles(full), full, strict=True)] == [True]
