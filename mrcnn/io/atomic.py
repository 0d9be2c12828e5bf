"""Atomic file writes: a reader sees the old file or the new one, never a half-written one."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

#: The file an export folder carries (`mrcnn.coco.dataset.write_folder_atomic`): a later
#: export may replace the folder whole, and a folder scan skips it (its images are copies).
EXPORT_MARKER = ".mrcnn-export"


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, empty temporary file beside `path`, with the permissions `path` has (or, for a
    new file, what the umask gives any new file), not tempfile's private 0600."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.chmod(tmp, mode)
            except OSError:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def write_atomic(path: str | Path, data: bytes,
                 verify: Callable[[Path], None] | None = None) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, run `verify` on it, then
    rename it over `path` and fsync the folder. If anything fails, `path` is untouched.
    A replaced file keeps its permissions; a new one gets the umask's."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = _create_temp(folder / path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(folder)


def fsync_dir(folder: str | Path) -> None:
    if os.name == "nt":  # pragma: no cover - folders cannot be opened on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
