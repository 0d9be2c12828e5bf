"""The canvas's loading: which image it is asked to show, and that image's pixels and masks
made in background jobs, through the view cache.

Pixels are loaded and masks prepared in background jobs (`app/canvas/render.py` through
`app/worker.py`); the GUI thread only wraps the finished arrays and hands them to the canvas
(`CanvasView._display`, `_sync_items`). Results that arrive for an image no longer shown go
to the cache (prefetch) and nowhere else. An image's pixels come first (the job yields
them), its masks when the job succeeds; masks a job could not prepare, and instances added
later, get a shape job of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.canvas.render import ImageView, InstanceShape, instance_shapes, load_view
from app.canvas.view_cache import CachedImage
from mrcnn.io.remote import RemoteImage, location_name

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from app.canvas.items import ImageItem
    from app.canvas.view_cache import ViewCache
    from app.controllers.project import InstanceRow
    from app.worker import Job, JobRunner
    from mrcnn.masks import Rle


class ImageLoadingMixin:
    """Mixed into CanvasView (a QGraphicsView); uses the attributes declared below, which
    CanvasView sets up, and its `_display`, `_sync_items` and `_clear_scene`."""

    if TYPE_CHECKING:
        _runner: JobRunner
        cache: ViewCache
        _loads: dict[int, Job]  # image id → the job loading it
        _shape_job: Job | None
        _shape_job_ids: frozenset[int]  # the instances whose shapes `_shape_job` prepares
        _image_id: int | None
        _entry: CachedImage | None
        _image_item: ImageItem | None
        _rows: list[InstanceRow]
        _message: str
        _highlight: tuple[int, list[tuple[Rle, str]]] | None
        warned: SignalInstance
        load_failed: SignalInstance

    def show_image(self, image_id: int, path: Path | RemoteImage,
                   rows: list[InstanceRow]) -> None:
        """Show an image and its instances (from the cache at once, else when loaded).
        `path`: where it is read from (a path, or a remote image read through the cache)."""
        for other, job in list(self._loads.items()):
            if other != image_id:
                job.cancel()
                del self._loads[other]
        self._cancel_shape_job()
        self._clear_scene()
        if self._highlight is not None and self._highlight[0] != image_id:
            self._highlight = None  # it was for another image
        self._image_id = image_id
        self._rows = list(rows)
        entry = self.cache.get(image_id)
        if entry is not None:
            self._display(entry)
        else:
            self._message = f"Loading {location_name(path)}…"
        if entry is None and image_id not in self._loads:
            self._start_load(image_id, path, [])  # pixels first; masks follow in their job
        self.viewport().update()

    def prefetch(self, image_id: int, path: Path | RemoteImage,
                 rows: list[InstanceRow]) -> None:
        """Load an image into the cache ahead of time (it is not shown)."""
        if image_id not in self.cache and image_id not in self._loads:
            self._start_load(image_id, path, rows)

    def clear_image(self, message: str = "No image") -> None:
        for job in self._loads.values():
            job.cancel()
        self._loads.clear()
        self._cancel_shape_job()
        self._clear_scene()
        self._highlight = None
        self._image_id = None
        self._rows = []
        self._message = message
        self.viewport().update()

    def forget(self) -> None:
        """Drop every cached image (the project changed)."""
        self.clear_image()
        self.cache.clear()

    def _start_load(self, image_id: int, path: Path | RemoteImage,
                    rows: list[InstanceRow]) -> None:
        pairs = [(r.instance, r.color) for r in rows]
        if not isinstance(path, RemoteImage):
            path = Path(path)
        job = self._runner.submit(load_view, image_id, path, pairs, lane="image",
                                  name=f"loading {location_name(path)}")
        masks = {r.id: r.instance.rle for r in rows}
        colors = {r.id: r.color for r in rows}
        job.instance_ids = frozenset(masks)  # whose shapes it prepares
        job.yielded.connect(self._on_pixels_loaded)  # the pixels, before the masks
        job.succeeded.connect(lambda view: self._on_view_loaded(view, masks, colors))
        job.failed.connect(lambda msg: setattr(job, "failed_message", msg))
        job.failed.connect(lambda msg: self._on_load_failed(image_id, msg))
        job.finished.connect(lambda: self._on_load_finished(image_id, job))
        self._loads[image_id] = job

    def _on_load_finished(self, image_id: int, job: Job) -> None:
        if self._loads.get(image_id) is not job:
            return
        del self._loads[image_id]
        if (image_id == self._image_id and self._image_item is not None
                and getattr(job, "failed_message", None) is not None):
            self._sync_items()  # the masks it did not prepare get a job of their own

    def _on_pixels_loaded(self, view: ImageView) -> None:
        if self.cache.get(view.image_id) is None:
            entry = self.cache.put(CachedImage(view))
            if view.image_id == self._image_id and self._image_item is None:
                self._display(entry)

    def _on_view_loaded(self, view: ImageView, masks: dict, colors: dict) -> None:
        entry = self.cache.get(view.image_id)
        if entry is None or entry.view.levels is not view.levels:
            entry = self.cache.put(CachedImage(view))
        entry.add_shapes(view.shapes, masks, colors)
        if view.image_id == self._image_id:
            for w in view.warnings:
                self.warned.emit(w)
            if self._image_item is None:
                self._display(entry)
            elif self._entry is entry:
                self._sync_items()

    def _on_load_failed(self, image_id: int, message: str) -> None:
        if image_id == self._image_id:
            self._message = message
            self.viewport().update()
            self.load_failed.emit(image_id, message)

    def _shapes_coming(self) -> frozenset[int]:
        """Instances of the shown image whose shapes a running job is preparing."""
        load = self._loads.get(self._image_id)
        return self._shape_job_ids | (load.instance_ids if load is not None else frozenset())

    def _start_shape_job(self, rows: list[InstanceRow]) -> None:
        self._cancel_shape_job()
        image_id, entry = self._image_id, self._entry
        masks = {r.id: r.instance.rle for r in rows}
        colors = {r.id: r.color for r in rows}
        job = self._runner.submit(instance_shapes, [(r.instance, r.color) for r in rows],
                                  lane="image", name="preparing masks")

        def done(shapes: list[InstanceShape]) -> None:
            entry.add_shapes(shapes, masks, colors)
            if self._image_id == image_id and self._entry is entry:
                self._sync_items()

        def finished() -> None:
            if self._shape_job is job:
                self._shape_job, self._shape_job_ids = None, frozenset()

        job.succeeded.connect(done)
        job.failed.connect(self.warned.emit)
        job.finished.connect(finished)
        self._shape_job, self._shape_job_ids = job, frozenset(masks)

    def _cancel_shape_job(self) -> None:
        if self._shape_job is not None:
            self._shape_job.cancel()
            self._shape_job, self._shape_job_ids = None, frozenset()
