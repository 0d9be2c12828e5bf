"""The Errors panel's background jobs (the worker's "model" lane, as every job that calls the
loaded model): predict reviewed images with the loaded model and find the error list
(`mrcnn.training.error_analysis`) or the label suspects (`mrcnn.training.label_hints`).
Plain data in and out; no Qt and no project store here, and no torch in this process."""

from __future__ import annotations

from dataclasses import dataclass

from mrcnn.errors import ImageReadError, NoWeightsError
from mrcnn.io.remote import location_name
from mrcnn.serving.session import Session
from mrcnn.training.error_analysis import Detection, ErrorList, TruthImage, errors_on
from mrcnn.training.label_hints import Suspect, rank_suspects


@dataclass(frozen=True)
class SuspectsFound:
    """The label suspects of the images the model predicted, best first."""

    suspects: list[Suspect]
    images: int  # predicted
    model_key: str
    skipped: list[tuple[str, str]]  # (path, reason)


def _detect(ctx, session: Session, images: list[TruthImage], what: str,
            skipped: list[tuple[str, str]]) -> dict[int, list[Detection]]:
    """Each readable image's detections (nothing is stored)."""
    if session.info is None:
        raise NoWeightsError(f"no model is loaded to {what} with")
    out: dict[int, list[Detection]] = {}
    total = len(images)
    for done, image in enumerate(images):
        ctx.check()
        ctx.progress(done, total, location_name(image.file))
        try:
            out[image.image_id] = session.predict_path(image.image_id, image.file).items
        except ImageReadError as exc:
            skipped.append((image.path, exc.reason))
    ctx.progress(total, total, "")
    return out


def find_errors_job(ctx, session: Session, images: list[TruthImage],
                    version: str) -> ErrorList:
    """Job: the loaded model's error list on the (validation) images; saves nothing."""
    skipped: list[tuple[str, str]] = []
    predictions = _detect(ctx, session, images, "find errors", skipped)
    return errors_on(images, predictions, version=version, skipped=skipped)


def find_suspects_job(ctx, session: Session, images: list[TruthImage]) -> SuspectsFound:
    """Job: the label suspects of the reviewed images by the loaded model's predictions."""
    skipped: list[tuple[str, str]] = []
    predictions = _detect(ctx, session, images, "look for label suspects", skipped)
    info = session.info
    return SuspectsFound(rank_suspects(images, predictions), len(predictions),
                         info.key if info else "", skipped)
