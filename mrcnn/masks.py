"""Masks and geometry. A mask (H, W) bool/uint8 array is the truth; RLE is how it is stored;
polygons are a view. bbox and area are always derived from the mask.

Coordinates: polygons use pixel-corner coordinates (pixel (r, c) spans [c, c+1] x [r, r+1]),
which is the convention pycocotools rasterises exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as cocomask


@dataclass(frozen=True)
class Rle:
    """A COCO compressed RLE: image height, width and the counts string."""

    height: int
    width: int
    counts: str

    def to_coco(self) -> dict:
        return {"size": [self.height, self.width], "counts": self.counts}

    def _py(self) -> dict:
        return {"size": [self.height, self.width], "counts": self.counts.encode("ascii")}

    @property
    def area(self) -> int:
        return int(cocomask.area(self._py()))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) in pixels, COCO convention."""
        x, y, w, h = cocomask.toBbox(self._py()).tolist()
        return (float(x), float(y), float(w), float(h))

    def decode(self) -> np.ndarray:
        return decode(self)


def encode(mask: np.ndarray) -> Rle:
    """(H, W) mask of any dtype (non-zero = inside) → compressed RLE."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    m = np.asfortranarray(mask.astype(bool, copy=False).astype(np.uint8))
    r = cocomask.encode(m)
    return Rle(int(mask.shape[0]), int(mask.shape[1]), r["counts"].decode("ascii"))


def decode(rle: Rle) -> np.ndarray:
    """RLE → (H, W) bool mask."""
    return cocomask.decode(rle._py()).astype(bool)


def from_coco_segmentation(seg, height: int, width: int) -> Rle:
    """Any COCO segmentation (polygons, compressed or uncompressed RLE) → compressed RLE.

    Raises ValueError with the reason when the segmentation is malformed.
    """
    if isinstance(seg, list):
        if not seg:
            raise ValueError("empty polygon list")
        polys = []
        for poly in seg:
            if not isinstance(poly, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly
            ):
                raise ValueError("polygon must be a flat list of numbers")
            if len(poly) % 2:
                raise ValueError("polygon has an odd number of coordinates")
            if len(poly) < 6:
                raise ValueError(f"polygon has {len(poly) // 2} points; at least 3 are needed")
            # Before any conversion to float: JSON integers can be too big for one.
            if any(isinstance(v, float) and not math.isfinite(v) for v in poly):
                raise ValueError("polygon has a non-finite coordinate")
            _check_extent(poly, height, width)
            polys.append([float(v) for v in poly])
        r = cocomask.merge(cocomask.frPyObjects(polys, height, width))
        return Rle(height, width, r["counts"].decode("ascii"))
    if isinstance(seg, dict):
        size = seg.get("size")
        counts = seg.get("counts")
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        ):
            raise ValueError("RLE 'size' must be [height, width]")
        if size != [height, width]:
            raise ValueError(f"RLE size {size} does not match image size [{height}, {width}]")
        if isinstance(counts, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
                raise ValueError("uncompressed RLE counts must be non-negative integers")
            if sum(counts) != height * width:
                raise ValueError(
                    f"RLE counts sum to {sum(counts)}, not height*width = {height * width}"
                )
            r = cocomask.frPyObjects({"size": size, "counts": counts}, height, width)
            # Re-encode: zero-length runs and other non-canonical spellings of the same
            # pixels must give the same stored counts.
            return encode(cocomask.decode(r))
        if isinstance(counts, str):
            try:
                raw = counts.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError("compressed RLE counts contain non-ASCII characters") from None
            if any(b < 48 or b > 111 for b in raw):
                raise ValueError("compressed RLE counts contain invalid characters")
            total = _compressed_total(raw)
            if total != height * width:
                raise ValueError(
                    f"RLE counts sum to {total}, not height*width = {height * width}"
                )
            # Re-encode so that what we store is canonical.
            m = cocomask.decode({"size": size, "counts": raw})
            return encode(m)
        raise ValueError("RLE 'counts' must be a string or a list of integers")
    raise ValueError("segmentation must be a polygon list or an RLE object")


def _check_extent(poly: list, height: int, width: int) -> None:
    """Refuse points far outside the image: pycocotools rasterises every edge at 5x
    resolution in 32-bit integers, so such points exhaust memory or crash the process."""
    margin = max(height, width)
    for x, y in zip(poly[0::2], poly[1::2], strict=False):
        if not (-margin <= x <= width + margin and -margin <= y <= height + margin):
            raise ValueError(f"polygon point ({_number(x)}, {_number(y)}) lies far outside "
                             f"the {width}x{height} image")


def _number(v: float) -> str:
    """A coordinate for a message; integers too big for a float are shown by their size."""
    try:
        return f"{v:g}"
    except OverflowError:
        return f"{'-' if v < 0 else ''}a {len(str(abs(v)))}-digit number"


def _runs(raw: bytes) -> list[int]:
    """The run lengths of a compressed RLE string (pycocotools' LEB128-like format): off, on,
    off, ... in column-major order."""
    counts: list[int] = []
    p = 0
    n = len(raw)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("compressed RLE counts end in the middle of a number")
            c = raw[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise ValueError("compressed RLE counts decode to a negative run")
        counts.append(x)
    return counts


def _compressed_total(raw: bytes) -> int:
    """Sum of the run lengths in a compressed RLE string."""
    return sum(_runs(raw))


def decode_crop(rle: Rle, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The (y1 - y0, x1 - x0) bool crop [y0:y1, x0:x1] of the mask, read from the runs
    without decoding the whole image: an instance's box on a 6000 x 4000 image costs what
    the box holds, not 24 MB (the canvas prepares thousands of them)."""
    if not (0 <= x0 <= x1 <= rle.width and 0 <= y0 <= y1 <= rle.height):
        raise ValueError(f"crop [{x0}:{x1}, {y0}:{y1}] is outside the "
                         f"{rle.width}x{rle.height} mask")
    out = np.zeros((y1 - y0, x1 - x0), bool)
    height = rle.height
    if height == 0 or x0 == x1 or y0 == y1:
        return out
    runs = np.asarray(_runs(rle.counts.encode("ascii")), np.int64)
    ends = np.cumsum(runs)
    on_start, on_end = (ends - runs)[1::2], ends[1::2]  # runs inside the mask
    first, last = x0 * height, x1 * height  # the crop's columns, as flat indices
    keep = (on_end > first) & (on_start < last)
    for start, end in zip(on_start[keep].tolist(), on_end[keep].tolist(), strict=True):
        start, end = max(start, first), min(end, last)
        while start < end:  # a run may go on into the next columns
            col, row = divmod(start, height)
            stop = min(end, (col + 1) * height)
            top, bottom = max(row, y0), min(row + stop - start, y1)
            if top < bottom:
                out[top - y0:bottom - y0, col - x0] = True
            start = stop
    return out


def mask_to_polygons(mask: np.ndarray) -> tuple[list[list[float]], list[list[float]]]:
    """Trace a mask's boundaries along pixel edges.

    Returns (outer, holes): flat [x0, y0, x1, y1, ...] lists in pixel-corner coordinates.
    Every part becomes one outer polygon; every hole one hole polygon.
    """
    m = mask.astype(bool, copy=False)
    h, w = m.shape
    if not m.any():
        return [], []
    # Pixel (r, c) becomes the 3x3 block [2r..2r+2, 2c..2c+2] of a grid whose even rows and
    # columns are pixel corners; the blocks' border cells lie exactly on pixel edges.
    grid = np.zeros((2 * h + 1, 2 * w + 1), np.uint8)
    grid[1::2, 1::2] = m
    grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
    contours, hierarchy = cv2.findContours(grid, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outer: list[list[float]] = []
    holes: list[list[float]] = []
    for contour, info in zip(contours, hierarchy[0], strict=True):
        pts = contour.reshape(-1, 2).astype(np.float64) / 2.0
        if len(pts) < 3:
            continue
        flat = pts.reshape(-1).tolist()
        (holes if info[3] != -1 else outer).append(flat)
    return outer, holes


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons (union) exactly as pycocotools does."""
    if not polygons:
        return np.zeros((height, width), bool)
    r = cocomask.merge(cocomask.frPyObjects([list(map(float, p)) for p in polygons], height, width))
    return cocomask.decode(r).astype(bool)


def exact_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """COCO polygons that rasterise back to exactly this mask, or None when none can
    (holes cannot be expressed in COCO polygons)."""
    outer, holes = mask_to_polygons(mask)
    if holes or not outer:
        return None
    back = polygons_to_mask(outer, *mask.shape)
    if not np.array_equal(back, mask.astype(bool, copy=False)):
        return None
    return outer
