"""The standard hooks of the training loop (`mrcnn.training.loop.Trainer`): plain callbacks,
cancellation, progress events, periodic evaluation and periodic resumable checkpoints."""

from __future__ import annotations

import io
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mrcnn.errors import TrainingCancelled
from mrcnn.io.atomic import write_atomic
from mrcnn.training.events import StepEvent
from mrcnn.training.loop import HookBase, Trainer

log = logging.getLogger(__name__)

#: The format tag of a resumable training state file.
RESUME_FORMAT = "mrcnn-studio-resume/1"


class CallbackHook(HookBase):
    """A hook made of plain functions, each called with the trainer."""

    def __init__(self, *, before_train: Callable[[Trainer], Any] | None = None,
                 after_train: Callable[[Trainer], Any] | None = None,
                 before_step: Callable[[Trainer], Any] | None = None,
                 after_step: Callable[[Trainer], Any] | None = None):
        self._fns = {"before_train": before_train, "after_train": after_train,
                     "before_step": before_step, "after_step": after_step}

    def _call(self, name: str) -> None:
        fn = self._fns[name]
        if fn is not None:
            fn(self.trainer)

    def before_train(self) -> None:
        self._call("before_train")

    def after_train(self) -> None:
        self._call("after_train")

    def before_step(self) -> None:
        self._call("before_step")

    def after_step(self) -> None:
        self._call("after_step")


class CancelHook(HookBase):
    """Asks `should_cancel()` before every step; True stops training with TrainingCancelled."""

    def __init__(self, should_cancel: Callable[[], bool]):
        self.should_cancel = should_cancel

    def before_step(self) -> None:
        if self.should_cancel():
            t = self.trainer
            raise TrainingCancelled(
                f"training cancelled after {t.iter} of {t.max_iters} iterations")


class ProgressHook(HookBase):
    """Reports every `period` steps (and the last) to `callback` with a `StepEvent`
    (seconds_per_iter: the median of the last `window` steps)."""

    def __init__(self, callback: Callable[[StepEvent], Any], *, period: int = 1, window: int = 20):
        self.callback = callback
        self.period = max(1, period)
        self._times: deque[float] = deque(maxlen=window)

    def after_step(self) -> None:
        t = self.trainer
        self._times.append(t.step_seconds)
        done = t.iter + 1
        if done % self.period and done != t.max_iters:
            return
        spi = statistics.median(self._times)
        self.callback(StepEvent(
            iteration=done, max_iters=t.max_iters, losses=dict(t.losses), loss=t.loss,
            lr=t.lr, seconds_per_iter=spi, eta_seconds=spi * (t.max_iters - done)))


class EvalHook(HookBase):
    """Every `period` steps (not after the last one: the caller evaluates the final model),
    calls `evaluate()` and hands the metrics to `on_result(iteration, metrics)`."""

    def __init__(self, period: int, evaluate: Callable[[], dict],
                 on_result: Callable[[int, dict], Any] | None = None):
        self.period = period
        self.evaluate = evaluate
        self.on_result = on_result
        self.results: list[tuple[int, dict]] = []

    def after_step(self) -> None:
        t = self.trainer
        done = t.iter + 1
        if self.period <= 0 or done % self.period or done >= t.max_iters:
            return
        start = time.perf_counter()
        metrics = self.evaluate()
        log.info("evaluation at iteration %d took %.1f s", done, time.perf_counter() - start)
        self.results.append((done, metrics))
        if self.on_result is not None:
            self.on_result(done, metrics)


class CheckpointHook(HookBase):
    """Every `period` steps, writes the trainer's full state (model, optimizer, scheduler,
    RNG, iteration) atomically to `path`, loadable with `weights_only=True`.
    `extra` (plain data) is stored beside it, e.g. the config and the training image ids."""

    def __init__(self, path: str | Path, period: int, *, extra: dict | None = None):
        self.path = Path(path)
        self.period = period
        self.extra = extra or {}
        self.saved_at: int | None = None

    def after_step(self) -> None:
        t = self.trainer
        done = t.iter + 1
        if self.period <= 0 or done % self.period or done >= t.max_iters:
            return
        save_resume_state(self.path, t.state_dict(), extra=self.extra)
        self.saved_at = done
        log.info("saved resumable state at iteration %d to %s", done, self.path)


def save_resume_state(path: str | Path, state: dict, *, extra: dict | None = None) -> None:
    """Write a trainer state (see `Trainer.state_dict`) atomically."""
    buf = io.BytesIO()
    torch.save({"format": RESUME_FORMAT, **state, "extra": extra or {}}, buf)
    write_atomic(path, buf.getvalue())
