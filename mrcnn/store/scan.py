"""Adding the images of a folder to a project."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mrcnn.errors import ImageReadError
from mrcnn.io.images import is_image_path, verify_image
from mrcnn.store.project import DB_NAME, Project


@dataclass
class ScanReport:
    added: int = 0
    known: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def find_images(folder: str | Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted; hidden folders and projects skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not (Path(dirpath, d, DB_NAME)).exists()
        )
        found.extend(Path(dirpath, f) for f in sorted(filenames) if is_image_path(f))
    return found


def scan_folder(project: Project, folder: str | Path | None = None) -> ScanReport:
    """Add every readable image under `folder` (default: the project's images root).

    Unreadable files are skipped and listed with the reason; the rest go in one transaction.
    """
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
