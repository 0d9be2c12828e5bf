"""Opening a crowded large image: the time to prepare its instances for the canvas (each
mask read, its outline traced, its fill coloured; `app.canvas.render.instance_shapes`, the
job that runs while the image is already on screen), for images of several sizes holding
many small instances (cells, particles: the tiled prediction of a microscopy or aerial image
stores thousands).

Ours reads each stored mask inside its bounding box only (`mrcnn.masks.decode_crop`). The
baseline, measured in the same run on the same instances, decodes each whole mask
(`mrcnn.masks.decode`: height x width bytes per instance) and then crops it, as the canvas
did before. Same shapes either way (checked). Target: a 6000 x 4000 image with 1,000
instances ready in under 1 s.

    python benchmarks/mask_prepare.py [--sizes 1600x1200 6000x4000] [--instances 100 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from app.canvas.render import instance_shapes, mask_shape
from mrcnn.masks import decode, encode
from mrcnn.store.records import Instance


class Ctx:
    """The job context `instance_shapes` expects, doing nothing."""

    def check(self) -> None:
        pass

    def progress(self, *_args) -> None:
        pass


def make_instances(height: int, width: int, n: int, seed: int = 0) -> list[Instance]:
    """n discs of 6-20 px radius at random places (some overlapping), as stored records."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:height, :width]
    out = []
    for i in range(n):
        r = int(rng.integers(6, 21))
        cy, cx = int(rng.integers(r, height - r)), int(rng.integers(r, width - r))
        m = np.zeros((height, width), bool)
        y0, y1, x0, x1 = cy - r, cy + r + 1, cx - r, cx + r + 1
        m[y0:y1, x0:x1] = (yy[y0:y1] - cy) ** 2 + (xx[:, x0:x1] - cx) ** 2 <= r * r
        rle = encode(m)
        out.append(Instance(i + 1, 1, 1, rle, rle.bbox, rle.area, "model", None, 0.9,
                            "pending"))
    return out


def baseline(instances: list[Instance]) -> list:
    return [s for inst in instances
            if (s := mask_shape(inst.id, decode(inst.rle), inst.bbox, "#33aaff")) is not None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1600x1200", "6000x4000"])
    ap.add_argument("--instances", type=int, nargs="+", default=[100, 1000])
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        for n in args.instances:
            instances = make_instances(height, width, n)
            pairs = [(inst, "#33aaff") for inst in instances]
            t = time.perf_counter()
            ours = instance_shapes(Ctx(), pairs)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            base = baseline(instances)
            t_base = time.perf_counter() - t
            same = len(ours) == len(base) and all(
                (a.x, a.y) == (b.x, b.y) and np.array_equal(a.fill, b.fill)
                for a, b in zip(ours, base, strict=True))
            rows.append((size, n, t_base, t_ours, same))
    print("preparing instances for the canvas: whole-mask decode (baseline) vs bbox crop "
          "(ours), same run")
    print(f"{'image':>10} {'instances':>9} {'baseline s':>11} {'ours s':>8} {'speed-up':>9}"
          f" {'same shapes':>12}")
    for size, n, tb, to, same in rows:
        print(f"{size:>10} {n:>9} {tb:>11.2f} {to:>8.3f} {tb / to:>8.0f}x {str(same):>12}")


if __name__ == "__main__":
    main()
