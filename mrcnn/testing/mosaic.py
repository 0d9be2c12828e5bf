"""A large synthetic image of many small shapes and a few large ones (a microscopy slide, an
aerial photo), for tiled prediction's tests and benchmark: drawn like
`mrcnn.testing.synthetic` (textured background, textured fills, slight occlusion), but each
shape in its own window, so a 6000 x 4000 image with hundreds of shapes stays cheap, and its
instances are mask crops with offsets, not full-size masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mrcnn.testing.synthetic import SHAPES, _shape_mask, _smooth_noise

#: Radius ranges in pixels of the mosaic's small and large shapes.
SMALL_RADIUS = (5.0, 10.0)
LARGE_RADIUS = (120.0, 260.0)
#: Shapes placed on a seam line have radii in this range (about 20 to 80 px across).
SEAM_RADIUS = (10.0, 40.0)


@dataclass(frozen=True)
class MosaicInstance:
    """One drawn shape: category name, its visible mask as a crop `mask` (h, w) bool whose
    top-left pixel is (x0, y0) of the image, and whether it was placed across a seam."""

    name: str
    x0: int
    y0: int
    mask: np.ndarray
    on_seam: bool = False

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def box(self) -> tuple[int, int, int, int]:
        """xyxy of the crop, pixels."""
        return self.x0, self.y0, self.x0 + self.mask.shape[1], self.y0 + self.mask.shape[0]

    def full(self, height: int, width: int) -> np.ndarray:
        """The mask at the image's size, (height, width) bool."""
        out = np.zeros((height, width), bool)
        out[self.y0:self.y0 + self.mask.shape[0], self.x0:self.x0 + self.mask.shape[1]] = \
            self.mask
        return out


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured (height, width, 3) uint8 background: two colours mixed by blotchy noise, a
    faint grating and fine grain (as `synthetic._background`), computed in bands of rows."""
    c0, c1 = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    cells = max(2, round(max(height, width) / 400))
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    mix = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    theta, period = rng.uniform(0, np.pi), rng.uniform(6, 16)
    amp = rng.uniform(5, 20)
    out = np.empty((height, width, 3), np.uint8)
    xx = np.arange(width, dtype=np.float32)
    for y0 in range(0, height, 256):
        y1 = min(height, y0 + 256)
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        m = mix[y0:y1, :, None]
        band = c0 * (1 - m) + c1 * m
        band += (amp * np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi
                              / period))[..., None]
        band += rng.normal(0, 6, band.shape)
        out[y0:y1] = np.clip(np.round(band), 0, 255)
    return out


def _paint(rng: np.random.Generator, image: np.ndarray, x0: int, y0: int,
           mask: np.ndarray) -> None:
    """Fill the mask (at x0, y0) with a textured colour that stands out from what it covers."""
    h, w = mask.shape
    window = image[y0:y0 + h, x0:x0 + w]
    under = window[mask].astype(np.float32).mean(axis=0)
    for _ in range(20):
        color = rng.uniform(0, 255, 3)
        if np.abs(color - under).sum() > 150:
            break
    shade = cv2.resize(_smooth_noise(rng, 8, 4), (w, h))[..., None] - 0.5
    fill = color + 50 * shade + rng.normal(0, 5, (h, w, 3))
    window[mask] = np.clip(np.round(fill[mask]), 0, 255).astype(np.uint8)


def _overlap(a: tuple[int, int, np.ndarray], b: tuple[int, int, np.ndarray]) -> int:
    (ax, ay, am), (bx, by, bm) = a, b
    x0, y0 = max(ax, bx), max(ay, by)
    x1, y1 = min(ax + am.shape[1], bx + bm.shape[1]), min(ay + am.shape[0], by + bm.shape[0])
    if x0 >= x1 or y0 >= y1:
        return 0
    return int(np.count_nonzero(am[y0 - ay:y1 - ay, x0 - ax:x1 - ax]
                                & bm[y0 - by:y1 - by, x0 - bx:x1 - bx]))


def draw_mosaic(rng: np.random.Generator, height: int, width: int, *, small: int = 300,
                large: int = 6, on_seams: int = 0,
                seams: tuple[Sequence[int], Sequence[int]] = ((), ()),
                small_radius: tuple[float, float] = SMALL_RADIUS,
                large_radius: tuple[float, float] = LARGE_RADIUS,
                seam_radius: tuple[float, float] = SEAM_RADIUS,
                ) -> tuple[np.ndarray, list[MosaicInstance]]:
    """A (height, width, 3) uint8 RGB image and its instances: `large` shapes, then
    `on_seams` shapes centred on a seam line (`seams`: x positions of vertical lines, y
    positions of horizontal ones, e.g. tile edges), then `small` ones. Shapes overlap by at
    most 15% of the smaller one; a later one covers an earlier one (visible masks)."""
    image = _background(rng, height, width)
    placed: list[tuple[str, int, int, np.ndarray, bool]] = []  # name, x0, y0, visible, seam
    xs, ys = list(seams[0]), list(seams[1])
    plan = ([("large", large_radius)] * large
            + ([("seam", seam_radius)] * on_seams if xs or ys else [])
            + [("small", small_radius)] * small)
    for kind, radius in plan:
        for _ in range(50):
            r = float(rng.uniform(*radius))
            name = SHAPES[int(rng.integers(len(SHAPES)))]
            cy, cx = rng.uniform(r * 0.8, height - r * 0.8), rng.uniform(r * 0.8, width - r * 0.8)
            if kind == "seam":  # centred on a line (either kind), anywhere along it
                if xs and (not ys or rng.random() < 0.5):
                    cx = float(xs[int(rng.integers(len(xs)))]) + rng.uniform(-2, 2)
                else:
                    cy = float(ys[int(rng.integers(len(ys)))]) + rng.uniform(-2, 2)
            side = int(2 * 1.3 * r) + 6
            wx0, wy0 = int(cx) - side // 2, int(cy) - side // 2
            full = _shape_mask(rng, name, side, cy - wy0, cx - wx0, r)
            # clip the window to the image
            cx0, cy0 = max(0, -wx0), max(0, -wy0)
            cx1, cy1 = min(side, width - wx0), min(side, height - wy0)
            full = full[cy0:cy1, cx0:cx1]
            x0, y0 = wx0 + cx0, wy0 + cy0
            area = int(full.sum())
            if area == 0:
                continue
            near = [p for p in placed if p[1] < x0 + full.shape[1] and x0 < p[1] + p[3].shape[1]
                    and p[2] < y0 + full.shape[0] and y0 < p[2] + p[3].shape[0]]
            if any(_overlap((x0, y0, full), (p[1], p[2], p[3]))
                   > 0.15 * min(int(p[3].sum()), area) for p in near):
                continue
            for p in near:  # the new shape covers what it overlaps
                px, py, pm = p[1], p[2], p[3]
                ix0, iy0 = max(px, x0), max(py, y0)
                ix1 = min(px + pm.shape[1], x0 + full.shape[1])
                iy1 = min(py + pm.shape[0], y0 + full.shape[0])
                if ix0 < ix1 and iy0 < iy1:
                    pm[iy0 - py:iy1 - py, ix0 - px:ix1 - px] &= \
                        ~full[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            placed.append((name, x0, y0, full.copy(), kind == "seam"))
            _paint(rng, image, x0, y0, full)
            break
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    out = []
    for name, x0, y0, vis, seam in placed:
        rows, cols = np.flatnonzero(vis.any(axis=1)), np.flatnonzero(vis.any(axis=0))
        if rows.size == 0:
            continue
        crop = vis[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        out.append(MosaicInstance(name, x0 + int(cols[0]), y0 + int(rows[0]),
                                  np.ascontiguousarray(crop), seam))
    return image, out
