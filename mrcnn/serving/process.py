"""A `ModelSession` in a child process, with the same calls (both play `Session`, the role
named in `mrcnn.serving.session`).

Why a process: importing torch holds Python's GIL for up to half a second at a time (loading
its shared libraries, registering operators), which would freeze every other thread of the
caller, a GUI's event loop included; and a crash in native code (out of memory, a driver
fault) should cost the model, not the caller. The caller's process never imports torch.

    proc = ModelProcess()
    info = proc.load(ModelRequest("models/v3.pt", version_id=3, version_name="v3"))
    result = proc.predict_path(image_id, path)   # ImagePrediction, plain data
    proc.close()

Each call blocks the calling thread (use a worker thread, never a GUI thread) and returns
plain data. Errors come back as the library's own types (NoWeightsError, CheckpointError,
ImageReadError, MrcnnError); `ModelCancelled` when `should_cancel` said so. If the child
dies, `ModelProcessError` says how, and the next call starts a new child and reloads the
last model that loaded.

The child is started with multiprocessing's "spawn" method (no forked threads or Qt state),
without re-running the caller's main script.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, NoReturn

from mrcnn.errors import (
    CheckpointError,
    ImageReadError,
    ModelCancelled,
    ModelProcessError,
    MrcnnError,
    NoWeightsError,
)
from mrcnn.io.remote import RemoteImage, local_file
from mrcnn.serving.session import (
    BoxAnswer,
    ImagePrediction,
    ModelInfo,
    ModelRequest,
    with_device,
)
from mrcnn.serving.tiles import TILES_AUTO, TileSetting

log = logging.getLogger(__name__)

#: How often a waiting call checks `should_cancel` and whether the child still lives (s).
POLL_S = 0.05
#: Niceness added to the child: the model yields the CPU to the caller's (GUI) threads.
CHILD_NICENESS = 5


def _error_payload(exc: BaseException) -> tuple[str, tuple]:
    if isinstance(exc, ModelCancelled):
        return "cancelled", (str(exc),)
    if isinstance(exc, ImageReadError):
        return "image", (exc.path, exc.reason)
    if isinstance(exc, NoWeightsError):
        return "no_weights", (str(exc),)
    if type(exc) is CheckpointError:  # a subclass (CategoryMismatchError) comes back as one
        return "checkpoint", (str(exc),)
    if isinstance(exc, MrcnnError):
        return "mrcnn", (str(exc),)
    if isinstance(exc, MemoryError):
        return "mrcnn", ("the model process ran out of memory",)
    return "bug", (f"{type(exc).__name__}: {exc}", traceback.format_exc())


def _rebuild(kind: str, args: tuple) -> BaseException:
    if kind == "cancelled":
        return ModelCancelled(*args)
    if kind == "image":
        return ImageReadError(*args)
    if kind == "no_weights":
        return NoWeightsError(*args)
    if kind == "checkpoint":
        return CheckpointError(*args)
    if kind == "mrcnn":
        return MrcnnError(*args)
    log.error("model process: %s", args[1] if len(args) > 1 else args[0])
    return RuntimeError(f"the model process failed unexpectedly: {args[0]}")


def _serve(conn, cancel, log_level: int) -> None:  # pragma: no cover - runs in the child
    """The child's loop: one request at a time, until "quit" or the parent goes away."""
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s[model]: %(message)s")
    if CHILD_NICENESS and hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICENESS)
        except OSError:
            pass
    from mrcnn.serving.session import ModelSession

    session = ModelSession()

    def progress(done: int, total: int | None) -> None:
        conn.send(("progress", done, total))

    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if op == "quit":
            return
        try:
            if op == "load":
                value: Any = session.load(args[0], progress=progress,
                                          should_cancel=cancel.is_set)
            elif op == "predict_path":
                value = session.predict_path(*args, should_cancel=cancel.is_set,
                                             progress=progress)
            elif op == "box_mask":
                value = session.box_mask(*args)
            elif op == "unload":
                session.unload()
                value = None
            else:
                raise ValueError(f"unknown request {op!r}")
        except BaseException as exc:  # every error goes back to the caller
            reply: tuple[Any, ...] = ("error", *_error_payload(exc))
        else:
            reply = ("ok", value)
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_script_hidden():
    """Start a "spawn" child without it running the caller's main script again (which
    multiprocessing does to find pickled functions defined there): the child needs only
    `_serve`, and a script without an `if __name__ == "__main__":` guard would otherwise
    start a second app in it."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _MAIN_LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


class ModelProcess:
    """The parent's handle on the model process (started on the first call)."""

    def __init__(self) -> None:
        self._mp = multiprocessing.get_context("spawn")  # no forked threads or Qt state
        self._lock = threading.Lock()
        self._proc: SpawnProcess | None = None
        self._conn: Connection | None = None
        self._cancel: Event | None = None
        self._last_load: ModelRequest | None = None
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo | None:
        """The loaded model (None before a load, or after the process died)."""
        return self._info

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def start(self) -> None:
        """Start the child now (else the first call starts it); it inherits the environment
        of this moment (TORCH_HOME, proxies)."""
        with self._lock:
            if self._proc is None:
                self._start()

    def load(self, request: ModelRequest,
             progress: Callable[[int, int | None], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> ModelInfo:
        """As `ModelSession.load`, in the child."""
        with self._lock:
            info = self._call("load", request, progress=progress, should_cancel=should_cancel)
            self._last_load, self._info = request, info
            return info

    def predict_path(self, image_id: int, path: str | Path | RemoteImage,
                     uncertainty: bool = False, tiles: TileSetting = TILES_AUTO, *,
                     should_cancel: Callable[[], bool] | None = None,
                     progress: Callable[[int, int | None], None] | None = None
                     ) -> ImagePrediction:
        """As `ModelSession.predict_path`, in the child (which reads the image file; a remote
        image is fetched into the local image cache here first). A tiled image's passes are
        reported to `progress`, and `should_cancel` stops it between them."""
        path = local_file(path)
        with self._lock:
            self._reload_if_stopped()
            result = self._call("predict_path", image_id, str(path), uncertainty, tiles,
                                progress=progress, should_cancel=should_cancel)
            info = self._info
            if info is not None and result.device and result.model_key == info.key:
                self._info = with_device(info, result.device)  # what the child says now
            return result

    def box_mask(self, image_id: int, path: str | Path | RemoteImage,
                 box: tuple[float, float, float, float]) -> BoxAnswer:
        """As `ModelSession.box_mask`, in the child (features kept there)."""
        path = local_file(path)
        with self._lock:
            self._reload_if_stopped()
            return self._call("box_mask", image_id, str(path), tuple(float(v) for v in box))

    def unload(self) -> None:
        """Free the model (the process stays, ready for the next load)."""
        with self._lock:
            self._last_load = self._info = None
            if self._proc is not None:
                self._call("unload")

    def close(self, timeout: float = 2.0) -> None:
        """Stop the child: politely when it is idle, at once when a call is running (that
        call then raises ModelProcessError)."""
        if self._cancel is not None:
            self._cancel.set()
        idle = self._lock.acquire(timeout=0.2)
        try:
            proc, conn = self._proc, self._conn
            if proc is None:
                return
            if idle and conn is not None:
                try:
                    conn.send(("quit", ()))
                except (OSError, ValueError):
                    pass
                proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout)
            if idle:
                self._forget()
        finally:
            if idle:
                self._lock.release()

    # ---------------------------------------------------------------- plumbing
    def _start(self) -> None:
        parent, child = self._mp.Pipe()
        self._cancel = self._mp.Event()
        proc = self._mp.Process(target=_serve, name="mrcnn-model", daemon=True,
                                args=(child, self._cancel, logging.getLogger().level))
        try:
            with _main_script_hidden():
                proc.start()
        except OSError as exc:
            raise ModelProcessError(f"cannot start the model process ({exc})") from exc
        child.close()
        self._proc, self._conn = proc, parent
        log.info("model process started (pid %s)", proc.pid)

    def _reload_if_stopped(self) -> None:
        """After the child died, start a new one with the last model that loaded (lock
        held by the caller)."""
        if self._proc is None and self._last_load is not None:
            log.warning("the model process had stopped; restarting it")
            self._info = self._call("load", self._last_load)

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        self._info = None

    def _call(self, op: str, *args: Any, progress=None, should_cancel=None) -> Any:
        """Send one request and wait for its answer (lock held by the caller)."""
        if self._proc is None:
            self._start()
        proc, conn, cancel = self._proc, self._conn, self._cancel
        if proc is None or conn is None or cancel is None:
            raise ModelProcessError("the model process did not start")
        cancel.clear()
        try:
            conn.send((op, args))
        except (OSError, ValueError) as exc:
            self._died(f"cannot reach it ({exc})")
        while True:
            if should_cancel is not None and should_cancel():
                cancel.set()
            try:
                ready = conn.poll(POLL_S)
                message = conn.recv() if ready else None
            except (EOFError, OSError):
                self._died("its connection closed")
            if message is None:
                if not proc.is_alive():
                    self._died(f"exit code {proc.exitcode}")
                continue
            kind = message[0]
            if kind == "progress":
                if progress is not None:
                    try:
                        progress(message[1], message[2])
                    except Exception:  # a caller's bug must not desynchronise the pipe
                        log.exception("progress callback failed")
                        cancel.set()
                continue
            if kind == "ok":
                return message[1]
            raise _rebuild(message[1], message[2])

    def _died(self, how: str) -> NoReturn:
        proc = self._proc
        if proc is not None:
            proc.join(1.0)
        code = proc.exitcode if proc is not None else None
        self._forget()
        hint = ""
        if code is not None and code < 0:
            hint = f" (killed by signal {-code}{': out of memory?' if -code == 9 else ''})"
        raise ModelProcessError(f"the model process stopped unexpectedly ({how}){hint}; it "
                                "starts again with the next prediction")
