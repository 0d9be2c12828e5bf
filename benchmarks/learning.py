"""Does the from-scratch recipe keep learning? The r18 preset trained from scratch for each
length in --iters (same seed, each run with its own warmup and cosine decay), with the
preset's anchors and with anchors fitted to the train boxes; prints val segm and bbox AP per
run, the anchors, and how well each set covers the train and val boxes at the input size.

    python benchmarks/learning.py --synthetic-small            # 10-20 px shapes, 15-30/image
    python benchmarks/learning.py --data COCO.json --images DIR
    options: --iters 300,900 --anchors default,fit --size 256 --batch 4 --lr 0.01
             --device cuda --workers 4 --seed 0 --work DIR (keep the project and checkpoints)

The recipe is the one-click one (r18 from scratch, 256 px, batch 4, the preset's learning
rate, warmup a fifth of the run and at most 50 iterations, scale jitter 0.8-1.2). The split
is the project's (from each image's hash for --data; the last --val images when synthetic).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mrcnn.coco.io import import_coco
from mrcnn.model.device import choose_device
from mrcnn.model.presets import Anchors, default_anchors, get_preset
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.anchors import boxes_at_input_size, fit_anchors, measure_anchors
from mrcnn.training.dataset import ProjectDataset, project_labels, reviewed_image_ids
from mrcnn.training.events import EvalEvent, SavedEvent, TrainingEvent
from mrcnn.training.train import TrainConfig, train_project

PRESET = "r18"
#: torchvision keeps at most this many detections per image, and COCOeval scores as many
MAX_DETECTIONS = 100


def _csv(kind):
    return lambda text: [kind(t) for t in text.split(",") if t]


def make_project(args: argparse.Namespace, work: Path) -> Path:
    """The project to train on: synthetic small objects, or a COCO file imported (every
    annotated image reviewed, split by hash)."""
    if args.data is None:
        print(f"writing {args.train} + {args.val} synthetic {args.image_size} px images of "
              f"small shapes ...", flush=True)
        return make_synthetic_project(work / "synthetic", n_train=args.train, n_val=args.val,
                                      size=args.image_size, seed=args.seed, objects="small")
    folder = work / "project"
    with Project.create(folder, args.images) as project:
        report = import_coco(project, args.data, images_dir=args.images)
    print(f"imported {report.images_added} images, {report.annotations_added} instances",
          flush=True)
    return folder


def describe_data(project: Project, size: int, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Print what the data holds at the input size; return the train and val boxes there."""
    labels = project_labels(project)
    boxes = {}
    for split in ("train", "val"):
        ids = reviewed_image_ids(project, split)
        ds = ProjectDataset(project, ids, labels=labels)
        per_image = [len(s.instances) for s in ds.samples] or [0]
        b = boxes_at_input_size(ds.samples, size=size, max_size=max_size)
        side = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])) if len(b) else np.zeros(1)
        print(f"{split:>5}: {len(ids)} images, {ds.num_instances} instances "
              f"(per image median {statistics.median(per_image):g}, max {max(per_image)}); "
              f"object size sqrt(w*h) at {size} px: 5% {np.quantile(side, 0.05):.1f}, "
              f"median {np.median(side):.1f}, 95% {np.quantile(side, 0.95):.1f} px")
        if max(per_image) > MAX_DETECTIONS:
            print(f"       warning: images with more than {MAX_DETECTIONS} instances; the "
                  f"model keeps and COCOeval scores at most {MAX_DETECTIONS} per image, so "
                  "AP is capped whatever the training")
        boxes[split] = b
    if not len(boxes["val"]):
        sys.exit("no reviewed val images with instances: nothing to score on")
    return boxes["train"], boxes["val"]


def print_anchors(train: np.ndarray, val: np.ndarray) -> Anchors:
    """Print the preset's and the fitted anchors and their fit; return the fitted ones."""
    fitted = fit_anchors(train, default_anchors(PRESET))
    print("\nanchors (best anchor IoU per box; recall = share of boxes at IoU >= 0.5, "
          "positive = at >= 0.7, the RPN's threshold)")
    for name, anchors in (("default", fitted.default), ("fit", fitted.anchors)):
        for split, b in (("train", train), ("val", val)):
            m = measure_anchors(b, anchors)
            print(f"  {name:<8} {anchors.describe():<48} {split:>5}: recall {m.recall:6.1%}  "
                  f"positive {m.positive:6.1%}  mean IoU {m.mean_iou:.3f}")
    return fitted.anchors


def run_one(project: Project, config: TrainConfig, staged: Path) -> dict:
    """Train one run (staged, nothing registered); its val metrics, anchors and times."""
    out: dict = {}

    def progress(event: TrainingEvent) -> None:
        if isinstance(event, EvalEvent) and event.stage == "after":
            out["metrics"] = event.metrics
        elif isinstance(event, SavedEvent):
            out["metadata"] = event.metadata or {}

    start = time.perf_counter()
    train_project(project, config, progress=progress, evaluate_before=False, stage_to=staged)
    out["seconds"] = time.perf_counter() - start
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="a COCO instances file")
    src.add_argument("--synthetic-small", action="store_true",
                     help="generate small-object synthetic data (10-20 px shapes)")
    ap.add_argument("--images", type=Path, help="the images folder of --data")
    ap.add_argument("--train", type=int, default=60, help="synthetic train images")
    ap.add_argument("--val", type=int, default=20, help="synthetic val images")
    ap.add_argument("--image-size", type=int, default=256, help="synthetic image side")
    ap.add_argument("--iters", type=_csv(int), default=[300, 900])
    ap.add_argument("--anchors", type=_csv(str), default=["default", "fit"])
    ap.add_argument("--size", type=int, default=256, help="training input size (shorter side)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=None, help="default: the preset's")
    ap.add_argument("--jitter", type=_csv(float), default=[0.8, 1.2],
                    help="scale jitter range, as x size")
    ap.add_argument("--device", default=None, help="cuda, cpu, ... (default: the best)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the project and checkpoints here (default: a temporary folder)")
    args = ap.parse_args()
    if args.data is not None and args.images is None:
        ap.error("--data needs --images")
    if any(a not in ("default", "fit") for a in args.anchors):
        ap.error("--anchors takes default and/or fit")
    logging.basicConfig(level=logging.WARNING)

    p = get_preset(PRESET)
    max_size = max(int(args.size * p.max_size / p.min_size), args.size)
    device = choose_device(args.device)
    print(f"device: {device.describe()}; {PRESET} from scratch at {args.size} px, batch "
          f"{args.batch}, lr {args.lr or p.scratch_lr}, jitter {tuple(args.jitter)}, "
          f"iterations {args.iters}, anchors {args.anchors}, seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        folder = make_project(args, work)
        rows = []
        with Project.open(folder) as project:
            train_boxes, val_boxes = describe_data(project, args.size, max_size)
            fitted = print_anchors(train_boxes, val_boxes)
            print(f"\n{'iters':>6} {'anchors':<8} {'segm AP':>8} {'AP50':>6} {'APs':>6} "
                  f"{'bbox AP':>8} {'seconds':>8}  anchors saved with the model", flush=True)
            for iters in args.iters:
                for mode in args.anchors:
                    config = TrainConfig(
                        preset=PRESET, max_iters=iters, size=args.size, batch_size=args.batch,
                        lr=args.lr, warmup_iters=min(50, iters // 5), anchors=mode,
                        scale_jitter=(args.jitter[0], args.jitter[1]), seed=args.seed,
                        device=args.device, num_workers=args.workers)
                    r = run_one(project, config, work / f"{PRESET}_{iters}_{mode}.pt")
                    segm, bbox = r["metrics"]["segm"], r["metrics"]["bbox"]
                    saved = Anchors.from_dict(r["metadata"]["anchors"])
                    rows.append((iters, mode, segm["AP"], bbox["AP"]))
                    print(f"{iters:>6} {mode:<8} {segm['AP']:>8.3f} {segm['AP50']:>6.3f} "
                          f"{segm['APs']:>6.3f} {bbox['AP']:>8.3f} {r['seconds']:>8.0f}  "
                          f"{saved.describe()}", flush=True)
    print(f"\nfitted anchors: {fitted.describe()}")
    if len(args.iters) > 1:
        first, last = min(args.iters), max(args.iters)
        ap_of = {(i, m): s for i, m, s, _ in rows}
        for mode in args.anchors:
            print(f"{mode:<8} segm AP {ap_of[first, mode]:.3f} at {first} -> "
                  f"{ap_of[last, mode]:.3f} at {last} iterations "
                  f"({ap_of[last, mode] - ap_of[first, mode]:+.3f})")


if __name__ == "__main__":
    main()
