"""An exclusive, process-wide write lock on a project folder.

The operating system releases it when the process dies (even by SIGKILL), so a crash never
leaves a project locked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mrcnn.errors import ProjectError, ProjectLockedError

# `sys.platform` rather than `os.name`: mypy understands it, and checks only this platform's branch
# (msvcrt's locking functions exist only in the Windows stubs).
if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class WriteLock:
    """Hold `project.lock` for as long as the project is open for writing."""

    def __init__(self, folder: Path):
        self.path = folder / "project.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ProjectError(
                f"cannot open project {self.path.parent} for writing ({exc.strerror or exc}); "
                "open it read-only"
            ) from None
        if not _try_lock(fd):
            try:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise ProjectLockedError(
                f"project {self.path.parent} is already open for writing by another process "
                f"(pid {holder}); close it there, or open this one read-only"
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
