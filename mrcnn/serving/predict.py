"""Predicting project images and storing the results as pending instances."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from mrcnn import masks
from mrcnn.coco.ids import file_category_ids, file_image_ids
from mrcnn.errors import ImageReadError, ModelCancelled
from mrcnn.io.images import load_image
from mrcnn.keypoints import Points
from mrcnn.model.convert import coco_results
from mrcnn.model.device import DeviceChoice
from mrcnn.model.keypoint_head import Layout, detection_points, keypoint_layout_of
from mrcnn.model.predictor import Prediction, Predictor
from mrcnn.serving.named_predictions import category_ids, store_named_predictions
from mrcnn.serving.refinement import refine_masks, refinement_for
from mrcnn.serving.tiled_predict import predict_image
from mrcnn.serving.tiles import TILES_AUTO, CropMasks, TileSetting, mask_rles
from mrcnn.store.project import Project
from mrcnn.store.status import UNREVIEWED

log = logging.getLogger(__name__)


@dataclass
class PredictReport:
    predicted: int = 0
    cached: int = 0  # already predicted by this model: not recomputed
    instances: int = 0
    #: class name → predictions kept aside as a category suggestion (`named_predictions`)
    suggested: dict[str, int] = field(default_factory=dict)
    ignored: int = 0  # predictions of class names the project ignores
    failed: list[tuple[str, str]] = field(default_factory=list)  # (image path, reason)
    cancelled: bool = False
    device: str = ""
    seconds: float = 0.0


def select_images(project: Project, which: str | Sequence[int]) -> list[int]:
    """"all", "unreviewed", or explicit image ids."""
    if which == "all":
        return [im.id for im in project.images()]
    if which == "unreviewed":
        return [im.id for im in project.images(UNREVIEWED)]
    if isinstance(which, str):
        raise ValueError(f"images must be 'all', 'unreviewed' or a list of ids, got {which!r}")
    return list(which)


class CocoResults:
    """Detections gathered in the COCO results format, numbered as the project's COCO files
    number images and categories (`mrcnn.coco.ids`: the ids of the file they were imported
    from), so the results score directly against the user's ground-truth file. A model class
    goes to the category `mrcnn.serving.named_predictions` stores it under; classes the
    project ignores or has no category for are left out, as they are from the project."""

    def __init__(self, project: Project, categories: Sequence[str],
                 layout: Layout | None = None):
        """`categories[i]` names model label i + 1; `layout`: the model's keypoint head's
        (its detections' points are written too)."""
        self._categories = list(categories)
        self._layout = layout
        self._image_ids = file_image_ids(project)
        by_name = category_ids(project, categories)
        file_ids = file_category_ids(project)
        self._category_of = {label: file_ids[cid] for label, name in enumerate(categories, 1)
                             if (cid := by_name[name]) is not None}
        self.results: list[dict] = []

    def add(self, image_id: int, prediction: Prediction) -> None:
        """Add the detections of the project's image `image_id`."""
        crops = prediction.masks
        rles = ([crops.rle(i) for i in range(len(crops))] if isinstance(crops, CropMasks)
                else None)  # a tiled image's, from their crops
        self.results += coco_results(
            prediction, self._image_ids[image_id], self._category_of, rles=rles,
            keypoints=prediction_points(prediction, self._categories, self._layout))


def prediction_points(prediction: Prediction, categories: Sequence[str],
                      layout: Layout | None) -> list[Points | None]:
    """Each detection's keypoints for its category (None: no keypoint head, a category
    without keypoints, or a prediction without them, e.g. a tiled one)."""
    if not layout or prediction.keypoints is None:
        return [None] * len(prediction)
    return [detection_points(kp, categories[int(label) - 1], layout)
            for kp, label in zip(prediction.keypoints, prediction.labels, strict=True)]


def predict_project(project: Project, model: nn.Module, categories: Sequence[str], *,
                    model_key: str, image_ids: Sequence[int], model_version_id: int | None = None,
                    device: DeviceChoice | None = None, score_threshold: float = 0.05,
                    max_detections: int = 100, force: bool = False,
                    should_cancel: Callable[[], bool] | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    on_prediction: Callable[[int, Prediction], None] | None = None,
                    uncertainty: bool = True, tiles: TileSetting = TILES_AUTO,
                    tile_progress: Callable[[int, int], None] | None = None,
                    fold_batchnorm: bool = False, onnx_backbone: bool = False
                    ) -> PredictReport:
    """Predict images and store each image's detections as pending instances (one transaction
    per image). Images this `model_key` already predicted are skipped unless `force`.
    Model label i is the class named categories[i - 1]; which project category that is (or
    whether it is kept aside as a suggestion) is `mrcnn.serving.named_predictions`' rule.
    `on_prediction(image_id, prediction)` receives every image's detections as the model
    gave them (e.g. `CocoResults.add`); with it, images already predicted are run again for
    it, but their stored predictions are left as they are (still counted as `cached`).
    Stored masks are refined with image evidence when the project's refinement decision is
    on for `model_key` (`mrcnn.serving.refinement`); `on_prediction` gets them unrefined.
    With `uncertainty` each image's mirror image is predicted too (one extra pass) and how
    much the two disagree is stored for the review queue (`mrcnn.model.uncertainty`).
    `tiles` ("auto", "off" or a tile size) says which images are predicted in tiles
    (`mrcnn.serving.tiles`: "auto" those longer than twice the model's longest input and
    than 2666 px);
    `tile_progress(done, total)` follows the passes of a tiled image, and cancellation is
    checked between them too (the image being predicted is then not stored).
    A model with a keypoint head stores each detection's points with it (its category's
    slots, v = 2: `prediction_points`); a tiled image's detections have none.
    `fold_batchnorm`, `onnx_backbone`: the caller hands the model over for prediction only
    (`Predictor`)."""
    predictor = Predictor(model, device=device, score_threshold=score_threshold,
                          max_detections=max_detections, fold_batchnorm=fold_batchnorm,
                          onnx_backbone=onnx_backbone)
    layout = keypoint_layout_of(model)  # a keypoint head's points are stored too
    refinement = refinement_for(project, model_key)  # measured on val, on for this model
    report = PredictReport(device=predictor.choice.describe())
    start = time.monotonic()
    for done, image_id in enumerate(image_ids, 1):
        if should_cancel and should_cancel():
            report.cancelled = True
            break
        cached = not force and project.predicted_by(image_id, model_key)
        report.cached += cached
        if not cached or on_prediction is not None:
            record = project.image(image_id)
            try:
                image = load_image(project.image_source(record))
            except ImageReadError as exc:
                report.failed.append((record.path, exc.reason))
                continue
            try:
                pred = predict_image(predictor, image, tiles=tiles, uncertainty=uncertainty,
                                     should_cancel=should_cancel, on_progress=tile_progress)
            except ModelCancelled:
                report.cancelled = True
                break
            if on_prediction is not None:
                on_prediction(image_id, pred)
        if not cached:
            # one mask at a time: a tiled image's are encoded from their crops, or pasted
            # from them one by one to be refined
            rles = mask_rles(pred.masks) if refinement is None else (
                masks.encode(m) if m.any() else None
                for m in (refine_masks(image, [m], refinement)[0] for m in pred.masks))
            points = prediction_points(pred, categories, layout)
            items = [(categories[int(label) - 1], rle, float(score), kp)
                     for label, score, rle, kp in zip(pred.labels, pred.scores, rles, points,
                                                      strict=True)
                     if rle is not None]
            stored = store_named_predictions(project, image_id, model_key, items,
                                             model_version_id=model_version_id,
                                             uncertainty=pred.uncertainty)
            report.predicted += 1
            report.instances += len(stored.instances)
            report.ignored += stored.ignored
            for name, n in stored.suggested.items():
                report.suggested[name] = report.suggested.get(name, 0) + n
        if progress:
            progress(done, len(image_ids))
    report.seconds = time.monotonic() - start
    report.device = predictor.describe()
    return report
