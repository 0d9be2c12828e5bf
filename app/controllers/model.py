"""The model side of the window: which model is loaded (once, in the background), where it
runs, and what to say when there is none. What gets predicted when is `PredictionScheduler`'s
job (`app/controllers/prediction_scheduler.py`).

Threading: the loaded model lives in a child process (`mrcnn.serving.process.ModelProcess`:
importing torch in this process would hold the GIL, and so freeze the window, for up to half
a second at a time). Only the "model" lane's jobs (`app/controllers/model_jobs.py`) call it; that
lane has
one thread, so jobs run one after another. This object lives on the GUI thread: it reads the
project (which images, which are already predicted by which model key) and stores results
through the document controller. Only plain data crosses: paths in, `ModelInfo` /
`ImagePrediction` out. Whether any weights exist is checked here without torch, so a machine
without weights never starts the model process just to learn that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from app import dialogs
from app.controllers.commands import Feedback
from app.controllers.model_jobs import LoadResult, load_model_job
from app.controllers.prediction_scheduler import PredictionScheduler
from app.controllers.project import DocumentController
from app.panels.image_list import ImageListWidget
from app.panels.progress import JobProgressWidget
from app.settings import UiState
from app.worker import Job, JobRunner
from mrcnn.serving.process import ModelProcess
from mrcnn.serving.session import (
    STORED_SCORE_FLOOR,
    ModelInfo,
    ModelRequest,
    Session,
    cached_coco_weights,
    no_weights_message,
    with_device,
)
from mrcnn.serving.tiles import TILES_AUTO, TILES_OFF, TileSetting

log = logging.getLogger(__name__)

STATE_TEXT = {"none": "no model loaded", "loading": "loading…", "missing": "no weights",
              "failed": "failed to load"}


@dataclass(frozen=True)
class ModelOptions:
    """How the window runs models. Defaults suit people; tests pass small inputs."""

    device: str | None = None  # None: CUDA, then MPS, then CPU
    amp: bool = True
    max_detections: int = 100
    score_floor: float = STORED_SCORE_FLOOR  # stored down to this; the slider hides more
    lookahead: int = 3  # images after the current one predicted ahead of time (-1: not
    #                     even the current one)
    auto_load: bool = True  # load the project's model (or COCO's) once a project is open
    auto_load_delay_ms: int = 400  # let the first image and thumbnails go first
    build_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"min_size": 64}


class ModelController(QObject):
    """Loads the model, runs predictions in the background, stores their results."""

    state_changed = Signal()  # state, info, message or busy changed
    model_wanted = Signal()  # the user asked for a prediction, but there is no model

    def __init__(self, window: QWidget, runner: JobRunner, progress: JobProgressWidget,
                 documents: DocumentController, images: ImageListWidget, ui: UiState,
                 feedback: Feedback, options: ModelOptions | None = None,
                 session: Session | None = None):
        super().__init__(window)
        self._window = window
        self._runner = runner
        self._progress = progress
        self._docs = documents
        self._images = images
        self._ui = ui
        self._fb = feedback
        self.options = options or ModelOptions()
        # only model jobs call the session, on the model lane; a session passed in (tests
        # share one model process) is not ours to close
        self._own_process: ModelProcess | None = None
        if session is None:
            session = self._own_process = ModelProcess()
        self.session: Session = session
        self.state = "none"  # none | loading | ready | missing | failed
        self.info: ModelInfo | None = None  # the loaded model
        self.message = ""  # why there is no model (NoWeightsError's options, or the error)
        self.generation = 0  # bumped per project: late results of another one are dropped
        self._after_load: list[Callable[[], None]] = []
        self._jobs: set[Job] = set()
        self.predictions = PredictionScheduler(self, documents, images, progress, feedback)
        self.predictions_stored = self.predictions.predictions_stored  # (image id)
        self._auto_timer = QTimer(self, singleShot=True)
        self._auto_timer.timeout.connect(self._on_auto_timer_timeout)

    def connect(self, actions: dict) -> None:
        actions["predict_image"].triggered.connect(self.predictions.predict_current)
        actions["predict_unreviewed"].triggered.connect(self.predictions.predict_unreviewed)
        actions["load_checkpoint"].triggered.connect(self.choose_checkpoint)
        actions["download_coco"].triggered.connect(self.download_coco)
        tiled = actions["tiled_prediction"]
        tiled.setChecked(self.tiles != TILES_OFF)
        tiled.toggled.connect(self.set_tiled)

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        """A model job (load or prediction) is queued or running."""
        return bool(self._jobs)

    @property
    def batch_running(self) -> bool:
        return self.predictions.batch_running

    @property
    def tiles(self) -> TileSetting:
        """Which images prediction jobs tile (`mrcnn.serving.tiles`): the user's setting, kept
        in the UI state."""
        return self._ui.tiles()

    def set_tiled(self, on: bool) -> None:
        """Model ▸ Tiled Prediction for Large Images: "auto" when on, "off" when off."""
        self._ui.set_tiles(TILES_AUTO if on else TILES_OFF)

    @property
    def project_open(self) -> bool:
        return self._docs.is_open

    def describe(self) -> str:
        """For the status bar: "Model: v2 (project) · r18", "Model: loading…"."""
        if self.state == "ready" and self.info is not None:
            text = f"Model: {self.info.source} · {self.info.preset}"
        else:
            text = f"Model: {STATE_TEXT.get(self.state, self.state)}"
        return text + (" · predicting…" if self.busy and self.state == "ready" else "")

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit()

    def reset(self) -> None:
        """Another project (or none) is open: stop model work, forget the model, and load the
        new project's model shortly (after its first image had the machine to itself)."""
        self.generation += 1
        self._runner.cancel_all("model")
        self._auto_timer.stop()
        self._after_load.clear()
        self.predictions.reset()
        if self.info is not None:
            self._runner.submit(lambda _ctx, s: s.unload(), self.session, lane="model",
                                name="unloading the model")
        self.info, self.message = None, ""
        self._set_state("none")
        d = self._docs
        if self.options.auto_load and d.is_open and not d.read_only:
            self._auto_timer.start(self.options.auto_load_delay_ms)

    def _on_auto_timer_timeout(self) -> None:
        if self.state == "none" and self._docs.is_open:
            self.load_default()

    # ------------------------------------------------------------------ loading
    def _request(self, source: str, **kwargs) -> ModelRequest:
        o = self.options
        return ModelRequest(source, device=o.device, amp=o.amp, score_threshold=o.score_floor,
                            max_detections=o.max_detections, build_kwargs=dict(o.build_kwargs),
                            **kwargs)

    def load_default(self) -> Job | None:
        """The project's active model version, else the checkpoint file last loaded by hand
        in this project (while the file is there), else torchvision's COCO weights when they
        are in the torch cache (as `mrcnn predict` without --model); else no model, and the
        banner says what to do."""
        if not self._docs.is_open:
            return None
        active = self._docs.active_version()
        remembered = self._remembered_file()
        if active is not None:
            version, path = active
            request = self._request(str(path), preset=version.preset, version_id=version.id,
                                    version_name=version.name)
        elif remembered is not None:
            request = self._request(remembered)
        elif cached_coco_weights() is not None:
            request = self._request("coco")
        else:
            self._after_load.clear()
            self.message = no_weights_message(
                "the project has no model version yet and torchvision's COCO weights are "
                "not in the torch cache")
            self._set_state("missing")
            return None
        return self._load(request, None)

    def shutdown(self) -> None:
        """The window closes: stop the model process (a running prediction ends at once)."""
        self.generation += 1
        self._auto_timer.stop()
        if self._own_process is not None:
            self._own_process.close()

    def _remembered_file(self) -> str | None:
        """The checkpoint file this project was last given by hand, if it is still there
        (one that is gone is forgotten)."""
        folder = self._docs.project.folder
        path = self._ui.model_file(folder)
        if path is not None and not Path(path).is_file():
            self._ui.set_model_file(folder, None)
            return None
        return path

    def load_file(self, path: str | Path) -> Job:
        """Load a checkpoint file the user picked (it replaces the model when it loads)."""
        return self._load(self._request(str(path)), f"Loading {Path(path).name}")

    def choose_checkpoint(self) -> None:
        path = dialogs.choose_open_file(self._window, "Load a model checkpoint",
                                        self._ui.last_dir("models"),
                                        "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self._ui.set_last_dir("models", Path(path).parent)
            self.load_file(path)

    def download_coco(self) -> Job:
        """Download torchvision's COCO weights (progress, Cancel; fails fast offline)."""
        return self._load(self._request("coco", allow_download=True), "Downloading COCO weights")

    def _load(self, request: ModelRequest, title: str | None) -> Job:
        gen = self.generation
        had_model = self.info is not None
        if not had_model:
            self._set_state("loading")
        job = self.submit(load_model_job, self.session, request, name="loading the model")
        job.succeeded.connect(lambda r: self._on_load_succeeded(r, gen, request))
        job.failed.connect(lambda msg: self._on_load_failed(msg, gen, box=title is not None,
                                                            request=request))
        job.cancelled.connect(lambda: self._on_load_failed("Loading the model was cancelled",
                                                           gen, box=False))
        if title:
            self._progress.track(job, title, unit="MB")  # a download's progress
        return job

    def _on_load_succeeded(self, result: LoadResult, gen: int, request: ModelRequest) -> None:
        if gen != self.generation:
            return
        if result.info is None:
            self._after_load.clear()
            self.message = result.no_weights
            first = result.no_weights.splitlines()[0] if result.no_weights else "no weights"
            if request.allow_download:
                self._fb.report(f"COCO weights could not be downloaded — {first}")
            self._set_state("ready" if self.info is not None else "missing")
            return
        info = self.info = result.info
        self.message = ""
        if info.kind == "checkpoint" and request.version_id is None and self._docs.is_open:
            self._ui.set_model_file(self._docs.project.folder, request.source)
        self._fb.say(f"Model {info.source} ({info.preset}) ready on {info.device}", 8000)
        self._set_state("ready")
        actions, self._after_load = self._after_load, []
        for action in actions:
            action()
        self.predictions.lookahead()

    def _on_load_failed(self, message: str, gen: int, *, box: bool,
                        request: ModelRequest | None = None) -> None:
        if gen != self.generation:
            return
        d = self._docs
        if (request is not None and d.is_open
                and self._ui.model_file(d.project.folder) == request.source):
            self._ui.set_model_file(d.project.folder, None)  # not tried again at each open
        self._after_load.clear()
        self._fb.report(message, box=box, title="Cannot load the model")
        if self.info is None:
            self.message = message
            self._set_state("failed")
        else:
            self.state_changed.emit()

    def with_model(self, action: Callable[[], None]) -> None:
        """Run `action` now if a model is ready, else once it is loaded."""
        if self.state == "ready":
            action()
            return
        self._after_load.append(action)
        if self.state in ("none", "missing") and self.load_default() is not None:
            return  # loading (weights may have appeared since the last look)
        if self.state in ("missing", "failed"):
            self._after_load.clear()
            self._fb.say("No model to predict with: load a checkpoint, download COCO "
                         "weights, or label by hand (see the banner)", 10000)
            self.model_wanted.emit()

    # ------------------------------------------------------------------ jobs
    def submit(self, fn, *args, name: str, priority: int = 0) -> Job:
        """Run a job in the model lane (one at a time), counted in `busy`."""
        job = self._runner.submit(fn, *args, lane="model", name=name, priority=priority)
        self._jobs.add(job)
        job.finished.connect(lambda j=job: self._on_job_finished(j))
        self.state_changed.emit()
        return job

    def _on_job_finished(self, job: Job) -> None:
        self._jobs.discard(job)
        now = self.session.info  # where the model runs may change while predicting
        if self.info is not None and now is not None and now.key == self.info.key:
            self.info = with_device(self.info, now.device)
        self.state_changed.emit()
