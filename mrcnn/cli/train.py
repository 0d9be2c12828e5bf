"""`python -m mrcnn train`: fine-tune or train from scratch on the reviewed images.

With `--json`, one JSON object per line for every progress event ({"event": "start" |
"step" | "eval" | "saved" | "done" | "error", ...}; see `mrcnn.training.events`), so the GUI
can run training as a subprocess. Works under `torchrun --nproc_per_node=N`
(DistributedDataParallel).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

from mrcnn.store.project import Project
from mrcnn.training.events import (
    ConsolePrinter,
    DoneEvent,
    EvalEvent,
    JsonLinesWriter,
    TrainingEvent,
)

log = logging.getLogger(__name__)


def _emitter(args: argparse.Namespace, is_main: bool) -> Callable[[TrainingEvent], None]:
    """Where events go: JSON lines (--json) or text for a person; nowhere on ranks > 0."""
    if not is_main:
        return lambda event: None
    return JsonLinesWriter() if args.json else ConsolePrinter()


def _start_model(project: Project, args: argparse.Namespace):
    """(model or None, preset, parent version id) for --from."""
    from mrcnn.errors import CategoryMismatchError
    from mrcnn.model.class_rows import remap_categories
    from mrcnn.model.presets import build_model
    from mrcnn.model.weights import find_coco_weights, load_model

    source = args.init
    if source == "auto":
        preset = args.preset or "r50v2"
        if project.active_model_version() is not None:
            source = "active"
        elif preset != "r18" and find_coco_weights(preset) is not None:
            source = "coco"
        else:
            source = "scratch"
    if source == "scratch":
        return None, args.preset or "r50v2", None
    cats = [c.name for c in project.categories()]
    version = next((v for v in project.model_versions() if v.name == source), None)
    if version is not None:
        source = project.folder / version.path
    elif source not in ("active", "coco") and not Path(source).exists():
        from mrcnn.errors import ProjectError

        raise ProjectError(f"--from {source!r}: not 'active', 'coco', 'scratch', a model "
                           "version or a checkpoint file")
    try:
        loaded = load_model(project=project, preset=args.preset, source=source, categories=cats,
                            allow_download=args.download)
    except CategoryMismatchError:  # categories added, renamed or removed since: adapt
        loaded = load_model(project=project, preset=args.preset, source=source)
    model = loaded.model
    if cats and loaded.categories != cats:  # other categories, or the same in another order
        state, kept = remap_categories(model.state_dict(), loaded.preset, loaded.categories,
                                       cats)
        model = build_model(preset=loaded.preset, num_classes=len(cats) + 1)
        model.load_state_dict(state)
        log.info("starting model re-laid for the project's categories; kept the rows of: %s",
                 ", ".join(kept) or "none")
    parent = version.id if version is not None else loaded.version_id
    return model, loaded.preset, parent


def _evaluate_baseline(project: Project, args: argparse.Namespace, parent: int | None,
                       emit) -> None:
    """--baseline VERSION: score the version that was active before this run on the val
    split first (unless it is the starting model, which training scores anyway)."""
    from mrcnn.errors import MrcnnError
    from mrcnn.model.device import choose_device
    from mrcnn.model.weights import load_model
    from mrcnn.training.dataset import reviewed_image_ids
    from mrcnn.training.evaluate import evaluate_model

    version = next((v for v in project.model_versions() if v.name == args.baseline), None)
    if version is None or version.id == parent:
        return
    val_ids = reviewed_image_ids(project, "val")
    if not val_ids:
        return
    try:
        loaded = load_model(project=project, source=project.folder / version.path,
                            categories=[c.name for c in project.categories()])
        metrics = evaluate_model(loaded.model, project, labels=loaded.label_map(),
                                 image_ids=val_ids, device=choose_device(args.device,
                                                                         amp=not args.no_amp))
    except MrcnnError as exc:  # e.g. it knows other categories: no comparison, still train
        emit(EvalEvent(stage="baseline", version=version.name, metrics=None, error=str(exc)))
        return
    emit(EvalEvent(stage="baseline", version=version.name, iteration=0, metrics=metrics))


def _cancel_on_sigterm() -> None:
    """SIGTERM (how the app's Cancel stops training) raises TrainingCancelled in the main
    thread, so the cleanup paths run: no partial checkpoint and no version remain."""
    import signal
    import threading

    from mrcnn.errors import TrainingCancelled

    def handler(_signum, _frame):
        raise TrainingCancelled("training cancelled (terminated)")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def cmd_train(args: argparse.Namespace) -> int:
    from mrcnn.training import distributed
    from mrcnn.training.train import TrainConfig, train_project

    info = distributed.from_env()
    emit = _emitter(args, info.is_main)
    _cancel_on_sigterm()
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    staged = args.stage is not None
    with Project.open(args.project, read_only=staged or not info.is_main) as project:
        model, preset, parent = _start_model(project, args)
        config = TrainConfig(preset=preset, max_iters=args.max_iters, epochs=args.epochs,
                             size=args.size, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, device=args.device, amp=not args.no_amp,
                             eval_period=args.eval_period,
                             checkpoint_period=args.checkpoint_period)
        if args.warmup_iters is not None:
            config.warmup_iters = args.warmup_iters
        try:
            config.validate()
        except ValueError as exc:
            from mrcnn.errors import TrainingError

            raise TrainingError(str(exc)) from None
        if args.baseline and info.is_main:
            _evaluate_baseline(project, args, parent, emit)
        version = train_project(project, config, model=model, parent_id=parent,
                                progress=emit, resume_from=args.resume, dist=info,
                                stage_to=args.stage)
    if not info.is_main:
        return 0
    if staged:
        emit(DoneEvent(staged=str(args.stage)))
    else:
        emit(DoneEvent(version=version.name, path=version.path,
                       metrics=version.metadata.get("metrics")))
    return 0


def register(sub, add) -> None:
    p = add("train", cmd_train, "train a model version on the reviewed images")
    p.add_argument("project", type=Path)
    p.add_argument("--preset", choices=("r50v2", "r50", "r18"), default=None,
                   help="architecture (default: the starting model's, r50v2 from scratch)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--max-iters", type=int, default=None)
    length.add_argument("--epochs", type=float, default=None)
    p.add_argument("--size", type=int, default=None,
                   help="shorter image side in pixels (overrides the preset's)")
    p.add_argument("--from", dest="init", default="auto",
                   help="auto (default: the active version, else COCO weights when cached, "
                        "else scratch) | active | coco | scratch | a version (v2) | a file")
    p.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=None, help="base learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-amp", action="store_true", help="full fp32, no mixed precision")
    p.add_argument("--eval-period", type=int, default=0, help="evaluate val every N iterations")
    p.add_argument("--checkpoint-period", type=int, default=0,
                   help="save resumable state every N iterations")
    p.add_argument("--resume", type=Path, default=None, help="resume from a saved state")
    p.add_argument("--warmup-iters", type=int, default=None,
                   help="iterations of linear learning-rate warmup (default 100)")
    p.add_argument("--stage", type=Path, default=None,
                   help="write the trained checkpoint to this file and register nothing "
                        "(the project is only read: another program may hold it open)")
    p.add_argument("--baseline", default=None, metavar="VERSION",
                   help="also score this version on val before training, for comparison")
    p.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by N (keeps a desktop responsive)")
    p.add_argument("--download", action="store_true",
                   help="allow downloading torchvision's COCO weights for --from coco")
