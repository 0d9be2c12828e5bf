"""Work-arounds for bugs in the Qt bindings. Call `apply()` before the first window.

PySide6 6.12.0 on Python < 3.12 returns `None` from every void call (`widget.update()`,
a Python `paint()` override, `QRunnable.run`...) and `True` from every `signal.emit()`
without taking a reference. Python 3.12+ never frees those two objects (they are immortal),
so nothing shows there; on 3.11 their reference counts fall by one per call until the
interpreter aborts with "Fatal Python error: none_dealloc" (minutes into a session, or
after a few thousand emitted signals). PySide6 6.11 does not have the bug.

`apply()` measures whether the running bindings under-count, and only then raises the two
counts so far (2**40) that no session can bring them down to zero. The objects are never
freed anyway, so this changes nothing else.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_PIN = 1 << 40
_applied = False


def _leaks(probe, obj, calls: int = 64) -> bool:
    before = sys.getrefcount(obj)
    for _ in range(calls):
        probe()
    return sys.getrefcount(obj) <= before - calls // 2


def _pin(obj) -> None:
    ctypes.c_ssize_t.from_address(id(obj)).value += _PIN


def apply() -> list[str]:
    """Neutralise the under-counting if the running bindings have it; returns what was
    pinned (empty when nothing was needed). Safe to call more than once."""
    global _applied
    if _applied or sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return []
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        pinged = Signal()

    probe = _Probe()
    pinned = []
    if _leaks(lambda: probe.setObjectName("probe"), None):
        _pin(None)
        pinned.append("None")
    if _leaks(probe.pinged.emit, True):
        _pin(True)
        pinned.append("True")
    _applied = True
    if pinned:
        import PySide6

        log.info("PySide6 %s under-counts references to %s on Python %d.%d; pinned them "
                 "(PySide6 6.11 or Python 3.12+ do not need this)", PySide6.__version__,
                 " and ".join(pinned), *sys.version_info[:2])
    return pinned
