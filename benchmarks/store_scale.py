"""Store at scale: 10,000 images and 100,000 instances.

Prints the time to import (COCO), open, commit one edit, and export; export is shown as a
ratio to a plain `json.dump` of the same COCO dictionary (the baseline, measured in this run),
and the data set overview (the Dataset dock, `info`) as a ratio to open (+ summary).
Targets on a 2-core machine: open <= 1 s, one edit <= 10 ms, export <= 2x json.dump,
overview <= 3x open.

    python benchmarks/store_scale.py [--images 10000] [--per-image 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mrcnn import masks
from mrcnn.coco.io import build_coco, export_coco, import_coco
from mrcnn.store.overview import dataset_overview
from mrcnn.store.project import Project


def make_dataset(root: Path, n_images: int, per_image: int, size=(160, 120)) -> Path:
    rng = np.random.default_rng(0)
    w, h = size
    (root / "images").mkdir(parents=True)
    base = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    images, anns = [], []
    for i in range(1, n_images + 1):
        name = f"images/img_{i:05d}.png"
        img = base.copy()
        img[0, 0] = (i % 256, i // 256 % 256, 7)  # distinct content (and hash) per image
        Image.fromarray(img).save(root / name, compress_level=1)
        images.append({"id": i, "file_name": name, "width": w, "height": h})
        for _ in range(per_image):
            m = np.zeros((h, w), np.uint8)
            x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
            m[y0:y0 + rng.integers(5, 20), x0:x0 + rng.integers(5, 20)] = 1
            r = masks.encode(m)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1 + len(anns) % 5,
                         "segmentation": r.to_coco(), "bbox": list(r.bbox), "area": r.area,
                         "iscrowd": 0})
    cats = [{"id": k, "name": f"class{k}"} for k in range(1, 6)]
    path = root / "big.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--per-image", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        coco_path = make_dataset(root, args.images, args.per_image)
        print(f"generated {args.images} images, {args.images * args.per_image} instances "
              f"in {time.perf_counter() - t:.1f} s")

        project = Project.create(root / "project", root)
        t = time.perf_counter()
        report = import_coco(project, coco_path)
        t_import = time.perf_counter() - t
        project.close()
        assert report.annotations_added == args.images * args.per_image

        opens = []
        for _ in range(5):
            t = time.perf_counter()
            project = Project.open(root / "project")
            summary = project.summary()
            opens.append(time.perf_counter() - t)
            project.close()
        t_open = statistics.median(opens)

        project = Project.open(root / "project", read_only=True)
        overviews = []
        for _ in range(5):
            t = time.perf_counter()
            dataset_overview(project)
            overviews.append(time.perf_counter() - t)
        project.close()
        t_overview = statistics.median(overviews)

        project = Project.open(root / "project")
        inst = project.instances(image_id=1)[0]
        edits = []
        for k in range(20):
            m = inst.rle.decode()
            m[k % 100, :10] = True
            t = time.perf_counter()
            project.set_instance_mask(inst.id, masks.encode(m))
            edits.append(time.perf_counter() - t)
        t_edit = statistics.median(edits)

        coco, _ = build_coco(project)
        baseline, exports = [], []
        for _ in range(3):
            t = time.perf_counter()
            with open(root / "baseline.json", "w") as f:
                json.dump(coco, f)
            baseline.append(time.perf_counter() - t)
            t = time.perf_counter()
            export_coco(project, root / "export.json")
            exports.append(time.perf_counter() - t)
        project.close()
        t_base, t_export = statistics.median(baseline), statistics.median(exports)

    print(f"project: {summary['images']['total']} images, {summary['instances']['total']} "
          "instances")
    print(f"{'measure':<28}{'time':>10}{'target':>12}")
    print(f"{'import COCO':<28}{t_import:>9.2f}s{'':>12}")
    print(f"{'open (+ summary), median':<28}{t_open * 1000:>8.0f}ms{'<= 1000ms':>12}")
    print(f"{'overview / open (+ summary)':<28}{t_overview / t_open:>9.2f}x{'<= 3.0x':>12}")
    print(f"{'one edit (commit), median':<28}{t_edit * 1000:>8.1f}ms{'<= 10ms':>12}")
    print(f"{'json.dump baseline':<28}{t_base:>9.2f}s{'':>12}")
    print(f"{'export (verified)':<28}{t_export:>9.2f}s{'':>12}")
    print(f"{'export / json.dump':<28}{t_export / t_base:>9.2f}x{'<= 2.0x':>12}")


if __name__ == "__main__":
    main()
