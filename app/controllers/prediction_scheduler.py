"""Which images the model predicts, and when: the current image and the next few ahead of
time (look-ahead), every unreviewed image on request (a batch with progress and Cancel), or
the current image again on request; each result is stored as it comes.

Works with a `ModelController` (the loaded model, its jobs; through the `ModelSide` protocol
below); lives on the GUI thread. An image is never given to two prediction jobs at once, and
an image this model already predicted is never predicted again on its own (stored per image
and model key). Masks are refined with the image when the project's decision is on for the
loaded model (`mrcnn.serving.refinement.refinement_for`, read here when a job is submitted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from app.controllers.commands import Feedback
from app.controllers.model_jobs import (
    BatchSummary,
    PredictFailure,
    Refinement,
    TilesPredicted,
    predict_job,
)
from app.controllers.project import DocumentController
from app.panels.image_list import ImageListWidget
from app.panels.progress import JobProgressWidget
from app.text import plural
from app.worker import Job
from mrcnn.errors import MrcnnError
from mrcnn.io.remote import RemoteImage, location_name
from mrcnn.serving.refinement import refinement_for
from mrcnn.serving.session import ImagePrediction, ModelInfo, Session
from mrcnn.store.records import ImageStatus
from mrcnn.store.status import UNREVIEWED


class ModelSide(Protocol):
    """What the scheduler asks of the model controller (`app/controllers/model.py`), written
    down so that the two modules do not import each other."""

    generation: int  # bumped per project: late results of another one are dropped
    info: ModelInfo | None  # the loaded model
    options: Any  # ModelOptions: look-ahead, thresholds
    session: Session
    state: str  # none | loading | ready | missing | failed
    state_changed: Any  # a Qt signal

    @property
    def tiles(self) -> Any:
        """Which images are predicted in tiles ("auto", "off" or a tile size)."""
        ...

    def submit(self, fn: Callable[..., Any], *args: Any, name: str, priority: int = 0) -> Job:
        """Run a job in the model lane."""
        ...

    def with_model(self, action: Callable[[], None]) -> None:
        """Run `action` now if a model is ready, else once it is loaded."""
        ...

log = logging.getLogger(__name__)


class PredictionScheduler(QObject):
    """Predict ahead, predict all unreviewed, predict this image; store the results."""

    predictions_stored = Signal(int)  # image id

    def __init__(self, model: ModelSide, documents: DocumentController,
                 images: ImageListWidget, progress: JobProgressWidget, feedback: Feedback):
        super().__init__(model)
        self._m = model
        self._docs = documents
        self._images = images
        self._progress = progress
        self._fb = feedback
        self._ahead_job: Job | None = None
        self._ahead_failed = False
        self._batch_job: Job | None = None
        self._in_flight: dict[Job, set[int]] = {}  # images a prediction job still has to do
        self._when_idle: list[Callable[[], None]] = []
        self._failed: set[tuple[int, str]] = set()  # (image, key) that could not be predicted
        #: (image, key) whose prediction ahead the person cancelled (a large image in tiles):
        #: not started again ahead of time; Predict and Predict All still run it
        self._stopped: set[tuple[int, str]] = set()
        self._tiled_ahead: int | None = None  # the image on screen being predicted ahead in tiles
        progress.cancel_clicked.connect(self._on_progress_cancel_clicked)

    @property
    def batch_running(self) -> bool:
        return self._batch_job is not None

    def reset(self) -> None:
        """Another project: forget every job and failure (the jobs were cancelled)."""
        self._ahead_job = self._batch_job = None
        self._ahead_failed = False
        self._in_flight.clear()
        self._when_idle.clear()
        self._failed.clear()
        self._stopped.clear()
        self._tiled_ahead = None

    def predict_current(self) -> None:
        """Predict the current image now (again, if it was predicted before)."""
        image_id = self._images.current_id
        if image_id is not None and self._writable():
            self._m.with_model(lambda: self._predict_one(image_id))

    def _predict_one(self, image_id: int) -> None:
        if self._ahead_job is not None:
            self._ahead_job.cancel()
        targets = self._targets([image_id], force=True)
        job = self._submit_predict(targets, "predicting", priority=1)
        self._progress.track(job, "Predicting")
        name = location_name(targets[0][1])
        job.cancelled.connect(lambda: self._fb.say(
            f"Predicting {name} cancelled; it keeps the predictions it had", 8000))
        if self._batch_job is not None:
            self._fb.say("This image is predicted after the running prediction", 5000)

    def predict_unreviewed(self, *, again: bool = False, new: bool = True) -> None:
        """Predict every unreviewed image this model has not predicted yet (`new`), from the
        current image on, with progress and Cancel; each result is stored as it comes. With
        `again`, also those it predicted that no one has touched since (e.g. once its masks
        are refined)."""
        if self._writable():
            self._m.with_model(lambda: self._after_lookahead(
                lambda: self._start_batch(again=again, new=new)))

    def _start_batch(self, *, again: bool = False, new: bool = True) -> None:
        if self._batch_job is not None or self._m.state != "ready":
            return
        images = [im for im in self._docs.images() if im.status in UNREVIEWED]
        redo = {im.id for im in images if again and im.status == ImageStatus.PREDICTED}
        ids = [im.id for im in images if new or im.id in redo]
        current = self._images.current_id
        if current in ids:  # start where the user is: the current image first
            k = ids.index(current)
            ids = ids[k:] + ids[:k]
        targets = self._targets(ids, force=False, again=redo)
        key = self._m.info.key
        if not targets:
            if not new:
                return  # nothing to predict again
            self._fb.say(f"All {len(ids)} unreviewed images are predicted by {key} already",
                         8000)
            return
        job = self._submit_predict(targets, "predicting unreviewed images")
        self._batch_job = job
        skipped = len(ids) - len(targets)
        job.succeeded.connect(lambda s: self._on_batch_succeeded(s, skipped, key))
        job.cancelled.connect(lambda: self._fb.say("Prediction cancelled; the images done so "
                                                   "far are kept", 8000))
        job.finished.connect(self._on_batch_finished)
        self._progress.track(job, "Predicting")
        self._m.state_changed.emit()

    def _on_batch_succeeded(self, s: BatchSummary, skipped: int, key: str) -> None:
        msg = (f"Predicted {plural(s.predicted, 'image')} "
               f"({plural(s.instances, 'instance')}) in {s.seconds:.1f} s with {key}")
        if skipped:
            msg += f"; {plural(skipped, 'was', 'were')} predicted already"
        if s.failed:
            msg += f"; {s.failed} could not be read"
        self._fb.say(msg, 15000)

    def _on_batch_finished(self) -> None:
        self._batch_job = None
        self._m.state_changed.emit()
        self.lookahead()

    def on_current_image_changed(self, _image_id: int) -> None:
        self._ahead_failed = False
        self.lookahead()

    def lookahead(self) -> None:
        """Predict the current image and the next few, unless done already."""
        if (self._m.state != "ready" or self._batch_job is not None or self._ahead_failed
                or self._m.options.lookahead < 0
                or not self._writable(quiet=True) or self._images.current_id is None):
            return
        ids, nxt = [self._images.current_id], self._images.current_id
        for _ in range(self._m.options.lookahead):
            nxt = self._images.neighbor(nxt, +1)
            if nxt is None:
                break
            ids.append(nxt)
        targets = self._targets(ids, force=False, skip_reviewed=True, skip_stopped=True)
        if not targets:
            return
        if self._ahead_job is not None:
            self._ahead_job.cancel()  # the user moved on; its end starts the next look-ahead
            return
        job = self._submit_predict(targets, "predicting ahead")
        self._ahead_job = job
        job.failed.connect(lambda _msg: setattr(self, "_ahead_failed", True))  # no retry loop
        job.finished.connect(lambda j=job: self._on_ahead_finished(j))

    def _on_ahead_finished(self, job: Job) -> None:
        if job is not self._ahead_job:
            return
        self._ahead_job = None
        callbacks, self._when_idle = self._when_idle, []
        for callback in callbacks:
            callback()
        self.lookahead()

    def _after_lookahead(self, action: Callable[[], None]) -> None:
        """Run `action` once no look-ahead job runs (it is cancelled first), so that the two
        never predict the same image."""
        if self._ahead_job is None:
            action()
        else:
            self._when_idle.append(action)
            self._ahead_job.cancel()

    def _targets(self, ids: list[int], *, force: bool, skip_reviewed: bool = False,
                 again: set[int] | None = None, skip_stopped: bool = False,
                 ) -> list[tuple[int, str | RemoteImage]]:
        """(id, path) of the images to predict: with `force` all of them, else those this
        model has not predicted (or is predicting) yet, and those in `again`; with
        `skip_stopped` not those whose prediction ahead the person cancelled."""
        key = self._m.info.key if self._m.info else ""
        busy = set().union(*self._in_flight.values())
        out = []
        for image_id in ids:
            image = self._docs.image(image_id)
            redo = image_id in (again or ()) and image_id not in busy
            if not (force or redo) and (image_id in busy
                                        or self._docs.predicted_by(image_id, key)
                                        or (image_id, key) in self._failed
                                        or (skip_stopped and (image_id, key) in self._stopped)
                                        or (skip_reviewed and image.status == "reviewed")):
                continue
            out.append((image_id, self._docs.image_file(image)))
        return out

    def _submit_predict(self, targets: list[tuple[int, str | RemoteImage]], name: str,
                        priority: int = 0) -> Job:
        gen = self._m.generation
        session: Session = self._m.session  # called only by the job, on the model lane
        # The review queue's uncertainty costs a second, mirrored pass: every image but the
        # one on screen, whose prediction the user is waiting for, gets it.
        uncertain = frozenset(i for i, _path in targets if i != self._images.current_id)
        job = self._m.submit(predict_job, session, targets, self._refinement(), uncertain,
                             self._m.tiles, name=name, priority=priority)
        self._in_flight[job] = {i for i, _path in targets}
        job.finished.connect(lambda j=job: self._in_flight.pop(j, None))
        job.yielded.connect(lambda result, j=job: self._on_yielded(result, j, gen))
        job.failed.connect(lambda msg: gen == self._m.generation and self._fb.report(msg))
        return job

    def _refinement(self) -> Refinement | None:
        """How the loaded model's masks are refined in this project (None: not at all)."""
        info = self._m.info
        if info is None or not self._docs.is_open:
            return None
        try:
            method = refinement_for(self._docs.project, info.key)
        except MrcnnError as exc:
            log.warning("predicted masks are not refined: %s", exc)
            return None
        return None if method is None else Refinement(info.key, method)

    def _on_yielded(self, result: ImagePrediction | PredictFailure | TilesPredicted, job: Job,
                    gen: int) -> None:
        if isinstance(result, TilesPredicted):
            self._on_tiles(result, job)
            return
        self._in_flight.get(job, set()).discard(result.image_id)
        self._on_prediction(result, gen)

    def _on_tiles(self, tiles: TilesPredicted, job: Job) -> None:
        """A large image predicted ahead of time in tiles, on screen: its progress is shown,
        with Cancel (a tiled image takes minutes on a CPU), unless another job's is."""
        if (job is self._ahead_job and tiles.image_id == self._images.current_id
                and not self._progress.busy):
            self._tiled_ahead = tiles.image_id
            self._progress.track(job, "Predicting")
            job.finished.connect(lambda: setattr(self, "_tiled_ahead", None))

    def _on_progress_cancel_clicked(self, job: Job) -> None:
        if job is self._ahead_job and self._tiled_ahead is not None and self._m.info:
            image_id = self._tiled_ahead
            self._stopped.add((image_id, self._m.info.key))
            name = location_name(self._docs.image_file(self._docs.image(image_id)))
            self._fb.say(f"Stopped predicting {name}; Predict (Ctrl+R) runs it again", 8000)

    def _on_prediction(self, result: ImagePrediction | PredictFailure, gen: int) -> None:
        if gen != self._m.generation or not self._writable(quiet=True):
            return
        key = self._m.info.key if self._m.info else ""
        if isinstance(result, PredictFailure):
            self._failed.add((result.image_id, key))
            self._fb.report(result.message)
            return
        try:
            stored = self._docs.store_named_predictions(
                result.image_id, result.model_key, result.items,
                model_version_id=result.version_id, uncertainty=result.uncertainty,
                keypoints=result.keypoints)
        except MrcnnError as exc:
            self._failed.add((result.image_id, result.model_key))
            self._fb.report(f"Predictions not stored: {exc}")
            return
        if stored.set_aside:
            log.info("%d detections of classes the project has no category for set aside",
                     stored.set_aside)
        self.predictions_stored.emit(result.image_id)

    def _writable(self, quiet: bool = False) -> bool:
        ok = self._docs.is_open and not self._docs.read_only
        if not ok and not quiet:
            self._fb.say("Open a project for writing to store predictions")
        return ok
