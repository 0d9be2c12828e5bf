"""Thumbnails made lazily, in the background, only for rows that are painted."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from app.canvas.render import make_thumbnail
from app.worker import Job, JobRunner
from mrcnn.io.remote import RemoteImage, location_name

THUMBNAIL_SIZE = 96  # pixels on the longest side (drawn at 48 logical pixels: sharp on HiDPI)
MAX_CACHED = 1500


class ThumbnailCache(QObject):
    """image id → QPixmap. `get` returns None and starts a job the first time it is asked."""

    thumbnail_ready = Signal(int)  # image id (or failed: `failed(id)` is then True)

    def __init__(self, runner: JobRunner, size: int = THUMBNAIL_SIZE, parent=None):
        super().__init__(parent)
        self._runner = runner
        self._size = size
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._failed: dict[int, str] = {}
        self._jobs: dict[int, Job] = {}
        self._generation = 0

    def get(self, image_id: int, path: Path | str | RemoteImage) -> QPixmap | None:
        """The thumbnail of the image read from `path` (a path, or a remote image)."""
        pixmap = self._pixmaps.get(image_id)
        if pixmap is not None:
            self._pixmaps.move_to_end(image_id)
            return pixmap
        if image_id not in self._jobs and image_id not in self._failed:
            self._request(image_id, path if isinstance(path, RemoteImage) else Path(path))
        return None

    def cached(self, image_id: int) -> QPixmap | None:
        """The thumbnail if it is made; unlike `get`, never starts a job."""
        return self._pixmaps.get(image_id)

    def failed(self, image_id: int) -> str | None:
        """Why the thumbnail could not be made, or None."""
        return self._failed.get(image_id)

    def pending(self) -> int:
        return len(self._jobs)

    def _request(self, image_id: int, path: Path | RemoteImage) -> None:
        generation = self._generation
        job = self._runner.submit(make_thumbnail, path, self._size, lane="thumbnail",
                                  name=f"thumbnail of {location_name(path)}")

        def ok(rgb) -> None:
            if generation != self._generation:
                return
            h, w = rgb.shape[:2]
            image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
            self._pixmaps[image_id] = QPixmap.fromImage(image)  # copies: rgb may go
            while len(self._pixmaps) > MAX_CACHED:
                self._pixmaps.popitem(last=False)
            self.thumbnail_ready.emit(image_id)

        def failed(message: str) -> None:
            if generation == self._generation:
                self._failed[image_id] = message
                self.thumbnail_ready.emit(image_id)

        def finished() -> None:
            if self._jobs.get(image_id) is job:
                del self._jobs[image_id]

        job.succeeded.connect(ok)
        job.failed.connect(failed)
        job.finished.connect(finished)
        self._jobs[image_id] = job

    def clear(self) -> None:
        """Forget everything and cancel queued jobs (another project was opened)."""
        self._generation += 1
        for job in self._jobs.values():
            job.cancel()
        self._jobs.clear()
        self._pixmaps.clear()
        self._failed.clear()
