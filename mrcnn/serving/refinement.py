"""Whether a project's predicted masks are refined with image evidence: measured on the
project's validation split, kept in the project, applied where predictions are stored.

`measure_refinement` runs a model's masks (any `predict(image_id, image) -> masks` function:
the model in this process, the model process, or the predictions already stored) on the
reviewed validation images, matches each accepted instance to the predicted mask that overlaps
it most (IoU >= 0.5, one to one, whatever the category: this measures the masks' outlines),
and asks `mrcnn.editing.refine.decide_refinement` whether refining raises their mean IoU.
The decision is kept in the project (`save_refinement`) for the model it was measured on;
`refinement_for` says which method to apply to that model's predictions (None: leave them as
they are), so a new model version predicts unrefined until it is measured.

The window reads the project on its GUI thread only: `validation_set` reads what measuring
needs as plain data there, `measure_validation` measures it in a background job, and
`refine_items` refines one image's detections (name, RLE, score) as a prediction job gives them.

Torch-free: the window calls it (`python -m mrcnn refine-check` does too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrcnn import masks
from mrcnn.editing.refine import (
    METHODS,
    MIN_GAIN,
    Method,
    RefinementDecision,
    RefinementPair,
    decide_refinement,
    mask_iou,
    refine_mask,
)
from mrcnn.errors import ImageReadError, ProjectError
from mrcnn.io.images import load_image
from mrcnn.io.remote import RemoteImage
from mrcnn.masks import Rle
from mrcnn.store.project import Project
from mrcnn.store.records import ImageStatus, InstanceState, Split

#: The project setting (`Project.meta`) that holds the decision, as JSON.
META_KEY = "mask_refinement"
#: A predicted mask is matched to an accepted instance when their IoU reaches this.
MATCH_IOU = 0.5

#: The masks a model predicts for one image: (image id, (H, W, 3) uint8 RGB) -> (H, W) masks.
PredictMasks = Callable[[int, np.ndarray], Sequence[np.ndarray]]


def validation_image_ids(project: Project) -> list[int]:
    """The reviewed images of the validation split, in id order."""
    return [im.id for im in project.images(ImageStatus.REVIEWED) if im.split == Split.VAL]


def match_masks(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray], *,
                min_iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """(predicted index, truth index) pairs, one to one, highest IoU first, each with IoU of
    at least `min_iou`."""
    scored = sorted(((mask_iou(p, t), i, j) for i, p in enumerate(predicted)
                     for j, t in enumerate(truth)), key=lambda s: -s[0])
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for iou, i, j in scored:
        if iou < min_iou:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


@dataclass(frozen=True)
class ValidationImage:
    """One reviewed validation image as plain data: what measuring refinement needs of it."""

    image_id: int
    path: str  # as the project lists it (for messages)
    file: str | RemoteImage  # where to read it (a remote image through the local cache)
    accepted: tuple[Rle, ...]  # its accepted instances' masks


def validation_set(project: Project,
                   image_ids: Sequence[int] | None = None) -> list[ValidationImage]:
    """The reviewed validation images (or `image_ids`) with their accepted masks, read from
    the project at once (plain data another thread may measure)."""
    out = []
    for image_id in validation_image_ids(project) if image_ids is None else image_ids:
        record = project.image(image_id)
        out.append(ValidationImage(
            image_id, record.path, _file(project.image_source(record)),
            tuple(inst.rle for inst in project.instances(image_id,
                                                         state=InstanceState.ACCEPTED))))
    return out


def _file(source: Path | RemoteImage) -> str | RemoteImage:
    return source if isinstance(source, RemoteImage) else str(source)


def pairs_of(images: Iterable[ValidationImage], predict: PredictMasks, *,
             skipped: list[tuple[str, str]] | None = None) -> Iterator[RefinementPair]:
    """(image, predicted mask, accepted mask) for every accepted instance of `images` that a
    predicted mask matches; images are read one at a time. Unreadable images are left out
    (and listed in `skipped` as (path, reason))."""
    for v in images:
        if not v.accepted:
            continue
        try:
            image = load_image(v.file)
        except ImageReadError as exc:
            if skipped is not None:
                skipped.append((v.path, exc.reason))
            continue
        truth = [masks.decode(rle) for rle in v.accepted]
        predicted = [np.asarray(m, bool) for m in predict(v.image_id, image)]
        for i, j in match_masks(predicted, truth):
            yield image, predicted[i], truth[j]


def validation_pairs(project: Project, predict: PredictMasks, *,
                     image_ids: Sequence[int] | None = None,
                     skipped: list[tuple[str, str]] | None = None,
                     ) -> Iterator[RefinementPair]:
    """`pairs_of` the reviewed validation images (or `image_ids`) of the project."""
    return pairs_of(validation_set(project, image_ids), predict, skipped=skipped)


def measure_validation(images: Sequence[ValidationImage], predict: PredictMasks, *,
                       model_key: str | None, methods: Sequence[Method] = METHODS,
                       min_gain: float = MIN_GAIN,
                       skipped: list[tuple[str, str]] | None = None) -> RefinementDecision:
    """The refinement decision for the model whose masks `predict` gives, measured on
    `images` (a `validation_set`); needs no project."""
    return decide_refinement(pairs_of(images, predict, skipped=skipped), methods=methods,
                             min_gain=min_gain, model_key=model_key, images=len(images))


def measure_refinement(project: Project, predict: PredictMasks, *, model_key: str | None,
                       methods: Sequence[Method] = METHODS, min_gain: float = MIN_GAIN,
                       skipped: list[tuple[str, str]] | None = None) -> RefinementDecision:
    """The refinement decision for the model whose masks `predict` gives, measured on the
    project's reviewed validation images (see the module docstring). Changes nothing."""
    return measure_validation(validation_set(project), predict, model_key=model_key,
                              methods=methods, min_gain=min_gain, skipped=skipped)


def stored_predictions(project: Project, model_version_id: int) -> PredictMasks:
    """`predict` for `measure_refinement` from the predictions already stored: the pending
    instances the model version `model_version_id` left on an image."""
    def predict(image_id: int, _image: np.ndarray) -> list[np.ndarray]:
        return [masks.decode(inst.rle)
                for inst in project.instances(image_id, state=InstanceState.PENDING)
                if inst.model_version_id == model_version_id]
    return predict


def save_refinement(project: Project, decision: RefinementDecision) -> None:
    """Keep the decision in the project (one transaction); it replaces the earlier one."""
    project.set_meta(META_KEY, json.dumps(decision.to_dict()))


def stored_refinement(project: Project) -> RefinementDecision | None:
    """The decision last measured for the project (None: never measured)."""
    raw = project.meta(META_KEY)
    if not raw:
        return None
    try:
        return RefinementDecision.from_dict(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise ProjectError(f"the project's mask refinement setting is unreadable: {exc}") from None


def refinement_for(project: Project, model_key: str) -> Method | None:
    """The method to refine this model's predicted masks with: the stored decision's, when it
    is on and was measured on this model; None otherwise."""
    decision = stored_refinement(project)
    if decision is None or not decision.on or decision.model_key != model_key:
        return None
    return decision.method if decision.method in METHODS else None


def describe_refinement(project: Project, model_key: str | None) -> str:
    """One line for a person about refining this model's masks: the stored decision's
    (`RefinementDecision.describe`) when it was measured on this model, else that it was
    not measured."""
    decision = stored_refinement(project)
    if model_key is None:
        return "Mask refinement: no model loaded"
    if decision is None or decision.model_key != model_key:
        return "Mask refinement: not measured for this model"
    return decision.describe()


def refine_masks(image: np.ndarray, predicted: Iterable[np.ndarray],
                 method: Method | None) -> list[np.ndarray]:
    """Each predicted mask refined with `method` (None: as they are)."""
    if method is None:
        return list(predicted)
    return [refine_mask(image, m, method=method) if m.any() else m for m in predicted]


#: One detection as a prediction job gives it: (category name, mask, score).
Detection = tuple[str, Rle, float]


def refine_items(items: Sequence[Detection], image: np.ndarray,
                 method: Method | None) -> list[Detection]:
    """One image's detections with their masks refined with `method` (None: as they are);
    names and scores unchanged. `image` is the (H, W, 3) uint8 RGB image they were
    predicted on."""
    if method is None:
        return list(items)
    refined = refine_masks(image, [masks.decode(rle) for _name, rle, _score in items], method)
    return [(name, masks.encode(mask), score)
            for (name, _rle, score), mask in zip(items, refined, strict=True)]
