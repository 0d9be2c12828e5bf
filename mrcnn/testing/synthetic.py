"""A generated project of simple shapes on textured backgrounds, for tests, demos and
benchmarks: learnable from scratch on a CPU in minutes, yet not trivial (random colours,
textures, noise, rotations, holes, slight overlaps)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mrcnn import masks
from mrcnn.keypoints import KeypointSchema
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder

log = logging.getLogger(__name__)

#: The shape categories, in the order they are added to the project.
SHAPES = ("disc", "square", "ring", "triangle")
#: Shape radius range in pixels, for a 128-pixel image (scaled with the image size).
RADIUS = (14.0, 28.0)
#: Small objects (`make_synthetic_project(objects="small")`): radius range in pixels whatever
#: the image size (objects about 10-20 px across), and how many per image.
SMALL_RADIUS = (5.0, 10.0)
SMALL_INSTANCES = (15, 30)
#: Long-tailed shapes (`make_synthetic_project(objects="long-tail")`): the chance of each
#: SHAPES category per drawn shape, common to rare, as categories are in real data sets
#: (COCO, LVIS, MaskAL's broccoli data): most images hold only the common ones.
LONG_TAIL = (0.55, 0.25, 0.13, 0.07)
#: The kinds of synthetic data `make_synthetic_project` writes.
OBJECTS = ("shapes", "small", "long-tail")
#: Squares and triangles are rotated by at most this angle (radians) from upright.
MAX_TILT = np.pi / 12
#: The keypoints of the shapes that have corners (`make_synthetic_project(keypoints=True)`):
#: a left/right pair each, so a mirror image swaps them.
SHAPE_KEYPOINTS = {"triangle": ("apex", "left_base", "right_base"),
                   "square": ("top_left", "top_right", "bottom_right", "bottom_left")}
#: Vertex index (in `_shape_mask`'s drawing order) of each keypoint name.
_CORNER_ORDER = {"triangle": (0, 2, 1), "square": (2, 3, 0, 1)}


@dataclass(frozen=True)
class SyntheticInstance:
    """One drawn shape: its category name and its visible (H, W) bool mask."""

    name: str
    mask: np.ndarray
    #: the shape's corners as keypoints (x, y, v) in SHAPE_KEYPOINTS order, pixel centres at
    #: + 0.5 (COCO's convention): v = 2 visible, 1 covered by a later shape, (0, 0, 0)
    #: outside the image; None for shapes without corners
    points: tuple[tuple[float, float, int], ...] | None = None


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) float noise in [0, 1] varying over about `cells` cells per side."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured (size, size, 3) float background in [0, 255]: two colours mixed by blotchy
    noise, a faint grating and fine grain."""
    c0, c1 = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    mix = _smooth_noise(rng, size, int(rng.integers(3, 7)))[..., None]
    img = c0 * (1 - mix) + c1 * mix
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(6, 16) * size / 128
    grating = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period)
    img += (rng.uniform(5, 20) * grating)[..., None]
    img += rng.normal(0, 6, (size, size, 3))
    return img


def _shape_mask(rng: np.random.Generator, name: str, size: int, cy: float, cx: float,
                r: float, corners: list | None = None) -> np.ndarray:
    """The full (size, size) bool mask of one shape of radius about `r` centred at (cy, cx).
    A square's or triangle's vertices (x, y; pixel centres at integers) are appended to
    `corners` when given."""
    m = np.zeros((size, size), np.uint8)
    if name in ("disc", "ring"):
        yy, xx = np.mgrid[:size, :size]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        out = d2 <= r * r
        if name == "ring":
            out &= d2 >= (r * rng.uniform(0.45, 0.6)) ** 2
        return out
    tilt = rng.uniform(-MAX_TILT, MAX_TILT)
    if name == "square":
        angles = tilt + np.arange(4) * np.pi / 2 + np.pi / 4
        rad = r * 1.05
    else:  # triangle, pointing up
        angles = tilt + np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        rad = r * 1.2
    pts = np.stack([cx + rad * np.cos(angles), cy + rad * np.sin(angles)], axis=1)
    if corners is not None:
        corners.extend((float(x), float(y)) for x, y in pts)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def _fill(rng: np.random.Generator, size: int, background: np.ndarray,
          mask: np.ndarray) -> np.ndarray:
    """A (size, size, 3) textured fill whose colour stands out from the background under
    the mask."""
    under = background[mask].mean(axis=0)
    for _ in range(20):
        color = rng.uniform(0, 255, 3)
        if np.abs(color - under).sum() > 150:
            break
    shade = _smooth_noise(rng, size, 4)[..., None] - 0.5
    return color + 50 * shade + rng.normal(0, 5, (size, size, 3))


def draw_image(rng: np.random.Generator, size: int = 128, *, min_instances: int = 2,
               max_instances: int = 4, radius_px: tuple[float, float] | None = None,
               category_p: tuple[float, ...] | None = None
               ) -> tuple[np.ndarray, list[SyntheticInstance]]:
    """One (size, size, 3) uint8 RGB image and its instances (visible masks, occlusion
    applied: a later shape covers an earlier one a little). Shape radii are `radius_px`
    pixels (None: RADIUS, scaled with the image size); each shape's category is drawn with
    the chances `category_p` (one per SHAPES; None: all alike)."""
    img = _background(rng, size)
    want = int(rng.integers(min_instances, max_instances + 1))
    placed: list[tuple[str, np.ndarray]] = []  # (name, visible mask), in drawing order
    vertices: list[list[tuple[float, float]]] = []  # each placed shape's corners
    scale = size / 128
    for _ in range(want * 25):
        if len(placed) == want:
            break
        name = SHAPES[int(rng.integers(len(SHAPES)) if category_p is None
                          else rng.choice(len(SHAPES), p=category_p))]
        r = rng.uniform(*radius_px) if radius_px else rng.uniform(*RADIUS) * scale
        cy, cx = rng.uniform(r * 0.8, size - r * 0.8, 2)  # may be cut a little by the border
        corners: list[tuple[float, float]] = []
        full = _shape_mask(rng, name, size, cy, cx, r, corners)
        area = full.sum()
        ok = all((full & vis).sum() <= 0.15 * min(vis.sum(), area) for _, vis in placed)
        if not ok:
            continue
        placed = [(n, vis & ~full) for n, vis in placed]
        placed.append((name, full))
        vertices.append(corners)
        img = np.where(full[..., None], _fill(rng, size, img, full), img)
    img = cv2.GaussianBlur(img.astype(np.float32), (3, 3), 0.6)
    rgb = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return rgb, [SyntheticInstance(n, vis, _corner_points(n, vis, corners))
                 for (n, vis), corners in zip(placed, vertices, strict=True) if vis.any()]


def _corner_points(name: str, visible: np.ndarray, corners: list[tuple[float, float]]
                   ) -> tuple[tuple[float, float, int], ...] | None:
    """A shape's corners as keypoints (see `SyntheticInstance.points`): a corner is visible
    when the shape's visible mask holds the pixel 2 px inwards from it (towards the centre)."""
    if name not in _CORNER_ORDER:
        return None
    h, w = visible.shape
    cx = sum(x for x, _ in corners) / len(corners)
    cy = sum(y for _, y in corners) / len(corners)
    out = []
    for index in _CORNER_ORDER[name]:
        x, y = corners[index]
        if not (0 <= x + 0.5 < w and 0 <= y + 0.5 < h):
            out.append((0.0, 0.0, 0))
            continue
        d = max(float(np.hypot(cx - x, cy - y)), 1e-6)
        ix = int(np.clip(round(x + 2 * (cx - x) / d), 0, w - 1))
        iy = int(np.clip(round(y + 2 * (cy - y) / d), 0, h - 1))
        out.append((round(x + 0.5, 2), round(y + 0.5, 2), 2 if visible[iy, ix] else 1))
    return tuple(out)


def make_synthetic_project(folder: str | Path, *, n_train: int = 40, n_val: int = 10,
                           size: int = 128, seed: int = 0, objects: str = "shapes",
                           keypoints: bool = False) -> Path:
    """Write n_train + n_val PNG images under folder/images and a project at folder/project
    whose images are all reviewed, with accepted manual instances of the SHAPES categories;
    exactly the last n_val images are in the val split. Returns the project folder
    (closed; open it with `Project.open`).

    objects: "shapes" (2-4 shapes of about a fifth of the image across), "small"
    (SMALL_INSTANCES shapes of about 10-20 px, whatever the image size, like cells or
    particles) or "long-tail" (as "shapes", the categories drawn with the LONG_TAIL
    chances: the pool active learning is for, where some images teach more than others).
    keypoints: give the triangle and square categories keypoint schemas (SHAPE_KEYPOINTS)
    and every triangle and square its corners as points (the same images either way)."""
    if objects not in OBJECTS:
        raise ValueError(f"objects must be one of {', '.join(OBJECTS)}, not {objects!r}")
    kind: dict = {}
    if objects == "small":
        kind = {"min_instances": SMALL_INSTANCES[0], "max_instances": SMALL_INSTANCES[1],
                "radius_px": SMALL_RADIUS}
    elif objects == "long-tail":
        kind = {"category_p": LONG_TAIL}
    folder = Path(folder)
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    drawn: list[tuple[Path, list[SyntheticInstance]]] = []
    for i in range(n_train + n_val):
        rgb, instances = draw_image(rng, size, **kind)
        path = images_dir / f"shapes_{i:04d}.png"
        Image.fromarray(rgb).save(path)
        drawn.append((path, instances))
    project = Project.create(folder / "project", images_dir)
    try:
        with project.transaction():
            scan_folder(project)
            cats = {name: project.add_category(name).id for name in SHAPES}
            if keypoints:
                for name, names in SHAPE_KEYPOINTS.items():
                    project.set_category_keypoints(cats[name], KeypointSchema(names))
            for i, (path, instances) in enumerate(drawn):
                image = project.image_by_key(project.image_key(path))
                if image is None:  # pragma: no cover - we just wrote it
                    raise FileNotFoundError(path)
                for inst in instances:
                    project.add_instance(image.id, cats[inst.name], masks.encode(inst.mask),
                                         keypoints=inst.points if keypoints else None)
                project.set_image_status(image.id, "reviewed")
                project.set_image_split(image.id, "train" if i < n_train else "val")
    finally:
        project.close()
    log.info("synthetic project with %d images written to %s", len(drawn), folder)
    return folder / "project"
