"""The brush and eraser in the simulated annotator (`benchmarks/annotator.py`): how many
strokes correct a mask, counted from the error region, not simulated pixel by pixel. Pure
functions on (H, W) bool masks.

Every number here is an assumption, not measured:
- The person sizes the brush to the object: a diameter of `BRUSH_SHARE` (a tenth) of the
  GT's equivalent diameter D = sqrt(4·area/π), at least 2 px (the app's smallest radius is
  1 px). They keep the brush they hold (the app starts at radius `APP_BRUSH_RADIUS`, 8 px)
  while it is within a factor `RESIZE_FACTOR` of that size, and otherwise resize it first:
  1 action ("brush_size": a few `[`/`]` presses or a Ctrl+wheel roll), remembered for the
  rest of the image. Strokes are counted with the brush actually held.
- One stroke (press, drag, release) follows a path of L = `STROKE_SHARE` (half) of D, at
  least one brush diameter d: about a sixth of a round object's outline, where a careful
  person lifts the pen to re-aim along a curved edge.
- The error has two sides: (GT & ~prediction), painted with the brush, and (prediction &
  ~GT), erased with the eraser. Its parts are the connected parts of each side after a
  closing with the brush's disc (bits closer than a brush width are swept together).
- A part of a pixels whose closed outline has perimeter p costs n = max(1, ceil(max(
  (p/2) / L, a / (d·L)))) strokes: p/2 is its length along a thin part (its skeleton: the
  band between a 2 px erosion and the GT is one ring, p/2 its circumference), a / (d·L) the
  brush-wide swaths a blob needs.
- Parts are fixed largest first, each stroke fixing an even share of its part exactly (the
  person follows the GT's edge), until IoU >= 0.9: the last part needs only the strokes
  that get there. Choosing the brush or the eraser (a key) is not counted, as choosing the
  polygon or box tool is not.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

#: The app's brush: radius when it starts (app/canvas/tools/base.py ToolOptions.brush_radius;
#: tests/benchmarks checks they agree) and its smallest radius (MIN_RADIUS), in image px.
APP_BRUSH_RADIUS = 8.0
MIN_BRUSH_RADIUS = 1.0
#: Assumptions of the brush model (module docstring): brush diameter and stroke path as
#: shares of the object's equivalent diameter, and how far off the held brush may be before
#: the person resizes it.
BRUSH_SHARE = 0.1
STROKE_SHARE = 0.5
RESIZE_FACTOR = 1.5


def equivalent_diameter(mask: np.ndarray) -> float:
    """The diameter of the disc with the mask's area (px)."""
    return float(np.sqrt(4.0 * float(mask.sum()) / np.pi))


def brush_radius(target: np.ndarray) -> float:
    """The radius a person picks to correct this object: a diameter of `BRUSH_SHARE` of its
    equivalent diameter, at least the app's smallest brush."""
    return max(MIN_BRUSH_RADIUS, BRUSH_SHARE * equivalent_diameter(target) / 2.0)


def held_brush(wanted: float, held: float) -> tuple[float, int]:
    """(radius used, resizes): the held brush while it is within `RESIZE_FACTOR` of the
    wanted one, else the wanted one after one resize."""
    if held / RESIZE_FACTOR <= wanted <= held * RESIZE_FACTOR:
        return held, 0
    return wanted, 1


@dataclass(frozen=True)
class ErrorPart:
    """One part of a mask's error: `pixels` to change, `length` along it (half the perimeter
    of its closed outline, px), and whether it is erased (else painted)."""

    pixels: int
    length: float
    erase: bool

    def strokes(self, diameter: float, reach: float) -> int:
        """Strokes of a brush `diameter` px wide, each following `reach` px, that cover it."""
        return max(1, math.ceil(max(self.length / reach, self.pixels / (diameter * reach))))


def error_parts(start: np.ndarray, target: np.ndarray, radius: float) -> list[ErrorPart]:
    """The parts of the error of `start` against `target`, largest first: the connected
    parts of (target & ~start), to paint, and of (start & ~target), to erase, each side
    closed with a disc of `radius` first so that bits a stroke sweeps together are one."""
    start = start.astype(bool, copy=False)
    target = target.astype(bool, copy=False)
    wrong = start ^ target
    if not wrong.any():
        return []
    pad = 2 * math.ceil(radius) + 2
    ys, xs = np.nonzero(wrong)
    h, w = wrong.shape
    y0, y1 = max(0, int(ys.min()) - pad), min(h, int(ys.max()) + pad + 1)
    x0, x1 = max(0, int(xs.min()) - pad), min(w, int(xs.max()) + pad + 1)
    s, t = start[y0:y1, x0:x1], target[y0:y1, x0:x1]
    k = 2 * math.ceil(radius) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    parts: list[ErrorPart] = []
    for side, erase in ((t & ~s, False), (s & ~t, True)):
        if not side.any():
            continue
        padded = np.pad(side.astype(np.uint8), k)  # room for the closing at the crop's edge
        closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, disc)[k:-k, k:-k]
        n, labels = cv2.connectedComponents(closed, connectivity=8)
        for label in range(1, n):
            blob = labels == label
            pixels = int((blob & side).sum())
            if not pixels:
                continue
            contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
            perimeter = sum(cv2.arcLength(c, True) for c in contours)
            parts.append(ErrorPart(pixels, perimeter / 2.0, erase))
    return sorted(parts, key=lambda p: (-p.pixels, p.erase))


def brush_strokes(start: np.ndarray, target: np.ndarray, *, radius: float,
                  goal: float) -> Counter[str] | None:
    """Brush and eraser strokes ("brush", "eraser") of a brush of `radius` that bring
    `start` to IoU >= `goal` with `target`, by the module docstring's model: the error's
    parts largest first, each stroke fixing an even share of its part, the last part only
    as far as needed. Nothing when it is already there; None for an empty target."""
    start = start.astype(bool, copy=False)
    target = target.astype(bool, copy=False)
    if not target.any():
        return None
    inter = float((start & target).sum())
    union = float((start | target).sum())
    spent: Counter[str] = Counter()
    if inter / union >= goal:
        return spent
    diameter = 2.0 * radius
    reach = max(diameter, STROKE_SHARE * equivalent_diameter(target))
    for part in error_parts(start, target, radius):
        n = part.strokes(diameter, reach)
        for done in range(1, n + 1):
            fixed = part.pixels * done / n
            i, u = (inter, union - fixed) if part.erase else (inter + fixed, union)
            if i / u >= goal or done == n:
                break
        spent["eraser" if part.erase else "brush"] += done
        inter, union = i, u
        if inter / union >= goal:
            break
    return spent
