"""Turning images and instance masks into display-ready pixels. Plain numpy, no Qt.

These functions run inside background jobs (see `app/worker.py`): they take plain data
(paths, `Instance` records) and return plain data (numpy arrays, dataclasses), which the GUI
thread wraps into QImages without copying.

Pixel layout: BGRA uint8, which is what `QImage.Format_RGB32` / `Format_ARGB32_Premultiplied`
hold in memory on little-endian machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mrcnn.io.images import load_image, load_thumbnail
from mrcnn.io.remote import RemoteImage, location_name
from mrcnn.masks import Rle, decode_crop, mask_to_polygons
from mrcnn.store.records import Instance

#: Images are kept at full size plus halvings down to this longest side, so that a zoomed-out
#: view of a 6000x4000 photo paints a small level instead of scaling 24 megapixels.
PYRAMID_MIN_SIDE = 512


#: Outline levels of detail: (smallest view scale the level is drawn at, simplification in
#: image pixels). Level 0 follows pixel edges exactly (needed when pixels are big on screen);
#: zoomed out, simplified outlines look the same and paint many times faster.
OUTLINE_LEVELS = ((1.5, 0.0), (0.3, 0.75), (0.0, 3.0))


@dataclass(frozen=True)
class InstanceShape:
    """One instance ready to draw: its mask cropped to the bbox, filled with its colour, and
    its outline (every part and hole) at each level of OUTLINE_LEVELS."""

    id: int
    x: int  # top-left of the crop, in image pixels
    y: int
    fill: np.ndarray  # (h, w, 4) BGRA premultiplied: category colour where the mask is
    outlines: tuple[list[np.ndarray], ...]  # per level: closed (N, 2) float64 polygons


@dataclass
class ImageView:
    """A loaded image: a pyramid of display levels and the shapes of its instances."""

    image_id: int
    width: int
    height: int
    levels: list[np.ndarray]  # BGRA, level k is downscaled by 2**k
    shapes: list[InstanceShape] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    if len(c) != 6:
        return (255, 0, 0)
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def to_bgra(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 → (H, W, 4) BGRA with opaque alpha, contiguous."""
    return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))


def pyramid(bgra: np.ndarray, min_side: int = PYRAMID_MIN_SIDE) -> list[np.ndarray]:
    """The image and its halvings while the longest side stays above `min_side`."""
    levels = [bgra]
    while max(levels[-1].shape[:2]) > 2 * min_side:
        h, w = levels[-1].shape[:2]
        levels.append(cv2.resize(levels[-1], (max(1, w // 2), max(1, h // 2)),
                                 interpolation=cv2.INTER_AREA))
    return levels


def fill_pixels(mask: np.ndarray, color: str) -> np.ndarray:
    """(h, w) bool mask → BGRA premultiplied: opaque colour inside, transparent outside."""
    r, g, b = hex_to_rgb(color)
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[mask] = (b, g, r, 255)
    return out


def simplify(polygon: np.ndarray, epsilon: float) -> np.ndarray:
    """Douglas-Peucker simplification of a closed polygon; never fewer than 3 points."""
    if epsilon <= 0 or len(polygon) <= 4:
        return polygon
    out = cv2.approxPolyDP(polygon.astype(np.float32).reshape(-1, 1, 2), epsilon, True)
    out = out.reshape(-1, 2).astype(np.float64)
    return out if len(out) >= 3 else polygon


def _box(bbox: tuple[float, float, float, float], height: int, width: int,
         ) -> tuple[int, int, int, int] | None:
    """The whole pixels (x0, y0, x1, y1) a bbox (x, y, w, h) covers, inside the image."""
    x, y, w, h = bbox
    x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
    x1, y1 = min(width, int(math.ceil(x + w))), min(height, int(math.ceil(y + h)))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def instance_shape(inst: Instance, color: str) -> InstanceShape | None:
    """An instance's shape (its outline traced); None for an empty mask."""
    return rle_shape(inst.id, inst.rle, inst.bbox, color)


def rle_shape(instance_id: int, rle: Rle, bbox: tuple[float, float, float, float],
              color: str) -> InstanceShape | None:
    """The shape of a stored mask, read inside its bbox only (`masks.decode_crop`: on a
    large image the whole mask costs ~100x more, and the canvas prepares thousands)."""
    box = _box(bbox, rle.height, rle.width)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return crop_shape(instance_id, decode_crop(rle, x0, y0, x1, y1), x0, y0, color)


def mask_shape(instance_id: int, mask: np.ndarray, bbox: tuple[float, float, float, float],
               color: str) -> InstanceShape | None:
    """The shape of an instance given its full (H, W) bool mask and its bbox (x, y, w, h);
    None for an empty mask."""
    box = _box(bbox, *mask.shape[:2])
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return crop_shape(instance_id, mask[y0:y1, x0:x1], x0, y0, color)


def crop_shape(instance_id: int, crop: np.ndarray, x0: int, y0: int,
               color: str) -> InstanceShape | None:
    """The shape of an instance from its mask's crop whose top-left pixel is (x0, y0); None
    for an empty crop."""
    if not crop.any():
        return None
    outer, holes = mask_to_polygons(crop)
    shift = np.array([x0, y0], np.float64)
    exact = [np.asarray(p, np.float64).reshape(-1, 2) + shift for p in (*outer, *holes)]
    outlines = tuple([simplify(p, eps) for p in exact] for _scale, eps in OUTLINE_LEVELS)
    return InstanceShape(instance_id, x0, y0, fill_pixels(crop, color), outlines)


def instance_shapes(ctx, instances: list[tuple[Instance, str]]) -> list[InstanceShape]:
    """Job: shapes for (instance, colour) pairs, checking for cancellation between masks."""
    shapes = []
    for i, (inst, color) in enumerate(instances):
        ctx.check()
        shape = instance_shape(inst, color)
        if shape is not None:
            shapes.append(shape)
        ctx.progress(i + 1, len(instances), "preparing masks")
    return shapes


def load_view(ctx, image_id: int, path: Path | RemoteImage,
              instances: list[tuple[Instance, str]]) -> ImageView:
    """Job: load an image for display (pyramid) and prepare its instances' shapes; a remote
    image is read through the local image cache (fetched when it is not there). The
    pixels are handed over first (`ctx.yield_result`, an ImageView without shapes), so the
    image shows while its masks are still being prepared."""
    rgb = load_image(path)
    ctx.check()
    height, width = rgb.shape[:2]
    levels = pyramid(to_bgra(rgb))
    del rgb
    ctx.yield_result(ImageView(image_id, width, height, levels))
    view = ImageView(image_id, width, height, levels)
    fitting = []
    for inst, color in instances:
        if (inst.rle.height, inst.rle.width) != (height, width):
            view.warnings.append(
                f"instance {inst.id} was drawn on a {inst.rle.width}x{inst.rle.height} image "
                f"but {location_name(path)} is now {width}x{height}; it is not shown")
        else:
            fitting.append((inst, color))
    view.shapes = instance_shapes(ctx, fitting)
    return view


def make_thumbnail(ctx, path: Path | RemoteImage, size: int) -> np.ndarray:
    """Job: an RGB thumbnail whose longest side is `size` pixels (contiguous uint8)."""
    return load_thumbnail(path, size)
