"""RPN anchors fitted to the boxes a model will be trained on (as YOLO's autoanchor does),
and a measure of how well a set of anchors covers boxes.

The boxes are taken at the model's input size: torchvision resizes every image so that its
shorter side is `size` (longer side at most `max_size`), and the boxes scale with it.

Fitting keeps the feature pyramid's layout: one size per level, each level's twice the
previous one (the strides double, and the RPN head is shared by all levels, so the anchor to
stride ratio must stay the same on every level), and the same aspect ratios everywhere. It
searches the finest level's size and the ratios (the quantiles of the boxes' h / w, and the
preset's own) for the highest mean best IoU, and keeps the preset's anchors unless the fitted
ones cover the boxes strictly better.

The measure (`measure_anchors`) places every anchor where the model does, at the centres of
its level's grid, so that a small anchor on a coarse level is not counted as a good match: the
best anchor of a box is the one on the grid point nearest the box's centre, on some level.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mrcnn.model.presets import FPN_LEVELS, Anchors, default_anchors
from mrcnn.training.dataset import Sample, trained_in_crops

#: The feature-pyramid levels' strides of every preset (P2..P6), in input pixels.
STRIDES = tuple(4 * 2 ** i for i in range(FPN_LEVELS))
#: A box counts as covered when some anchor overlaps it at least this much (IoU).
COVER_IOU = 0.5
#: The RPN's own threshold for a positive anchor (torchvision's rpn_fg_iou_thresh).
RPN_POSITIVE_IOU = 0.7
#: Fitted aspect ratios are at least this factor apart.
MIN_RATIO_STEP = 1.25
#: At most this many boxes are used to fit (a fixed random subset of the rest).
MAX_FIT_BOXES = 5_000


@dataclass(frozen=True)
class AnchorFit:
    """How well anchors cover boxes: the share of boxes whose best anchor has IoU >= 0.5
    ("best possible recall") and >= 0.7 (the RPN's positive threshold), and the mean best
    IoU."""

    recall: float
    positive: float
    mean_iou: float
    boxes: int

    def describe(self) -> str:
        return (f"{self.recall:.0%} of {self.boxes} boxes at IoU >= {COVER_IOU:g}, "
                f"{self.positive:.0%} at >= {RPN_POSITIVE_IOU:g}, mean best IoU "
                f"{self.mean_iou:.2f}")


@dataclass(frozen=True)
class FittedAnchors:
    """The anchors chosen for some boxes, the preset's own, and how well each covers them."""

    anchors: Anchors
    default: Anchors
    fit: AnchorFit
    default_fit: AnchorFit

    @property
    def changed(self) -> bool:
        return self.anchors != self.default


def input_scale(height: int, width: int, *, size: int, max_size: int) -> float:
    """The factor torchvision's resize applies to an image (shorter side to `size`, longer
    side at most `max_size`)."""
    return min(size / min(height, width), max_size / max(height, width))


def boxes_at_input_size(samples: Iterable[Sample], *, size: int, max_size: int) -> np.ndarray:
    """(N, 4) float xyxy boxes of the samples' instances, in pixels of the resized input
    (of a crop, for images trained on in crops: `mrcnn.training.dataset.TrainingCrops`)."""
    rows = []
    for s in samples:
        height, width = s.height, s.width
        if trained_in_crops(height, width, max_size):
            height, width = min(size, height), min(size, width)
        scale = input_scale(height, width, size=size, max_size=max_size)
        for inst in s.instances:
            x, y, w, h = inst.bbox
            rows.append((x * scale, y * scale, (x + w) * scale, (y + h) * scale))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _cell_anchors(anchors: Anchors) -> list[np.ndarray]:
    """Each level's (A, 4) zero-centred anchors, exactly as torchvision generates them
    (rounded to whole pixels)."""
    return [a.numpy().astype(np.float64) for a in anchors.generator().cell_anchors]


def best_ious(boxes: np.ndarray, anchors: Anchors,
              strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """(N,) the IoU of each xyxy box with its best anchor, anchors placed on their levels'
    grids (centres at multiples of the stride, as torchvision's AnchorGenerator puts them)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    best = np.zeros(len(boxes))
    for cells, stride in zip(_cell_anchors(anchors), strides, strict=True):
        # per axis, the overlap only shrinks with the distance between centres: the nearest
        # grid point holds the best anchor of each shape
        gx = np.maximum(np.round(cx / stride), 0)[:, None] * stride
        gy = np.maximum(np.round(cy / stride), 0)[:, None] * stride
        ax1, ay1 = gx + cells[None, :, 0], gy + cells[None, :, 1]
        ax2, ay2 = gx + cells[None, :, 2], gy + cells[None, :, 3]
        iw = np.clip(np.minimum(ax2, boxes[:, 2:3]) - np.maximum(ax1, boxes[:, 0:1]), 0, None)
        ih = np.clip(np.minimum(ay2, boxes[:, 3:4]) - np.maximum(ay1, boxes[:, 1:2]), 0, None)
        inter = iw * ih
        union = area[:, None] + (ax2 - ax1) * (ay2 - ay1) - inter
        best = np.maximum(best, (inter / np.maximum(union, 1e-9)).max(axis=1))
    return best


def measure_anchors(boxes: np.ndarray, anchors: Anchors,
                    strides: tuple[int, ...] = STRIDES) -> AnchorFit:
    """How well `anchors` cover `boxes` (xyxy, input pixels); see `AnchorFit`."""
    iou = best_ious(boxes, anchors, strides)
    if not len(iou):
        return AnchorFit(0.0, 0.0, 0.0, 0)
    return AnchorFit(float((iou >= COVER_IOU).mean()), float((iou >= RPN_POSITIVE_IOU).mean()),
                     float(iou.mean()), len(iou))


def _ratio_candidates(boxes: np.ndarray, n: int, default: tuple[float, ...]
                      ) -> list[tuple[float, ...]]:
    """Ratio sets to try, each of `n` ratios: the preset's; `n` ratios evenly spaced (in log)
    between the boxes' h / w quantiles 1/2n and 1 - 1/2n, at least MIN_RATIO_STEP apart (so
    that no two anchors are the same and the RPN keeps some room for other shapes); and the
    preset's spread around the boxes' median ratio."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    log_r = np.log(np.maximum(h, 1e-3) / np.maximum(w, 1e-3))
    lo, hi = np.quantile(log_r, [0.5 / n, 1 - 0.5 / n])
    step = max((hi - lo) / max(n - 1, 1), math.log(MIN_RATIO_STEP))
    mid = (lo + hi) / 2
    fitted = tuple(round(math.exp(mid + (k - (n - 1) / 2) * step), 2) for k in range(n))
    median = float(np.median(log_r))
    centred = tuple(round(r * math.exp(median), 2) for r in default)
    out = [tuple(default)]
    for cand in (fitted, centred):
        if cand not in out and all(r > 0 for r in cand):
            out.append(cand)
    return out


def _size_candidates(boxes: np.ndarray, default: Anchors) -> list[float]:
    """Finest-level sizes to try: whole pixels, about 3% apart (every pixel below 32), from
    a quarter of the boxes' 5% quantile size to their median, and the preset's own."""
    sqrt_area = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
                                   1e-6))
    lo = max(2, math.floor(float(np.quantile(sqrt_area, 0.05)) / 4))
    hi = max(lo + 1, math.ceil(float(np.median(sqrt_area))))
    n = math.ceil(math.log(hi / lo) / math.log(1.03)) + 1
    sizes = {float(s) for s in range(lo, min(hi, 32) + 1)}
    sizes |= {float(round(lo * (hi / lo) ** (k / (n - 1)))) for k in range(n)}
    sizes.add(float(default.sizes[0]))
    return sorted(sizes)


def fit_anchors(boxes: np.ndarray, default: Anchors, *, strides: tuple[int, ...] = STRIDES,
                max_boxes: int = MAX_FIT_BOXES, seed: int = 0) -> FittedAnchors:
    """Anchors for these xyxy boxes (input pixels): sizes s, 2s, 4s, ... and ratios chosen
    for the highest mean best IoU (`best_ious`); `default` (the preset's) unless the fitted
    ones are strictly better. As many ratios as `default` has, so the RPN head keeps its
    shape. No boxes: `default`."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes = boxes[keep]
    default_fit = measure_anchors(boxes, default, strides)
    if not len(boxes):
        return FittedAnchors(default, default, default_fit, default_fit)
    sample = boxes
    if len(boxes) > max_boxes:
        rng = np.random.default_rng(seed)
        sample = boxes[rng.choice(len(boxes), max_boxes, replace=False)]
    best, best_score = default, float(best_ious(sample, default, strides).mean())
    for ratios in _ratio_candidates(sample, len(default.ratios), default.ratios):
        for s0 in _size_candidates(sample, default):
            cand = Anchors(tuple(s0 * 2 ** i for i in range(len(default.sizes))), ratios)
            score = float(best_ious(sample, cand, strides).mean())
            if score > best_score + 1e-9:
                best, best_score = cand, score
    fit = default_fit if best == default else measure_anchors(boxes, best, strides)
    return FittedAnchors(best, default, fit, default_fit)


def fit_training_anchors(samples: Iterable[Sample], *, preset: str, size: int,
                         max_size: int) -> FittedAnchors:
    """Anchors for training `preset` from scratch on these samples at input size `size`
    (shorter side) / `max_size` (longer side cap)."""
    boxes = boxes_at_input_size(samples, size=size, max_size=max_size)
    return fit_anchors(boxes, default_anchors(preset))
