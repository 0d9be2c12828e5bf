"""Mask tools guided by the image's pixels: GrabCut in a box and the magic wand. Pure functions
on an (H, W, 3) uint8 RGB image and (H, W) bool masks. No Qt, no store.

Coordinates, `Rect` and the add / subtract rule are those of `mask_tools`, which holds the tools
that look at masks alone; every tool here returns a new mask and leaves its inputs alone
(`grabcut_labels` updates the `labels` it is given, as OpenCV does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from mrcnn.editing.mask_tools import Point, Rect, box_rect, combine
from mrcnn.errors import MaskToolError


def check_image(rgb: np.ndarray) -> np.ndarray:
    """`rgb` as a contiguous (H, W, 3) uint8 RGB array (a grey (H, W) image repeated into three
    channels); MaskToolError for any other shape or dtype."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MaskToolError(f"an image must be (H, W, 3) RGB, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise MaskToolError(f"an image must be uint8, got {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def grabcut(rgb: np.ndarray, box: Rect | Sequence[float], *, iterations: int = 5,
            margin: float = 0.25) -> np.ndarray:
    """The foreground GrabCut (OpenCV) finds inside a box; an (H, W) bool mask.

    `box` is (x0, y0, x1, y1) in pixel-corner coordinates or a `Rect`. Only the box plus a
    margin (a fraction of the box's size, at least 8 px) is processed; nothing outside the box
    is foreground. Deterministic (OpenCV's RNG is seeded). Raises MaskToolError when GrabCut
    cannot run (e.g. the box covers the whole image, leaving no background to learn from).
    """
    rgb = check_image(rgb)
    h, w = rgb.shape[:2]
    rect = box_rect(box, rgb.shape)
    if rect.width < 2 or rect.height < 2:
        raise MaskToolError("the GrabCut box must cover at least 2x2 pixels of the image")
    mx = max(8, math.ceil(rect.width * margin))
    my = max(8, math.ceil(rect.height * margin))
    area = Rect(rect.x0 - mx, rect.y0 - my, rect.x1 + mx, rect.y1 + my).clip(rgb.shape)
    if area == rect:
        raise MaskToolError("the GrabCut box covers the whole image: no background to learn")
    labels = np.zeros((area.height, area.width), np.uint8)
    foreground = grabcut_labels(rgb[area.slices], labels, iterations=iterations,
                                rect=rect.offset(-area.x0, -area.y0))
    out = np.zeros((h, w), bool)
    out[area.slices] = foreground
    return out


def grabcut_labels(rgb: np.ndarray, labels: np.ndarray, *, iterations: int = 5,
                   rect: Rect | None = None) -> np.ndarray:
    """Run OpenCV's GrabCut on an (h, w, 3) uint8 RGB crop; the (h, w) bool foreground.

    With `rect`, GrabCut starts from that rectangle (all else background) and `labels` is
    overwritten; without, it starts from `labels`, an (h, w) uint8 array of cv2.GC_BGD /
    GC_FGD / GC_PR_BGD / GC_PR_FGD, updated in place. Deterministic (OpenCV's RNG is seeded).
    Raises MaskToolError when GrabCut cannot run (e.g. no background to learn from)."""
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # OpenCV wants BGR
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        if rect is not None:
            cv2.grabCut(bgr, labels, (rect.x0, rect.y0, rect.width, rect.height), bgd, fgd,
                        max(1, int(iterations)), cv2.GC_INIT_WITH_RECT)
        else:
            cv2.grabCut(bgr, labels, (0, 0, 0, 0), bgd, fgd, max(1, int(iterations)),
                        cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:
        raise MaskToolError(f"GrabCut failed: {str(exc).strip().splitlines()[-1]}") from None
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def magic_wand(rgb: np.ndarray, seed: Point, tolerance: int = 16, *,
               connectivity: int = 4) -> np.ndarray:
    """Flood fill from `seed` (x, y): the connected pixels whose every channel differs from the
    seed pixel's by at most `tolerance`. An (H, W) bool mask."""
    rgb = check_image(rgb)
    h, w = rgb.shape[:2]
    col, row = math.floor(seed[0]), math.floor(seed[1])
    if not (0 <= col < w and 0 <= row < h):
        raise MaskToolError(f"magic wand seed ({seed[0]}, {seed[1]}) is outside the image")
    if connectivity not in (4, 8):
        raise MaskToolError("connectivity must be 4 or 8")
    tol = int(max(0, min(255, tolerance)))
    filled = np.zeros((h + 2, w + 2), np.uint8)
    flags = connectivity | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    cv2.floodFill(rgb, filled, (col, row), (0, 0, 0), (tol,) * 3, (tol,) * 3, flags)
    return filled[1:-1, 1:-1].astype(bool)


def magic_wand_edit(mask: np.ndarray, rgb: np.ndarray, seed: Point, tolerance: int = 16, *,
                    subtract: bool = False, connectivity: int = 4) -> np.ndarray:
    """A new mask: the magic wand's region added to (or subtracted from) `mask`."""
    region = magic_wand(rgb, seed, tolerance, connectivity=connectivity)
    return combine(mask, region, "subtract" if subtract else "add")
