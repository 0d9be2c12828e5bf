"""How unsure the model is about an image, from what Mask R-CNN gives in two passes: the
image and its mirror image (one extra forward pass), in the spirit of MaskAL (arXiv
2112.06586: semantic, spatial and occurrence certainty over several passes) and CALD (arXiv
2103.10374: consistency between an image and its augmented copy).

Each object found in either pass with a score of at least MIN_SCORE is matched to the other
pass's detection of the same class whose mask overlaps it most (IoU at least MATCH_IOU).
Its certainty is the product of

- semantic: its mean score over the passes that found it,
- spatial: the IoU of its two masks (1 when it appears in one pass only: there is nothing
  to disagree with; occurrence says that),
- occurrence: the share of the passes that found it (1 or 1/2).

An image's uncertainty is the chance that at least one of its objects needs a correction,
1 minus the product of their certainties (read as each object's chance of being right): an
image whose objects the model finds the same way, mirrored or not, with high scores, is
certain; objects that move, change class or come and go with a mirror make it uncertain, and
each further unsure object adds to it. The product, not the mean: the review queue spends a
person's time per image, and an image with three unsure objects teaches more than one with
a single unsure object among confident ones (the mean ranked them the other way round, and
picked worse images than chance in `benchmarks/active_learning.py`). An image with no object
in either pass gets EMPTY (a miss is as likely as an empty image).

Torch-free: the two passes' detections come in as numpy arrays (`mrcnn.model.predictor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Detections below this score are the model's noise, not objects it proposes.
MIN_SCORE = 0.25
#: Masks overlapping at least this much (IoU) are the same object in the two passes.
MATCH_IOU = 0.3
#: Uncertainty of an image in which neither pass found anything.
EMPTY = 0.5


@dataclass(frozen=True)
class Detections:
    """One pass's detections: labels (N,), scores (N,), masks (N, H, W) bool, all in the
    image's own orientation (the mirrored pass flipped back)."""

    labels: np.ndarray
    scores: np.ndarray
    masks: np.ndarray

    def confident(self) -> Detections:
        keep = self.scores >= MIN_SCORE
        return Detections(self.labels[keep], self.scores[keep], self.masks[keep])


@dataclass(frozen=True)
class ObjectCertainty:
    semantic: float
    spatial: float
    occurrence: float

    @property
    def certainty(self) -> float:
        return self.semantic * self.spatial * self.occurrence


def mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every mask in `a` (N, H, W) with every mask in `b` (M, H, W): (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def object_certainties(first: Detections, second: Detections) -> list[ObjectCertainty]:
    """Every object either pass found (score ≥ MIN_SCORE), matched greedily (best IoU first,
    same class, IoU ≥ MATCH_IOU), with its three certainties."""
    a, b = first.confident(), second.confident()
    iou = mask_ious(a.masks, b.masks)
    iou[a.labels[:, None] != b.labels[None, :]] = 0.0
    pairs: list[tuple[int, int]] = []
    if iou.size:
        order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
        used_a: set[int] = set()
        used_b: set[int] = set()
        for i, j in order:
            if iou[i, j] < MATCH_IOU:
                break
            if i in used_a or j in used_b:
                continue
            used_a.add(int(i))
            used_b.add(int(j))
            pairs.append((int(i), int(j)))
    objects = [ObjectCertainty((float(a.scores[i]) + float(b.scores[j])) / 2,
                               float(iou[i, j]), 1.0) for i, j in pairs]
    matched_a = {i for i, _ in pairs}
    matched_b = {j for _, j in pairs}
    objects += [ObjectCertainty(float(s), 1.0, 0.5)
                for i, s in enumerate(a.scores) if i not in matched_a]
    objects += [ObjectCertainty(float(s), 1.0, 0.5)
                for j, s in enumerate(b.scores) if j not in matched_b]
    return objects


def image_uncertainty(first: Detections, second: Detections) -> float:
    """1 - the product of the object certainties over both passes (the chance that at least
    one object needs a correction), in [0, 1]; EMPTY when neither pass found an object."""
    objects = object_certainties(first, second)
    if not objects:
        return EMPTY
    return float(1.0 - np.prod([o.certainty for o in objects]))
