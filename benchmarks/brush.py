"""Brush latency: from a brush move to the repainted overlay pixels, on a 6000x4000 image.

One move paints the newest stroke segment into the instance's working mask
(`mask_tools.paint_stroke`) and colours the pixels to show. Ours re-colours only the dirty
rectangle the segment returned (`mask_tools.colorize_region`); the baseline, measured in the
same run on the same moves, re-colours the instance's whole mask (its bounding box) every
move, as a canvas that redraws the edited instance would. Target: ours p99 <= 16 ms (one frame
at 60 Hz). Also shown: the end of a gesture (one durable history step: diff, RLE encode,
SQLite commit) and its undo.

    python benchmarks/brush.py [--moves 300] [--radius 25] [--instances 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mrcnn.editing import mask_tools
from mrcnn.editing.document import ImageDocument
from mrcnn.editing.mask_tools import EMPTY, Rect
from mrcnn.masks import encode
from mrcnn.store.project import Project

WIDTH, HEIGHT = 6000, 4000
COLOR = (40, 200, 240, 255)  # premultiplied BGRA, as the canvas holds it


def make_project(folder: Path, n_instances: int, rng: np.random.Generator
                 ) -> tuple[Project, int, list[tuple[int, int, int]]]:
    """A project over one 6000x4000 image with `n_instances` ellipses (not written as an image
    file: the brush never reads pixels). Returns (project, image id, [(id, cx, cy)])."""
    (folder / "images").mkdir(parents=True)
    project = Project.create(folder / "proj", folder / "images")
    img = project.add_image(folder / "images" / "big.jpg", WIDTH, HEIGHT, "0" * 64)
    cats = [project.add_category(f"class{k}").id for k in range(5)]
    placed = []
    canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
    with project.transaction():
        for k in range(n_instances):
            canvas[:] = 0
            cx, cy = int(rng.integers(400, WIDTH - 400)), int(rng.integers(400, HEIGHT - 400))
            axes = (int(rng.integers(60, 700)), int(rng.integers(60, 700)))
            cv2.ellipse(canvas, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
            inst = project.add_instance(img.id, cats[k % len(cats)], encode(canvas))
            placed.append((inst.id, cx, cy))
    return project, img.id, placed


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--radius", type=float, default=25.0)
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--strokes", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        project, image_id, placed = make_project(Path(tmp), args.instances, rng)
        print(f"setup: {args.instances} instances on a {WIDTH}x{HEIGHT} image "
              f"({time.perf_counter() - t:.1f} s)")
        doc = ImageDocument(project, image_id)
        ours: list[float] = []
        base: list[float] = []
        commits: list[float] = []
        undos: list[float] = []
        per_stroke = max(1, args.moves // args.strokes)
        for s in range(args.strokes):
            iid, cx, cy = placed[int(rng.integers(len(placed)))]
            work = doc.mask(iid).copy()  # at mouse press
            twin = work.copy()
            bbox = Rect.of_mask(twin)
            dirty = EMPTY
            # Start on the instance's outline, as a correction does.
            pos = np.array([np.flatnonzero(work[cy]).max() + 0.5, cy + 0.5])
            heading = rng.uniform(0, 2 * np.pi)
            for _ in range(per_stroke):
                heading += rng.normal(0, 0.3)
                new = pos + 6.0 * np.array([np.cos(heading), np.sin(heading)])
                segment = [tuple(pos), tuple(new)]
                erase = s % 3 == 2

                t0 = time.perf_counter_ns()
                rect = mask_tools.paint_stroke(work, segment, args.radius, erase=erase)
                pixels = mask_tools.colorize_region(work, rect, COLOR)
                ours.append((time.perf_counter_ns() - t0) / 1e6)

                t0 = time.perf_counter_ns()
                rect_b = mask_tools.paint_stroke(twin, segment, args.radius, erase=erase)
                bbox = bbox.union(rect_b)
                whole = mask_tools.colorize_region(twin, bbox, COLOR)
                base.append((time.perf_counter_ns() - t0) / 1e6)

                assert np.array_equal(pixels, whole[rect.offset(-bbox.x0, -bbox.y0).slices])
                dirty = dirty.union(rect)
                pos = new
            t0 = time.perf_counter()
            step = doc.edit_mask(iid, work, rect=dirty, label="brush")  # at release
            if step is not None:
                commits.append((time.perf_counter() - t0) * 1e3)
        for _ in range(len(commits)):
            t0 = time.perf_counter()
            doc.undo()
            undos.append((time.perf_counter() - t0) * 1e3)
        project.close()

    o50, o99 = percentile(ours, 50), percentile(ours, 99)
    b50, b99 = percentile(base, 50), percentile(base, 99)
    verdict = "met" if o99 <= 16 else "MISSED"
    print(f"brush move -> repainted overlay pixels ({len(ours)} moves, radius {args.radius:g} px,"
          f" {args.strokes} strokes on random instances):")
    print(f"  ours, dirty rectangle only:        p50 {o50:7.3f} ms   p99 {o99:7.3f} ms"
          f"   (target p99 <= 16 ms: {verdict})")
    print(f"  baseline, whole instance repaint:  p50 {b50:7.3f} ms   p99 {b99:7.3f} ms")
    print(f"  ratio baseline / ours:             p50 {b50 / o50:7.1f}x     p99 {b99 / o99:7.1f}x")
    print(f"gesture end (diff + RLE encode + SQLite commit of one stroke): "
          f"p50 {statistics.median(commits):.1f} ms, max {max(commits):.1f} ms "
          f"(n={len(commits)}); undo p50 {statistics.median(undos):.1f} ms (n={len(undos)})")


if __name__ == "__main__":
    main()
