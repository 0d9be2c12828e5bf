"""Label suspects: accepted instances (and objects left unlabelled) on reviewed images that a
confident prediction disagrees with, ranked for a second look — for instance masks what
cleanlab's object-detection label-quality scores do for boxes (a swapped class, an overlooked
object, a label no prediction supports).

The rule (one home; `python -m mrcnn hints` and the window's Label Suspects call it). A
*detection* is a prediction scoring at least `DETECTION_SCORE` (0.5, as for the error list);
overlaps are mask IoU, and `MATCH_IOU` (0.5) is "the same object". On each image:

- **wrong category** — an accepted instance that no detection of its category matches, while
  a detection of another category does: suspect score = that detection's score (the most
  confident one) x (1 - the model's support for the label: the best score of a prediction
  of the instance's own category matching it, however low), and it names the category the
  model saw. A model that hesitates between the two categories (a disc at 0.45 under a
  square at 0.85: its own confusion) is thus less suspicious than one sure of another
  category and silent about the label's.
- **unlabelled** — a detection that no accepted instance (of any category) matches: an
  object the labels may have dropped. Score = its score x (1 - its best IoU with an accepted
  instance); a weaker detection overlapping a listed one by MATCH_IOU is the same object and
  not listed again.
- **unsupported** — an accepted instance no detection matches at all: score =
  `UNSUPPORTED_WEIGHT` x (1 - its best IoU with a detection of its category). Weighted down
  (0.5) because the absence of a detection is weaker evidence than a confident detection
  saying otherwise: a model also misses objects that are labelled right.

Suspects are listed by score, highest first. Predictions of training images come from a model
that was trained on their labels (it may have learned an error); those of validation images
are the stronger evidence.

**Found right.** A person who looked at a suspect and found the label right says so once
(`mark_right`, kept in the project: `mrcnn.store.suspect_checks`); later searches, by any
model, leave out the suspects that check answers (`split_answered`):
- about an accepted instance (another category, no detection): a later suspect of either of
  those kinds on the same image, of the same category, whose mask overlaps the one looked at
  by at least `SAME_LABEL_IOU` — the same label, still as it was; a label whose category or
  outline has changed since is a new question;
- about an unlabelled object (nothing to label there): a later unlabelled-object suspect on
  the same image whose detection overlaps the one looked at by `MATCH_IOU`, whatever category
  the model now gives it.

Torch-free: the window imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mrcnn.masks import Rle
from mrcnn.store.records import StrEnum
from mrcnn.store.suspect_checks import SuspectCheck, SuspectCheckStore
from mrcnn.training.error_analysis import (
    DETECTION_SCORE,
    MATCH_IOU,
    Detection,
    TruthImage,
    TruthInstance,
    iou_matrix,
)

#: An unsupported instance's score is at most this (see the module docstring).
UNSUPPORTED_WEIGHT = 0.5
#: A label found right stays answered while its mask keeps this IoU with the one looked at.
SAME_LABEL_IOU = 0.9


class SuspectKind(StrEnum):
    WRONG_CATEGORY = "wrong_category"
    UNLABELLED = "unlabelled"
    UNSUPPORTED = "unsupported"


#: How a person reads each kind.
SUSPECT_LABELS = {SuspectKind.WRONG_CATEGORY: "another category?",
                  SuspectKind.UNLABELLED: "unlabelled object?",
                  SuspectKind.UNSUPPORTED: "no detection supports it"}


@dataclass(frozen=True)
class Suspect:
    """One label worth a second look.

    `category`: the accepted instance's (the detection's for an unlabelled object).
    `suggested`: the category the model saw (wrong category, unlabelled). `score`: the rank
    (see the module docstring); `confidence`: the disagreeing detection's score; `iou`: the
    accepted instance's IoU with that detection (wrong category), the detection's best IoU
    with an accepted instance (unlabelled), or the instance's best IoU with a detection of
    its category (unsupported). `mask`: what to look at (the instance's mask, or the
    detection's for an unlabelled object); `detection`: the detection's mask."""

    image_id: int
    kind: SuspectKind
    category: str
    score: float
    iou: float
    instance_id: int | None = None
    suggested: str | None = None
    confidence: float | None = None
    mask: Rle | None = None
    detection: Rle | None = None

    def describe(self) -> str:
        """One line for a person."""
        if self.kind == SuspectKind.WRONG_CATEGORY:
            return (f"labelled {self.category}, the model sees a {self.suggested} "
                    f"({self.confidence or 0:.2f})")
        if self.kind == SuspectKind.UNLABELLED:
            return (f"unlabelled {self.suggested}? the model sees one ({self.confidence or 0:.2f})"
                    f" where no accepted instance is")
        return (f"{self.category}: no detection supports it (best IoU {self.iou:.2f})")

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "kind": str(self.kind), "category": self.category,
                "suggested": self.suggested, "score": round(self.score, 4),
                "confidence": self.confidence, "iou": round(self.iou, 4),
                "instance_id": self.instance_id,
                "mask": self.mask.to_coco() if self.mask else None,
                "detection": self.detection.to_coco() if self.detection else None}


def find_suspects(image_id: int, truth: Sequence[TruthInstance],
                  detections: Sequence[Detection], *, score_floor: float = DETECTION_SCORE,
                  ) -> list[Suspect]:
    """One image's suspects (see the module docstring), unsorted. `detections` may go below
    `score_floor`: those only measure the model's support for a label."""
    weak = [d for d in detections if d[2] < score_floor]
    dets = sorted((d for d in detections if d[2] >= score_floor), key=lambda d: -d[2])
    ious = iou_matrix([d[1] for d in dets], [t.rle for t in truth])
    weak_ious = iou_matrix([d[1] for d in weak], [t.rle for t in truth])
    out: list[Suspect] = []
    for j, t in enumerate(truth):
        column = ious[:, j] if dets else np.zeros(0)
        same = np.array([d[0] == t.category for d in dets], bool)
        if (column[same] >= MATCH_IOU).any():
            continue  # a detection of its category supports it
        other = [i for i in range(len(dets)) if not same[i] and column[i] >= MATCH_IOU]
        if other:
            i = other[0]  # the most confident (dets are by score)
            name, rle, score = dets[i]
            support = max((d[2] for d, iou in zip(weak, weak_ious[:, j], strict=True)
                           if d[0] == t.category and iou >= MATCH_IOU), default=0.0)
            out.append(Suspect(image_id, SuspectKind.WRONG_CATEGORY, t.category,
                               score * (1.0 - support), float(column[i]), t.instance_id, name,
                               score, t.rle, rle))
            continue
        best = float(column[same].max()) if same.any() else 0.0
        near = [i for i in range(len(dets)) if same[i]]
        out.append(Suspect(image_id, SuspectKind.UNSUPPORTED, t.category,
                           UNSUPPORTED_WEIGHT * (1.0 - best), best, t.instance_id,
                           mask=t.rle,
                           detection=dets[max(near, key=lambda i: column[i])][1]
                           if near and best > 0 else None))
    listed: list[Rle] = []
    for i, (name, rle, score) in enumerate(dets):
        best = float(ious[i].max()) if truth else 0.0
        if best >= MATCH_IOU:
            continue  # an accepted instance covers it (its category is judged above)
        if listed and (iou_matrix([rle], listed) >= MATCH_IOU).any():
            continue  # a more confident detection of the same object is listed
        listed.append(rle)
        out.append(Suspect(image_id, SuspectKind.UNLABELLED, name, score * (1.0 - best), best,
                           None, name, score, rle, rle))
    return out


def rank_suspects(images: Sequence[TruthImage], predictions: Mapping[int, Sequence[Detection]],
                  *, score_floor: float = DETECTION_SCORE) -> list[Suspect]:
    """Every suspect of the images the model predicted (`predictions`: detections per image
    id), highest score first (ties by image and instance)."""
    out: list[Suspect] = []
    for image in images:
        if image.image_id in predictions:
            out.extend(find_suspects(image.image_id, image.instances,
                                     predictions[image.image_id], score_floor=score_floor))
    return sorted(out, key=lambda s: (-s.score, s.image_id, s.instance_id or 0))


def _about_label(kind: str) -> bool:
    return kind != SuspectKind.UNLABELLED


def answered_by(suspect: Suspect, checks: Sequence[SuspectCheck]) -> SuspectCheck | None:
    """The check (of a label found right) that answers `suspect`, or None (the rule: see the
    module docstring)."""
    if suspect.mask is None:
        return None
    for check in checks:
        if check.image_id != suspect.image_id:
            continue
        if _about_label(suspect.kind):
            if (_about_label(check.kind) and check.category == suspect.category
                    and iou_matrix([suspect.mask], [check.mask])[0, 0] >= SAME_LABEL_IOU):
                return check
        elif (not _about_label(check.kind)
              and iou_matrix([suspect.mask], [check.mask])[0, 0] >= MATCH_IOU):
            return check
    return None


def split_answered(suspects: Sequence[Suspect], checks: Sequence[SuspectCheck]
                   ) -> tuple[list[Suspect], list[tuple[Suspect, SuspectCheck]]]:
    """(the suspects still open, in their order; those a check answers, with the check)."""
    by_image: dict[int, list[SuspectCheck]] = {}
    for check in checks:
        by_image.setdefault(check.image_id, []).append(check)
    open_: list[Suspect] = []
    answered: list[tuple[Suspect, SuspectCheck]] = []
    for s in suspects:
        found = answered_by(s, by_image.get(s.image_id, ()))
        if found is None:
            open_.append(s)
        else:
            answered.append((s, found))
    return open_, answered


def mark_right(project: SuspectCheckStore, suspect: Suspect) -> SuspectCheck:
    """Keep that a person found `suspect`'s label right (the label's mask, or the detection's
    for an unlabelled object); later searches leave it out."""
    if suspect.mask is None:
        raise ValueError("a suspect without a mask cannot be marked right")
    return project.add_suspect_check(suspect.image_id, str(suspect.kind), suspect.category,
                                     suspect.mask)
