"""The error browser and the label suspects in the window: the Errors dock, Model ▸ Find Errors
on Validation (the loaded version's errors, found by a job in the model lane and kept with the
version), Model ▸ Find Label Suspects, and a click on a row showing its image with the mask
highlighted on the canvas.

The rules (what an error is, how the lists are kept and compared, what a suspect is) are
`mrcnn.training.error_analysis` and `mrcnn.training.label_hints`; the jobs are
`app/controllers/error_jobs.py`. This object lives on the GUI thread, reads and writes the
project there and only wires.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow

from app.controllers.error_jobs import SuspectsFound, find_errors_job, find_suspects_job
from app.panels.errors import ErrorsPanel
from app.text import plural
from app.worker import Job
from mrcnn.errors import MrcnnError
from mrcnn.store.suspect_checks import SuspectCheck
from mrcnn.training.error_analysis import (
    ErrorDiff,
    ErrorKind,
    ErrorList,
    FoundError,
    error_diff,
    reviewed_ids,
    save_errors,
    stored_errors,
    truth_images,
)
from mrcnn.training.label_hints import Suspect, mark_right, split_answered

log = logging.getLogger(__name__)


class ErrorsController(QObject):
    """Owns the Errors dock; finds errors and label suspects with the loaded model."""

    errors_shown = Signal(object)  # the ErrorList now listed (None: none)
    errors_found = Signal(object)  # an ErrorList just found (kept when of a version)
    suspects_found = Signal(object)  # SuspectsFound

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._w = window
        self._docs = window.controller
        self._model = window.model
        self._fb = window.feedback
        self.panel = ErrorsPanel()
        self.dock = QDockWidget("Errors", window)
        self.dock.setObjectName("errors_dock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        window.tabifyDockWidget(window.finetune.versions_dock, self.dock)
        self.dock.hide()
        self._job: Job | None = None
        self._found: SuspectsFound | None = None  # the last search's suspects, all of them
        a = window.actions
        a["find_errors"].triggered.connect(lambda: self.find_errors())
        a["find_label_suspects"].triggered.connect(lambda: self.find_suspects())
        a["show_errors"].triggered.connect(self.show_panel)
        p = self.panel
        p.find_errors_requested.connect(self.find_errors)
        p.find_suspects_requested.connect(self.find_suspects)
        p.version_chosen.connect(self.show_version)
        p.error_activated.connect(self.show_error)
        p.suspect_activated.connect(self.show_suspect)
        p.mark_right_requested.connect(self.mark_right)
        p.take_back_requested.connect(self.take_back)
        self._docs.project_opened.connect(self._on_project_changed)
        self._docs.project_closed.connect(self._on_project_changed)
        window.finetune.version_added.connect(self._on_version_added)
        self.dock.visibilityChanged.connect(self._on_dock_visibility_changed)
        self._on_project_changed()

    @property
    def running(self) -> bool:
        return self._job is not None

    def show_panel(self, tab: int = 0) -> None:
        self.dock.show()
        self.dock.raise_()
        self.panel.tabs.setCurrentIndex(tab)

    # ---------------------------------------------------------------- a version's list
    def _names(self) -> dict[int, str]:
        return {im.id: Path(im.path).name for im in self._docs.images()}

    def refresh_versions(self, choose: str | None = None) -> None:
        """The versions to choose from; shows `choose` (default: the one shown, else the
        active version)."""
        if not self._docs.is_open:
            self.panel.set_versions([], None)
            self.panel.set_errors(None, None, {}, "No project open")
            self.errors_shown.emit(None)
            return
        project = self._docs.project
        records = sorted(project.model_versions(), key=lambda v: -v.id)
        names = [v.name for v in records]
        active = next((v.name for v in records if v.active), None)
        name = choose or self.panel.chosen_version()
        if name not in names:
            name = active or (names[0] if names else None)
        self.panel.set_versions(names, name)
        self.show_version(name)

    def show_version(self, name: str | None) -> None:
        """List the errors kept for version `name` and its changes since its parent."""
        if not self._docs.is_open or not name:
            self.panel.set_errors(None, None, {}, "No model version yet: fine-tune one, "
                                  "then its errors on the validation images are listed here")
            self.errors_shown.emit(None)
            return
        project = self._docs.project
        try:
            found = stored_errors(project, name)
            diff, note = self._parent_diff(name, found) if found else (None, "")
        except MrcnnError as exc:
            found, diff, note = None, None, str(exc)
        if found is None:
            note = note or (f"No errors found for {name} yet: load it (activate it in Model "
                            "Versions) and Model ▸ Find Errors on Validation")
        self.panel.set_errors(found, diff, self._names(), note)
        self.errors_shown.emit(found)

    def _parent_diff(self, name: str, found: ErrorList) -> tuple[ErrorDiff | None, str]:
        project = self._docs.project
        record = next((v for v in project.model_versions() if v.name == name), None)
        if record is None or record.parent_id is None:
            return None, f"{name} was not trained from another version: nothing to compare"
        parent = project.model_version(record.parent_id).name
        before = stored_errors(project, parent)
        if before is None:
            return None, f"No errors found for {parent} (its parent) to compare with"
        return error_diff(before, found), ""

    def _on_project_changed(self) -> None:
        self._found = None
        self.panel.set_can_mark(self._docs.is_open and not self._docs.read_only)
        self.panel.set_suspects([], {}, "Labels on reviewed images that the loaded model "
                                "confidently disagrees with, worth a second look.")
        self.refresh_versions()
        self._update_buttons()

    def _on_version_added(self, name: str) -> None:
        self.refresh_versions(choose=name)  # training kept its errors

    def _on_dock_visibility_changed(self, visible: bool) -> None:
        if visible and self._docs.is_open:
            self.refresh_versions()

    def _update_buttons(self) -> None:
        on = self._docs.is_open
        self.panel.find_errors_button.setEnabled(on)
        self.panel.find_suspects_button.setEnabled(on)

    # ---------------------------------------------------------------- finding them
    def _busy(self) -> bool:
        if self._job is not None:
            self._fb.say("Errors are being looked for already", 5000)
            return True
        return False

    def find_errors(self) -> None:
        """Predict the reviewed validation images with the loaded model version (loading it
        first if needed), keep its error list with the version and list it."""
        d = self._docs
        if not d.is_open or self._busy():
            return
        if not reviewed_ids(d.project):
            self._fb.say("No reviewed images in the validation split to find errors on: "
                         "review some (Image ▸ Move to Validation)", 10000)
            return
        self._model.with_model(self._submit_errors)

    def _submit_errors(self) -> None:
        info = self._model.info
        if info is None or info.kind != "version":
            how = ("activate one (Model Versions) to find its errors"
                   if self._docs.project.model_versions() else
                   "this project has none yet, and Fine-tune makes one")
            self._fb.report(f"Errors are kept per model version: {how}"
                            + (f"; the loaded model is {info.source}" if info else ""))
            return
        if self._busy():
            return
        images = truth_images(self._docs.project)
        name = info.key
        self._run(find_errors_job, images, name, what="finding errors on validation",
                  progress=f"Finding {name}'s errors on "
                           f"{plural(len(images), 'validation image')}",
                  failed="Errors not found", cancelled="Finding errors cancelled",
                  done=self._on_errors_found)

    def _run(self, fn, *args, what: str, progress: str, failed: str, cancelled: str,
             done) -> None:
        """One job in the model lane over the loaded model's session: its progress shown,
        its result handed to `done(result, generation)` (stale when the model changed)."""
        gen = self._model.generation
        job = self._model.submit(fn, self._model.session, *args, name=what)
        self._job = job
        job.succeeded.connect(lambda result: done(result, gen))
        job.failed.connect(lambda msg: self._on_failed(f"{failed}: {msg}", gen))
        job.cancelled.connect(lambda: self._fb.say(cancelled, 5000))
        job.finished.connect(lambda: setattr(self, "_job", None))
        self._w.progress.track(job, progress)

    def _on_errors_found(self, found: ErrorList, gen: int) -> None:
        d = self._docs
        if gen != self._model.generation or not d.is_open:
            return  # another project meanwhile
        name = found.version or ""
        kept = ""
        if not d.read_only:
            try:
                save_errors(d.project, name, found)
            except (MrcnnError, OSError) as exc:
                kept = f" (not kept: {exc})"
        else:
            kept = " (not kept: the project is open read-only)"
        self._fb.say(found.describe() + kept, 15000)
        self.show_panel(0)
        self.refresh_versions(choose=name)
        if d.read_only or kept:  # shown as found, not as kept
            self.panel.set_errors(found, None, self._names(), kept.strip(" ()"))
            self.errors_shown.emit(found)
        self.errors_found.emit(found)

    def find_suspects(self) -> None:
        """Predict the reviewed images (train and val) with the loaded model and list the
        label suspects."""
        d = self._docs
        if not d.is_open or self._busy():
            return
        if not reviewed_ids(d.project, None):
            self._fb.say("No reviewed images to look for label errors on", 10000)
            return
        self._model.with_model(self._submit_suspects)

    def _submit_suspects(self) -> None:
        if self._busy():
            return
        images = truth_images(self._docs.project, reviewed_ids(self._docs.project, None))
        self._run(find_suspects_job, images, what="finding label suspects",
                  progress=f"Looking for label suspects on "
                           f"{plural(len(images), 'reviewed image')}",
                  failed="Label suspects not found",
                  cancelled="Finding label suspects cancelled", done=self._on_suspects_found)

    def _on_suspects_found(self, result: SuspectsFound, gen: int) -> None:
        if gen != self._model.generation or not self._docs.is_open:
            return
        self._found = result
        still_open = self._list_suspects()
        self.show_panel(1)
        self._fb.say(f"{plural(len(still_open), 'label suspect')} on "
                     f"{plural(result.images, 'reviewed image')}", 10000)
        self.suspects_found.emit(result)

    def _list_suspects(self, select_row: int | None = None) -> list[Suspect]:
        """List the last search's suspects, those found right apart (the rule:
        `label_hints.split_answered`); returns the open ones."""
        result = self._found
        if result is None or not self._docs.is_open:
            return []
        still_open, answered = split_answered(result.suspects,
                                              self._docs.project.suspect_checks())
        text = (f"{plural(len(still_open), 'label suspect')} on "
                f"{plural(result.images, 'reviewed image')} by {result.model_key}, most "
                "suspicious first (a model has seen its training images' labels: "
                "validation images are the stronger evidence)")
        if result.skipped:
            text += f"; {plural(len(result.skipped), 'unreadable image')} skipped"
        self.panel.set_suspects(still_open, self._names(), text, answered, select_row)
        return still_open

    def mark_right(self, suspect: Suspect) -> None:
        """The person found the suspect's label right: keep that in the project (before
        saying so), list the rest and show the next one."""
        d = self._docs
        if not d.is_open or self._found is None:
            return
        if d.read_only:
            self._fb.report("The project is open read-only: a label found right cannot be "
                            "kept")
            return
        row = self.panel.current_suspect_row()
        try:
            mark_right(d.project, suspect)
        except (MrcnnError, ValueError) as exc:
            self._fb.report(f"Not kept: {exc}")
            return
        name = self._names().get(suspect.image_id, f"image {suspect.image_id}")
        self._list_suspects(select_row=max(row, 0))
        self._fb.say(f"Found right: {suspect.category} on {name}; later searches leave it "
                     "out (Show found right lists it)", 8000)

    def take_back(self, check: SuspectCheck) -> None:
        """List a suspect found right again (the person takes the check back)."""
        d = self._docs
        if not d.is_open or d.read_only:
            return
        try:
            d.project.remove_suspect_check(check.id)
        except MrcnnError as exc:
            self._fb.report(f"Not changed: {exc}")
            return
        self._list_suspects()
        self._fb.say(f"{check.category} is a label suspect again", 5000)

    def _on_failed(self, message: str, gen: int) -> None:
        if gen == self._model.generation:
            self._fb.report(message)

    # ---------------------------------------------------------------- showing one
    def _show(self, image_id: int, marks) -> None:
        images = self._w.image_list
        if images.model.row_of(image_id) < 0:
            self._fb.say("That image is no longer in the project", 5000)
            return
        images.select_image(image_id)  # the window shows it on the canvas
        self._w.canvas.highlight(image_id, [(rle, look) for rle, look in marks
                                            if rle is not None])

    def show_error(self, error: FoundError) -> None:
        """Show the error's image with its masks highlighted: the accepted instance (missed,
        poor fit) and the prediction (false positive, poor fit; a missed instance's nearest
        detection)."""
        marks = [(error.truth, "truth"), (error.predicted, "predicted")]
        if error.kind == ErrorKind.FALSE_POSITIVE:
            marks.reverse()  # the prediction is what it is about
        self._show(error.image_id, marks)

    def show_suspect(self, suspect: Suspect) -> None:
        """Show the suspect's image with the label (or the unlabelled object) highlighted,
        beside the detection that disagrees with it; a suspect label is selected."""
        marks = [(suspect.mask, "predicted" if suspect.instance_id is None else "truth")]
        if suspect.detection is not None and suspect.detection != suspect.mask:
            marks.append((suspect.detection, "predicted"))
        self._show(suspect.image_id, marks)
        edits = getattr(self._w, "edits", None)
        if suspect.instance_id is not None and edits is not None:
            # selected as soon as it is shown: a digit or C then mends its category
            edits.commands.select_new(suspect.instance_id)
