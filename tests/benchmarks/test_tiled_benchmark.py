"""benchmarks/tiled.py's measures on hand-made objects: recall by size, objects split at
seams, the table (no model)."""

from __future__ import annotations

import numpy as np

from benchmarks.tiled import Obj, Row, crosses, format_table, matched, seam_counts, split_count
from mrcnn.serving.tiles import tile_grid


def box(x0: int, y0: int, w: int, h: int, label: int = 1, score: float = 1.0) -> Obj:
    return Obj(label, x0, y0, np.ones((h, w), bool), score)


def test_matching_is_by_mask_iou_label_and_once():
    truth = [box(0, 0, 10, 10), box(50, 50, 40, 40, label=2)]
    preds = [box(1, 0, 10, 10, score=0.9), box(0, 0, 10, 10, score=0.8),  # IoU 0.82, 1.0
             box(50, 50, 40, 40, label=1)]  # the wrong class
    assert matched(truth, preds) == [True, False]
    assert matched(truth, [box(5, 0, 10, 10)]) == [False, False]  # IoU 1/3


def test_an_object_returned_in_two_halves_counts_as_split():
    grid = tile_grid(100, 200, 100)  # columns 0-99 and 100-199: an edge at x = 100
    cut, inside = box(80, 10, 40, 20), box(10, 10, 20, 20)
    assert crosses(cut, grid, 100, 200) and not crosses(inside, grid, 100, 200)
    halves = [box(80, 10, 20, 20), box(100, 10, 20, 20)]
    assert split_count([cut, inside], halves, [0]) == 1
    assert split_count([cut, inside], [cut], [0]) == 0


def test_two_detections_over_the_same_part_count_as_duplicated_not_split():
    obj = box(80, 10, 40, 20)
    twice = [box(82, 11, 36, 18, score=0.33), box(80, 10, 40, 20, score=0.3)]
    assert seam_counts([obj], twice, [0]) == (0, 1)
    halves = [box(80, 10, 20, 20), box(100, 10, 20, 20)]
    assert seam_counts([obj], halves, [0]) == (1, 0)
    assert seam_counts([obj], halves + twice, [0]) == (1, 0)  # parts apart: split


def test_the_table_has_both_methods_and_their_ratio():
    whole, tiled = Row("whole image (baseline)"), Row("tiled (256 px tiles)")
    whole.found["small"] = [False] * 9 + [True]
    tiled.found["small"] = [True] * 9 + [False]
    whole.found["large"] = tiled.found["large"] = [True]
    tiled.seam_objects, tiled.split, tiled.duplicated = 4, 0, 2
    text = format_table([whole, tiled])
    assert "whole image (baseline)" in text and "0 of 4" in text
    assert "duplicated" in text.splitlines()[0]
    assert text.splitlines()[2].split()[-2] == "2"  # the tiled row's duplicates
    assert "9.0x" in text and "1.0x" in text
