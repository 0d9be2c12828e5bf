"""Measuring how long the event loop stalls: a timer that should fire every few ms records
by how much each tick came late. Used by the responsiveness test and benchmarks/gui.py.

A stall has two causes that look alike on the clock: the window's own doing (a slow handler
on the GUI thread, a blocking read or lock, another of its threads holding the interpreter),
or the GUI thread being ready to run while other programs hold every core. Where the system
says how long a thread waited for a core (Linux's per-thread schedstat), the probe records
that too, so a test can hold the first to a bound without failing on the second, which no
code in the window can prevent. Elsewhere every stall counts as the window's own."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer

# this thread's CPU time, time spent ready but waiting for a core, and time slices (ns)
SCHEDSTAT = Path("/proc/thread-self/schedstat")


def core_wait() -> float | None:
    """Seconds the calling thread has spent, since it started, ready to run but waiting for
    a core; None where the system does not say."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class StallProbe(QObject):
    """Records, per tick of a precise `interval_ms` timer, the stall: how much longer than
    the interval the event loop took to fire it again (0 when on time)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.interval_s = interval_ms / 1000
        self.stalls: list[float] = []  # seconds
        self.since: list[float] = []  # time.perf_counter() when each interval began
        self.waited: list[float] = []  # seconds of each interval spent waiting for a core
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._last = 0.0
        self._last_wait: float | None = None

    def start(self) -> None:
        self.stalls.clear()
        self.since.clear()
        self.waited.clear()
        self._last = time.perf_counter()
        self._last_wait = core_wait()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _on_timer_timeout(self) -> None:
        now, wait = time.perf_counter(), core_wait()
        self.stalls.append(max(0.0, now - self._last - self.interval_s))
        known = wait is not None and self._last_wait is not None
        self.waited.append(wait - self._last_wait if known else 0.0)  # type: ignore[operator]
        self.since.append(self._last)
        self._last, self._last_wait = now, wait

    def between(self, start: float, end: float) -> list[float]:
        """The stalls that began between two time.perf_counter() readings."""
        return [s for s, t in zip(self.stalls, self.since, strict=True) if start <= t < end]

    @property
    def max_stall(self) -> float:
        return max(self.stalls, default=0.0)

    @property
    def own_stalls(self) -> list[float]:
        """Each stall less the time the GUI thread waited for a core that other programs
        held: what the window's own work or waiting caused."""
        return [max(0.0, s - w) for s, w in zip(self.stalls, self.waited, strict=True)]

    @property
    def max_own_stall(self) -> float:
        return max(self.own_stalls, default=0.0)

    def report(self) -> str:
        """The figures a failed assertion should show."""
        if not self.stalls:
            return "no ticks"
        worst = self.stalls.index(self.max_stall)
        return (f"longest stall {self.max_stall * 1000:.0f} ms, of which "
                f"{self.waited[worst] * 1000:.0f} ms waiting for a core; longest stall of the "
                f"window's own {self.max_own_stall * 1000:.0f} ms; p99 "
                f"{self.percentile(99) * 1000:.0f} ms")

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
