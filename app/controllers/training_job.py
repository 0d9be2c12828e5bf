"""Training as a separate process (`python -m mrcnn train --json --stage FILE`): a crash or
running out of memory there cannot take the window down, and Cancel ends it at once. Its
JSON lines arrive as `event` signals on the GUI thread (QProcess, no extra thread); torch is
never imported here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

import mrcnn
from mrcnn.errors import EventFormatError
from mrcnn.store.versions import remove_staged
from mrcnn.training.events import SavedEvent, parse_event

log = logging.getLogger(__name__)

#: After Cancel (SIGTERM) the process may clean up this long before it is killed.
KILL_AFTER_MS = 5000


def child_environment() -> QProcessEnvironment:
    """This process's environment, with the folder holding `mrcnn` first on PYTHONPATH (so
    `python -m mrcnn` finds this very package wherever the app was started from)."""
    env = QProcessEnvironment.systemEnvironment()
    root = str(Path(mrcnn.__file__).resolve().parent.parent)
    rest = env.value("PYTHONPATH", "")
    env.insert("PYTHONPATH", root + (os.pathsep + rest if rest else ""))
    return env


class TrainingProcess(QObject):
    """One training run. Emits `event(TrainingEvent)` per event line (see
    `mrcnn.training.events`; other lines are logged) and then exactly one of `succeeded()`,
    `failed(message)` or `cancelled()`."""

    event = Signal(object)
    succeeded = Signal()
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, argv: list[str], stage: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.argv = argv
        self.stage = stage
        self.process = QProcess(self)
        self.process.setProgram(argv[0])
        self.process.setArguments(argv[1:])
        self.process.setProcessEnvironment(child_environment())
        self.process.readyReadStandardOutput.connect(self._on_process_stdout)
        self.process.readyReadStandardError.connect(self._on_process_stderr)
        self.process.finished.connect(self._on_process_finished)
        self.process.errorOccurred.connect(self._on_process_error)
        self._buffer = b""
        self._stderr = b""
        self._cancelled = False
        self._ended = False
        self._saved = False
        self._kill_timer = QTimer(self, singleShot=True, interval=KILL_AFTER_MS)
        self._kill_timer.timeout.connect(self.process.kill)

    @property
    def running(self) -> bool:
        return not self._ended

    def start(self) -> None:
        log.info("training: %s", " ".join(self.argv))
        self.process.start()

    def cancel(self) -> None:
        """Stop now: the run is reported cancelled at once; the process gets SIGTERM (it
        removes what it wrote) and is killed if it has not ended soon after."""
        if self._ended:
            return
        self._cancelled = True
        if os.name == "nt":  # pragma: no cover - no SIGTERM for console processes there
            self.process.kill()
        else:
            self.process.terminate()
            self._kill_timer.start()
        self._end(self.cancelled.emit)

    # ---------------------------------------------------------------- process output
    def _on_process_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if self._cancelled or not line.strip():
                continue
            try:
                event = parse_event(line)
            except EventFormatError:
                log.info("training: %s", line.decode(errors="replace"))
                continue
            self._saved |= isinstance(event, SavedEvent)
            self.event.emit(event)

    def _on_process_stderr(self) -> None:
        self._stderr = (self._stderr + bytes(self.process.readAllStandardError().data()))[-20000:]

    def _on_process_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        if self._ended:
            self._remove_stage()  # cancelled: whatever the process left goes
            return
        self._on_process_stdout()
        if code == 0 and status == QProcess.ExitStatus.NormalExit and self._saved:
            self._end(self.succeeded.emit)
            return
        self._remove_stage()
        self._end(lambda: self.failed.emit(self.error_text(code)))

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._ended:
            self._end(lambda: self.failed.emit(
                f"could not start the training process ({self.process.errorString()})"))

    def error_text(self, code: int) -> str:
        """The process's one-line error (the CLI prints "error: ..."), else its exit code."""
        lines = [ln for ln in self._stderr.decode(errors="replace").splitlines() if ln.strip()]
        errors = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error: ")]
        if errors:
            return errors[-1]
        tail = lines[-1] if lines else ""
        return f"the training process ended with code {code}" + (f": {tail}" if tail else "")

    def _remove_stage(self) -> None:
        remove_staged(self.stage)  # and the error list staged beside it

    def _end(self, report) -> None:
        if self._ended:
            return
        self._ended = True
        report()
