"""Mask refinement from the window: Model ▸ Check Mask Refinement measures whether snapping
the loaded model's masks to image edges raises their IoU on the reviewed validation images (a
job in the model lane, so it waits behind predictions), keeps the decision in the project and
says it; the Model Versions panel shows the line for the loaded model. After a fine-tune
activates a version, the check runs before the unreviewed images are predicted again.

The rules (which images, the measure, when it is on, the line) are `mrcnn.serving.refinement`'s;
prediction jobs apply the decision (`app/controllers/prediction_scheduler.py`). This object
lives on the GUI thread, reads and writes the project there and only wires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMainWindow

from app.controllers.model_jobs import RefinementCheck, refinement_check_job
from app.panels.versions import VersionsPanel
from app.text import plural
from app.worker import Job
from mrcnn.editing.refine import RefinementDecision
from mrcnn.errors import MrcnnError
from mrcnn.serving.refinement import (
    describe_refinement,
    refinement_for,
    save_refinement,
    validation_image_ids,
    validation_set,
)

log = logging.getLogger(__name__)

#: Called when a check ends: with its decision (saved), or None when it failed.
AfterCheck = Callable[[RefinementDecision | None], None]


class RefinementController(QObject):
    """Check Mask Refinement, the line in the Model Versions panel, the check after a
    fine-tune."""

    checked = Signal(object)  # the RefinementDecision just saved

    def __init__(self, window: QMainWindow, panel: VersionsPanel):
        super().__init__(window)
        self._w = window
        self._docs = window.controller
        self._model = window.model
        self._fb = window.feedback
        self._panel = panel
        self._job: Job | None = None
        window.actions["check_refinement"].triggered.connect(lambda: self.check())
        self._model.state_changed.connect(self.refresh)
        self._docs.project_opened.connect(self.refresh)
        self._docs.project_closed.connect(self.refresh)
        self.refresh()

    @property
    def running(self) -> bool:
        return self._job is not None

    def refresh(self) -> None:
        """The panel's line for the loaded model."""
        if not self._docs.is_open:
            self._panel.set_refinement("")
            return
        info = self._model.info
        try:
            text = describe_refinement(self._docs.project, info.key if info else None)
        except MrcnnError as exc:
            text = f"Mask refinement: {exc}"
        self._panel.set_refinement(text)

    def has_validation(self) -> bool:
        """The project has reviewed validation images to measure on."""
        return self._docs.is_open and bool(validation_image_ids(self._docs.project))

    def check(self, then: AfterCheck | None = None) -> None:
        """Measure refinement for the loaded model (loading it first if needed), save the
        decision and say it; then `then(decision)`, or, without `then`, predict again the
        images this model predicted unrefined that no one touched, when it turned on."""
        d = self._docs
        if not d.is_open or d.read_only:
            self._fb.say("Open a project for writing to check mask refinement")
            return
        if not self.has_validation():
            self._fb.say("No reviewed images in the validation split to measure mask "
                         "refinement on: review some (Image ▸ Move to Validation)", 10000)
            if then is not None:
                then(None)
            return
        self._model.with_model(lambda: self._submit(then))

    def _submit(self, then: AfterCheck | None) -> None:
        if self._job is not None:
            self._fb.say("Mask refinement is being checked already", 5000)
            return
        images = validation_set(self._docs.project)
        gen = self._model.generation
        job = self._model.submit(refinement_check_job, self._model.session, images,
                                 name="checking mask refinement")
        self._job = job
        job.succeeded.connect(lambda r: self._on_check_succeeded(r, gen, then))
        job.failed.connect(lambda msg: self._on_check_failed(msg, gen, then))
        job.cancelled.connect(lambda: self._fb.say("Mask refinement check cancelled", 5000))
        job.finished.connect(lambda: setattr(self, "_job", None))
        self._w.progress.track(job, f"Checking mask refinement on "
                                    f"{plural(len(images), 'validation image')}")

    def _on_check_succeeded(self, result: RefinementCheck, gen: int,
                            then: AfterCheck | None) -> None:
        d = self._docs
        if gen != self._model.generation or not d.is_open or d.read_only:
            return  # another project meanwhile
        decision = result.decision
        try:
            was = refinement_for(d.project, decision.model_key or "")
        except MrcnnError:
            was = None  # an unreadable setting: the new decision replaces it
        try:
            save_refinement(d.project, decision)
        except MrcnnError as exc:
            self._on_check_failed(f"the decision could not be kept: {exc}", gen, then)
            return
        text = decision.describe()
        if result.skipped:
            path, reason = result.skipped[0]
            text += (f"; {plural(len(result.skipped), 'unreadable image')} skipped "
                     f"(e.g. {path}: {reason})")
        self._fb.say(text, 15000)
        self.refresh()
        self.checked.emit(decision)
        if then is not None:
            then(decision)
        elif decision.on and decision.method != was:
            self._model.predictions.predict_unreviewed(again=True, new=False)

    def _on_check_failed(self, message: str, gen: int, then: AfterCheck | None) -> None:
        if gen != self._model.generation:
            return
        self._fb.report(f"Mask refinement not checked: {message}")
        if then is not None:
            then(None)

    def check_then_predict(self) -> None:
        """After a fine-tune's version became active and loaded: check refinement for it
        (when there are validation images), then predict the unreviewed images with it."""
        predictions = self._model.predictions

        def predict(decision: RefinementDecision | None) -> None:
            predictions.predict_unreviewed(again=decision is not None and decision.on)

        if self.has_validation() and not self._docs.read_only:
            self.check(then=predict)
        else:
            predictions.predict_unreviewed()
