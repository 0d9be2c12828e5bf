"""Mask correction tools: pure functions on (H, W) bool masks. No Qt, no store.

Coordinates follow `mrcnn.masks`: points are (x, y) in pixel-corner coordinates, so pixel
(row r, column c) spans [c, c+1] x [r, r+1] and its centre is (c + 0.5, r + 0.5). A shape
(brush disc, polygon, box) covers a pixel exactly when it covers the pixel's centre.

Every tool returns a new mask and leaves its input alone, except `paint_stroke`, which paints
in place (for the brush while the mouse moves) and returns the dirty rectangle. Rectangles
are `Rect`: half-open pixel ranges, so `mask[rect.slices]` is the crop. The tools that read
the image's pixels (GrabCut, the magic wand) are in `image_tools`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from mrcnn.errors import MaskToolError

#: Squared-distance slack (px^2) that keeps pixel centres lying exactly on a brush's rim
#: inside despite float rounding; far smaller than any real gap between two centres.
RIM_SLACK = 1e-9

Point = tuple[float, float]
Mode = Literal["add", "subtract", "replace"]


@dataclass(frozen=True)
class Rect:
    """A half-open pixel rectangle: columns x0 .. x1-1, rows y0 .. y1-1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns) slices: `array[rect.slices]` is the crop."""
        return slice(self.y0, max(self.y0, self.y1)), slice(self.x0, max(self.x0, self.x1))

    def intersect(self, other: Rect) -> Rect:
        r = Rect(max(self.x0, other.x0), max(self.y0, other.y0),
                 min(self.x1, other.x1), min(self.y1, other.y1))
        return EMPTY if r.empty else r

    def union(self, other: Rect) -> Rect:
        if self.empty:
            return other
        if other.empty:
            return self
        return Rect(min(self.x0, other.x0), min(self.y0, other.y0),
                    max(self.x1, other.x1), max(self.y1, other.y1))

    def clip(self, shape: tuple[int, ...]) -> Rect:
        """This rectangle inside an image of `shape` (H, W, ...)."""
        return self.intersect(Rect(0, 0, int(shape[1]), int(shape[0])))

    def offset(self, dx: int, dy: int) -> Rect:
        return Rect(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> Rect:
        """The bounding rectangle of the set pixels (EMPTY when none)."""
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return EMPTY
        cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
        return cls(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


EMPTY = Rect(0, 0, 0, 0)


def _check_mask(mask: np.ndarray) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise MaskToolError(f"a mask must be a 2-D array, got {getattr(mask, 'shape', mask)!r}")
    return mask.astype(bool, copy=False)


def _points(points: Iterable[Sequence[float]], what: str) -> np.ndarray:
    try:
        pts = np.asarray(points if isinstance(points, np.ndarray) else list(points), np.float64)
    except (TypeError, ValueError):
        raise MaskToolError(f"{what} points must be (x, y) pairs of numbers") from None
    if pts.size == 0:
        raise MaskToolError(f"{what} needs at least one point")
    if pts.ndim > 2 or pts.size % 2 or (pts.ndim == 2 and pts.shape[1] != 2):
        raise MaskToolError(f"{what} points must be (x, y) pairs")
    pts = pts.reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise MaskToolError(f"{what} has a non-finite point")
    return pts


def changed_rect(old: np.ndarray, new: np.ndarray) -> Rect:
    """The bounding rectangle of the pixels that differ between two masks of one shape."""
    if old.shape != new.shape:
        raise MaskToolError(f"masks differ in shape: {old.shape} vs {new.shape}")
    return Rect.of_mask(np.not_equal(old, new))


def combine(mask: np.ndarray, region: np.ndarray, mode: Mode = "add") -> np.ndarray:
    """A new mask: `region` added to, subtracted from, or replacing `mask`."""
    mask = _check_mask(mask)
    region = _check_mask(region)
    if region.shape != mask.shape:
        raise MaskToolError(f"region {region.shape} does not match mask {mask.shape}")
    if mode == "add":
        return mask | region
    if mode == "subtract":
        return mask & ~region
    if mode == "replace":
        return region.copy()
    raise MaskToolError(f"unknown mode {mode!r}; expected add, subtract or replace")


# ---------------------------------------------------------------- brush and eraser
def stroke_rect(points: Iterable[Sequence[float]], radius: float,
                shape: tuple[int, ...]) -> Rect:
    """The pixels a stroke can touch (its footprint's bounding box, clipped to the image)."""
    pts = _points(points, "a stroke")
    r = _radius(radius)
    return _stroke_rect(pts, r).clip(shape)


def _radius(radius: float) -> float:
    r = float(radius)
    if not math.isfinite(r) or r < 0:
        raise MaskToolError(f"brush radius must be a finite number >= 0, got {radius!r}")
    return r


def _stroke_rect(pts: np.ndarray, r: float) -> Rect:
    # Column c can be touched when |c + 0.5 - x| <= r for some x of the stroke.
    lo = pts.min(axis=0) - r - 0.5
    hi = pts.max(axis=0) + r - 0.5
    return Rect(math.ceil(lo[0]), math.ceil(lo[1]), math.floor(hi[0]) + 1, math.floor(hi[1]) + 1)


def stroke_footprint(points: Iterable[Sequence[float]], radius: float,
                     shape: tuple[int, ...]) -> tuple[Rect, np.ndarray]:
    """The pixels a brush of `radius` covers along the polyline through `points`.

    A pixel is covered when its centre lies within `radius` of the polyline (distance <=
    radius): one point gives a disc, each segment the disc swept along it (a capsule).
    Returns (rect, crop): the clipped bounding rectangle and the (h, w) bool footprint in it.
    """
    pts = _points(points, "a stroke")
    r = _radius(radius)
    rect = _stroke_rect(pts, r).clip(shape)
    crop = np.zeros((rect.height, rect.width), bool)
    if rect.empty:
        return rect, crop
    r2 = r * r + RIM_SLACK
    segments = zip(pts[:-1], pts[1:], strict=True) if len(pts) > 1 else [(pts[0], pts[0])]
    for a, b in segments:
        seg = _stroke_rect(np.stack([a, b]), r).intersect(rect)
        if seg.empty:
            continue
        xs = np.arange(seg.x0, seg.x1, dtype=np.float64)[None, :] + 0.5
        ys = np.arange(seg.y0, seg.y1, dtype=np.float64)[:, None] + 0.5
        dx, dy = b[0] - a[0], b[1] - a[1]
        length2 = dx * dx + dy * dy
        px, py = xs - a[0], ys - a[1]
        if length2 == 0.0:
            d2 = px * px + py * py
        else:
            t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
            ex, ey = px - t * dx, py - t * dy
            d2 = ex * ex + ey * ey
        crop[seg.offset(-rect.x0, -rect.y0).slices] |= d2 <= r2
    return rect, crop


def paint_stroke(mask: np.ndarray, points: Iterable[Sequence[float]], radius: float, *,
                 erase: bool = False) -> Rect:
    """Paint (or erase) a stroke into `mask` IN PLACE; returns the dirty rectangle.

    For live feedback while the mouse moves: pass the newest segment (previous point, current
    point), then re-colour only the returned rectangle (see `colorize_region`).
    """
    if mask.dtype != np.bool_ or mask.ndim != 2:
        raise MaskToolError("paint_stroke needs a 2-D bool mask to paint in place")
    rect, crop = stroke_footprint(points, radius, mask.shape)
    if not rect.empty:
        view = mask[rect.slices]
        if erase:
            view &= ~crop
        else:
            view |= crop
    return rect


def brush(mask: np.ndarray, points: Iterable[Sequence[float]], radius: float) -> np.ndarray:
    """A new mask: `mask` plus the brush footprint (see `stroke_footprint`)."""
    out = _check_mask(mask).copy()
    paint_stroke(out, points, radius)
    return out


def erase(mask: np.ndarray, points: Iterable[Sequence[float]], radius: float) -> np.ndarray:
    """A new mask: `mask` minus the brush footprint (see `stroke_footprint`)."""
    out = _check_mask(mask).copy()
    paint_stroke(out, points, radius, erase=True)
    return out


# ---------------------------------------------------------------- polygons
def polygon_mask(polygons: Sequence[Sequence[float]] | np.ndarray, shape: tuple[int, ...]
                 ) -> np.ndarray:
    """Rasterise polygons: a pixel is inside when its centre is (even-odd rule).

    `polygons` is one polygon (a flat [x0, y0, x1, y1, ...] list, or (x, y) points as a list
    or an (N, 2) array) or a list of them (rings; a ring inside another makes a hole).
    Ties are broken like the top-left rule of GPU rasterisers: rows are sampled half-open in
    y, a centre exactly on a left edge is inside and on a right edge outside.

    For polygons along pixel edges (all that `masks.mask_to_polygons` makes) this equals
    pycocotools' rasterisation exactly; for slanted edges it is the exact centre rule, which
    pycocotools (5x supersampled edges) and cv2.fillPoly (vertices at pixel centres, boundary
    pixels included) only approximate.
    """
    h, w = int(shape[0]), int(shape[1])
    rings = _rings(polygons)
    out = np.zeros((h, w), bool)
    x0s, y0s, x1s, y1s = [], [], [], []
    for ring in rings:
        x0s.append(ring[:, 0])
        y0s.append(ring[:, 1])
        x1s.append(np.roll(ring[:, 0], -1))
        y1s.append(np.roll(ring[:, 1], -1))
    ax, ay, bx, by = (np.concatenate(v) for v in (x0s, y0s, x1s, y1s))
    sloped = ay != by
    ax, ay, bx, by = ax[sloped], ay[sloped], bx[sloped], by[sloped]
    ylo, yhi = np.minimum(ay, by), np.maximum(ay, by)
    # Rows r whose centre line y = r + 0.5 satisfies ylo <= y < yhi.
    r0 = np.clip(np.ceil(ylo - 0.5), 0, h).astype(np.int64)
    r1 = np.clip(np.ceil(yhi - 0.5), 0, h).astype(np.int64)
    counts = np.maximum(r1 - r0, 0)
    total = int(counts.sum())
    if total == 0:
        return out
    edge = np.repeat(np.arange(len(counts)), counts)
    rows = r0[edge] + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    yc = rows + 0.5
    xs = ax[edge] + (yc - ay[edge]) * (bx[edge] - ax[edge]) / (by[edge] - ay[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # Every row line crosses a closed ring an even number of times: pair them up.
    starts = np.clip(np.ceil(xs[0::2] - 0.5), 0, w).astype(np.int64)
    ends = np.clip(np.ceil(xs[1::2] - 0.5), 0, w).astype(np.int64)
    span_rows = rows[0::2]
    keep = ends > starts
    top, bottom = int(span_rows.min()), int(span_rows.max()) + 1
    diff = np.zeros((bottom - top, w + 1), np.int32)
    np.add.at(diff, (span_rows[keep] - top, starts[keep]), 1)
    np.add.at(diff, (span_rows[keep] - top, ends[keep]), -1)
    out[top:bottom] = np.cumsum(diff[:, :w], axis=1) > 0
    return out


def _rings(polygons) -> list[np.ndarray]:
    """One polygon ((N, 2) points or a flat list) or several, as (N, 2) float arrays."""
    try:
        arr = np.asarray(polygons, np.float64)
    except (TypeError, ValueError):  # ragged: several rings of different lengths
        arr = None
    if arr is not None and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 2)):
        items = [arr]
    elif arr is not None and arr.ndim == 3:
        items = list(arr)
    else:
        items = list(polygons)
    rings = []
    for item in items:
        try:
            ring = np.asarray(item, np.float64)
        except (TypeError, ValueError):
            raise MaskToolError("a polygon must be numbers: (x, y) points or a flat list") from None
        if ring.size % 2 or ring.ndim > 2 or (ring.ndim == 2 and ring.shape[1] != 2):
            raise MaskToolError(f"a polygon must be (x, y) points, got shape {ring.shape}")
        ring = ring.reshape(-1, 2)
        if len(ring) < 3:
            raise MaskToolError(f"a polygon needs at least 3 points, got {len(ring)}")
        if not np.isfinite(ring).all():
            raise MaskToolError("a polygon has a non-finite point")
        rings.append(ring)
    if not rings:
        raise MaskToolError("no polygon given")
    return rings


def polygon_add(mask: np.ndarray, polygon) -> np.ndarray:
    """A new mask: `mask` plus the polygon's interior."""
    return combine(mask, polygon_mask(polygon, mask.shape), "add")


def polygon_cut(mask: np.ndarray, polygon) -> np.ndarray:
    """A new mask: `mask` minus the polygon's interior."""
    return combine(mask, polygon_mask(polygon, mask.shape), "subtract")


# ---------------------------------------------------------------- boxes
def box_rect(box: Rect | Sequence[float], shape: tuple[int, ...]) -> Rect:
    """Pixels whose centre lies in the box (x0, y0, x1, y1) in pixel-corner coordinates."""
    if isinstance(box, Rect):
        return box.clip(shape)
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    return Rect(math.ceil(x0 - 0.5), math.ceil(y0 - 0.5),
                math.ceil(x1 - 0.5), math.ceil(y1 - 0.5)).clip(shape)


# ---------------------------------------------------------------- topology
def fill_holes(mask: np.ndarray, max_area: int | None = None) -> np.ndarray:
    """A new mask with its holes filled: background regions (4-connected) that do not reach
    the image border, optionally only those of at most `max_area` pixels."""
    mask = _check_mask(mask)
    rect = Rect.of_mask(mask)
    out = mask.copy()
    if rect.empty:
        return out
    padded = np.pad(~mask[rect.slices], 1, constant_values=True).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(padded, connectivity=4)
    hole = np.ones(n, bool)
    hole[0] = False  # label 0: the mask's own pixels
    hole[labels[0, 0]] = False  # the background around the mask (through the padding)
    if max_area is not None:
        hole &= stats[:, cv2.CC_STAT_AREA] <= max_area
    out[rect.slices] |= hole[labels[1:-1, 1:-1]]
    return out


def _components(mask: np.ndarray, connectivity: int) -> tuple[Rect, int, np.ndarray, np.ndarray]:
    if connectivity not in (4, 8):
        raise MaskToolError("connectivity must be 4 or 8")
    rect = Rect.of_mask(mask)
    if rect.empty:
        return rect, 1, np.zeros((0, 0), np.int32), np.zeros((1, 5), np.int32)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask[rect.slices].astype(np.uint8), connectivity=connectivity)
    return rect, n, labels, stats


def remove_specks(mask: np.ndarray, min_area: int, *, connectivity: int = 8) -> np.ndarray:
    """A new mask without the connected parts smaller than `min_area` pixels, except its
    largest part (parts tied for largest all stay): an object smaller than `min_area` is not
    a speck of itself (Remove Specks over a selection of small objects once deleted them)."""
    mask = _check_mask(mask)
    rect, n, labels, stats = _components(mask, connectivity)
    out = mask.copy()
    if n > 1:
        areas = stats[:, cv2.CC_STAT_AREA]
        keep = (areas >= min_area) | (areas == areas[1:].max())
        keep[0] = False
        out[rect.slices] = keep[labels]
    return out


def split_components(mask: np.ndarray, *, connectivity: int = 8) -> list[np.ndarray]:
    """The connected parts of a mask as separate (H, W) masks, largest first (ties: the part
    whose first pixel comes first in raster order)."""
    mask = _check_mask(mask)
    rect, n, labels, stats = _components(mask, connectivity)
    order = sorted(range(1, n), key=lambda k: -int(stats[k, cv2.CC_STAT_AREA]))
    parts = []
    for k in order:
        part = np.zeros(mask.shape, bool)
        part[rect.slices] = labels == k
        parts.append(part)
    return parts


def merge_masks(masks: Iterable[np.ndarray]) -> np.ndarray:
    """The union of masks of one shape."""
    out: np.ndarray | None = None
    for m in masks:
        m = _check_mask(m)
        if out is None:
            out = m.copy()
        elif m.shape != out.shape:
            raise MaskToolError(f"masks differ in shape: {out.shape} vs {m.shape}")
        else:
            out |= m
    if out is None:
        raise MaskToolError("no masks to merge")
    return out


# ---------------------------------------------------------------- display
def colorize_region(mask: np.ndarray, rect: Rect, color: Sequence[int]) -> np.ndarray:
    """Overlay pixels for one rectangle of a mask: an (h, w, 4) uint8 array holding `color`
    where the mask is set and zeros elsewhere. `color` is 4 channel values in the caller's
    layout (e.g. premultiplied BGRA for a Qt ARGB32 image)."""
    rect = rect.clip(mask.shape)
    crop = mask[rect.slices]
    px = np.asarray(color, np.uint8)
    if px.shape != (4,):
        raise MaskToolError(f"color must have 4 channel values, got {color!r}")
    return crop.astype(bool, copy=False).view(np.uint8)[:, :, None] * px
