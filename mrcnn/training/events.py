"""The training event stream: what a run reports as it goes, as typed records.

One frozen record per event (`StartEvent`, `StepEvent`, `EvalEvent`, `SavedEvent`, `DoneEvent`,
`ErrorEvent`); `to_json` is the one writer of their JSON form (one object per line of
`python -m mrcnn train --json`, {"event": "start" | "step" | ..., ...}), `parse_event` the one
reader, `JsonLinesWriter` and `ConsolePrinter` the two ways the CLI shows them.
No torch and no Qt here: the app's launcher imports this.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TextIO

from mrcnn.errors import EventFormatError

EvalStage = Literal["baseline", "before", "during", "after"]
EVAL_STAGES: tuple[str, ...] = typing.get_args(EvalStage)


@dataclass(frozen=True, kw_only=True)
class _Event:
    kind: ClassVar[str]
    #: Fields left out of the JSON object when they are None.
    _omit_none: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this event: {"event": kind, field: value, ...}."""
        out: dict[str, Any] = {"event": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self._omit_none:
                continue
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class StartEvent(_Event):
    """Training is about to start (after the data and the model are ready)."""

    kind: ClassVar[str] = "start"
    max_iters: int = 0
    train_images: int = 0
    val_images: int = 0
    device: str = ""  # as DeviceChoice.describe() says it
    preset: str = ""
    size: int = 0  # shorter image side, pixels
    world_size: int = 1  # processes of a torchrun job
    start: str = ""  # where it starts: "coco", "scratch", a version name ("v3") or a file
    recipe: str = ""  # the run in one line (mrcnn.training.recipe.Recipe.line)
    batch_size: int = 0


@dataclass(frozen=True, kw_only=True)
class StepEvent(_Event):
    """Progress after a step (see `mrcnn.training.hooks.ProgressHook`)."""

    kind: ClassVar[str] = "step"
    iteration: int  # iterations done, 1..max_iters
    max_iters: int
    losses: dict[str, float] = field(default_factory=dict)  # loss parts by name
    loss: float  # their sum
    lr: float = 0.0
    seconds_per_iter: float = 0.0  # median of recent steps
    eta_seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class EvalEvent(_Event):
    """Val metrics (`mrcnn.training.evaluate.evaluate_model`'s dict) of a model: the version
    active before the run ("baseline", with its `version` name; `error` and no metrics when it
    could not be scored), the starting model ("before"), the model during training
    ("during") or the trained model ("after")."""

    kind: ClassVar[str] = "eval"
    _omit_none: ClassVar[tuple[str, ...]] = ("version", "iteration", "error")
    stage: EvalStage
    version: str | None = None
    iteration: int | None = None
    metrics: dict | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in EVAL_STAGES:
            raise ValueError(f"eval stage {self.stage!r} is not one of {EVAL_STAGES}")


@dataclass(frozen=True, kw_only=True)
class SavedEvent(_Event):
    """The trained model is written: registered as `version` (at `path`, relative to the
    project folder), or only staged to the file `staged` with what registering it needs
    (`preset`, `parent_id`, `metadata`; see `mrcnn.store.versions.register_staged`)."""

    kind: ClassVar[str] = "saved"
    version: str | None = None
    path: str | None = None
    staged: str | None = None
    preset: str | None = None
    parent_id: int | None = None
    metadata: dict | None = None

    def to_json(self) -> dict[str, Any]:
        if self.staged is not None:
            return {"event": self.kind, "staged": self.staged, "preset": self.preset,
                    "parent_id": self.parent_id, "metadata": self.metadata}
        return {"event": self.kind, "version": self.version, "path": self.path}


@dataclass(frozen=True, kw_only=True)
class DoneEvent(_Event):
    """The command finished: the staged file, or the registered version with its metrics
    ({"before": ..., "after": ...})."""

    kind: ClassVar[str] = "done"
    staged: str | None = None
    version: str | None = None
    path: str | None = None
    metrics: dict | None = None

    def to_json(self) -> dict[str, Any]:
        if self.staged is not None:
            return {"event": self.kind, "staged": self.staged}
        return {"event": self.kind, "version": self.version, "path": self.path,
                "metrics": self.metrics}


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(_Event):
    """The run failed with this one-line message. (Reserved: `train --json` reports errors as
    "error: ..." on stderr, which is what the app reads.)"""

    kind: ClassVar[str] = "error"
    message: str


TrainingEvent = StartEvent | StepEvent | EvalEvent | SavedEvent | DoneEvent | ErrorEvent
EVENT_TYPES: dict[str, type[_Event]] = {
    cls.kind: cls for cls in (StartEvent, StepEvent, EvalEvent, SavedEvent, DoneEvent, ErrorEvent)
}


# ---------------------------------------------------------------- reading
def parse_event(data: str | bytes | Mapping[str, Any]) -> TrainingEvent:
    """The typed event of one JSON line (or its decoded object). Missing fields that have a
    default take it; numbers are converted to the field's type.

    Raises EventFormatError for anything that is not a known, well-formed event.
    """
    if isinstance(data, str | bytes | bytearray):
        raw = data
        try:
            data = json.loads(raw)
        except ValueError:
            text = raw if isinstance(raw, str) else bytes(raw).decode(errors="replace")
            raise EventFormatError(f"not a JSON training event: {text[:80]!r}") from None
    if not isinstance(data, Mapping):
        raise EventFormatError(f"a training event is a JSON object, not {type(data).__name__}")
    kind = data.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or not isinstance(kind, str):
        raise EventFormatError(f"unknown training event {kind!r}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _convert(kind, f.name, hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise EventFormatError(f"{kind} event without {f.name!r}")
    try:
        return cls(**values)  # type: ignore[return-value]  # EVENT_TYPES holds only these
    except (TypeError, ValueError) as exc:
        raise EventFormatError(f"bad {kind} event: {exc}") from None


def _convert(kind: str, name: str, hint: Any, value: Any) -> Any:
    """`value` as the field's type: int, float, str (each maybe None), dict or a Literal."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    base = typing.get_origin(hint) or hint
    try:
        if base in (int, float, str):
            return base(value)
        if base is dict and isinstance(value, dict):
            return value
        if base is Literal and value in typing.get_args(hint):
            return value
    except (TypeError, ValueError):
        pass
    raise EventFormatError(f"{kind} event: bad {name} {value!r}")


# ---------------------------------------------------------------- writing
class JsonLinesWriter:
    """Writes each event as one JSON line (`train --json`), flushed at once so a reader
    sees it live."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream

    def __call__(self, event: TrainingEvent) -> None:
        stream = self._stream or sys.stdout
        stream.write(json.dumps(event.to_json(), default=str) + "\n")
        stream.flush()


class ConsolePrinter:
    """Writes events for a person at a terminal: progress on `err` (every `step_period`
    steps and the last), the result on `out`. Saved events say nothing (done ones do)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *,
                 step_period: int = 20):
        self._out = out
        self._err = err
        self.step_period = step_period

    def __call__(self, event: TrainingEvent) -> None:
        text = self.format(event)
        if text is None:
            return
        stream = (self._out or sys.stdout) if isinstance(event, DoneEvent) else (
            self._err or sys.stderr)
        stream.write(text + "\n")
        stream.flush()

    def format(self, event: TrainingEvent) -> str | None:
        """The line this event prints, or None."""
        if isinstance(event, StartEvent):
            start = (" from scratch" if event.start == "scratch" else
                     f" from {'COCO weights' if event.start == 'coco' else event.start}"
                     if event.start else "")
            batch = f", batch {event.batch_size}" if event.batch_size else ""
            return (f"training {event.preset}{start} on {event.train_images} images "
                    f"({event.val_images} val) for {event.max_iters} iterations at "
                    f"{event.size} px{batch} on {event.device}")
        if isinstance(event, StepEvent):
            if event.iteration % self.step_period and event.iteration != event.max_iters:
                return None
            return (f"iter {event.iteration}/{event.max_iters}  loss {event.loss:.3f}  "
                    f"lr {event.lr:.5f}  eta {event.eta_seconds:.0f}s")
        if isinstance(event, EvalEvent):
            m = event.metrics
            if m is None:
                return f"{event.stage} training: not scored ({event.error or 'no metrics'})"
            kps = (f", keypoint AP {m['keypoints']['AP']:.3f}" if "keypoints" in m else "")
            return (f"{event.stage} training: segm AP {m['segm']['AP']:.3f}, "
                    f"bbox AP {m['bbox']['AP']:.3f}{kps}")
        if isinstance(event, DoneEvent):
            if event.staged is not None:
                return f"trained model written to {event.staged} (not registered)"
            after = (event.metrics or {}).get("after") or {}
            segm = (after.get("segm") or {}).get("AP")
            return (f"saved model version {event.version} ({event.path}), now active"
                    + (f"; val segm AP {segm:.3f}" if segm is not None else ""))
        if isinstance(event, ErrorEvent):
            return f"error: {event.message}"
        return None
