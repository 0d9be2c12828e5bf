"""Measuring how long the event loop stalls: a timer that should fire every few ms records
by how much each tick came late. Used by the responsiveness test and benchmarks/gui.py."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class StallProbe(QObject):
    """Records, per tick of a precise `interval_ms` timer, the stall: how much longer than
    the interval the event loop took to fire it again (0 when on time)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.interval_s = interval_ms / 1000
        self.stalls: list[float] = []  # seconds
        self.since: list[float] = []  # time.perf_counter() when each interval began
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._last = 0.0

    def start(self) -> None:
        self.stalls.clear()
        self.since.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        self.stalls.append(max(0.0, now - self._last - self.interval_s))
        self.since.append(self._last)
        self._last = now

    def between(self, start: float, end: float) -> list[float]:
        """The stalls that began between two time.perf_counter() readings."""
        return [s for s, t in zip(self.stalls, self.since, strict=True) if start <= t < end]

    @property
    def max_stall(self) -> float:
        return max(self.stalls, default=0.0)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0–100) of the stalls, in seconds."""
        return percentile(self.stalls, q)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank q-th percentile (0–100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
