"""Mask quality: how many predicted masks a person could accept as they are. On the val split
of a project built from a COCO file (or synthetic shapes), prints per object size (COCO's
small / medium / large, and all) the share of ground-truth instances matched at mask IoU >=
0.5 / 0.75 / 0.9, COCO mask AP, Boundary IoU over the matched pairs, and the prediction time,
for the model under test and for today's r18 recipe trained to the same number of iterations
in the same run, with the ratio of their shares matched at IoU >= 0.9.

    python benchmarks/mask_quality.py --data COCO.json --images DIR [--model CKPT]
    python benchmarks/mask_quality.py --synthetic [--objects shapes|small] [--max-iters 5]
    python benchmarks/mask_quality.py (--data ... | --synthetic) --compare-mask-resolution \
        --max-iters N   (the r18 recipe with a 56 x 56 mask head against 28 x 28, same budget)
    options: --max-iters N (quick runs) --device cuda --baseline (with --model)
             --train 60 --val 20 --image-size 128 (synthetic) --seed 0 --work DIR
             --no-refine

The model under test: --model CKPT (a checkpoint of this project's categories, a version's
.pt or a staged file), else one trained here as one click of Fine-tune trains it
(`python -m mrcnn train PROJECT --json`, no --preset/--from/--size: the one-click recipe).
The baseline, "today's r18 recipe": `--preset r18 --size 256 --from scratch --max-iters N`,
N the iterations the model under test was trained for (from its metadata with --model; there
it is trained only with --baseline). Both train with `--stage`, so nothing is registered and
the one-click run starts where it would on a fresh project.

The measures (`mrcnn.training.mask_quality`): a prediction is matched when it scores at least
the app's shown score (50 %), has the ground truth's category and overlaps it at the IoU
(greedy by score, one prediction per instance); Boundary IoU (Cheng et al. 2021) with d = 2 %
of the image diagonal; mask AP is COCOeval's, over all predictions. The split: the project's
(each image's hash for --data; the last --val images when synthetic).

Each model also gets a row "+ grabcut" (or "+ guided"): its masks refined with image edges
(`mrcnn.editing.refine`) by the method the app's rule picks on the val split, with whether the
app would turn refinement on there (it must raise mean IoU); --no-refine leaves them out.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from mrcnn.model.convert import LabelMap
from mrcnn.model.predictor import Prediction
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import OBJECTS
from mrcnn.training.dataset import reviewed_image_ids
from mrcnn.training.evaluate import ground_truth, prediction_results
from mrcnn.training.mask_quality import MATCH_IOUS, SIZES, MaskQuality, mask_quality

#: Today's recipe, the baseline: r18 from scratch at 256 px.
BASELINE_ARGS = ("--preset", "r18", "--size", "256", "--from", "scratch")

#: Predicts images of the project by id.
PredictFn = Callable[[Sequence[int]], dict[int, Prediction]]


@dataclass
class Measured:
    """One model's row group: its name, how it was made, its quality and speed."""

    name: str
    made: str  # "r18 from scratch · 256 px · 300 iterations · ..." or the checkpoint
    quality: MaskQuality
    ms_per_image: float
    iterations: int | None = None
    train_s: float | None = None
    refined: bool = False  # its masks refined with image edges (`measure_refined`)


# ---------------------------------------------------------------- the project
def build_project(args: argparse.Namespace, work: Path) -> Path:
    """The project: the COCO file imported as `benchmarks/learning.py` does (every annotated
    image reviewed, split by hash), or a synthetic one (`make_synthetic_project`)."""
    from benchmarks.learning import make_project
    from mrcnn.testing.synthetic import make_synthetic_project

    if args.data is not None:
        return make_project(args, work)
    print(f"writing {args.train} + {args.val} synthetic {args.image_size} px images "
          f"({args.objects}) ...", flush=True)
    return make_synthetic_project(work / "synthetic", n_train=args.train, n_val=args.val,
                                  size=args.image_size, seed=args.seed, objects=args.objects)


# ---------------------------------------------------------------- training
@dataclass
class TrainedRun:
    staged: Path
    ran: str  # the start event's recipe line
    iterations: int
    seconds: float


def train_cli(project_folder: Path, staged: Path, extra: Sequence[str] = ()) -> TrainedRun:
    """`python -m mrcnn train PROJECT --json --stage FILE [extra]` in a child process, as the
    window runs it; the staged checkpoint and what ran. Raises MrcnnError when it fails."""
    from benchmarks.annotation_effort import describe_start, run_training

    extra = ["--stage", str(staged), *extra]
    print(f"training: {project_folder} {' '.join(extra)} ...", flush=True)
    start, seconds = run_training(project_folder, extra)
    ran = describe_start(start)
    return TrainedRun(staged, ran, start.max_iters, seconds)


# ---------------------------------------------------------------- measuring
def measure(project: Project, image_ids: Sequence[int], labels: LabelMap,
            predict: PredictFn) -> tuple[MaskQuality, float, dict[int, Prediction]]:
    """Predict the images (after one warm-up image) and score their masks; returns the
    quality, the prediction time in ms per image (image reading included) and the
    predictions."""
    predict(image_ids[:1])
    t0 = time.perf_counter()
    predictions = predict(image_ids)
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(image_ids))
    gt = ground_truth(project, image_ids, labels)
    return mask_quality(gt, prediction_results(predictions)), ms, predictions


def app_decision(project: Project, image_ids: Sequence[int],
                 scored_masks: dict[int, tuple[np.ndarray, np.ndarray]], shown_score: float):
    """The app's refinement rule on these val images (`measure_validation`), measured on the
    masks scoring at least `shown_score`; `scored_masks` is image id -> ((N, H, W) masks,
    (N,) scores). Returns the `RefinementDecision`."""
    from mrcnn.serving.refinement import measure_validation, validation_set

    def shown_masks(image_id: int, _image) -> list:
        masks, scores = scored_masks[image_id]
        return list(masks[scores >= shown_score])

    return measure_validation(validation_set(project, image_ids), shown_masks, model_key=None)


def measure_refined(project: Project, image_ids: Sequence[int], labels: LabelMap,
                    predictions: dict[int, Prediction], base: Measured) -> Measured:
    """The same predictions with their masks refined with image edges (item 3:
    `mrcnn.editing.refine`), by the method the app's rule picks on these val images
    (`measure_validation`, on the masks scoring at least the shown score); the row says
    whether the app would turn it on (it raised mean IoU) and adds the refinement's time."""
    from mrcnn.io.images import load_image
    from mrcnn.serving.refinement import refine_masks

    images = {i: load_image(project.image_path(project.image(i))) for i in image_ids}
    decision = app_decision(project, image_ids,
                            {i: (p.masks, p.scores) for i, p in predictions.items()},
                            base.quality.match_score)
    method = decision.method or "grabcut"
    t0 = time.perf_counter()
    refined = {}
    for i, p in predictions.items():
        masks = refine_masks(images[i], list(p.masks), method) if len(p) else []
        refined[i] = Prediction(p.boxes, p.labels, p.scores,
                                np.stack(masks) if masks else p.masks)
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(image_ids))
    quality = mask_quality(ground_truth(project, image_ids, labels),
                           prediction_results(refined))
    verdict = (f"the app would turn it {'on' if decision.on else 'off'}: mean IoU "
               f"{decision.iou_before:.3f} -> {decision.iou_after:.3f} on "
               f"{decision.instances} val instances")
    return dataclasses.replace(base, name=f"{base.name} + {method}",
                               made=f"{base.made}; refined, {verdict}", quality=quality,
                               ms_per_image=base.ms_per_image + ms, refined=True)


def checkpoint_predictor(project: Project, checkpoint: Path, device: str | None
                         ) -> tuple[PredictFn, LabelMap, dict]:
    """A checkpoint loaded for the project's categories (at its trained input size): the
    prediction function, its labels and its metadata."""
    from mrcnn.model.device import choose_device
    from mrcnn.model.weights import load_model
    from mrcnn.training.evaluate import predict_images

    loaded = load_model(project=project, source=checkpoint,
                        categories=[c.name for c in project.categories()])
    choice = choose_device(device)

    def predict(ids: Sequence[int]) -> dict[int, Prediction]:
        return predict_images(loaded.model, project, ids, device=choice)

    return predict, loaded.label_map(), loaded.metadata


def measure_checkpoint(project_folder: Path, name: str, checkpoint: Path, device: str | None,
                       run: TrainedRun | None = None, *, refine: bool = False
                       ) -> list[Measured]:
    """Score a checkpoint on the project's reviewed val images: its row, and with `refine`
    a second row with its masks refined (`measure_refined`)."""
    with Project.open(project_folder, read_only=True) as project:
        predict, labels, metadata = checkpoint_predictor(project, checkpoint, device)
        ids = reviewed_image_ids(project, "val")
        quality, ms, predictions = measure(project, ids, labels, predict)
        iterations = run.iterations if run else metadata.get("iterations")
        made = (run.ran if run else
                f"{checkpoint} ({metadata.get('recipe') or metadata.get('preset')})")
        row = Measured(name, made, quality, ms, iterations, run.seconds if run else None)
        if not refine:
            return [row]
        return [row, measure_refined(project, ids, labels, predictions, row)]


# ---------------------------------------------------------------- the table
def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


def _num(v: float | None) -> str:
    return "—" if v is None or v < 0 else f"{v:.3f}"


def baseline_of(rows: Sequence[Measured]) -> Measured | None:
    """The row the others are compared with: the last unrefined one, when there are two."""
    plain = [r for r in rows if not r.refined]
    return plain[-1] if len(rows) >= 2 and plain else None


def format_table(rows: Sequence[Measured]) -> str:
    """The table by object size, one line per model in each size, and the ratio of each
    row's share matched at IoU >= 0.9 to the baseline's (`baseline_of`)."""
    ious = "".join(f"{f'@{t:g}':>8}" for t in MATCH_IOUS)
    width = max([len(r.name) for r in rows] + [5])
    lines = [f"{'size':<7}{'model':<{width}} {'GT':>6}{ious}{'mask AP':>9}{'bIoU':>8}"
             f"{'ms/img':>9}"]
    for size in SIZES:
        for r in rows:
            q = r.quality.by_size[size]
            matched = "".join(f"{_pct(q.matched.get(t)):>8}" for t in MATCH_IOUS)
            ms = f"{r.ms_per_image:>9.0f}" if size == "all" else f"{'':>9}"
            lines.append(f"{size:<7}{r.name:<{width}} {q.instances:>6}{matched}"
                         f"{_num(q.mask_ap):>9}{_num(q.boundary_iou):>8}{ms}")
    base = baseline_of(rows)
    for top in rows:
        if top is base or base is None:
            continue
        parts = []
        for size in SIZES:
            a = top.quality.by_size[size].matched.get(0.9)
            b = base.quality.by_size[size].matched.get(0.9)
            if a is None or b is None:
                continue
            parts.append(f"{size} {a / b:.2f}x" if b else f"{size} {_pct(a)} vs {_pct(b)}")
        lines.append(f"matched @0.9, {top.name} / {base.name}: " + (", ".join(parts) or "—"))
    return "\n".join(lines)


def ordered(rows: Sequence[Measured]) -> list[Measured]:
    """The baseline (the last model trained or loaded) last, its refined row just above."""
    rows = list(rows)
    if len(rows) >= 2 and rows[-1].refined:
        rows[-2], rows[-1] = rows[-1], rows[-2]
    return rows


def print_report(rows: Sequence[Measured]) -> None:
    for r in rows:
        trained = f"; trained in {r.train_s:.0f} s" if r.train_s is not None else ""
        print(f"{r.name}: {r.made}{trained}")
    q = rows[0].quality
    print(f"\nval: {q.images} images; matched = a prediction scoring >= {q.match_score:.0%} of "
          f"the same category at mask IoU >= the threshold (share of GT instances); bIoU = "
          f"Boundary IoU (d = {q.boundary_ratio:.0%} of the diagonal) over pairs matched at "
          "0.5; mask AP = COCO segm AP 0.50:0.95")
    if any(r.refined for r in rows):
        print("+ grabcut / + guided: the same predictions with masks refined with image edges "
              "by the method the app's rule picks on this val split (which also scores them); "
              "ms/img adds the refinement's time")
    print(format_table(rows), flush=True)


# ---------------------------------------------------------------- the run
def add_data_args(ap: argparse.ArgumentParser, model_help: str):
    """The options every model-on-data benchmark takes: the data (--data COCO.json --images
    DIR, or --synthetic shapes), --model, --max-iters, --device, the synthetic set's shape,
    --seed and --work (`benchmarks/interactive.py` takes them too). Returns the group of
    the data sources (one of them is required)."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, metavar="COCO.json", help="a COCO instances file")
    src.add_argument("--synthetic", action="store_true", help="generate synthetic shapes")
    ap.add_argument("--images", type=Path, help="the images folder of --data")
    ap.add_argument("--model", type=Path, default=None, metavar="CKPT", help=model_help)
    ap.add_argument("--max-iters", type=int, default=None,
                    help="cap training (quick runs; default: the one-click recipe's)")
    ap.add_argument("--device", default=None, help="cuda, mps, cpu (default: the best)")
    ap.add_argument("--objects", choices=OBJECTS, default="shapes",
                    help="synthetic objects: shapes (a fifth of the image), small (10-20 px) "
                         "or long-tail (shapes, the categories common to rare)")
    ap.add_argument("--train", type=int, default=60, help="synthetic train images")
    ap.add_argument("--val", type=int, default=20, help="synthetic val images")
    ap.add_argument("--image-size", type=int, default=128, help="synthetic image side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the project and checkpoints here (default: a temporary folder)")
    return src


def parsed_data_args(ap: argparse.ArgumentParser, argv: Sequence[str] | None
                     ) -> argparse.Namespace:
    args = ap.parse_args(argv)
    if args.data is not None and args.images is None:
        args.images = args.data.parent
    return args


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(ap, "score this checkpoint instead of training one with the one-click "
                      "recipe")
    ap.add_argument("--baseline", action="store_true",
                    help="with --model: also train the baseline at its iterations")
    ap.add_argument("--compare-mask-resolution", action="store_true",
                    help="instead: train today's r18 recipe with a 56 x 56 mask head and "
                         "with 28 x 28 (train --mask-resolution), --max-iters each, and "
                         "compare them")
    ap.add_argument("--no-refine", dest="refine", action="store_false",
                    help="leave out the rows with masks refined with image edges")
    args = parsed_data_args(ap, argv)
    if args.baseline and args.model is None:
        ap.error("--baseline goes with --model (without it the baseline always runs)")
    if args.compare_mask_resolution and (args.model is not None or not args.max_iters):
        ap.error("--compare-mask-resolution trains both models: give --max-iters (their "
                 "common budget), not --model")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    common = [*(["--device", args.device] if args.device else []), "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory(prefix="mask-quality-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        folder = build_project(args, work)
        with Project.open(folder, read_only=True) as project:
            val = reviewed_image_ids(project, "val")
        if not val:
            print("no reviewed val images: nothing to score on", file=sys.stderr)
            return 1
        rows: list[Measured] = []
        if args.compare_mask_resolution:
            for side in (56, 28):  # the first row is the one the ratio line puts on top
                run = train_cli(folder, work / f"r18_mask{side}.pt",
                                [*BASELINE_ARGS, "--max-iters", str(args.max_iters),
                                 "--mask-resolution", str(side), *common])
                rows += measure_checkpoint(folder, f"r18 mask {side}", run.staged,
                                           args.device, run, refine=args.refine)
        elif args.model is not None:
            rows += measure_checkpoint(folder, "model", args.model, args.device,
                                       refine=args.refine)
        else:
            limit = ["--max-iters", str(args.max_iters)] if args.max_iters else []
            run = train_cli(folder, work / "one_click.pt", [*limit, *common])
            rows += measure_checkpoint(folder, "one-click", run.staged, args.device, run,
                                       refine=args.refine)
        if not args.compare_mask_resolution and (args.model is None or args.baseline):
            iters = args.max_iters or rows[0].iterations
            if not iters:
                print("the model's iterations are unknown: give --max-iters", file=sys.stderr)
                return 1
            run = train_cli(folder, work / "r18_baseline.pt",
                            [*BASELINE_ARGS, "--max-iters", str(iters), *common])
            rows += measure_checkpoint(folder, "r18 baseline", run.staged, args.device,
                                       run, refine=args.refine)
        rows = ordered(rows)
        print()
        print_report(rows)
        if args.max_iters and not args.compare_mask_resolution:
            print(f"note: training capped at --max-iters {args.max_iters} (a quick run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

