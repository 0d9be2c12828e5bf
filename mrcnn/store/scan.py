"""Adding the images of a folder, or of a URL, to a project."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mrcnn.errors import ImageReadError, ProjectError
from mrcnn.io.atomic import EXPORT_MARKER
from mrcnn.io.images import ImageInfo, is_image_path, verify_image
from mrcnn.io.remote import RemoteImage, join_url, list_files
from mrcnn.store.project import DB_NAME, Project


@dataclass
class ScanReport:
    added: int = 0
    known: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def find_images(folder: str | Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted; hidden folders, projects and our
    own export folders (their images are copies of the project's) skipped."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not (Path(dirpath, d, DB_NAME)).exists()
            and not (Path(dirpath, d, EXPORT_MARKER)).exists()
        )
        found.extend(Path(dirpath, f) for f in sorted(filenames) if is_image_path(f))
    return found


def find_remote_images(url: str) -> list[str]:
    """Image files under the URL `url`, recursively: paths relative to it (POSIX, sorted),
    files in hidden folders skipped. One listing, no file is read. Raises
    RemoteStorageError when the storage cannot be listed."""
    return [key for key in list_files(url) if is_image_path(key)
            and not any(part.startswith(".") for part in PurePosixPath(key).parts[:-1])]


def probe_remote(url: str, keys: list[str]) -> Iterator[tuple[str, ImageInfo | str]]:
    """(URL, what a full read found) for each of `keys` under `url`, one at a time, as each
    is read: its ImageInfo (size, content hash), or why it is unreadable. Each file is read
    once, through the image cache (which keeps it for the canvas and the model). Raises
    RemoteStorageError when the storage stops answering; what was yielded stays valid."""
    for key in keys:
        image_url = join_url(url, key)
        try:
            yield image_url, verify_image(RemoteImage(image_url))
        except ImageReadError as exc:
            yield image_url, exc.reason


def scan_folder(project: Project, folder: str | Path | None = None, *,
                progress: Callable[[int, int], None] | None = None) -> ScanReport:
    """Add every readable image under `folder` (default: the project's images root, or its
    URL for a project over remote images: see `scan_remote`).

    Unreadable files are skipped and listed with the reason; the rest go in one transaction.
    """
    if folder is None and project.images_url is not None:
        return scan_remote(project, progress=progress)
    folder = Path(folder) if folder is not None else project.images_root
    report = ScanReport()
    probed = []
    for path in find_images(folder):
        if project.image_by_key(project.image_key(path)):
            report.known += 1
            continue
        try:
            probed.append((path, verify_image(path)))
        except ImageReadError as exc:
            report.skipped.append((str(path), exc.reason))
    with project.transaction():
        for path, info in probed:
            project.add_image(path, info.width, info.height, info.sha256)
            report.added += 1
    return report


def scan_remote(project: Project, keys: list[str] | None = None, *,
                progress: Callable[[int, int], None] | None = None) -> ScanReport:
    """Add the images under the project's URL (`keys`: an earlier `find_remote_images`),
    each in its own transaction as soon as it is read, so that the list fills while the rest
    is fetched and an interrupted scan keeps what it added (the next one adds the rest).
    `progress(done, total)` follows the files read. Raises RemoteStorageError when the
    storage cannot be reached; the images added before stay."""
    url = project.images_url
    if url is None:
        raise ProjectError(f"project {project.folder} is over a local folder, not a URL")
    report = ScanReport()
    todo = []
    for key in find_remote_images(url) if keys is None else keys:
        if project.image_by_key(key):
            report.known += 1
        else:
            todo.append(key)
    for done, (image_url, info) in enumerate(probe_remote(url, todo), 1):
        if isinstance(info, ImageInfo):
            project.add_image(image_url, info.width, info.height, info.sha256)
            report.added += 1
        else:
            report.skipped.append((image_url, info))
        if progress is not None:
            progress(done, len(todo))
    return report
