"""Progress of a background job in the status bar: what, how far, time left, Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from app.worker import Job


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class JobProgressWidget(QWidget):
    """Follows one job at a time; hidden when none runs."""

    cancel_clicked = Signal(object)  # the Job the person cancelled

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(180)
        self.bar.setTextVisible(False)
        self.cancel = QToolButton(text="Cancel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self._job: Job | None = None
        self._title = ""
        self._unit = ""
        self._started = 0.0
        self.cancel.clicked.connect(self._on_cancel_clicked)
        self.hide()

    def track(self, job: Job, title: str, unit: str = "") -> None:
        """Follow `job`: "{title} {done}/{total} {unit} · {its step} · {time left}"."""
        self._job, self._title, self._started = job, title, time.monotonic()
        self._unit = unit
        self.label.setText(f"{title}…")
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.cancel.setEnabled(True)
        job.progressed.connect(lambda d, t, step, j=job: self._on_job_progressed(j, d, t, step))
        job.finished.connect(lambda j=job: self._on_job_finished(j))
        self.show()
        if job.last_progress is not None:  # a running job: from where it is
            self._on_job_progressed(job, *job.last_progress)

    @property
    def busy(self) -> bool:
        """Whether it follows a job now."""
        return self._job is not None

    def _on_job_progressed(self, job: Job, done: int, total: int, step: str = "") -> None:
        """`step`: what the job is at (an image's name, its tiles); said after the count."""
        if job is not self._job or total <= 0:
            return
        text = self._title + (f" {done}/{total}" if total > 1 else "")
        if self._unit and total > 1:
            text += f" {self._unit}"
        if step:
            text += f" · {step}"
        elapsed = time.monotonic() - self._started
        if 0 < done < total and elapsed > 1.0:
            text += f" · {format_eta(elapsed / done * (total - done))} left"
        self.label.setText(text)  # before the bar: its valueChanged sees the new text
        self.bar.setRange(0, total)
        self.bar.setValue(done)

    def _on_job_finished(self, job: Job) -> None:
        if job is self._job:
            self._job = None
            self.hide()

    def _on_cancel_clicked(self) -> None:
        if self._job is not None:
            self.cancel_clicked.emit(self._job)
            self._job.cancel()
            self.cancel.setEnabled(False)
            self.label.setText(f"{self._title}: cancelling…")
