"""`python -m mrcnn train`: fine-tune or train from scratch on the reviewed images.

With `--json`, one JSON object per line for every progress event ({"event": "start" |
"step" | "eval" | "saved" | "done" | "error", ...}; see `mrcnn.training.events`), so the GUI
can run training as a subprocess. Works under `torchrun --nproc_per_node=N`
(DistributedDataParallel).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mrcnn.store.project import Project
from mrcnn.training.events import (
    ConsolePrinter,
    DoneEvent,
    JsonLinesWriter,
    TrainingEvent,
)

if TYPE_CHECKING:  # imported where used: `--help` stays fast
    from mrcnn.training.recipe import Recipe
    from mrcnn.training.start_model import StartModel


def _emitter(args: argparse.Namespace, is_main: bool) -> Callable[[TrainingEvent], None]:
    """Where events go: JSON lines (--json) or text for a person; nowhere on ranks > 0."""
    if not is_main:
        return lambda event: None
    return JsonLinesWriter() if args.json else ConsolePrinter()


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


def _plan(project: Project, args: argparse.Namespace) -> tuple[Recipe, StartModel]:
    """The run to start: the one-click recipe (`mrcnn.training.recipe`) with what the user
    fixed on the command line, and the model it starts from."""
    from mrcnn.model.device import describe_hardware
    from mrcnn.training.recipe import Hardware, recipe_for
    from mrcnn.training.start_model import choose_start_model

    hardware = Hardware.from_dict(describe_hardware(args.device))
    fixed = {"start": args.init, "size": args.size, "max_iters": args.max_iters,
             "batch_size": args.batch_size}
    if args.download and args.init == "coco":
        fixed["coco_cached"] = True
    first = recipe_for(project, hardware, preset=args.preset, **fixed)
    # the preset of a named version or file is the loaded model's
    preset = args.preset or (first.preset if first.start in ("scratch", "coco") else None)
    start = choose_start_model(project, source=first.start, preset=preset,
                               allow_download=args.download,
                               mask_resolution=args.mask_resolution)
    recipe = recipe_for(project, hardware, preset=start.preset, **fixed)
    return recipe, start


def cmd_train(args: argparse.Namespace) -> int:
    from mrcnn.model.device import choose_device
    from mrcnn.training import distributed
    from mrcnn.training.evaluate import score_baseline
    from mrcnn.training.train import TrainConfig, train_project

    info = distributed.from_env()
    emit = _emitter(args, info.is_main)
    _cancel_on_sigterm()
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    staged = args.stage is not None
    with Project.open(args.project, read_only=staged or not info.is_main) as project:
        recipe, start = _plan(project, args)
        config = TrainConfig(preset=start.preset,
                             max_iters=None if args.epochs is not None else recipe.max_iters,
                             epochs=args.epochs, size=recipe.size,
                             batch_size=recipe.batch_size, lr=args.lr,
                             finetune_policy=recipe.finetune_policy,
                             start=recipe.start_label, recipe=recipe.line(),
                             seed=args.seed, device=args.device, amp=not args.no_amp,
                             eval_period=args.eval_period,
                             checkpoint_period=args.checkpoint_period,
                             label_smoothing=args.label_smoothing)
        config.warmup_iters = (args.warmup_iters if args.warmup_iters is not None
                               else recipe.warmup_iters)
        config.roi_batch_per_image = recipe.roi_batch
        config.anchors = args.anchors
        config.mask_resolution = args.mask_resolution
        try:
            config.validate()
        except ValueError as exc:
            from mrcnn.errors import TrainingError

            raise TrainingError(str(exc)) from None
        # the COCO model as baseline is the starting model when the run starts from it: its
        # "before" score is the baseline then
        if args.baseline and info.is_main and not (args.baseline == "coco"
                                                   and recipe.start == "coco"):
            baseline = score_baseline(project, args.baseline, starting_id=start.parent_id,
                                      device=choose_device(args.device, amp=not args.no_amp))
            if baseline is not None:
                emit(baseline)
        version = train_project(project, config, model=start.model, parent_id=start.parent_id,
                                progress=emit, resume_from=args.resume, dist=info,
                                stage_to=args.stage)
    if not info.is_main:
        return 0
    if staged:
        emit(DoneEvent(staged=str(args.stage)))
    else:
        if version is None:  # train_project returns None only on ranks > 0 or when staging
            from mrcnn.errors import TrainingError

            raise TrainingError("training finished but registered no model version")
        emit(DoneEvent(version=version.name, path=version.path,
                       metrics=version.metadata.get("metrics")))
    return 0


def cmd_hardware(args: argparse.Namespace) -> int:
    """Print what training would run on (the window asks this once, to size its recipe)."""
    import json

    from mrcnn.model.device import describe_hardware
    from mrcnn.training.recipe import Hardware

    hardware = Hardware.from_dict(describe_hardware(args.device))
    if args.json:
        print(json.dumps(hardware.to_dict()))
    else:
        memory = f", {hardware.memory_gib:g} GiB" if hardware.memory_gib else ""
        print(f"{hardware.device}: {hardware.name}{memory}; {hardware.cpu_cores} CPU cores")
    return 0


def register(sub, add) -> None:
    about = "the device training would use, its memory and the CPU cores"
    h = sub.add_parser("hardware", help=about, description=about)
    h.add_argument("--device", default=None, help="cuda, mps or cpu (default: best)")
    h.add_argument("--json", action="store_true", help="one JSON object on stdout")
    h.set_defaults(func=cmd_hardware)
    p = add("train", cmd_train, "train a model version on the reviewed images")
    p.add_argument("--preset", choices=("r50v2", "r50", "r18"), default=None,
                   help="architecture (default: the one-click recipe's: the starting "
                        "model's; from scratch r50v2 on a GPU, r18 on a CPU)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--max-iters", type=int, default=None,
                        help="iterations (default: the recipe's, sized to the data and, on "
                             "a CPU, to about 15 minutes)")
    length.add_argument("--epochs", type=float, default=None)
    p.add_argument("--size", type=int, default=None,
                   help="shorter image side in pixels (default: the recipe's)")
    p.add_argument("--from", dest="init", default="auto",
                   help="auto (default: the active version, else COCO weights when cached, "
                        "else scratch) | active | coco | scratch | a version (v2) | a file")
    p.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per iteration (default: the recipe's; on a GPU what fits "
                        "its memory, halved on out-of-memory)")
    p.add_argument("--lr", type=float, default=None, help="base learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-amp", action="store_true", help="full fp32, no mixed precision")
    p.add_argument("--eval-period", type=int, default=0, help="evaluate val every N iterations")
    p.add_argument("--checkpoint-period", type=int, default=0,
                   help="save resumable state every N iterations")
    p.add_argument("--resume", type=Path, default=None, help="resume from a saved state")
    p.add_argument("--warmup-iters", type=int, default=None,
                   help="iterations of linear learning-rate warmup (default: a fifth of "
                        "the run, at most 50)")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                   help="label smoothing of the box classifier's cross-entropy, 0 <= EPS < 1 "
                        "(default 0: off)")
    p.add_argument("--stage", type=Path, default=None,
                   help="write the trained checkpoint to this file and register nothing "
                        "(the project is only read: another program may hold it open)")
    p.add_argument("--baseline", default=None, metavar="VERSION|coco",
                   help="also score this version (or torchvision's COCO weights) on val "
                        "before training, for comparison")
    p.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by N (keeps a desktop responsive)")
    p.add_argument("--anchors", choices=("fit", "default"), default="fit",
                   help="from scratch: fit the RPN anchors to the train boxes (default) or use "
                        "the preset's; a loaded model always keeps its own")
    p.add_argument("--mask-resolution", type=int, choices=(28, 56), default=28,
                   help="side of the mask predicted per object: 28 (default) or 56 (finer "
                        "outlines, a second upsampling stage) for a model trained from scratch "
                        "or COCO weights; a loaded model keeps its own")
    p.add_argument("--download", action="store_true",
                   help="allow downloading torchvision's COCO weights for --from coco")
