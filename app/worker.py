"""The one background-work abstraction: run a plain callable off the GUI thread.

    job = runner.submit(load_view, path, instances, lane="image")
    job.succeeded.connect(self._on_view_loaded)

The callable receives a `JobContext` first: `ctx.progress(done, total, text)` reports progress,
`ctx.check()` raises `JobCancelled` once `job.cancel()` was called (call it between steps),
`ctx.yield_result(value)` hands over a partial result (`job.yielded`) while the job goes on.
Only plain data crosses threads: arguments go in, a return value (or an error message) comes
out through queued signals. A job never touches widgets or the project store.

Partial results arrive in order, before the end. Every job ends with exactly one of
`succeeded(result)`, `failed(message)` or `cancelled()`, then `finished()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

from mrcnn.errors import MrcnnError

log = logging.getLogger(__name__)

#: Lanes (thread pools) and their thread counts. Image loading must never wait behind a long
#: task, so each kind of work has its own lane.
DEFAULT_LANES = {"image": 2, "thumbnail": 1, "task": 1, "model": 1, "sam": 1}


class JobCancelled(Exception):
    """Raised by `JobContext.check()` inside a job that was cancelled."""


class JobContext:
    """What a job's callable sees of its job: progress reporting and the cancellation flag."""

    def __init__(self, job: Job):
        self._job = job
        self._cancel = job._cancel_event
        self._last_emit = 0.0
        self._last_total = -1

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Stop here (raise JobCancelled) if the job was cancelled."""
        if self._cancel.is_set():
            raise JobCancelled

    def progress(self, done: int, total: int, text: str = "") -> None:
        """Report progress; throttled to ~20 updates a second (the last step, and a change of
        scale — another `total` — always show)."""
        now = time.monotonic()
        if done < total and now - self._last_emit < 0.05 and total == self._last_total:
            return
        self._last_emit, self._last_total = now, total
        self._job._post("progressed", (int(done), int(total), str(text)))

    def yield_result(self, value: Any) -> None:
        """Hand a partial result (plain data) to the GUI thread now: `job.yielded(value)`."""
        self._job._post("yielded", value)


class Job(QObject):
    """A handle on one background job, living in the GUI thread.

    The pool thread never emits the public signals itself: it posts to `_relay`, a queued
    connection made when the job is created, and the GUI thread re-emits. So a job that
    ends before the caller connected (a fast failure) still reaches every slot connected
    right after `submit`, and every slot runs on the GUI thread.
    """

    progressed = Signal(int, int, str)  # done, total, text
    yielded = Signal(object)  # a partial result
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()
    _relay = Signal(str, object)

    def __init__(self, name: str, lane: str = "task"):
        super().__init__()
        self.name = name
        self.lane = lane
        self._cancel_event = threading.Event()
        self.done = False
        #: the last (done, total, text) it reported, None before any: a progress bar that
        #: starts following a running job starts from there
        self.last_progress: tuple[int, int, str] | None = None
        self._silenced = False  # its runner shut down: the window that listened is gone
        self._relay.connect(self._on_relay, Qt.ConnectionType.QueuedConnection)

    def cancel(self) -> None:
        """Ask the job to stop at its next `ctx.check()`; it then emits `cancelled`."""
        self._cancel_event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel_event.is_set()

    def _post(self, kind: str, payload: Any = None) -> None:  # any thread
        self._relay.emit(kind, payload)

    def _on_relay(self, kind: str, payload: Any) -> None:  # GUI thread
        if self._silenced:
            return
        if kind == "progressed":
            self.last_progress = payload
            self.progressed.emit(*payload)
        elif kind == "yielded":
            self.yielded.emit(payload)
        elif kind == "succeeded":
            self.succeeded.emit(payload)
        elif kind == "failed":
            self.failed.emit(payload)
        elif kind == "cancelled":
            self.cancelled.emit()
        elif kind == "finished":
            self.done = True
            self.finished.emit()


class _Runnable(QRunnable):
    def __init__(self, job: Job, fn: Callable[..., Any], args: tuple, kwargs: dict):
        super().__init__()
        self.setAutoDelete(True)
        self._job, self._fn, self._args, self._kwargs = job, fn, args, kwargs

    def run(self) -> None:  # runs in a pool thread
        job = self._job
        ctx = JobContext(job)
        try:
            ctx.check()
            result = self._fn(ctx, *self._args, **self._kwargs)
            ctx.check()
        except JobCancelled:
            job._post("cancelled")
        except MrcnnError as exc:
            job._post("failed", str(exc))
        except MemoryError:
            job._post("failed", f"{job.name}: not enough memory")
        except Exception as exc:  # a bug: report it, keep the app alive
            log.exception("job %s failed", job.name)
            job._post("failed", f"{job.name} failed unexpectedly: {exc!r}")
        else:
            job._post("succeeded", result)
        job._post("finished")


class JobRunner(QObject):
    """Owns the thread pools (one per lane) and keeps every job alive until it finished."""

    def __init__(self, lanes: dict[str, int] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._pools: dict[str, QThreadPool] = {}
        for lane, threads in (lanes or DEFAULT_LANES).items():
            pool = QThreadPool(self)
            pool.setMaxThreadCount(threads)
            self._pools[lane] = pool
        self._jobs: set[Job] = set()

    def submit(self, fn: Callable[..., Any], *args: Any, lane: str = "task",
               name: str | None = None, priority: int = 0, **kwargs: Any) -> Job:
        """Run `fn(ctx, *args, **kwargs)` in `lane`; returns the job. Connect to it before
        returning to the event loop: its signals are delivered through it, so none is missed."""
        job = Job(name or getattr(fn, "__name__", "job"), lane)
        self._jobs.add(job)
        job.finished.connect(lambda: self._on_job_finished(job))
        self._pools[lane].start(_Runnable(job, fn, args, kwargs), priority)
        return job

    def _on_job_finished(self, job: Job) -> None:
        self._jobs.discard(job)

    @property
    def active_jobs(self) -> int:
        return len(self._jobs)

    def cancel_all(self, lane: str | None = None) -> None:
        """Cancel every job (queued ones end at once when their turn comes)."""
        for job in list(self._jobs):
            if lane is None or job.lane == lane:
                job.cancel()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for the threads; True when they all stopped. The ends
        of jobs still on their way to the GUI thread are dropped: whoever connected to them
        (a controller of the closing window) may be gone by the time they would arrive."""
        self.cancel_all()
        ok = True
        for pool in self._pools.values():
            ok = pool.waitForDone(timeout_ms) and ok
        for job in self._jobs:
            job._silenced = True
        self._jobs.clear()
        return ok
