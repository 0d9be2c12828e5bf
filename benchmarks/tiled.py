"""Tiled prediction on large images: recall of small objects, and objects cut by tile seams
returned as two instances, for tiled prediction against whole-image prediction (the
baseline: the image resized to the model's input, as without tiling), measured in one run.

    python benchmarks/tiled.py                     (synthetic: a 3000 x 2000 mosaic, r18
                                                    trained here, about 10-15 min on 2 cores)
    python benchmarks/tiled.py --size 6000x4000    (the size users label; ~4x the prediction)
    python benchmarks/tiled.py --data COCO.json --images DIR [--model CKPT]
    options: --max-iters N (300) --device cuda --train-size 256 --score 0.5 --seed 0
             --max-detections 100 --work DIR

Synthetic (the default): a test mosaic (`mrcnn.testing.mosaic.draw_mosaic`) of --small small
shapes (10-20 px across), --large large ones (240-520 px, larger than a tile) and --on-seams
shapes of 20-80 px centred on the tiles' edges; a model trained here from scratch (r18,
--train-size px input, --max-iters iterations of batch 2) on a training project of 1024 px
mosaics of the same kind cut into tiles, 256 px images of 30-80 px shapes (large objects as
the whole-image pass sees them) and one 2800 px mosaic (trained on in random crops:
`mrcnn.training.dataset.TrainingCrops`).
--data: a COCO file imported into a project (every annotated image reviewed, split by hash);
the model is --model CKPT, else trained here on the train split as above; it is measured
on the val split's images (all of them when there is none).

Measured for each method: recall at mask IoU >= 0.5 of the ground truth by COCO size (small
< 32^2 px, medium < 96^2, large) among the predictions scoring at least --score (the app's
shown score), one prediction per object (greedy by score, same category); how many objects
crossing a tile edge come back as two or more instances (predictions with half their mask or
more on the object: the target for tiled prediction is none); the predictions shown; seconds
per image. Tiled uses tiles of the model's shorter input side (what "auto" uses; the line
says whether "auto" would tile these images); the merge rules: `mrcnn.serving.tiles`.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from mrcnn import masks
from mrcnn.model.predictor import Prediction
from mrcnn.serving.tiles import CropMasks, Tile, tight, tile_grid, tile_size_for
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder
from mrcnn.testing.mosaic import draw_mosaic
from mrcnn.testing.synthetic import SHAPES, draw_image

#: COCO's object sizes by mask area (px): small < 32^2 <= medium < 96^2 <= large.
SIZES = (("small", 0.0, 32.0 ** 2), ("medium", 32.0 ** 2, 96.0 ** 2),
         ("large", 96.0 ** 2, math.inf))
MATCH_IOU = 0.5


@dataclass(frozen=True)
class Obj:
    """A ground-truth object or a prediction: model label, mask crop at (x0, y0), score."""

    label: int
    x0: int
    y0: int
    mask: np.ndarray
    score: float = 1.0
    area: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", int(np.count_nonzero(self.mask)))

    @property
    def x1(self) -> int:
        return self.x0 + self.mask.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.mask.shape[0]

    @property
    def size(self) -> str:
        return next(name for name, lo, hi in SIZES if lo <= self.area < hi)


def overlap(a: Obj, b: Obj) -> int:
    x0, y0, x1, y1 = max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1)
    if x0 >= x1 or y0 >= y1:
        return 0
    return int(np.count_nonzero(a.mask[y0 - a.y0:y1 - a.y0, x0 - a.x0:x1 - a.x0]
                                & b.mask[y0 - b.y0:y1 - b.y0, x0 - b.x0:x1 - b.x0]))


def predicted_objects(pred: Prediction, min_score: float) -> list[Obj]:
    """The predictions scoring at least `min_score`, as crops (a whole-image prediction's
    full-size masks are cropped one by one)."""
    out = []
    crops = pred.masks.crops if isinstance(pred.masks, CropMasks) else None
    for i in np.flatnonzero(pred.scores >= min_score):
        if crops is not None:
            x, y, m = crops[i]
        else:
            cropped = tight(pred.masks[i])
            if cropped is None:
                continue
            x, y, m = cropped
        out.append(Obj(int(pred.labels[i]), x, y, m, float(pred.scores[i])))
    return out


def _near(objs: list[Obj], o: Obj) -> list[int]:
    return [k for k, t in enumerate(objs)
            if t.label == o.label and t.x0 < o.x1 and o.x0 < t.x1 and t.y0 < o.y1 and o.y0 < t.y1]


def matched(truth: list[Obj], preds: list[Obj]) -> list[bool]:
    """Which ground-truth objects a prediction matches (mask IoU >= MATCH_IOU, same label,
    greedy by score, one prediction each)."""
    found = [False] * len(truth)
    for p in sorted(preds, key=lambda p: -p.score):
        best, best_iou = None, MATCH_IOU
        for k in _near(truth, p):
            if found[k]:
                continue
            inter = overlap(truth[k], p)
            iou = inter / max(1, truth[k].area + p.area - inter)
            if iou >= best_iou:
                best, best_iou = k, iou
        if best is not None:
            found[best] = True
    return found


def crosses(o: Obj, grid: list[Tile], height: int, width: int) -> bool:
    """Whether a tile edge that is not an image edge runs through the object's box."""
    xs = {t.x0 for t in grid if t.x0 > 0} | {t.x1 for t in grid if t.x1 < width}
    ys = {t.y0 for t in grid if t.y0 > 0} | {t.y1 for t in grid if t.y1 < height}
    return any(o.x0 < x < o.x1 for x in xs) or any(o.y0 < y < o.y1 for y in ys)


def seam_counts(truth: list[Obj], preds: list[Obj], on_seams: list[int]) -> tuple[int, int]:
    """How many of the objects `on_seams` (indices into truth) come back as two or more
    predictions of their class, each with at least half its mask on the object: (split,
    duplicated). Split: two of them are different parts of it (they overlap by less than
    half of the smaller), as the halves of an object cut by a tile edge are. Duplicated:
    they all cover the same part, as two detections of one object by one pass do."""
    split = duplicated = 0
    for k in on_seams:
        t = truth[k]
        parts = [p for p in preds if p.label == t.label and t.x0 < p.x1 and p.x0 < t.x1
                 and t.y0 < p.y1 and p.y0 < t.y1 and overlap(t, p) >= 0.5 * p.area]
        if len(parts) < 2:
            continue
        apart = any(overlap(a, b) < 0.5 * min(a.area, b.area)
                    for i, a in enumerate(parts) for b in parts[i + 1:])
        split += apart
        duplicated += not apart
    return split, duplicated


def split_count(truth: list[Obj], preds: list[Obj], on_seams: list[int]) -> int:
    """The objects `on_seams` that come back in parts (`seam_counts`' split)."""
    return seam_counts(truth, preds, on_seams)[0]


# ---------------------------------------------------------------- measuring
@dataclass
class Row:
    method: str
    found: dict[str, list[bool]] = field(default_factory=lambda: {s: [] for s, *_ in SIZES})
    found_any: list[bool] = field(default_factory=list)  # by predictions of any score
    shown: int = 0
    capped: int = 0  # images whose prediction hit the detection cap
    seam_objects: int = 0
    split: int = 0
    duplicated: int = 0  # seam objects returned twice over the same part (`seam_counts`)
    seconds: float = 0.0
    images: int = 0

    def recall(self, size: str | None = None) -> float:
        flags = self.found[size] if size else [f for v in self.found.values() for f in v]
        return sum(flags) / len(flags) if flags else float("nan")

    def count(self, size: str | None = None) -> int:
        return len(self.found[size]) if size else sum(len(v) for v in self.found.values())


def measure_image(predictor, rgb: np.ndarray, truth: list[Obj], row: Row, tiles,
                  *, min_score: float, tile: int) -> None:
    """Predict one image with `tiles` and add what was found to `row`."""
    from mrcnn.serving.tiled_predict import predict_image

    h, w = rgb.shape[:2]
    start = time.perf_counter()
    pred = predict_image(predictor, rgb, tiles=tiles)
    every = predicted_objects(pred, 0.0)
    row.seconds += time.perf_counter() - start
    preds = [p for p in every if p.score >= min_score]
    row.images += 1
    row.capped += tiles == "off" and len(pred) >= predictor.model.roi_heads.detections_per_img
    del pred
    for t, ok in zip(truth, matched(truth, preds), strict=True):
        row.found[t.size].append(ok)
    row.found_any += matched(truth, every)
    grid = tile_grid(h, w, tile)
    seam = [k for k, t in enumerate(truth) if crosses(t, grid, h, w)]
    row.seam_objects += len(seam)
    split, duplicated = seam_counts(truth, preds, seam)
    row.split += split
    row.duplicated += duplicated
    row.shown += len(preds)


def format_table(rows: list[Row]) -> str:
    base, tiled = rows[0], rows[1]
    head = (f"{'method':<28}" + "".join(f"{s:>14}" for s, *_ in SIZES) + f"{'all':>14}"
            f"{'any score':>11}{'shown':>8}{'split at seams':>18}{'duplicated':>12}"
            f"{'s/image':>9}")
    lines = [head]
    for r in rows:
        cells = "".join(f"{r.recall(s):>8.3f} ({r.count(s):>3})" for s, *_ in SIZES)
        cells += f"{r.recall():>8.3f} ({r.count():>3})"
        split = f"{r.split} of {r.seam_objects}"
        any_score = sum(r.found_any) / len(r.found_any) if r.found_any else float("nan")
        lines.append(f"{r.method:<28}{cells}{any_score:>11.3f}{r.shown:>8}{split:>18}"
                     f"{r.duplicated:>12}{r.seconds / max(1, r.images):>9.1f}")
    ratio = "".join(f"{_ratio(tiled.recall(s), base.recall(s)):>14}" for s, *_ in SIZES)
    lines.append(f"{'tiled / whole (recall)':<28}{ratio}"
                 f"{_ratio(tiled.recall(), base.recall()):>14}")
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.1f}x" if b > 0 else ("inf" if a > 0 else "-")


# ---------------------------------------------------------------- data
def parse_size(text: str) -> tuple[int, int]:
    """"3000x2000" -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, not {text!r}") from None
    if min(w, h) < 64:
        raise argparse.ArgumentTypeError("the mosaic must be at least 64 px on each side")
    return w, h


def seam_lines(width: int, height: int, tile: int) -> tuple[list[int], list[int]]:
    grid = tile_grid(height, width, tile)
    xs = sorted({t.x0 for t in grid if t.x0 > 0} | {t.x1 for t in grid if t.x1 < width})
    ys = sorted({t.y0 for t in grid if t.y0 > 0} | {t.y1 for t in grid if t.y1 < height})
    return xs, ys


def synthetic_training_project(work: Path, args: argparse.Namespace) -> Path:
    """The training images, all reviewed train images with their shapes as accepted
    instances: synthetic tiles (--train-mosaics 1024 px mosaics cut into tiles of the input
    size, the shapes they cut kept by the training crops' remnant rule), --train-shapes
    256 px images of 30-80 px shapes (large objects as the whole-image pass sees them), and
    one 2800 px mosaic (over 2666 px: trained on in random crops, as a user's large images)."""
    from mrcnn.training.dataset import keep_remnant

    rng = np.random.default_rng(args.seed + 1000)
    images = work / "train_images"
    images.mkdir(parents=True, exist_ok=True)
    drawn: list[tuple[Path, list[tuple[str, masks.Rle]]]] = []  # masks encoded at once
    tile = args.train_size
    for i in range(args.train_mosaics):
        side = 4 * tile
        rgb, objects = draw_mosaic(rng, side, side, small=max(1, round(90 * (side / 1024) ** 2)),
                                   large=1, on_seams=12, seams=([side // 2], [side // 2]))
        for y0 in range(0, side, tile):
            for x0 in range(0, side, tile):
                parts = []
                for o in objects:
                    part = o.full(side, side)[y0:y0 + tile, x0:x0 + tile]
                    area = int(part.sum())
                    if area and (area == o.area or keep_remnant(area, o.area)):
                        parts.append((o.name, masks.encode(part)))
                path = images / f"tile_{i:03d}_{y0:04d}_{x0:04d}.png"
                Image.fromarray(rgb[y0:y0 + tile, x0:x0 + tile]).save(path)
                drawn.append((path, parts))
    for i in range(args.train_shapes):
        rgb, instances = draw_image(rng, 256, min_instances=1, max_instances=3,
                                    radius_px=(15.0, 40.0))
        path = images / f"shapes_{i:03d}.png"
        Image.fromarray(rgb).save(path)
        drawn.append((path, [(s.name, masks.encode(s.mask)) for s in instances]))
    side = 2800
    rgb, objects = draw_mosaic(rng, side, side, small=700, large=4, on_seams=40,
                               seams=([side // 2], [side // 2]))
    path = images / "mosaic_large.png"
    Image.fromarray(rgb).save(path)
    drawn.append((path, [(o.name, CropMasks(side, side, [(o.x0, o.y0, o.mask)]).rle(0))
                         for o in objects]))
    folder = work / "train_project"
    with Project.create(folder, images) as project, project.transaction():
        scan_folder(project)
        cats = {name: project.add_category(name).id for name in SHAPES}
        for path, instances in drawn:
            image = project.image_by_key(project.image_key(path))
            assert image is not None
            for name, rle in instances:
                project.add_instance(image.id, cats[name], rle)
            project.set_image_status(image.id, "reviewed")
            project.set_image_split(image.id, "train")
    return folder


def train_here(project_dir: Path, args: argparse.Namespace):
    """r18 from scratch at --train-size px for --max-iters iterations; (model, categories,
    what was trained)."""
    from mrcnn.model.weights import load_model
    from mrcnn.training.config import TrainConfig
    from mrcnn.training.train import train_project

    config = TrainConfig(preset="r18", size=args.train_size, max_iters=args.max_iters,
                         batch_size=2, device=args.device, seed=args.seed,
                         start="scratch")
    print(f"training r18 from scratch at {args.train_size} px for {args.max_iters} "
          "iterations ...", flush=True)
    start = time.perf_counter()
    with Project.open(project_dir) as project:
        names = [c.name for c in project.categories()]
        version = train_project(project, config, evaluate_before=False)
        assert version is not None
        loaded = load_model(project=project, source=project.folder / version.path,
                            categories=names)
    made = (f"r18 from scratch, {args.train_size} px, {args.max_iters} iterations of batch 2, "
            f"{time.perf_counter() - start:.0f} s")
    return loaded.model, names, made


def coco_project(work: Path, args: argparse.Namespace) -> Path:
    from mrcnn.coco.io import import_coco

    folder = work / "project"
    with Project.create(folder, args.images) as project:
        report = import_coco(project, args.data, images_dir=args.images)
    print(f"imported {report.images_added} images, {report.annotations_added} instances",
          flush=True)
    return folder


def project_test_images(project_dir: Path, names: list[str]):
    """(name, rgb, ground truth) of the val split's reviewed images (all reviewed images
    when there is no val split)."""
    from mrcnn.io.images import load_image
    from mrcnn.training.dataset import reviewed_image_ids

    with Project.open(project_dir, read_only=True) as project:
        ids = reviewed_image_ids(project, "val") or reviewed_image_ids(project, None)
        cats = {c.id: c.name for c in project.categories()}
        for image_id in ids:
            record = project.image(image_id)
            truth = []
            for inst in project.instances(image_id, state="accepted"):
                if cats[inst.category_id] not in names:
                    continue
                cropped = tight(inst.rle.decode())
                if cropped is not None:
                    x, y, m = cropped
                    truth.append(Obj(names.index(cats[inst.category_id]) + 1, x, y, m))
            yield record.path, load_image(project.image_source(record)), truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="a COCO JSON file (else synthetic)")
    p.add_argument("--images", type=Path, default=None, help="the images of --data")
    p.add_argument("--model", type=Path, default=None,
                   help="a checkpoint of the data's categories (else one is trained here)")
    p.add_argument("--size", type=parse_size, default=(3000, 2000), metavar="WxH",
                   help="the synthetic test mosaic (default 3000x2000)")
    p.add_argument("--small", type=int, default=300, help="small shapes in the mosaic")
    p.add_argument("--large", type=int, default=6, help="large shapes in the mosaic")
    p.add_argument("--on-seams", type=int, default=40, help="shapes on the tiles' edges")
    p.add_argument("--max-iters", type=int, default=300)
    p.add_argument("--train-size", type=int, default=256, help="the model's input (px)")
    p.add_argument("--train-mosaics", type=int, default=12)
    p.add_argument("--train-shapes", type=int, default=48)
    p.add_argument("--device", default=None)
    p.add_argument("--score", type=float, default=0.5, help="the shown score (default 0.5)")
    p.add_argument("--max-detections", type=int, default=100,
                   help="per image, and per tile when tiled (the app's default: 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None, help="keep the files here")
    args = p.parse_args(argv)
    if (args.data is None) != (args.images is None):
        p.error("--data and --images go together")

    import torch

    from mrcnn.model.device import choose_device
    from mrcnn.model.predictor import Predictor
    from mrcnn.serving.tiled_predict import input_size

    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.data is not None:
            project_dir = coco_project(work, args)
            with Project.open(project_dir, read_only=True) as project:
                names = [c.name for c in project.categories()]
        else:
            print("drawing the training data ...", flush=True)
            project_dir = synthetic_training_project(work, args)
            names = list(SHAPES)
        if args.model is not None:
            from mrcnn.model.weights import load_model

            loaded = load_model(source=args.model, categories=names)
            model, made = loaded.model, f"{args.model}"
        else:
            model, names, made = train_here(project_dir, args)
        predictor = Predictor(model, device=choose_device(args.device), score_threshold=0.05,
                              max_detections=args.max_detections)
        short, long = input_size(predictor)
        if args.data is not None:
            tests = list(project_test_images(project_dir, names))
            what = f"{len(tests)} images of {args.data}"
        else:
            width, height = args.size
            rng = np.random.default_rng(args.seed)
            rgb, objects = draw_mosaic(rng, height, width, small=args.small, large=args.large,
                                       on_seams=args.on_seams,
                                       seams=seam_lines(width, height, short))
            truth = [Obj(SHAPES.index(o.name) + 1, o.x0, o.y0, o.mask) for o in objects]
            tests = [("mosaic", rgb, truth)]
            what = (f"a {width} x {height} synthetic mosaic ({len(truth)} objects: "
                    f"{sum(o.size == 'small' for o in truth)} small, "
                    f"{sum(o.on_seam for o in objects)} placed on tile edges)")
        auto = sum(tile_size_for("auto", *rgb.shape[:2], input_short=short,
                                 input_long=long) is not None for _n, rgb, _t in tests)
        rows = [Row("whole image (baseline)"), Row(f"tiled ({short} px tiles)")]
        for name, rgb, truth in tests:
            print(f"predicting {name} ({rgb.shape[1]} x {rgb.shape[0]}) ...", flush=True)
            for row, tiles in zip(rows, ("off", short), strict=True):
                measure_image(predictor, rgb, truth, row, tiles, min_score=args.score,
                              tile=short)
    print()
    print(f"Tiled prediction on {what}; model: {made}; input {short} px (longer side at most "
          f"{long}); \"auto\" tiles {auto} of {len(tests)} images; device "
          f"{predictor.choice.describe()}")
    print(f"recall at mask IoU >= {MATCH_IOU} among predictions scoring >= {args.score} "
          "(objects in brackets; 'any score': all sizes, every prediction stored, score >= "
          "0.05); split at seams: objects crossing a tile edge returned in 2+ parts (target "
          "for tiled: 0); duplicated: returned twice over the same part (the model's own "
          "duplicates, as a whole-image pass gives them too)")
    print(format_table(rows))
    if rows[0].capped:
        print(f"note: whole-image prediction hit the cap of {args.max_detections} "
              f"detections on {rows[0].capped} images (--max-detections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
