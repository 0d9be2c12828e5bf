"""The document controller: the open project, as the widgets see it.

Widgets call these methods and subscribe to the signals; every change goes through `mrcnn`
(the same `Project` methods and COCO functions the command line uses) and is durable when
the method returns. The project's SQLite connection is used on the GUI thread only; background
jobs get plain data (paths, records) and return plain data.

Errors are `mrcnn.errors.MrcnnError` subclasses with a message written for the user; the main
window shows them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.controllers.documents import DocumentSet
from mrcnn.coco.dataset import ImportReport, LabelledSet, commit_import
from mrcnn.editing.document import DocumentChange, ImageDocument
from mrcnn.errors import ImageReadError, ProjectError
from mrcnn.io.images import ImageInfo, verify_image
from mrcnn.io.remote import RemoteImage, check_url, is_url, url_name
from mrcnn.keypoints import KeypointSchema
from mrcnn.masks import Rle
from mrcnn.serving import named_predictions
from mrcnn.store.project import PROJECT_DIRNAME as PROJECT_DIRNAME  # re-exported
from mrcnn.store.project import Project, find_project, project_folder_for, remote_project_folder
from mrcnn.store.records import Category, ImageRecord, Instance, ModelVersion
from mrcnn.store.scan import ScanReport, find_images, find_remote_images, probe_remote
from mrcnn.store.suggestions import CategorySuggestion

log = logging.getLogger(__name__)

STATUS_LABELS = {"new": "New", "predicted": "Predicted", "in_review": "In review",
                 "reviewed": "Reviewed"}


@dataclass(frozen=True)
class InstanceRow:
    """What the instance list and the canvas show for one instance."""

    instance: Instance
    category: str
    color: str
    source: str  # "manual", or the model version's name ("v3"), or "model"
    schema: KeypointSchema | None = None  # its category's keypoint schema, if it has one

    @property
    def id(self) -> int:
        return self.instance.id

    @property
    def pending(self) -> bool:
        return self.instance.state == "pending"


#: A scan of remote images hands what it read to the window at least this often (seconds).
SCAN_BATCH_S = 0.5


@dataclass
class ScanResult:
    """What a folder scan found, ready to be added on the GUI thread."""

    probed: list[tuple[Path | str, ImageInfo]]  # (path or URL, info)
    skipped: list[tuple[str, str]]  # (path, reason)


def probe_folder(ctx, folder: Path | str, known: set[str]) -> ScanResult:
    """Job: find the image files under `folder` not in `known` (resolved paths) and check
    that each one decodes. Touches no project. A URL goes to `probe_remote_folder`."""
    if is_url(folder):
        return probe_remote_folder(ctx, str(folder), known)
    result = ScanResult([], [])
    paths = [p for p in find_images(folder) if str(p.resolve()) not in known]
    for i, path in enumerate(paths):
        ctx.check()
        try:
            result.probed.append((path, verify_image(path)))
        except ImageReadError as exc:
            result.skipped.append((str(path), exc.reason))
        ctx.progress(i + 1, len(paths), f"checking {path.name}")
    return result


def probe_remote_folder(ctx, url: str, known: set[str]) -> ScanResult:
    """Job: list the images under `url` (one listing), then read each one not in `known`
    (keys, as the project names them) through the image cache. What was read is handed over
    in batches (`ctx.yield_result`, a ScanResult) while the rest is read, so the image list
    fills before every image is fetched; the return value is the last batch. A lost
    connection fails the job with a RemoteStorageError; the batches handed over stay."""
    keys = [k for k in find_remote_images(url) if k not in known]
    batch = ScanResult([], [])
    last = None  # the first image is handed over at once, the others every SCAN_BATCH_S
    for i, (image_url, info) in enumerate(probe_remote(url, keys)):
        ctx.check()
        if isinstance(info, ImageInfo):
            batch.probed.append((image_url, info))
        else:
            batch.skipped.append((image_url, info))
        ctx.progress(i + 1, len(keys), f"reading {url_name(image_url)}")
        if batch.probed and (last is None or time.monotonic() - last >= SCAN_BATCH_S):
            ctx.yield_result(batch)
            batch, last = ScanResult([], []), time.monotonic()
    return batch


class DocumentController(QObject):
    """The open project (at most one) and the operations the window offers on it."""

    project_opened = Signal()
    project_closed = Signal()
    images_changed = Signal()  # images were added (scan, import)
    image_status_changed = Signal(int, str)  # image id, new status
    image_split_changed = Signal(int, str)  # image id, new split ("train" | "val")
    instances_changed = Signal(int)  # image id
    categories_changed = Signal()
    document_changed = Signal(int, object)  # image id, mrcnn.editing.document.DocumentChange
    suggestions_changed = Signal()  # a model suggested categories, or one was decided

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.documents = DocumentSet(self._on_document_changed)
        #: the image just marked reviewed, while nothing else was done since (see Undo)
        self.last_reviewed: int | None = None
        self._categories: dict[int, Category] = {}
        self._versions: dict[int, str] = {}
        #: what the last scan of the open project's folder found (its unreadable files)
        self.scan_report = ScanReport()

    # ------------------------------------------------------------- opening and closing
    @property
    def is_open(self) -> bool:
        return self.project is not None

    @property
    def read_only(self) -> bool:
        return self.project is None or self.project.read_only

    def open_path(self, path: str | Path, *, read_only: bool = False) -> Project:
        """Open the project at PATH, or the one over the image folder PATH (made if needed).

        Raises ProjectLockedError when another process writes it (the caller may retry with
        `read_only=True`) and ProjectError when PATH is not usable.
        """
        folder, images_dir = project_folder_for(path)
        if self.project is not None and _same(self.project.folder, folder) and (
                self.project.read_only == read_only):
            return self.project
        if images_dir is not None:
            if read_only:
                raise ProjectError(f"{images_dir} has no project yet; open it for writing once")
            project = Project.create(folder, images_dir)
        else:
            if self.project is not None and _same(self.project.folder, folder):
                self.close()  # reopening the same project in another mode
            project = Project.open(folder, read_only=read_only)
        return self._opened(project)

    def open_url(self, url: str, folder: str | Path | None = None) -> Project:
        """Open the project over the images under `url` kept in the local `folder` (default:
        `remote_project_folder(url)`), made there when there is none. Nothing is read from
        the URL here: the scan lists and reads the images in the background.

        Raises ProjectError when `folder` holds a project over other images,
        ProjectLockedError when another process writes it, RemoteStorageError for a URL that
        cannot be used (not a URL, a password in it)."""
        url = check_url(url)
        folder = Path(folder).expanduser() if folder else remote_project_folder(url)
        found = find_project(folder)
        if found is None:
            project = Project.create(folder, url)
        elif self.project is not None and _same(self.project.folder, found):
            project = self.project
        else:
            project = Project.open(found)
        if project.images_url != url:
            where = project.images_location
            if project is not self.project:
                project.close()
            raise ProjectError(f"{found} is the project over {where}, not over {url}; "
                               "choose another project folder")
        if project is self.project:
            return project
        return self._opened(project)

    def _opened(self, project: Project) -> Project:
        """Make `project` the open one (closing the one before)."""
        self.close()
        self.project = project
        self.scan_report = ScanReport()
        self.documents.reset(project)
        self._reload_metadata()
        log.info("opened project %s (read-only: %s)", project.folder, project.read_only)
        self.project_opened.emit()
        return project

    def close(self) -> None:
        if self.project is None:
            return
        self.documents.reset(None)
        self.project.close()
        self.project = None
        self.scan_report = ScanReport()
        self._categories = {}
        self._versions = {}
        self.project_closed.emit()

    def _reload_metadata(self) -> None:
        p = self._need()
        self._categories = {c.id: c for c in p.categories()}
        self._versions = {v.id: v.name for v in p.model_versions()}

    def _need(self) -> Project:
        if self.project is None:
            raise ProjectError("no project is open")
        return self.project

    def _need_writable(self) -> Project:
        p = self._need()
        if p.read_only:
            raise ProjectError(f"project {p.folder} is open read-only; nothing was changed")
        return p

    @property
    def title(self) -> str:
        """A short name for the open project: its images folder's name (or its URL's)."""
        if self.project is None:
            return ""
        if self.project.images_url is not None:
            return url_name(self.project.images_url)
        return self.project.images_root.name or str(self.project.images_root)

    # ------------------------------------------------------------- scanning
    def scan_args(self) -> tuple[Path | str, set[str]]:
        """Arguments for `probe_folder`: the images root (or URL) and the images already
        known (resolved paths; for remote images, their keys)."""
        p = self._need()
        if p.images_url is not None:
            return p.images_url, {im.path for im in p.images()}
        return p.images_root, {str(p.image_path(im).resolve()) for im in p.images()}

    def add_scanned(self, result: ScanResult, running: ScanReport | None = None) -> ScanReport:
        """Add what a scan found, in one transaction. Returns (and keeps, as `scan_report`)
        the scan's report: how many images were added, which files were unreadable and why.
        A scan that hands its results over in batches passes the report of its earlier
        batches as `running`, which this one is added to."""
        p = self._need_writable()
        before = len(p.images())
        with p.transaction():
            for path, info in result.probed:
                p.add_image(path, info.width, info.height, info.sha256)
        added = len(p.images()) - before
        if running is None:
            running = ScanReport(known=before)
        running.added += added
        running.skipped.extend(result.skipped)
        self.scan_report = running
        if added:
            self.images_changed.emit()
        return self.scan_report

    # ------------------------------------------------------------- reading
    def images(self) -> list[ImageRecord]:
        return self._need().images() if self.project else []

    def image(self, image_id: int) -> ImageRecord:
        return self._need().image(image_id)

    def image_source(self, image: ImageRecord) -> Path | RemoteImage:
        """Where the image is read from (`Project.image_source`); never touches the network,
        so the window may call it on its own thread. Jobs read it with `mrcnn.io.images`."""
        return self._need().image_source(image)

    def image_file(self, image: ImageRecord) -> str | RemoteImage:
        """What a job reads the image from: its path as a string, or the remote image (plain
        data either way; `mrcnn.io.images` and the model session read both)."""
        source = self.image_source(image)
        return source if isinstance(source, RemoteImage) else str(source)

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUS_LABELS, 0)
        for im in self.images():
            counts[im.status] = counts.get(im.status, 0) + 1
        return counts

    def category(self, category_id: int) -> Category:
        cat = self._categories.get(category_id)
        return cat or Category(category_id, f"category {category_id}", "#ff00ff")

    def instance_rows(self, image_id: int) -> list[InstanceRow]:
        """The image's instances (accepted and pending), in the order they were made."""
        rows = []
        for inst in self._need().instances(image_id):
            cat = self.category(inst.category_id)
            if inst.source == "model":
                source = self._versions.get(inst.model_version_id, "model")
            else:
                source = inst.source
            rows.append(InstanceRow(inst, cat.name, cat.color, source, cat.keypoints))
        return rows

    # ------------------------------------------------------------- changing
    def document(self, image_id: int) -> ImageDocument:
        """The image's editable document: every annotation edit goes through it (one undo
        stack per image, each step durable when it returns)."""
        self._need_writable()
        return self.documents.get(image_id)

    def _on_document_changed(self, image_id: int, change: DocumentChange) -> None:
        if change.categories_changed:
            self._reload_metadata()
            self.categories_changed.emit()
        if change.action == "do" and change.label != "mark reviewed":
            self.last_reviewed = None  # Undo on the next image no longer means "unreview"
        if change.status is not None:  # the document moved the image (mrcnn/store/status.py)
            self.image_status_changed.emit(image_id, str(change.status))
        if change.split is not None:  # moved to training or validation, or that undone
            self.image_split_changed.emit(image_id, str(change.split))
        self.instances_changed.emit(image_id)
        self.document_changed.emit(image_id, change)

    def accept(self, image_id: int, instance_ids: list[int]) -> int:
        """Accept pending predictions (provenance kept; undoable). Returns how many were
        accepted."""
        p = self._need_writable()
        pending = {i.id for i in p.instances(image_id, state="pending")}
        ids = [i for i in instance_ids if i in pending]
        if not ids:
            return 0
        self.document(image_id).accept_instances(ids)
        return len(ids)

    def accept_all(self, image_id: int) -> int:
        """Accept every pending prediction of an image."""
        pending = [i.id for i in self._need().instances(image_id, state="pending")]
        return self.accept(image_id, pending)

    def delete(self, image_id: int, instance_ids: list[int]) -> int:
        """Delete instances of an image (undoable; pending ones alone are a "reject").
        Returns how many were deleted."""
        p = self._need_writable()
        own = {i.id: i for i in p.instances(image_id)}
        ids = [i for i in instance_ids if i in own]
        if not ids:
            return 0
        label = "reject" if all(own[i].state == "pending" for i in ids) else "delete"
        self.document(image_id).delete_instances(ids, label=label)
        return len(ids)

    def set_status(self, image_id: int, status: str) -> None:
        p = self._need_writable()
        p.set_image_status(image_id, status)
        self.image_status_changed.emit(image_id, status)

    def mark_reviewed(self, image_id: int) -> int:
        """Mark an image reviewed (an undoable step of its document). Returns how many
        pending predictions it still has (they stay pending: not exported, not trained on)."""
        if self.document(image_id).mark_reviewed() is not None:
            self.last_reviewed = image_id
        return len(self._need().instances(image_id, state="pending"))

    def mark_not_reviewed(self, image_id: int) -> bool:
        """Take an image out of the training data (an undoable step). False when it was
        not reviewed."""
        return self.document(image_id).mark_not_reviewed() is not None

    def move_to_split(self, image_id: int, split: str) -> bool:
        """Move an image to the training ("train") or validation ("val") split: an undoable
        step of its document. False when it was there already."""
        return self.document(image_id).move_to_split(split) is not None

    def store_predictions(self, image_id: int, model_key: str,
                          items: list[tuple[int, Rle, float]], *,
                          model_version_id: int | None = None) -> list[Instance]:
        """Store a model's predictions for an image as pending instances (replacing its
        earlier pending ones; accepted instances are never touched). The seam for the
        model side: a prediction job returns plain (category id, mask, score) items and
        the GUI thread stores them here."""
        p = self._need_writable()
        before = p.image(image_id).status
        added = p.replace_predictions(image_id, model_key, items,
                                      model_version_id=model_version_id)
        self._after_predictions(image_id, before)
        return added

    def store_named_predictions(self, image_id: int, model_key: str,
                                items: list[tuple[str, Rle, float]], *,
                                model_version_id: int | None = None,
                                uncertainty: float | None = None,
                                keypoints: list | None = None
                                ) -> named_predictions.StoredPredictions:
        """Like `store_predictions`, with classes named as the model names them (what a
        prediction job returns), given categories by `mrcnn.serving.named_predictions` (as
        `mrcnn predict` does): names the project has no category or decision for are kept
        aside as suggestions, never added. One transaction. `keypoints`: each item's
        points, from a model with a keypoint head (pending with their instance)."""
        p = self._need_writable()
        before = p.image(image_id).status
        stored = named_predictions.store_named_predictions(
            p, image_id, model_key, items, model_version_id=model_version_id,
            uncertainty=uncertainty, keypoints=keypoints)
        self._after_predictions(image_id, before)
        if stored.suggested:
            self.suggestions_changed.emit()
        return stored

    # ------------------------------------------------------------- category suggestions
    def category_suggestions(self) -> list[CategorySuggestion]:
        """Class names a model predicted that the project has no category (or decision) for."""
        return named_predictions.suggestions(self._need()) if self.is_open else []

    def decide_category(self, name: str, decision: str, category_id: int | None = None
                        ) -> Category | None:
        """The user's decision on a suggested class name, once for the project (durable when
        it returns; `mrcnn.serving.named_predictions`): "accept" adds the category, "map"
        sends the class to `category_id`, "ignore" drops it. Returns the category it goes
        to (None when ignored)."""
        p = self._need_writable()
        category: Category | None = None
        if decision == "accept":
            category = named_predictions.accept_suggestion(p, name)
        elif decision == "map" and category_id is not None:
            category = named_predictions.map_suggestion(p, name, category_id)
        elif decision == "ignore":
            named_predictions.ignore_suggestion(p, name)
        else:
            raise ProjectError(f"unknown decision {decision!r} for {name!r}")
        n_categories = len(self._categories)
        self._reload_metadata()
        if len(self._categories) != n_categories:
            self.categories_changed.emit()
        self.suggestions_changed.emit()
        return category

    def category_instance_count(self, category_id: int) -> int:
        return self._need().category_instance_count(category_id)

    def _after_predictions(self, image_id: int, status_before: str) -> None:
        p = self._need()
        n_categories = len(self._categories)
        self._reload_metadata()  # the model may have added categories or a version
        if len(self._categories) != n_categories:
            self.categories_changed.emit()
        self.instances_changed.emit(image_id)
        after = p.image(image_id).status
        if after != status_before:
            self.image_status_changed.emit(image_id, after)

    def predicted_by(self, image_id: int, model_key: str) -> bool:
        """Whether this model's predictions for the image are stored already."""
        return self._need().predicted_by(image_id, model_key)

    def has_categories(self) -> bool:
        return bool(self._categories)

    def active_version(self) -> tuple[ModelVersion, Path] | None:
        """The project's active model version and its checkpoint file, if it has one."""
        p = self._need()
        version = p.active_model_version()
        return (version, p.folder / version.path) if version else None

    def commit_import(self, data: LabelledSet, status: str = "reviewed") -> ImportReport:
        """Write labelled data a background job read and checked (`mrcnn.coco.formats`),
        all or nothing, and tell the widgets."""
        p = self._need_writable()
        report = commit_import(p, data, status=status)
        self._reload_metadata()
        self.categories_changed.emit()
        self.images_changed.emit()
        return report


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
