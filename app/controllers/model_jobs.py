"""The model's background jobs (run in the worker's "model" lane, one thread).

The loaded model lives in a `mrcnn.serving.session.Session`: a `ModelProcess` (a child process
holding a `ModelSession`; tests may pass a session itself) that only these jobs call; the GUI thread
gets plain data back: `ModelInfo` after a load, one `ImagePrediction` (or `PredictFailure`)
per image as a partial result, and a `BatchSummary` at the end. No Qt and no project store
here, and no torch in this process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from app.worker import JobCancelled
from mrcnn.errors import ImageReadError, ModelCancelled, NoWeightsError
from mrcnn.serving.session import ModelInfo, ModelRequest, Session

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


def load_model_job(ctx, session: Session, request: ModelRequest) -> LoadResult:
    """Job: load the requested weights into the session (download progress in MB; Cancel
    stops a download between chunks)."""

    def progress(done: int, total: int | None) -> None:
        ctx.progress(done // MB, (total or 0) // MB, "MB")

    try:
        return LoadResult(session.load(request, progress=progress,
                                       should_cancel=lambda: ctx.cancelled))
    except NoWeightsError as exc:
        return LoadResult(None, str(exc))
    except ModelCancelled:
        raise JobCancelled from None


def predict_job(ctx, session: Session, targets: list[tuple[int, str]]) -> BatchSummary:
    """Job: predict images (id, path) one by one; each result is handed over as soon as it
    is ready, so that a cancelled run keeps what it did."""
    start = time.monotonic()
    predicted = failed = instances = 0
    total = len(targets)
    for done, (image_id, path) in enumerate(targets):
        ctx.check()
        ctx.progress(done, total, Path(path).name)
        try:
            result = session.predict_path(image_id, path)
        except ImageReadError as exc:
            failed += 1
            ctx.yield_result(PredictFailure(image_id, str(exc)))
        else:
            predicted += 1
            instances += len(result.items)
            ctx.yield_result(result)
        ctx.progress(done + 1, total, Path(path).name)
    return BatchSummary(predicted, failed, instances, time.monotonic() - start)
