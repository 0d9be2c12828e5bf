"""Fine-tuning as the app starts it: whether a project is ready, the options a user picks,
and the `python -m mrcnn train --json` command line that runs them in a separate process.
No torch and no Qt here (the window imports this).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrcnn.store.project import Project
from mrcnn.training.events import (
    EvalEvent,
    SavedEvent,
    StartEvent,
    StepEvent,
    TrainingEvent,
    parse_event,
)

#: Reviewed images needed before fine-tuning is offered (at least one in each split).
MIN_REVIEWED = 10
PRESETS = ("r18", "r50v2", "r50")
STARTS = ("auto", "active", "coco", "scratch")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Readiness:
    """How many reviewed images there are, per split, and how many more are needed."""

    train: int
    val: int

    @property
    def reviewed(self) -> int:
        return self.train + self.val

    @property
    def needed(self) -> int:
        """More reviewed images needed: up to MIN_REVIEWED, and one per empty split."""
        return max(MIN_REVIEWED - self.reviewed, int(self.train == 0) + int(self.val == 0))

    @property
    def ready(self) -> bool:
        return self.needed == 0

    def describe(self) -> str:
        """For the action's text: "" when ready, else "needs 3 more reviewed images"."""
        if self.ready:
            return ""
        if self.reviewed >= MIN_REVIEWED:
            split = "validation" if self.val == 0 else "training"
            return f"needs a reviewed image in the {split} split"
        n = self.needed
        return f"needs {n} more reviewed image{'s' if n != 1 else ''}"


def readiness(project: Project) -> Readiness:
    """Count the reviewed images of each split."""
    counts = {"train": 0, "val": 0}
    for im in project.images("reviewed"):
        counts[im.split] += 1
    return Readiness(counts["train"], counts["val"])


@dataclass
class FinetuneOptions:
    """What one click of Fine-tune runs. Defaults suit a CPU; the options panel edits them."""

    preset: str = "r18"
    max_iters: int = 300  # or epochs, when given
    epochs: float | None = None
    size: int | None = 256  # shorter image side; None: the preset's
    batch_size: int = 4
    lr: float | None = None  # None: the preset's
    warmup_iters: int | None = None  # None: a fifth of the run, at most 50
    device: str = "auto"
    start: str = "auto"  # auto | active | coco | scratch
    activate: str = "if-better"  # see mrcnn.store.versions.ACTIVATE_POLICIES
    nice: int = 10  # CPU priority of the training process lowered by this (the window first)
    extra: list[str] = field(default_factory=list)  # more CLI arguments (tests, experts)

    def validate(self) -> None:
        """ValueError naming the first bad option."""
        checks = [("preset", self.preset in PRESETS), ("start", self.start in STARTS),
                  ("device", self.device in DEVICES), ("max_iters", self.max_iters > 0),
                  ("epochs", self.epochs is None or self.epochs > 0),
                  ("size", self.size is None or self.size >= 32),
                  ("batch_size", self.batch_size >= 1),
                  ("activate", self.activate in ("if-better", "always"))]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"invalid fine-tune option {name}={getattr(self, name)!r}")

    def warmup(self) -> int:
        if self.warmup_iters is not None:
            return self.warmup_iters
        return min(50, self.max_iters // 5) if self.epochs is None else 50


#: The options a user picks in the panel, remembered between sessions.
REMEMBERED = ("preset", "max_iters", "size", "device", "start", "activate")


def remembered(options: FinetuneOptions) -> dict:
    """The user's choices, as plain data to keep in the settings."""
    return {name: getattr(options, name) for name in REMEMBERED}


def restore(saved: object, base: FinetuneOptions | None = None) -> FinetuneOptions:
    """`base` (default: the defaults) with the remembered choices that are still valid;
    anything unreadable or invalid keeps its default (a broken settings file never stops
    fine-tuning)."""
    options = base or FinetuneOptions()
    if not isinstance(saved, dict):
        return options
    for name in REMEMBERED:
        if name not in saved:
            continue
        value = saved[name]
        try:
            if name in ("max_iters", "size"):
                value = int(value)
            candidate = replace(options, **{name: value})
            candidate.validate()
        except (TypeError, ValueError):
            continue
        options = candidate
    return options


def train_command(project_folder: str | Path, options: FinetuneOptions, *, stage: Path,
                  baseline: str | None) -> list[str]:
    """argv of the training process: it reads the project (which the app keeps open for
    writing), writes the trained checkpoint to `stage` and streams JSON events; `baseline`
    (the active version's name) is scored on val first when it is not the starting model."""
    options.validate()
    argv = [sys.executable, "-m", "mrcnn", "train", str(project_folder), "--json",
            "--preset", options.preset, "--from", options.start, "--stage", str(stage),
            "--batch-size", str(options.batch_size), "--warmup-iters", str(options.warmup())]
    if options.epochs is not None:
        argv += ["--epochs", str(options.epochs)]
    else:
        argv += ["--max-iters", str(options.max_iters)]
    if options.size is not None:
        argv += ["--size", str(options.size)]
    if options.lr is not None:
        argv += ["--lr", str(options.lr)]
    if options.device != "auto":
        argv += ["--device", options.device]
    if baseline:
        argv += ["--baseline", baseline]
    if options.nice:
        argv += ["--nice", str(options.nice)]
    return argv + list(options.extra)


@dataclass
class TrainingRun:
    """What a run's events said so far (the app's training panel reads this)."""

    max_iters: int = 0
    iteration: int = 0
    eta_seconds: float | None = None
    device: str = ""
    baseline: dict | None = None  # metrics of the version active before (or the start)
    baseline_name: str | None = None
    after: dict | None = None
    saved: SavedEvent | None = None  # staged path, preset, parent, metadata
    history: list[StepEvent] = field(default_factory=list)
    _scored_baseline: bool = False

    def update(self, event: TrainingEvent | Mapping[str, Any] | str) -> None:
        """Take in one event (a JSON line or object is parsed first: EventFormatError if it
        is not an event)."""
        if not isinstance(event, TrainingEvent):
            event = parse_event(event)
        if isinstance(event, StartEvent):
            self.max_iters = event.max_iters
            self.device = event.device
        elif isinstance(event, StepEvent):
            self.iteration = event.iteration
            self.max_iters = event.max_iters
            self.eta_seconds = event.eta_seconds
            self.history.append(event)
        elif isinstance(event, EvalEvent):
            if event.stage == "baseline":
                self.baseline = event.metrics
                self.baseline_name = event.version
                self._scored_baseline = True
            elif event.stage == "before" and not self._scored_baseline:
                self.baseline = event.metrics
            elif event.stage == "after":
                self.after = event.metrics
        elif isinstance(event, SavedEvent):
            self.saved = event
