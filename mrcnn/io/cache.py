"""A local, bounded cache of image files fetched from URLs, keyed by content hash.

A file is named by the sha256 of its bytes (`<folder>/ab/abcd….png`), so an image is found
again without asking the server, and one image under two URLs (or in two projects) is kept
once. The cache holds at most `max_bytes`: after each new file the least recently used
ones are removed (every read marks a file used, through its modification time). A file
appears only whole: it is written to a temporary name beside its own and renamed. A read
checks the content against the name, so a file damaged on disk is fetched again rather than
shown. Several processes (the window, the model process, the training process) may share
one cache: it is plain files, and every step tolerates another process removing a file.

Where: `$MRCNN_CACHE`, else the user's cache folder (`~/.cache/mrcnn-studio/images` on
Linux). Bound: `$MRCNN_CACHE_BYTES` (bytes; a suffix K, M, G or T allowed), else
`DEFAULT_MAX_BYTES`. Torch-free, Qt-free.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mrcnn.io.user_dirs import user_cache_dir

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder (tests point it at a temporary folder).
CACHE_DIR_ENV = "MRCNN_CACHE"
#: Environment variable giving the cache's bound in bytes ("500M", "2G" work too).
CACHE_BYTES_ENV = "MRCNN_CACHE_BYTES"
#: The bound when nothing says otherwise: a few thousand photos.
DEFAULT_MAX_BYTES = 4 * 1024**3
#: A temporary file older than this is left over from a process that died while writing.
STALE_TEMP_S = 3600.0
_TEMP_SUFFIX = ".tmp"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
#: One eviction at a time per process (threads of one process share the folder).
_EVICTING = threading.Lock()


def parse_bytes(text: str) -> int:
    """ "2G" → 2147483648; plain digits are bytes. Raises ValueError for anything else."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = float(value[: len(value) - len(unit)])
    if number < 0:
        raise ValueError(f"a size cannot be negative: {text!r}")
    return int(number * _UNITS[unit])


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    used: float  # last use, seconds since the epoch


class ImageCache:
    """The cache folder and its bound. Cheap to make: it holds no state but these two."""

    def __init__(self, folder: str | Path, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)

    def __repr__(self) -> str:
        return f"ImageCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    def path(self, sha256: str, suffix: str = "") -> Path:
        """Where the file with this content hash is (or would be) kept."""
        if len(sha256) != 64:
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.folder / sha256[:2] / f"{sha256}{suffix.lower()}"

    def read(self, sha256: str, suffix: str = "") -> bytes | None:
        """The bytes of the file with this content hash, or None when it is not kept (or no
        longer matches its hash: it is then removed). Marks the file used."""
        path = self.path(sha256, suffix)
        try:
            data = path.read_bytes()
        except OSError:  # not there, or removed by another process just now
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            log.warning("cached file %s does not match its hash; it is fetched again", path)
            _remove(path)
            return None
        _touch(path)
        return data

    def write(self, data: bytes, suffix: str = "", sha256: str | None = None) -> Path:
        """Keep `data` under its content hash (computed unless given) and return its path;
        then remove the least recently used files beyond the bound (never this one).
        Raises OSError when the folder cannot take it (full disk, no permission)."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        path = self.path(digest, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
        self.evict(keep=path)
        return path

    def entries(self) -> list[CacheEntry]:
        """Every file the cache holds (temporary ones included), oldest use first."""
        found = []
        try:
            subdirs = list(os.scandir(self.folder))
        except OSError:
            return []
        for sub in subdirs:
            if not sub.is_dir(follow_symlinks=False):
                continue
            try:
                files = list(os.scandir(sub.path))
            except OSError:
                continue
            for f in files:
                try:
                    st = f.stat(follow_symlinks=False)
                except OSError:
                    continue
                found.append(CacheEntry(Path(f.path), st.st_size, st.st_mtime))
        found.sort(key=lambda e: e.used)
        return found

    def total_bytes(self) -> int:
        """The bytes the cache holds now."""
        return sum(e.size for e in self.entries())

    def evict(self, keep: Path | None = None) -> int:
        """Remove the least recently used files until the cache is within its bound (and
        temporary files a dead process left); returns the bytes freed. `keep` stays even
        when it alone is over the bound (its reader is about to open it)."""
        freed = 0
        with _EVICTING:
            entries = self.entries()
            total = sum(e.size for e in entries)
            now = time.time()
            for e in entries:
                stale = e.path.name.endswith(_TEMP_SUFFIX) and now - e.used > STALE_TEMP_S
                if not stale and (total <= self.max_bytes or e.path == keep
                                  or e.path.name.endswith(_TEMP_SUFFIX)):
                    continue
                if _remove(e.path):
                    total -= e.size
                    freed += e.size
        if freed:
            log.info("image cache %s: %d bytes of least recently used files removed",
                     self.folder, freed)
        return freed


def default_cache() -> ImageCache:
    """The cache every reader uses: `$MRCNN_CACHE` (else the user's cache folder), bounded
    by `$MRCNN_CACHE_BYTES` (else DEFAULT_MAX_BYTES). Read from the environment each time,
    so a child process and a test see what their environment says."""
    folder = os.environ.get(CACHE_DIR_ENV) or user_cache_dir() / "images"
    limit = os.environ.get(CACHE_BYTES_ENV, "").strip()
    max_bytes = DEFAULT_MAX_BYTES
    if limit:
        try:
            max_bytes = parse_bytes(limit)
        except ValueError:
            log.warning("%s=%r is not a size (e.g. 2G); the image cache keeps up to %d bytes",
                        CACHE_BYTES_ENV, limit, DEFAULT_MAX_BYTES)
    return ImageCache(folder, max_bytes)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # removed meanwhile, or a read-only cache: still readable
        pass


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError:  # open elsewhere (Windows), or not ours to remove: leave it
        return False
    return True
