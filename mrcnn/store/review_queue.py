"""How unsure the model is about an image, from its stored predictions: the review queue
offers the most uncertain unreviewed images first, where a correction teaches the most.

Where the model measured it when predicting (`mrcnn.model.uncertainty`: the image and its
mirror image, one extra pass; stored with the predictions), that measure is the image's
uncertainty. Otherwise (the image on screen, predicted without the extra pass; predictions
from before it existed) it comes from the scores alone, the score margin:

A detection scoring s is certain near 0 or 1 and most uncertain at 0.5:
u(s) = 1 - |2s - 1|. An image's uncertainty is that of its most uncertain detection (one
borderline object is enough to need a look; many confident ones do not dilute it), plus a
little (TIE_WEIGHT) of the mean over all its detections, to order near ties. An image the
model predicted and found nothing in gets EMPTY (a miss is as likely as an empty image);
an image no model has predicted has no score and comes last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mrcnn.store.project import Project
from mrcnn.store.status import UNREVIEWED

#: Weight of the mean uncertainty of all detections, added to the largest one (a tie-break).
TIE_WEIGHT = 0.01
#: Uncertainty of a predicted image without any detection.
EMPTY = 0.5


def detection_uncertainty(score: float) -> float:
    """1 at score 0.5, 0 at scores 0 and 1 (scores outside [0, 1] are clipped)."""
    s = min(max(float(score), 0.0), 1.0)
    return 1.0 - abs(2.0 * s - 1.0)


def image_uncertainty(scores: Iterable[float]) -> float:
    """The uncertainty of one predicted image from its detections' scores, in [0, 1.01]."""
    u = [detection_uncertainty(s) for s in scores]
    return max(u) + TIE_WEIGHT * sum(u) / len(u) if u else EMPTY


def uncertainties(project: Project, image_ids: Sequence[int] | None = None
                  ) -> dict[int, float | None]:
    """Uncertainty per unreviewed image (or per given image): the measured one where it was,
    else the score margin's; None when not predicted."""
    if image_ids is None:
        image_ids = [im.id for im in project.images(UNREVIEWED)]
    scores = project.pending_scores()
    predicted = project.predicted_image_ids()
    measured = project.image_uncertainties()
    return {i: measured[i] if i in measured else
            image_uncertainty(scores.get(i, ())) if i in predicted else None
            for i in image_ids}


def review_queue(project: Project, measured: dict[int, float | None] | None = None
                 ) -> list[int]:
    """Unreviewed image ids, most uncertain first; unpredicted images last, in id order.
    `measured`: `uncertainties(project)`, when the caller has it already."""
    u = uncertainties(project) if measured is None else measured
    return sorted(u, key=lambda i: (u[i] is None, -(u[i] or 0.0), i))
