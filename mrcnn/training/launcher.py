"""Fine-tuning as the app starts it: whether a project is ready, the options a user picks,
and the `python -m mrcnn train --json` command line that runs them in a separate process.
No torch and no Qt here (the window imports this).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrcnn.model.weight_files import (
    COCO_WEIGHT_FILES,
    DEFAULT_COCO_PRESET,
    cached_coco_weights,
)
from mrcnn.store.project import Project
from mrcnn.training.events import (
    EvalEvent,
    SavedEvent,
    StartEvent,
    StepEvent,
    TrainingEvent,
    parse_event,
)

#: Reviewed images needed before fine-tuning is offered.
MIN_REVIEWED = 10
#: The validation split must hold at least this many reviewed images...
MIN_VAL_IMAGES = 2
#: ...and at least this share of the reviewed images and of their accepted instances, so that
#: the AP it gives measures something (move images with Image ▸ Move to Validation).
MIN_VAL_SHARE = 0.10
#: "auto": the one-click recipe decides (mrcnn.training.recipe).
AUTO = "auto"
PRESETS = (AUTO, "r18", "r50v2", "r50")
STARTS = ("auto", "active", "coco", "scratch")
DEVICES = ("auto", "cpu", "cuda", "mps")


def _at_least(share: float, total: int) -> int:
    return math.ceil(share * total - 1e-9)


@dataclass(frozen=True)
class Readiness:
    """Reviewed images (and their accepted instances) per split, and what is missing before
    fine-tuning can run: MIN_REVIEWED reviewed images, at least one for training, and a
    validation split of at least MIN_VAL_IMAGES images and MIN_VAL_SHARE of the reviewed
    images and instances. The one home of that rule (the window and `python -m mrcnn info`)."""

    train: int
    val: int
    train_instances: int = 0
    val_instances: int = 0
    images: int | None = None  # all the project's images, reviewed or not (None: not counted)

    @property
    def reviewed(self) -> int:
        return self.train + self.val

    @property
    def instances(self) -> int:
        return self.train_instances + self.val_instances

    @property
    def val_needed(self) -> int:
        """More validation images needed (moved there, or reviewed there)."""
        return max(0, max(MIN_VAL_IMAGES, _at_least(MIN_VAL_SHARE, self.reviewed)) - self.val)

    @property
    def val_instances_needed(self) -> int:
        """More accepted instances needed on the validation images."""
        if not self.instances:
            return 0
        return max(0, max(1, _at_least(MIN_VAL_SHARE, self.instances)) - self.val_instances)

    @property
    def needed(self) -> int:
        """More reviewed images needed: up to MIN_REVIEWED, and one if none is for training
        (the validation split's needs are `val_needed`)."""
        return max(MIN_REVIEWED - self.reviewed, int(self.train == 0))

    @property
    def too_few_images(self) -> bool:
        """Reviewing every image would still not be enough: the folder needs more."""
        return self.images is not None and self.images < MIN_REVIEWED

    @property
    def ready(self) -> bool:
        return self.needed == 0 and self.val_needed == 0 and self.val_instances_needed == 0

    def describe(self) -> str:
        """For the action's text: "" when ready, else what is missing, e.g. "needs 3 more
        reviewed images" or "needs 1 more validation image"."""
        if self.ready:
            return ""
        if self.needed:
            n = self.needed
            if self.reviewed >= MIN_REVIEWED:
                return "needs a reviewed image in the training split"
            if self.too_few_images:
                return (f"needs {MIN_REVIEWED} reviewed images; the project has only "
                        f"{self.images} image{'s' if self.images != 1 else ''}")
            return f"needs {n} more reviewed image{'s' if n != 1 else ''}"
        if self.val_needed:
            n = self.val_needed
            return f"needs {n} more validation image{'s' if n != 1 else ''}"
        return "needs more instances in the validation images"

    def advice(self) -> str:
        """A sentence on how to get ready ("" when ready), for the status bar and the panel."""
        if self.ready:
            return ""
        val = (f"validation has {self.val} of {self.reviewed} reviewed images "
               f"({self.val_instances} of {self.instances} instances)")
        if self.needed and self.too_few_images:
            return (f"Fine-tune {self.describe()}: add images to its folder and open it again "
                    f"({val}).")
        if self.needed:
            return f"Fine-tune {self.describe()} ({val})."
        want = max(MIN_VAL_IMAGES, _at_least(MIN_VAL_SHARE, self.reviewed))
        want_inst = max(1, _at_least(MIN_VAL_SHARE, self.instances))
        return (f"Fine-tune {self.describe()}: {val}; it needs at least {want} images and "
                f"{want_inst} instances ({MIN_VAL_SHARE:.0%}). Move reviewed images there "
                "with Image ▸ Move to Validation.")


def readiness(project: Project) -> Readiness:
    """Count the reviewed images of each split and their accepted instances."""
    sizes = project.split_sizes()
    (train, train_inst), (val, val_inst) = sizes["train"], sizes["val"]
    return Readiness(train, val, train_inst, val_inst, sum(project.image_counts().values()))


def describe_run(preset: str, train_images: int, val_images: int,
                 val_instances: int | None = None) -> str:
    """What a run trains on, in words: "Training r18 on 9 images; 1 validation image
    (3 instances) scores it"."""
    text = f"Training {preset} on {train_images} image{'s' if train_images != 1 else ''}"
    if not val_images:
        return text + "; no validation images, so it cannot be scored"
    inst = "" if val_instances is None else (
        f" ({val_instances} instance{'s' if val_instances != 1 else ''})")
    many = val_images != 1
    return (text + f"; {val_images} validation image{'s' if many else ''}{inst} "
            f"score{'' if many else 's'} it")


# ---------------------------------------------------------------- what can run
@dataclass(frozen=True)
class Choices:
    """The options the panel offers, given the others: `off` maps (option, value) to why that
    value cannot run now; every value not in it can."""

    off: dict[tuple[str, str], str]

    def allowed(self, option: str, value: str) -> bool:
        return (option, value) not in self.off

    def why_not(self, option: str, value: str) -> str | None:
        return self.off.get((option, value))


def _start_problem(preset: str | None, start: str, *, active_preset: str | None,
                   coco_cached: Mapping[str, bool]) -> str | None:
    """Why starting `preset` (None or "auto": the recipe's) from `start` cannot run (None:
    it can)."""
    if preset == AUTO:
        preset = None
    if start == "coco":
        preset = preset or DEFAULT_COCO_PRESET
        if preset not in COCO_WEIGHT_FILES:
            with_coco = ", ".join(COCO_WEIGHT_FILES)
            return f"{preset} has no COCO weights (only {with_coco} have)"
        if not coco_cached.get(preset, False):
            return (f"the COCO weights for {preset} are not on this machine (download "
                    "them: Model ▸ Download COCO Weights, or train --download)")
    if start == "active" and active_preset is None:
        return "the project has no active model version"
    if preset is not None and active_preset not in (None, preset) and start in ("active",
                                                                                 "auto"):
        where = "the active version" if start == "active" else (
            "the active version (where Auto starts)")
        return f"{where} is an {active_preset} model, not {preset}"
    return None


def choices(options: FinetuneOptions, *, active_preset: str | None,
            coco_cached: Mapping[str, bool] | None = None) -> Choices:
    """Which presets and starting points can run with the other choices in `options`, and why
    each one that cannot is off. `active_preset`: the preset of the project's active version
    (None: there is none); `coco_cached`: per preset, whether its COCO weights are on this
    machine (default: look in the torch cache)."""
    if coco_cached is None:
        coco_cached = {p: cached_coco_weights(p) is not None for p in COCO_WEIGHT_FILES}
    off: dict[tuple[str, str], str] = {}
    for start in STARTS:
        why = _start_problem(options.preset, start, active_preset=active_preset,
                             coco_cached=coco_cached)
        if why:
            off[("start", start)] = why
    for preset in PRESETS:
        why = _start_problem(preset, options.start, active_preset=active_preset,
                             coco_cached=coco_cached)
        if why:
            off[("preset", preset)] = why
    return Choices(off)


def start_problem(project: Project, preset: str | None, start: str, *,
                  allow_download: bool = False) -> str | None:
    """Why training `preset` (None: the starting model's) from `start` cannot run on this
    project and machine; None when it can (also for a version name or a file, checked when
    loaded). `allow_download`: COCO weights may be fetched. The CLI's `train` asks this
    before loading anything."""
    if start not in STARTS:
        return None
    active = project.active_model_version()
    cached = {p: allow_download or cached_coco_weights(p) is not None for p in COCO_WEIGHT_FILES}
    return _start_problem(preset, start, active_preset=active.preset if active else None,
                          coco_cached=cached)


def runnable(options: FinetuneOptions, *, active_preset: str | None,
             coco_cached: Mapping[str, bool] | None = None) -> FinetuneOptions:
    """`options`, or the nearest combination that can run: the active version's preset when
    the start needs it, else the same preset from "auto" (or from scratch)."""
    ok = choices(options, active_preset=active_preset, coco_cached=coco_cached)
    if ok.allowed("start", options.start):
        return options
    if options.start in ("auto", "active") and active_preset in PRESETS[1:]:
        return replace(options, preset=active_preset)
    for start in ("auto", "scratch"):
        if ok.allowed("start", start):
            return replace(options, start=start)
    return replace(options, start="scratch")


@dataclass
class FinetuneOptions:
    """What one click of Fine-tune runs. "auto" and None leave the choice to the one-click
    recipe (`mrcnn.training.recipe`: the strongest start the machine allows, sized to the
    device); the options panel can fix any of them."""

    preset: str = AUTO
    max_iters: int | None = None  # None: the recipe's (or epochs, when given)
    epochs: float | None = None
    size: int | None = None  # shorter image side; None: the recipe's
    batch_size: int | None = None  # None: the recipe's
    lr: float | None = None  # None: the preset's
    warmup_iters: int | None = None  # None: the recipe's (a fifth of the run, at most 50)
    device: str = "auto"
    start: str = "auto"  # auto | active | coco | scratch
    activate: str = "if-better"  # see mrcnn.store.versions.ACTIVATE_POLICIES
    nice: int = 10  # CPU priority of the training process lowered by this (the window first)
    extra: list[str] = field(default_factory=list)  # more CLI arguments (tests, experts)

    def problems(self) -> list[str]:
        """Every bad option, one sentence each (empty: all are valid)."""
        checks = [("preset", self.preset in PRESETS), ("start", self.start in STARTS),
                  ("device", self.device in DEVICES),
                  ("max_iters", self.max_iters is None or self.max_iters > 0),
                  ("epochs", self.epochs is None or self.epochs > 0),
                  ("size", self.size is None or self.size >= 32),
                  ("batch_size", self.batch_size is None or self.batch_size >= 1),
                  ("activate", self.activate in ("if-better", "always"))]
        return [f"invalid fine-tune option {name}={getattr(self, name)!r}"
                for name, ok in checks if not ok]

    def validate(self) -> None:
        """ValueError listing every bad option, one per line."""
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))

    @property
    def fixed_preset(self) -> str | None:
        """The preset the user fixed (None: the recipe's)."""
        return None if self.preset == AUTO else self.preset


#: The options a user picks in the panel, remembered between sessions.
REMEMBERED = ("preset", "max_iters", "size", "device", "start", "activate")
#: Settings written before the one-click recipe held the old fixed defaults (r18, 300
#: iterations, 256 px) for preset, iterations and size; those are not restored.
SETTINGS_FORMAT = 2


def remembered(options: FinetuneOptions) -> dict:
    """The user's choices, as plain data to keep in the settings."""
    return {"format": SETTINGS_FORMAT, **{name: getattr(options, name) for name in REMEMBERED}}


def restore(saved: object, base: FinetuneOptions | None = None) -> FinetuneOptions:
    """`base` (default: the defaults) with the remembered choices that are still valid;
    anything unreadable or invalid keeps its default (a broken settings file never stops
    fine-tuning)."""
    options = base or FinetuneOptions()
    if not isinstance(saved, dict):
        return options
    old = saved.get("format") != SETTINGS_FORMAT
    for name in REMEMBERED:
        if name not in saved or (old and name in ("preset", "max_iters", "size")):
            continue
        value = saved[name]
        try:
            if name in ("max_iters", "size") and value is not None:
                value = int(value)
            candidate = replace(options, **{name: value})
            candidate.validate()
        except (TypeError, ValueError):
            continue
        options = candidate
    return options


def baseline_name(active_version: str | None, showing_kind: str | None) -> str | None:
    """What a run is compared with before it may become active: the active version, else the
    COCO weights when the window predicts with them ("coco"), else nothing."""
    if active_version is not None:
        return active_version
    return "coco" if showing_kind == "coco" else None


def train_command(project_folder: str | Path, options: FinetuneOptions, *, stage: Path,
                  baseline: str | None) -> list[str]:
    """argv of the training process: it reads the project (which the app keeps open for
    writing), writes the trained checkpoint to `stage` and streams JSON events; `baseline`
    (the active version's name) is scored on val first when it is not the starting model."""
    options.validate()
    argv = [sys.executable, "-m", "mrcnn", "train", str(project_folder), "--json",
            "--from", options.start, "--stage", str(stage)]
    if options.fixed_preset is not None:
        argv += ["--preset", options.fixed_preset]
    if options.batch_size is not None:
        argv += ["--batch-size", str(options.batch_size)]
    if options.warmup_iters is not None:
        argv += ["--warmup-iters", str(options.warmup_iters)]
    if options.epochs is not None:
        argv += ["--epochs", str(options.epochs)]
    elif options.max_iters is not None:
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
