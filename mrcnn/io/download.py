"""Downloading one file without ever hanging: a deadline on reaching the server (name lookup
included), a stall timeout once data flows, progress per chunk, a sha256 check, and an
atomic move into place (the destination holds the whole file or nothing)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrcnn.errors import DownloadError
from mrcnn.io.atomic import fsync_dir

log = logging.getLogger(__name__)

#: progress(bytes_done, bytes_total_or_None)
Progress = Callable[[int, int | None], None]

CHUNK = 256 * 1024
_HASH_RE = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's convention: name-<sha256 prefix>.ext
_NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)


def url_file_name(url: str) -> str:
    """The last path component of a URL."""
    return os.path.basename(urllib.parse.urlparse(url).path)


def hash_prefix(file_name: str) -> str:
    """The sha256 prefix in a torch.hub-style file name ("x-73cbd019.pth" → "73cbd019")."""
    match = _HASH_RE.search(file_name)
    return match.group(1) if match else ""


def _open_url(url: str, *, deadline_s: float, socket_timeout: float):
    """urlopen, but answer within `deadline_s` whatever happens (DNS lookups included, which
    socket timeouts do not cover): the attempt runs in a daemon thread we stop waiting for."""
    box: dict[str, Any] = {}
    lock = threading.Lock()
    done = threading.Event()

    def attempt() -> None:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "mrcnn-studio"})
            response = urllib.request.urlopen(request, timeout=socket_timeout)
        except BaseException as exc:  # handed over to the caller's thread
            with lock:
                box["error"] = exc
        else:
            with lock:
                if box.get("abandoned"):
                    response.close()
                else:
                    box["response"] = response
        finally:
            done.set()

    threading.Thread(target=attempt, name="download-connect", daemon=True).start()
    done.wait(deadline_s)
    with lock:
        if "response" in box:
            return box["response"]
        if "error" in box:
            raise box["error"]
        box["abandoned"] = True
    raise TimeoutError(f"no answer within {deadline_s:g} s")


def _reason(exc: BaseException, url: str) -> str:
    host = urllib.parse.urlparse(url).netloc or url
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()
        return f"{host} answered HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, TimeoutError):
            return f"cannot reach {host} ({exc.reason})"
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return f"{host} did not answer in time ({exc})"
    return f"cannot download from {host} ({exc})"


def download_file(url: str, dest: str | Path, *, sha256_prefix: str = "",
                  progress: Progress | None = None, connect_timeout: float = 4.0,
                  read_timeout: float = 30.0) -> int:
    """Download `url` to `dest`; return the number of bytes.

    Fails within `connect_timeout` seconds when the server cannot be reached (name lookup,
    connection and the server's first answer together); once data flows, a stall longer than
    `read_timeout` seconds fails. `progress` is called before the first chunk and after each;
    it may raise to cancel (the exception propagates). `dest` appears only complete and, when
    `sha256_prefix` is given, only when the content's sha256 starts with it; no partial file
    is ever left behind. Raises DownloadError.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the folder {dest.parent} ({exc})") from exc
    try:
        response = _open_url(url, deadline_s=connect_timeout, socket_timeout=read_timeout)
    except _NETWORK_ERRORS as exc:
        raise DownloadError(_reason(exc, url)) from exc
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            digest, done = _stream(response, fd, total, progress, url)
            if total is not None and done != total:
                raise DownloadError(f"the download stopped after {done} of {total} bytes")
            if sha256_prefix and not digest.startswith(sha256_prefix):
                raise DownloadError(f"the downloaded file is corrupt (sha256 {digest[:12]}..., "
                                    f"expected {sha256_prefix}...)")
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    fsync_dir(dest.parent)
    log.info("downloaded %s to %s (%d bytes)", url, dest, done)
    return done


def _stream(response, fd: int, total: int | None, progress: Progress | None,
            url: str) -> tuple[str, int]:
    """Copy the response into `fd` chunk by chunk; return (sha256 hex, bytes written)."""
    sha = hashlib.sha256()
    done = 0
    with os.fdopen(fd, "wb") as f:
        if progress is not None:
            progress(0, total)
        while True:
            try:
                chunk = response.read(CHUNK)
            except _NETWORK_ERRORS as exc:
                raise DownloadError(_reason(exc, url)) from exc
            if not chunk:
                break
            try:
                f.write(chunk)
            except OSError as exc:
                raise DownloadError(f"cannot save the download ({exc})") from exc
            sha.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        f.flush()
        os.fsync(f.fileno())
    return sha.hexdigest(), done
