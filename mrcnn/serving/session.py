"""A model loaded once and kept for predicting images one at a time (a GUI's background
worker, a watch-folder script). Plain data in and out: no project store, no Qt.

    session = ModelSession()
    info = session.load(ModelRequest(source="models/v3.pt", version_id=3, version_name="v3"))
    result = session.predict_path(image_id, path)   # ImagePrediction: plain masks and names

`Session` is the role: `ModelSession` plays it in this process, `mrcnn.serving.process.
ModelProcess` in a child process (what a GUI uses); callers type against `Session`.

The caller resolves what a project knows (its active version's file, name and id) before
loading, and stores the returned items itself (`Project.replace_predictions`, mapping
category names to ids) in the thread that owns the project. torch is imported only when a
model is loaded, so importing this module stays cheap.

Model keys are those of the command line: one rule, `mrcnn.model.keys.model_key` (the version
name "v3", "coco-<preset>", "file-<sha256 prefix>", "scratch"). Predictions are stored per
(image, key), so the same weights never predict the same image twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mrcnn.errors import ModelCancelled
from mrcnn.keypoints import Points
from mrcnn.masks import Rle
from mrcnn.model.keys import model_key
from mrcnn.model.weight_files import (  # noqa: F401  (re-exported for the GUI side)
    COCO_WEIGHT_FILES,
    DEFAULT_COCO_PRESET,
    cached_coco_weights,
    no_weights_message,
    torch_hub_dir,
)
from mrcnn.serving.tiles import TILES_AUTO, TileSetting

if TYPE_CHECKING:  # torch is imported only when a model loads
    from mrcnn.model.predictor import Predictor

log = logging.getLogger(__name__)

#: Predictions are stored down to this score; a viewer hides those below its own threshold.
STORED_SCORE_FLOOR = 0.05


@dataclass(frozen=True)
class ModelRequest:
    """Which weights to load and how to run them.

    `source`: a checkpoint path, "coco" (torchvision's COCO weights), or "scratch".
    `version_id` / `version_name`: set when the path is a project's model version.
    `build_kwargs` go to `build_model` (e.g. {"min_size": 64} for a small, fast input size).
    """

    source: str
    preset: str | None = None
    version_id: int | None = None
    version_name: str | None = None
    categories: tuple[str, ...] | None = None
    allow_download: bool = False
    device: str | None = None  # "cuda", "mps", "cpu"; None: the best available
    amp: bool = True
    score_threshold: float = STORED_SCORE_FLOOR
    max_detections: int = 100
    build_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is, for people and for storing its predictions."""

    key: str  # the model key predictions are stored under
    source: str  # "v3 (project)", "COCO weights (torch cache)", "file x.pt", ...
    preset: str
    kind: str  # "version" | "checkpoint" | "coco" | "scratch"
    version_id: int | None
    categories: tuple[str, ...]  # name of model label i + 1
    device: str  # DeviceChoice.describe(), e.g. "CPU — no CUDA device found · bf16"
    path: str | None = None
    load_seconds: float = 0.0


@dataclass(frozen=True)
class ImagePrediction:
    """One image's detections as plain data: (category name, mask, score), best first."""

    image_id: int
    model_key: str
    version_id: int | None
    items: list[tuple[str, Rle, float]]
    seconds: float
    #: how unsure the model is about the image (`mrcnn.model.uncertainty`), when asked for
    uncertainty: float | None = None
    #: a model with a keypoint head: each item's points (x, y, v per keypoint name of its
    #: category; None for a category without keypoints), for `store_named_predictions(
    #: keypoints=)`; None for a model without one
    keypoints: list[Points | None] | None = None
    #: where the model ran (`ModelInfo.device`'s text), which may change after loading: a
    #: GPU out of memory falls back to the CPU, the backbone moves to ONNX Runtime
    device: str | None = None


@dataclass(frozen=True)
class BoxAnswer:
    """The model's mask for a box a person drew: category name, mask, class score, the box
    the mask was taken in (xyxy pixels, after the box regressor), whether the image's
    features came from the cache (no backbone run), and the time it took."""

    image_id: int
    model_key: str
    category: str
    rle: Rle
    score: float
    box: tuple[float, float, float, float]
    cached: bool
    seconds: float


@runtime_checkable
class Session(Protocol):
    """A loaded model to predict images with, one call at a time: `ModelSession` (in this
    process) or `ModelProcess` (in a child process). Plain data in and out."""

    @property
    def info(self) -> ModelInfo | None:
        """The loaded model (None before a load)."""
        ...

    def load(self, request: ModelRequest,
             progress: Callable[[int, int | None], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> ModelInfo:
        """Load the requested weights; the previous model stays when this fails. Download
        `progress` in bytes; `should_cancel` is asked between chunks (ModelCancelled)."""
        ...

    def predict_path(self, image_id: int, path: str | Path, uncertainty: bool = False,
                     tiles: TileSetting = TILES_AUTO, *,
                     should_cancel: Callable[[], bool] | None = None,
                     progress: Callable[[int, int | None], None] | None = None
                     ) -> ImagePrediction:
        """Read an image file and predict it (ImageReadError when it is unreadable). With
        `uncertainty`, its mirror image too (one extra pass) for `ImagePrediction.uncertainty`.
        `tiles`: "auto", "off" or a tile size (`mrcnn.serving.tiles`); a tiled image reports
        `progress` per pass and asks `should_cancel` between them (ModelCancelled)."""
        ...

    def box_mask(self, image_id: int, path: str | Path,
                 box: tuple[float, float, float, float]) -> BoxAnswer:
        """The model's mask for a box (xyxy pixels) on an image, from its kept features when
        it was predicted lately (else the file is read and the backbone runs once)."""
        ...

    def unload(self) -> None:
        """Free the model."""
        ...


class ModelSession:
    """Holds one loaded model and its predictor. Safe to call from any one thread at a time
    (a lock serialises calls); loading replaces the model only when it succeeds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._predictor: Predictor | None = None
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def loaded(self) -> bool:
        return self._info is not None

    def load(self, request: ModelRequest,
             progress: Callable[[int, int | None], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> ModelInfo:
        """Load the requested weights (downloading COCO weights if allowed, with `progress`
        in bytes; `should_cancel` is asked between chunks and raises ModelCancelled).
        Raises NoWeightsError / CheckpointError; the previous model then stays."""
        from mrcnn.model.device import choose_device
        from mrcnn.model.predictor import Predictor
        from mrcnn.model.weights import load_model

        def report(done: int, total: int | None) -> None:
            if should_cancel is not None and should_cancel():
                raise ModelCancelled("loading the model was cancelled")
            if progress is not None:
                progress(done, total)

        start = time.monotonic()
        with self._lock:
            loaded = load_model(source=request.source, preset=request.preset,
                                categories=list(request.categories) if request.categories
                                else None,
                                allow_download=request.allow_download, progress=report,
                                build_kwargs=request.build_kwargs)
            choice = choose_device(request.device, amp=request.amp)
            predictor = Predictor(loaded.model, device=choice,
                                  score_threshold=request.score_threshold,
                                  max_detections=request.max_detections,
                                  # the session owns this model
                                  fold_batchnorm=True, onnx_backbone=True)
            version_id = request.version_id if request.version_id is not None \
                else loaded.version_id
            kind = "version" if request.version_name else loaded.kind
            key = model_key(kind=kind, preset=loaded.preset, version_name=request.version_name,
                            path=loaded.path)
            source = f"{request.version_name} (project)" if request.version_name \
                else loaded.source
            info = ModelInfo(key, source, loaded.preset, kind, version_id,
                             tuple(loaded.categories), choice.describe(),
                             str(loaded.path) if loaded.path else None,
                             time.monotonic() - start)
            self._predictor, self._info = predictor, info
        log.info("model %s (%s) ready on %s in %.1f s", info.key, info.source, info.device,
                 info.load_seconds)
        return info

    def unload(self) -> None:
        with self._lock:
            self._predictor, self._info = None, None

    def predict_path(self, image_id: int, path: str | Path, uncertainty: bool = False,
                     tiles: TileSetting = TILES_AUTO, *,
                     should_cancel: Callable[[], bool] | None = None,
                     progress: Callable[[int, int | None], None] | None = None
                     ) -> ImagePrediction:
        """Load an image file and predict it (see `Session.predict_path`). Raises
        ImageReadError for unreadable files and RuntimeError when no model is loaded."""
        from mrcnn.io.images import load_image

        return self.predict_array(image_id, load_image(path), uncertainty, tiles,
                                  should_cancel=should_cancel, progress=progress)

    def predict_array(self, image_id: int, rgb, uncertainty: bool = False,
                      tiles: TileSetting = TILES_AUTO, *,
                      should_cancel: Callable[[], bool] | None = None,
                      progress: Callable[[int, int | None], None] | None = None
                      ) -> ImagePrediction:
        """Predict an (H, W, 3) uint8 RGB image: (category name, RLE, score) per detection
        with a non-empty mask, highest score first; with `uncertainty`, how unsure the
        model is about it (one extra, mirrored pass). In tiles when `tiles` says so for its
        size (`mrcnn.serving.tiled_predict.predict_image`)."""
        from mrcnn.model.keypoint_head import keypoint_layout_of
        from mrcnn.serving.predict import prediction_points
        from mrcnn.serving.tiled_predict import predict_image
        from mrcnn.serving.tiles import mask_rles

        with self._lock:
            if self._predictor is None or self._info is None:
                raise RuntimeError("no model is loaded")
            info = self._info
            start = time.monotonic()
            pred = predict_image(self._predictor, rgb, tiles=tiles, key=image_id,
                                 uncertainty=uncertainty, should_cancel=should_cancel,
                                 on_progress=progress)
            self._info = with_device(info, self._predictor.describe())
            device = self._info.device
            layout = keypoint_layout_of(self._predictor.model)
        points = prediction_points(pred, info.categories, layout)
        items, kept_points = [], []  # a tiled image's masks are encoded from their crops
        for label, score, rle, kp in zip(pred.labels, pred.scores, mask_rles(pred.masks),
                                         points, strict=True):
            if rle is not None:
                items.append((info.categories[int(label) - 1], rle, float(score)))
                kept_points.append(kp)
        return ImagePrediction(image_id, info.key, info.version_id, items,
                               time.monotonic() - start, pred.uncertainty,
                               kept_points if layout else None, device)


    def box_mask(self, image_id: int, path: str | Path,
                 box: tuple[float, float, float, float]) -> BoxAnswer:
        """See `Session.box_mask`. Raises ImageReadError when the file must be read and
        cannot be, MaskToolError for a box off the image, RuntimeError with no model."""
        from mrcnn.io.images import load_image
        from mrcnn.masks import encode

        with self._lock:
            if self._predictor is None or self._info is None:
                raise RuntimeError("no model is loaded")
            info, predictor = self._info, self._predictor
            start = time.monotonic()
            image = None if image_id in predictor.features else load_image(path)
            answer, cached = predictor.box_mask(image_id, image, box)
        return BoxAnswer(image_id, info.key, info.categories[answer.label - 1]
                         if answer.label else "", encode(answer.mask), answer.score,
                         answer.box, cached, time.monotonic() - start)


def with_device(info: ModelInfo, device: str) -> ModelInfo:
    """The same info with the device the predictor now runs on (it may have fallen back to
    the CPU after running out of GPU memory, or moved its backbone to ONNX Runtime)."""
    if device == info.device:
        return info
    from dataclasses import replace

    return replace(info, device=device)
