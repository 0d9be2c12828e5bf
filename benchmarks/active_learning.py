"""Which images should a person label next? Simulated rounds of the loop on a data set with
ground truth: start from a few labelled images, then each round label N more chosen by
(a) random, (b) today's score margin (`mrcnn.store.review_queue.image_uncertainty`: the
detection closest to 0.5), (c) the mirror-consistency uncertainty
(`mrcnn.model.uncertainty`: semantic, spatial and occurrence certainty over the image and its
mirror image, one extra pass); fine-tune with the same settings; report val segm AP per
round, mean and spread over several seeds. Also times prediction with and without the
uncertainty (the extra pass) on the same images.

    python benchmarks/active_learning.py --synthetic                # shapes, 3 seeds, 3 rounds
    python benchmarks/active_learning.py --data COCO.json --images DIR
    options: --seeds 3 --rounds 3 --start 4 --per-round 4 --start-iters 300 --round-iters 150
             --size 128 --device cpu --work DIR --model CKPT

A pretrained start, as the app starts from COCO weights: `--model CKPT` starts every seed
from that checkpoint (its class rows re-laid for the data's categories, those of other names
fresh; its own preset). With no COCO weights at hand, `--pretrain OUT.pt --pretrain-iters N`
writes such a checkpoint: r18 trained from scratch on a separate synthetic set (balanced
shapes, other images, categories of other names, so every class row starts fresh when the
seeds load it) — features that know shapes, class rows that know nothing.

Seeds are independent: run them in parallel (one process per core, `OMP_NUM_THREADS=1`,
`--first-seed K --seeds 1 --no-timing > seedK.log`), then print the table of all of them
with `--combine seed0.log seed1.log ...` (the same settings; the logs' per-round lines are
what it reads) and time the uncertainty alone with `--timing-only`.

Every strategy of one seed starts from the same model (trained on the same start images);
"labelling" an image marks it reviewed with its true instances. The model is r18 from
scratch (the CPU recipe's preset), or `--model`'s; rounds fine-tune the previous round's
model.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.mask_quality import add_data_args, build_project, parsed_data_args  # noqa: E402
from mrcnn.io.images import load_image  # noqa: E402
from mrcnn.model.device import choose_device  # noqa: E402
from mrcnn.model.predictor import Predictor  # noqa: E402
from mrcnn.model.weights import load_model  # noqa: E402
from mrcnn.store.project import DB_NAME, Project  # noqa: E402
from mrcnn.store.review_queue import image_uncertainty as margin_uncertainty  # noqa: E402
from mrcnn.testing.synthetic import make_synthetic_project  # noqa: E402
from mrcnn.training.events import EvalEvent, TrainingEvent  # noqa: E402
from mrcnn.training.start_model import choose_start_model  # noqa: E402
from mrcnn.training.train import TrainConfig, train_project  # noqa: E402

PRESET = "r18"
STRATEGIES = ("random", "score margin", "mirror consistency")


@dataclass
class Pool:
    """One seed's simulation state for one strategy."""

    folder: Path
    labelled: list[int]
    model: torch.nn.Module | None = None


def copy_project(source: Path, folder: Path) -> Path:
    """A copy of the project's database (the images stay where they are)."""
    with Project.open(source, read_only=True) as project:
        images_root = project.images_root
    folder.mkdir(parents=True)
    (folder / "models").mkdir()
    shutil.copy2(source / DB_NAME, folder / DB_NAME)
    with Project.open(folder) as project:
        project.set_meta("images_root", str(images_root))  # absolute: the copy lies elsewhere
    return folder


def hide_labels(folder: Path, keep: Sequence[int]) -> None:
    """Every train image not in `keep` becomes unlabelled (status new): training reads only
    reviewed images. The val images stay reviewed (the fixed yardstick)."""
    with Project.open(folder) as project:
        with project.transaction():
            for im in project.images("reviewed"):
                if im.split == "train" and im.id not in keep:
                    project.set_image_status(im.id, "new")


def label(folder: Path, image_ids: Sequence[int]) -> None:
    """The simulated person: the images' true instances are there; mark them reviewed."""
    with Project.open(folder) as project:
        with project.transaction():
            for image_id in image_ids:
                project.set_image_status(image_id, "reviewed")


def instance_count(folder: Path, image_ids: Sequence[int]) -> int:
    """How many true instances those images hold (the labelling work they cost)."""
    with Project.open(folder, read_only=True) as project:
        return sum(len(project.instances(i)) for i in image_ids)


def unlabelled(folder: Path) -> list[int]:
    with Project.open(folder, read_only=True) as project:
        return [im.id for im in project.images("new") if im.split == "train"]


def train(folder: Path, model: torch.nn.Module | None, iters: int, args: argparse.Namespace,
          staged: Path, *, start: str = "previous round") -> tuple[torch.nn.Module, float]:
    """Train (from scratch when `model` is None, else on from it) for `iters` iterations;
    the trained model and its val segm AP."""
    config = TrainConfig(preset=args.preset, max_iters=iters, size=args.size, batch_size=4,
                         warmup_iters=min(50, iters // 5), seed=args.seed, device=args.device,
                         start="scratch" if model is None else start)
    found: dict[str, float] = {}

    def progress(event: TrainingEvent) -> None:
        if isinstance(event, EvalEvent) and event.stage == "after":
            found["ap"] = float(event.metrics["segm"]["AP"])

    with Project.open(folder) as project:
        train_project(project, config, model=model, progress=progress, evaluate_before=False,
                      stage_to=staged)
        if model is None:  # built by train_project: the staged checkpoint holds it
            model = load_model(project=project, preset=args.preset, source=staged,
                               categories=[c.name for c in project.categories()]).model
    return model.cpu(), found.get("ap", float("nan"))


def pretrained(folder: Path, args: argparse.Namespace) -> torch.nn.Module | None:
    """`--model`'s network with its class rows re-laid for the project's categories (those
    of other names start fresh), as the app starts a first fine-tune from COCO weights;
    None without `--model` (r18 from scratch)."""
    if args.model is None:
        return None
    with Project.open(folder, read_only=True) as project:
        start = choose_start_model(project, source=str(args.model))
    args.preset = start.preset  # the rounds train the checkpoint's architecture
    return start.model


def pretrain(out: Path, work: Path, args: argparse.Namespace) -> None:
    """Write `--pretrain`'s checkpoint: r18 from scratch, `--pretrain-iters` iterations on a
    synthetic set of its own (balanced shapes, seed + 10000, categories renamed so that no
    class row carries over)."""
    folder = make_synthetic_project(work / "pretrain", n_train=args.train, n_val=args.val,
                                    size=args.image_size, seed=args.seed + 10_000,
                                    objects="shapes")
    with Project.open(folder) as project:
        for category in project.categories():
            project.rename_category(category.id, f"pretrained {category.name}")
    t0 = time.perf_counter()
    _, ap = train(folder, None, args.pretrain_iters, args, out)
    print(f"pretrained {args.preset} on {args.train} synthetic images of its own, "
          f"{args.pretrain_iters} iterations: its val segm AP {ap:.3f} "
          f"({time.perf_counter() - t0:.0f} s); written to {out}", flush=True)


def predict_pool(model: torch.nn.Module, folder: Path, image_ids: Sequence[int],
                 device: str | None, *, uncertainty: bool) -> dict[int, object]:
    with Project.open(folder, read_only=True) as project:
        images = [load_image(project.image_path(project.image(i))) for i in image_ids]
    predictor = Predictor(copy.deepcopy(model), device=choose_device(device))
    return dict(zip(image_ids, predictor.predict(images, uncertainty=uncertainty),
                    strict=True))


def choose(strategy: str, pool: Pool, n: int, rng: np.random.Generator,
           device: str | None) -> list[int]:
    """The next n images to label by `strategy` (most uncertain first)."""
    candidates = unlabelled(pool.folder)
    if len(candidates) <= n:
        return candidates
    if strategy == "random":
        return [int(i) for i in rng.choice(candidates, size=n, replace=False)]
    assert pool.model is not None
    preds = predict_pool(pool.model, pool.folder, candidates, device,
                         uncertainty=strategy == "mirror consistency")
    score: Callable[[int], float]
    if strategy == "score margin":
        def score(i: int) -> float:
            return margin_uncertainty(preds[i].scores.tolist())  # type: ignore[attr-defined]
    else:
        def score(i: int) -> float:
            return float(preds[i].uncertainty)  # type: ignore[attr-defined]
    return sorted(candidates, key=lambda i: (-score(i), i))[:n]


def run_seed(project_folder: Path, work: Path, seed: int, args: argparse.Namespace
             ) -> dict[str, list[float]]:
    """AP after the start and after each round, per strategy, for one seed."""
    rng = np.random.default_rng(seed)
    with Project.open(project_folder, read_only=True) as project:
        train_ids = [im.id for im in project.images("reviewed") if im.split == "train"]
    start = [int(i) for i in rng.choice(train_ids, size=args.start, replace=False)]
    first = copy_project(project_folder, work / f"seed{seed}" / "start")
    hide_labels(first, start)
    t0 = time.perf_counter()
    model, ap0 = train(first, pretrained(first, args), args.start_iters, args,
                       work / "staged.pt", start=str(args.model))
    print(f"seed {seed}: start model on {len(start)} images, val segm AP {ap0:.3f} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    results = {}
    for strategy in args.strategies:
        folder = copy_project(first, work / f"seed{seed}" / strategy.replace(" ", "-"))
        pool = Pool(folder, list(start), copy.deepcopy(model))
        aps = [ap0]
        pick_rng = np.random.default_rng(1000 + seed)
        for r in range(1, args.rounds + 1):
            chosen = choose(strategy, pool, args.per_round, pick_rng, args.device)
            label(folder, chosen)
            pool.labelled += chosen
            t0 = time.perf_counter()
            pool.model, ap = train(folder, pool.model, args.round_iters, args,
                                   work / "staged.pt")
            aps.append(ap)
            print(f"seed {seed} {strategy:>18}: round {r}, {len(pool.labelled)} labelled, "
                  f"val segm AP {ap:.3f} ({time.perf_counter() - t0:.0f} s; "
                  f"{instance_count(folder, chosen)} instances in the images chosen)",
                  flush=True)
        results[strategy] = aps
    return results


def time_uncertainty(project_folder: Path, model: torch.nn.Module, device: str | None,
                     repeats: int = 3) -> tuple[float, float]:
    """Seconds per image to predict the val images without and with the uncertainty."""
    with Project.open(project_folder, read_only=True) as project:
        ids = [im.id for im in project.images() if im.split == "val"]
        images = [load_image(project.image_path(project.image(i))) for i in ids]
    predictor = Predictor(copy.deepcopy(model), device=choose_device(device))
    predictor.predict(images[:2])  # warm up
    best = {}
    for flag in (False, True):
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            predictor.predict(images, uncertainty=flag)
            runs.append((time.perf_counter() - t0) / len(images))
        best[flag] = min(runs)
    return best[False], best[True]


def print_table(by_seed: list[dict[str, list[float]]], start: int, per_round: int) -> None:
    rounds = len(next(iter(by_seed[0].values())))
    print(f"\nval segm AP, mean ± spread (sample standard deviation) over {len(by_seed)} "
          f"seeds; {start} start images, +{per_round} per round")
    header = f"{'strategy':<20}" + "".join(
        f"{'start' if r == 0 else f'round {r}':>16}" for r in range(rounds))
    print(header)
    print("-" * len(header))
    means: dict[str, list[float]] = {}
    spreads: dict[str, list[float]] = {}
    for strategy in STRATEGIES:
        cells = []
        means[strategy], spreads[strategy] = [], []
        for r in range(rounds):
            values = [s[strategy][r] for s in by_seed]
            m = statistics.mean(values)
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            means[strategy].append(m)
            spreads[strategy].append(sd)
            cells.append(f"{m:.3f} ± {sd:.3f}".rjust(16))
        print(f"{strategy:<20}" + "".join(cells))
    new, base = means["mirror consistency"], means["random"]
    print("\nmirror consistency − random, per round: "
          + ", ".join(f"{a - b:+.3f}" for a, b in zip(new[1:], base[1:], strict=True)))
    last_gap = new[-1] - base[-1]
    spread = max(spreads["mirror consistency"][-1], spreads["random"][-1])
    at_or_above = all(a >= b for a, b in zip(new[1:], base[1:], strict=True))
    print(f"at or above random in every round: {'yes' if at_or_above else 'no'}; after the "
          f"last round {last_gap:+.3f} against a spread of {spread:.3f}: "
          f"{'above by more than the spread' if last_gap > spread else 'not beyond the spread'}")
    if len(by_seed) > 1:  # the seeds pair the strategies: same start model, same data
        paired = [s["mirror consistency"][-1] - s["random"][-1] for s in by_seed]
        error = statistics.stdev(paired) / len(paired) ** 0.5
        ahead = sum(d > 0 for d in paired)
        print(f"paired by seed, after the last round: {statistics.mean(paired):+.3f} ± "
              f"{error:.3f} (standard error); ahead in {ahead} of {len(paired)} seeds")


ROUND_LINE = re.compile(r"^seed (\d+)\s+(.+?): round (\d+), (\d+) labelled, val segm AP "
                        r"([-\d.]+|nan)")
START_LINE = re.compile(r"^seed (\d+): start model on (\d+) images, val segm AP "
                        r"([-\d.]+|nan)")


@dataclass(frozen=True)
class Combined:
    """The seeds of several logs: per seed, per strategy, AP at the start and after each
    round; and the design the logs say they ran (start images, images added per round)."""

    by_seed: list[dict[str, list[float]]]
    start: int
    per_round: int


def _keep_once(into: dict[int, float], key: int, value: float, what: str, path: Path) -> None:
    """Logs of one experiment agree where they overlap (the same seed trains the same start
    model); a different value means logs of different experiments were mixed."""
    if key in into and abs(into[key] - value) > 1e-9:
        raise SystemExit(f"{path}: {what} is {value:.3f} here but {into[key]:.3f} in an "
                         "earlier log: these logs are not of one experiment")
    into[key] = value


def _keep_design(into: dict[str, float], what: str, value: float, path: Path) -> None:
    if what in into and into[what] != value:
        raise SystemExit(f"{path}: {value:g} {what} here but {into[what]:g} in an earlier "
                         "line: these logs are not of one experiment")
    into[what] = value


def combine_logs(paths: Sequence[Path]) -> Combined:
    """Per seed, per strategy, AP at the start and after each round, read from the
    per-round lines of earlier runs' output (the seeds of several processes together), and
    the design those lines report; the table's heading is the logs', not this command
    line's."""
    start: dict[int, float] = {}
    rounds: dict[int, dict[str, dict[int, float]]] = {}
    design: dict[str, float] = {}  # "start", "per round": the same in every line
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if m := START_LINE.match(line):
                _keep_once(start, int(m[1]), float(m[3]), f"seed {m[1]}'s start", path)
                _keep_design(design, "start images", int(m[2]), path)
            elif m := ROUND_LINE.match(line):
                _keep_once(rounds.setdefault(int(m[1]), {}).setdefault(m[2].strip(), {}),
                           int(m[3]), float(m[5]), f"seed {m[1]} {m[2].strip()} round {m[3]}",
                           path)
                labelled_before = design.get("start images")
                if labelled_before is not None:
                    _keep_design(design, "images per round",
                                 (int(m[4]) - labelled_before) / int(m[3]), path)
    out = []
    for seed in sorted(start):
        per = rounds.get(seed, {})
        if set(per) != set(STRATEGIES):
            print(f"seed {seed}: not every strategy finished; left out", file=sys.stderr)
            continue
        n = min(len(v) for v in per.values())
        out.append({s: [start[seed]] + [per[s][r] for r in range(1, n + 1)]
                    for s in STRATEGIES})
    if not out:
        raise SystemExit("no seed with every strategy's rounds in those logs")
    n = min(len(v) for seed in out for v in seed.values())
    return Combined([{s: v[:n] for s, v in seed.items()} for seed in out],
                    int(design["start images"]), int(design.get("images per round", 0)))


def time_and_print(project_folder: Path, work: Path, args: argparse.Namespace) -> None:
    model, _ = train(copy_project(project_folder, work / "timing"), None, 20, args,
                     work / "staged.pt")
    plain, with_u = time_uncertainty(project_folder, model, args.device)
    print(f"\nprediction per image on the val images ({args.image_size} px, {PRESET}): "
          f"{plain * 1000:.0f} ms plain, {with_u * 1000:.0f} ms with the uncertainty "
          f"(×{with_u / plain:.2f}: the mirror image is a second pass)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(ap, "start every seed from this checkpoint (class rows re-laid for the "
                      "data's categories; its preset), as from COCO weights (default: r18 "
                      "from scratch)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--start", type=int, default=4, help="labelled images to start from")
    ap.add_argument("--per-round", type=int, default=4, help="images labelled per round")
    ap.add_argument("--start-iters", type=int, default=300)
    ap.add_argument("--round-iters", type=int, default=150)
    ap.add_argument("--size", type=int, default=128, help="training input size")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="run seeds K .. K + seeds - 1 (seeds in parallel processes)")
    ap.add_argument("--no-timing", action="store_true",
                    help="skip timing prediction with and without the uncertainty")
    ap.add_argument("--timing-only", action="store_true",
                    help="only time prediction with and without the uncertainty")
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES),
                    metavar="NAME", help="run only these (quoted names: "
                    + ", ".join(repr(s) for s in STRATEGIES) + "); --combine takes each "
                    "seed's strategies from whichever logs have them")
    ap.add_argument("--pretrain", type=Path, metavar="OUT.pt",
                    help="only write a start checkpoint for --model: r18 trained from scratch "
                         "on a synthetic set of its own (see the docstring)")
    ap.add_argument("--pretrain-iters", type=int, default=600)
    ap.add_argument("--combine", type=Path, nargs="+", metavar="LOG",
                    help="print the table of earlier runs' output (their seeds together)")
    args = parsed_data_args(ap, argv)
    if args.combine:
        combined = combine_logs(args.combine)
        print_table(combined.by_seed, combined.start, combined.per_round)
        return 0
    if args.synthetic and args.train == 60:
        args.train = 40  # the pool: enough to choose from, few enough to train on often
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.preset = PRESET
    if args.model is not None:
        if not args.model.is_file():
            raise SystemExit(f"--model {args.model}: no such checkpoint file")
    with tempfile.TemporaryDirectory(prefix="active-learning-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.pretrain is not None:
            pretrain(args.pretrain, work, args)
            return 0
        project_folder = build_project(args, work)
        if not args.timing_only:
            by_seed = [run_seed(project_folder, work, seed, args)
                       for seed in range(args.first_seed, args.first_seed + args.seeds)]
            if set(args.strategies) == set(STRATEGIES):
                print_table(by_seed, args.start, args.per_round)
        if not args.no_timing:
            time_and_print(project_folder, work, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
