"""File ▸ Import… and File ▸ Export…: labelled data in every format of `mrcnn.coco.formats`,
read and written in the background so the window never stalls.

Export runs in a job over its own read-only connection to the project (SQLite in WAL mode
lets it read while the window writes); what it writes is the project as it was when the job
opened it. Import reads and checks everything in a job (the slow part: decoding images,
rasterising masks), then writes it on the GUI thread in one transaction.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMainWindow

from app import dialogs
from app.controllers.commands import Feedback
from app.controllers.project import DocumentController
from app.panels.progress import JobProgressWidget
from app.settings import UiState
from app.text import plural
from app.worker import Job, JobContext, JobRunner
from mrcnn.coco.dataset import ExportReport, ImportReport, LabelledSet
from mrcnn.coco.formats import FORMATS, data_format, export_dataset, images_folder
from mrcnn.store.project import Project


def export_job(_ctx: JobContext, project_folder: Path, out: Path, fmt: str, mask_format: str,
               reviewed_only: bool) -> ExportReport:
    with Project.open(project_folder, read_only=True) as project:
        return export_dataset(project, out, fmt, mask_format=mask_format,
                              reviewed_only=reviewed_only)


def read_job(_ctx: JobContext, path: Path, fmt: str, images_dir: str | Path | None
             ) -> LabelledSet:
    return data_format(fmt).read(path, images_dir=images_dir)


def import_message(r: ImportReport) -> str:
    msg = (f"Imported {plural(r.annotations_added, 'instance')} on "
           f"{plural(r.images_marked, 'image')} ({plural(r.images_added, 'new image')}, "
           f"{plural(r.categories_added, 'new category', 'new categories')}")
    if r.duplicates_skipped:
        msg += f", {plural(r.duplicates_skipped, 'duplicate')} skipped"
    for kind, n in r.skipped.items():
        msg += f", {n} {kind} skipped"
    msg += ")"
    if r.notes:
        msg += " — " + "; ".join(r.notes)
    return msg


def export_message(r: ExportReport) -> str:
    msg = (f"Exported {plural(r.annotations, 'instance')} on {plural(r.images, 'image')} "
           f"to {r.path}")
    if r.rle_fallbacks:
        msg += f" ({r.rle_fallbacks} kept as RLE: a polygon would lose pixels)"
    if r.notes:
        msg += " — " + "; ".join(r.notes)
    return msg


class DataCommands:
    """Import and export, each one background job at a time."""

    def __init__(self, window: QMainWindow, controller: DocumentController, runner: JobRunner,
                 progress: JobProgressWidget, ui: UiState, feedback: Feedback):
        self._window = window
        self._c = controller
        self._runner = runner
        self._progress = progress
        self._ui = ui
        self._fb = feedback
        self.job: Job | None = None  # the import or export running now

    def connect(self, actions: dict) -> None:
        # The action names are those of the first wave: users' shortcut files name them.
        actions["import_coco"].triggered.connect(self.import_data)
        actions["export_coco"].triggered.connect(self.export_data)

    def _busy(self) -> bool:
        if self.job is not None and not self.job.done:
            self._fb.say("An import or export is still running; wait for it to finish")
            return True
        return False

    def import_data(self) -> None:
        if self._busy():
            return
        options = dialogs.ask_import_options(self._window, self._ui.last_dir("coco"))
        if options is None:
            return
        self._ui.set_last_dir("coco", options.path.parent)
        title = f"Cannot import {FORMATS[options.format].title}"
        project = self._c.project
        images_dir = images_folder(options.format, options.images_dir, project)
        job = self._runner.submit(read_job, options.path, options.format, images_dir,
                                  lane="task", name="reading labelled data")
        self.job = job
        self._progress.track(job, f"Reading {options.path.name}")

        def commit(data: LabelledSet) -> None:
            if self._c.project is not project:
                self._fb.report("The project was closed before the import was read; nothing "
                                "was imported", box=True, title=title)
                return
            with self._fb.guard(title):
                self._fb.say(import_message(self._c.commit_import(data, options.status)),
                             10000)

        job.succeeded.connect(commit)
        job.failed.connect(lambda message: self._fb.report(message, box=True, title=title))

    def export_data(self) -> None:
        if self._busy():
            return
        c = self._c
        # this project's own last export, else beside its images: never another project's
        # file (the place was shared, and a second project's export replaced the first's)
        last = self._ui.last_export(c.project.folder)
        root = c.project.images_root
        default = Path(last) if last else root / "annotations.json"
        options = dialogs.ask_export_options(self._window, str(default), str(default.parent))
        if options is None:
            return
        if (options.path.exists() and last is not None
                and options.path.resolve() == Path(last).resolve()):
            pass  # exported here before: writing it again is the point
        elif options.path.exists() and not dialogs.confirm(
                self._window, "Replace the earlier export?",
                f"{options.path} exists (not written by this project's last export). "
                "Replace it with this export?"):
            self._fb.say("Export cancelled; nothing was written", 5000)
            return
        self._ui.set_last_export(c.project.folder, options.path)
        title = f"Cannot export {FORMATS[options.format].title}"
        job = self._runner.submit(export_job, c.project.folder, options.path, options.format,
                                  options.mask_format, options.reviewed_only, lane="task",
                                  name="exporting")
        self.job = job
        self._progress.track(job, f"Exporting to {options.path.name}")
        job.succeeded.connect(lambda r: self._fb.say(export_message(r), 10000))
        job.failed.connect(lambda message: self._fb.report(message, box=True, title=title))

