"""Images under a URL: `s3://`, `gs://`, `az://`, `http(s)://`, `memory://` and anything else
fsspec reads when its plugin is installed, read through the local cache (`mrcnn.io.cache`).

Every reader of an image (the canvas, thumbnails, prediction, training) is handed either a
local path or a `RemoteImage` (its URL and content hash, plain data that crosses threads and
processes) and reads bytes with `mrcnn.io.images`; a remote image is taken from the cache
when it is there, else fetched, checked against its hash and kept. Failures are typed: an
unreachable storage, refused credentials or a missing plugin raise `RemoteStorageError`
(naming the URL and what to do), a file gone from the server `ImageReadError`.

Credentials come from where each backend looks for them (environment variables, ~/.aws,
gcloud's application default credentials, the Azure CLI, fsspec's own config files and
`FSSPEC_<PROTOCOL>_<OPTION>` variables); nothing here stores them, and a URL carrying a
password is refused so that no project ever records one. Torch-free, Qt-free.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from mrcnn.errors import ImageReadError, RemoteStorageError
from mrcnn.io.cache import ImageCache, default_cache

log = logging.getLogger(__name__)

#: How to install the cloud plugins.
REMOTE_EXTRA = "pip install 'mrcnn-studio[remote]'"
#: Seconds to reach an HTTP server, and the longest silence once it answers.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
CONNECTION_HINT = ("Check the network connection (and that the storage is up), then try "
                   "again; every edit is already saved in the project, and the images read "
                   "before stay readable from the local cache")
CREDENTIALS_HINT = ("Give credentials where the storage's own tools look for them (s3://: "
                    "AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; gs://: "
                    "GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default "
                    "login`; az://: AZURE_STORAGE_CONNECTION_STRING or `az login`); the "
                    "project never stores them")
_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
_HTTP = ("http", "https")
#: Characters left as they are when a file name goes into an HTTP URL.
_HTTP_SAFE = "/:@!$&'()*+,;=~"


def is_url(location: object) -> bool:
    """Whether `location` (a str; paths never are) is a URL such as s3://bucket/images."""
    return isinstance(location, str) and _URL_RE.match(location) is not None


def scheme(url: str) -> str:
    match = _URL_RE.match(url)
    return match.group(1).lower() if match else ""


def check_url(url: str) -> str:
    """The URL as a project keeps it (spaces and trailing slashes stripped). Raises
    RemoteStorageError for what is not a URL, and for a URL carrying a password (credentials
    belong where the storage's tools look for them, never in a project)."""
    url = url.strip()
    if not is_url(url):
        raise RemoteStorageError(url, "not a URL", "Give one such as s3://bucket/images, "
                                 "gs://bucket/images or https://example.org/images/")
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        shown = urllib.parse.urlunsplit(parts._replace(
            netloc=f"{parts.username}:***@{parts.hostname or ''}"
            + (f":{parts.port}" if parts.port else "")))
        raise RemoteStorageError(shown, "the URL carries a password, which the project would "
                                 "store", CREDENTIALS_HINT)
    stripped = url.rstrip("/")
    return url if stripped.endswith(":") else stripped  # "memory://" stays whole


def join_url(root: str, key: str) -> str:
    """The URL of the file `key` (a POSIX path relative to `root`, or a URL of its own)."""
    if is_url(key):
        return key
    if scheme(root) in _HTTP:
        key = urllib.parse.quote(key, safe=_HTTP_SAFE)
    return f"{root.rstrip('/')}/{key}"


def url_key(root: str, url: str) -> str:
    """How a project over `root` names the file at `url`: its path relative to `root` (as
    `join_url` takes it), or the whole URL when it is elsewhere."""
    prefix = f"{root.rstrip('/')}/"
    if not url.startswith(prefix):
        return url
    key = url[len(prefix):]
    return urllib.parse.unquote(key) if scheme(root) in _HTTP else key


def url_name(url: str) -> str:
    """The file (or folder) name a URL ends with, as a person reads it."""
    path = urllib.parse.urlsplit(url).path if scheme(url) in _HTTP else url.split("://", 1)[1]
    name = posixpath.basename(path.rstrip("/"))
    if scheme(url) in _HTTP:
        name = urllib.parse.unquote(name)
    return name or urllib.parse.urlsplit(url).netloc or url


def location_name(location: object) -> str:
    """The file name of a path or a `RemoteImage` (for messages and progress)."""
    if isinstance(location, RemoteImage):
        return location.name
    if is_url(location):
        return url_name(str(location))
    return Path(str(location)).name


def _options(protocol: str) -> dict[str, Any]:
    """Storage options: time limits, so that a dead connection fails instead of hanging.
    Credentials are never passed: each backend finds its own."""
    if protocol in _HTTP:
        try:
            import aiohttp
        except ImportError as exc:
            raise RemoteStorageError(f"{protocol}://", f"reading {protocol}:// URLs needs "
                                     f"aiohttp ({exc})", f"Install it with {REMOTE_EXTRA}"
                                     ) from None
        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S)}}
    return {}


def _filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) for a URL."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **_options(scheme(url)))
    except ImportError as exc:
        raise RemoteStorageError(url, f"reading {scheme(url)}:// URLs needs a plugin ({exc})",
                                 f"Install it with {REMOTE_EXTRA}") from None
    except ValueError as exc:
        raise RemoteStorageError(url, f"no storage plugin knows {scheme(url)}:// ({exc})",
                                 "Check the URL, or install the fsspec plugin for it") from None


def _failure(url: str, exc: BaseException) -> Exception:
    """The typed error for a failed read of `url`."""
    if isinstance(exc, FileNotFoundError):
        return ImageReadError(url, "not found on the storage (moved or deleted?)")
    if isinstance(exc, IsADirectoryError):
        return ImageReadError(url, "is a folder, not a file")
    status = getattr(exc, "status", None)
    if isinstance(exc, PermissionError) or status in (401, 403):
        return RemoteStorageError(url, f"the storage refused access ({exc})", CREDENTIALS_HINT)
    if isinstance(exc, TimeoutError):  # asyncio's and fsspec's timeouts are TimeoutErrors too
        return RemoteStorageError(url, "the storage did not answer in time", CONNECTION_HINT)
    if status is not None:
        return RemoteStorageError(url, f"the storage answered HTTP {status} "
                                  f"({getattr(exc, 'message', exc)})", CONNECTION_HINT)
    return RemoteStorageError(url, f"cannot reach the storage ({exc or type(exc).__name__})",
                              CONNECTION_HINT)


def list_files(url: str) -> list[str]:
    """Every file under the folder `url`, recursively: paths relative to it (POSIX, sorted).
    Raises RemoteStorageError when the storage cannot be listed or nothing is there."""
    fs, root = _filesystem(url)
    root = root.rstrip("/")
    # HTTP listings walk links page by page, and fsspec's walk skips a page that fails
    # unless told otherwise; the other backends list a prefix at once.
    walk = {"on_error": "raise"} if scheme(url) in _HTTP else {}
    try:
        fs.invalidate_cache()  # the folder may have changed since the last listing
        fs.ls(root, detail=False)  # raises when the storage cannot be reached
        found = fs.find(root, withdirs=False, **walk)
    except FileNotFoundError:
        raise RemoteStorageError(url, "there is no folder there",
                                 "Check the URL (and the credentials, when the storage "
                                 "hides what they may not read)") from None
    except Exception as exc:  # the backend's own errors (aiohttp, botocore...)
        raise _failure(url, exc) from None
    keys = []
    for path in found:
        path = str(path)
        if not path.startswith(root + "/"):
            continue
        key = path[len(root) + 1:]
        keys.append(urllib.parse.unquote(key) if scheme(url) in _HTTP else key)
    return sorted(keys)


def read_url(url: str) -> bytes:
    """The bytes of one file under a URL (no cache). Raises RemoteStorageError or
    ImageReadError."""
    fs, path = _filesystem(url)
    try:
        data = fs.cat_file(path)
    except Exception as exc:  # the backend's own errors (aiohttp, botocore...)
        log.debug("reading %s failed", url, exc_info=True)
        raise _failure(url, exc) from None
    if not data:
        raise ImageReadError(url, "file is empty (0 bytes)")
    return bytes(data)


@dataclass(frozen=True)
class RemoteImage:
    """An image under a URL, read through the local cache. `sha256` is the content hash the
    project registered ("" while unknown: when a scan first reads the file)."""

    url: str
    sha256: str = ""

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return url_name(self.url)

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.name)[1].lower()

    def fetch(self, cache: ImageCache | None = None) -> tuple[bytes, Path | None]:
        """(bytes, cached file): from the cache when it holds them, else from the URL, then
        kept. The cached file is None only when the cache folder could not take it."""
        cache = cache or default_cache()
        if self.sha256:
            data = cache.read(self.sha256, self.suffix)
            if data is not None:
                return data, cache.path(self.sha256, self.suffix)
        data = read_url(self.url)
        digest = hashlib.sha256(data).hexdigest()
        if self.sha256 and digest != self.sha256:
            raise ImageReadError(self.url, "the file changed on the storage since it was added "
                                 "to the project (its content is not the one annotated); "
                                 "restore it, or add it again as a new image")
        try:
            return data, cache.write(data, self.suffix, digest)
        except OSError as exc:
            log.warning("cannot keep %s in the image cache %s (%s)", self.url, cache.folder,
                        exc.strerror or exc)
            return data, None

    def read_bytes(self, cache: ImageCache | None = None) -> bytes:
        """The image file's bytes (see `fetch`)."""
        return self.fetch(cache)[0]

    def local_path(self, cache: ImageCache | None = None) -> Path:
        """A local file with the image's bytes (its copy in the cache), fetched if needed."""
        data, path = self.fetch(cache)
        if path is None:
            cache = cache or default_cache()
            raise ImageReadError(self.url, f"the image cache {cache.folder} cannot keep a copy "
                                 "(full disk? no permission?); free some space there or set "
                                 "MRCNN_CACHE to another folder")
        return path


#: Where an image is read from: a local path, or a remote image read through the cache.
ImageLocation: TypeAlias = "str | os.PathLike[str] | RemoteImage"


def local_file(location: ImageLocation) -> Path:
    """A local file holding the image at `location` (a remote one is fetched into the cache)."""
    if isinstance(location, RemoteImage):
        return location.local_path()
    return Path(location)
