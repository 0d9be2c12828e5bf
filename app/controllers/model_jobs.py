"""The model's background jobs (run in the worker's "model" lane, one thread).

The loaded model lives in a `mrcnn.serving.session.Session`: a `ModelProcess` (a child process
holding a `ModelSession`; tests may pass a session itself) that only these jobs call; the GUI thread
gets plain data back: `ModelInfo` after a load, one `ImagePrediction` (or `PredictFailure`)
per image as a partial result, and a `BatchSummary` at the end; a `RefinementCheck` after
measuring mask refinement. No Qt and no project store here, and no torch in this process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from app.worker import JobCancelled
from mrcnn import masks
from mrcnn.editing.refine import Method, RefinementDecision
from mrcnn.errors import ImageReadError, ModelCancelled, NoWeightsError
from mrcnn.io.images import load_image
from mrcnn.io.remote import RemoteImage, location_name
from mrcnn.serving.refinement import ValidationImage, measure_validation, refine_items
from mrcnn.serving.session import BoxAnswer, ModelInfo, ModelRequest, Session
from mrcnn.serving.tiles import TILES_AUTO, TileSetting

MB = 1_000_000


@dataclass(frozen=True)
class LoadResult:
    """A load that ended: the model's info, or why there are no weights (NoWeightsError's
    message, which lists the user's options). Other errors fail the job."""

    info: ModelInfo | None
    no_weights: str = ""


@dataclass(frozen=True)
class PredictFailure:
    image_id: int
    message: str


@dataclass(frozen=True)
class BatchSummary:
    predicted: int
    failed: int
    instances: int
    seconds: float


def box_mask_job(ctx, session: Session, image_id: int, path: str | RemoteImage,
                 box: tuple[float, float, float, float], refine: Method | None = None
                 ) -> BoxAnswer:
    """Job: the loaded model's mask for a box a person drew (Box → Mask), from the image's
    kept features when it was predicted lately; refined with image edges by `refine` (the
    project's decision for this model, as its predictions are)."""
    ctx.check()
    answer = session.box_mask(image_id, path, box)
    if refine is None or not answer.rle.area:
        return answer
    ctx.check()
    ((_name, rle, _score),) = refine_items([(answer.category, answer.rle, answer.score)],
                                           load_image(path), refine)
    return replace(answer, rle=rle)


def load_model_job(ctx, session: Session, request: ModelRequest) -> LoadResult:
    """Job: load the requested weights into the session (download progress in MB; Cancel
    stops a download between chunks)."""

    def progress(done: int, total: int | None) -> None:
        ctx.progress(done // MB, (total or 0) // MB)  # the bar's unit: MB

    try:
        return LoadResult(session.load(request, progress=progress,
                                       should_cancel=lambda: ctx.cancelled))
    except NoWeightsError as exc:
        return LoadResult(None, str(exc))
    except ModelCancelled:
        raise JobCancelled from None


@dataclass(frozen=True)
class Refinement:
    """Refine the masks of `model_key`'s predictions with `method` (the project's decision,
    read when the job was submitted)."""

    model_key: str
    method: Method


@dataclass(frozen=True)
class RefinementCheck:
    """A measured refinement decision, and the validation images that could not be read."""

    decision: RefinementDecision
    skipped: list[tuple[str, str]]  # (path, reason)


@dataclass(frozen=True)
class TilesPredicted:
    """A tiled image's progress: `passes` of its `of` passes (None: not known) are done."""

    image_id: int
    passes: int
    of: int | None


def predict_job(ctx, session: Session, targets: list[tuple[int, str | RemoteImage]],
                refinement: Refinement | None = None,
                uncertain: frozenset[int] = frozenset(),
                tiles: TileSetting = TILES_AUTO) -> BatchSummary:
    """Job: predict images (id, path) one by one; each result is handed over as soon as it
    is ready, so that a cancelled run keeps what it did. With `refinement`, the masks of
    that model's predictions are refined with the image (read here for that). The images
    in `uncertain` are predicted with their uncertainty (one extra pass each). `tiles` says
    which images are predicted in tiles (`mrcnn.serving.tiles`); a tiled image reports its
    passes (in the progress, and as `TilesPredicted` results), and Cancel stops it between
    tiles."""
    start = time.monotonic()
    predicted = failed = instances = 0
    total = len(targets)
    for done, (image_id, path) in enumerate(targets):
        ctx.check()
        ctx.progress(done, total, location_name(path))

        def tile_progress(passes: int, of: int | None, done=done, image_id=image_id,
                          path=path) -> None:
            name = location_name(path)
            if total == 1 and of:  # one image: the bar (and the time left) follow its tiles
                ctx.progress(passes, of, f"tiles of {name}")
            else:
                ctx.progress(done, total, f"{name}, tile {passes} of {of or '?'}")
            ctx.yield_result(TilesPredicted(image_id, passes, of))

        try:
            result = session.predict_path(image_id, path, image_id in uncertain, tiles,
                                          should_cancel=lambda: ctx.cancelled,
                                          progress=tile_progress)
            if (refinement is not None and result.items
                    and result.model_key == refinement.model_key):
                result = replace(result, items=refine_items(
                    result.items, load_image(path), refinement.method))
        except ModelCancelled:
            raise JobCancelled from None  # between the tiles of a large image
        except ImageReadError as exc:
            failed += 1
            ctx.yield_result(PredictFailure(image_id, str(exc)))
        else:
            predicted += 1
            instances += len(result.items)
            ctx.yield_result(result)
        ctx.progress(done + 1, total, "")  # the next image's name comes with its start
    return BatchSummary(predicted, failed, instances, time.monotonic() - start)


def refinement_check_job(ctx, session: Session,
                         images: list[ValidationImage]) -> RefinementCheck:
    """Job: measure whether refining the loaded model's masks raises their IoU on the
    validation images (`mrcnn.serving.refinement.measure_validation`); saves nothing."""
    info = session.info
    if info is None:
        raise NoWeightsError("no model is loaded to measure mask refinement with")
    total = len(images)
    done = 0

    def predict(image_id: int, _image: np.ndarray) -> list[np.ndarray]:
        nonlocal done
        ctx.check()
        ctx.progress(done, total, location_name(files[image_id]))
        result = session.predict_path(image_id, files[image_id])
        done += 1
        return [masks.decode(rle) for _name, rle, _score in result.items]

    files = {v.image_id: v.file for v in images}
    skipped: list[tuple[str, str]] = []
    decision = measure_validation(images, predict, model_key=info.key, skipped=skipped)
    ctx.progress(total, total, "")
    return RefinementCheck(decision, skipped)
