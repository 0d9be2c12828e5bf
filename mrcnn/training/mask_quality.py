"""How good the predicted masks are, as a person who would accept them as they are sees it:
the share of ground-truth instances matched at mask IoU >= 0.5 / 0.75 / 0.9, Boundary IoU
(Cheng et al. 2021, arXiv 2103.16562) over the matched pairs, and COCO mask AP, each for all
instances and split by object size as COCO defines it. Returns numbers; never prints.

The inputs are the ones `mrcnn.training.evaluate` scores: a COCO ground-truth dict
(`ground_truth`) and a COCO results list (`prediction_results`), so the same predictions give
the same mask AP there and here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from pycocotools import mask as cocomask

from mrcnn.store.overview import size_class
from mrcnn.training.evaluate import evaluate_coco

#: The size classes, "all" first. COCO: small < 32², medium < 96², large the rest (pixels of
#: the ground-truth mask, the annotation's "area"; `mrcnn.store.overview.size_class`).
SIZES = ("all", "small", "medium", "large")
#: The mask IoU thresholds of the matched shares.
MATCH_IOUS = (0.5, 0.75, 0.9)
#: Boundary IoU is averaged over the pairs matched at this mask IoU.
BOUNDARY_MATCH_IOU = 0.5
#: Boundary IoU's band: pixels within this share of the image diagonal of a contour (the
#: paper's default, 2 %).
BOUNDARY_RATIO = 0.02
#: Predictions scoring below this are not matched: what the app shows by default (its score
#: slider, app/settings.py), so a match is a mask a person could accept. Mask AP uses all.
MATCH_SCORE = 0.5
#: evaluate_coco's segm stat for each size class.
_AP_STAT = {"all": "AP", "small": "APs", "medium": "APm", "large": "APl"}


# ---------------------------------------------------------------- Boundary IoU
def boundary_distance(height: int, width: int, ratio: float = BOUNDARY_RATIO) -> float:
    """Boundary IoU's d in pixels: `ratio` of the image diagonal, at least 1."""
    return max(1.0, ratio * math.hypot(height, width))


def boundary_band(mask: np.ndarray, d: float) -> np.ndarray:
    """The (H, W) bool pixels of `mask` within Euclidean distance `d` of its contour (the
    paper's G_d ∩ G). The image border counts as contour, as in the paper's code."""
    m = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return mask.astype(bool) & (dist <= d)


def _crop(a: np.ndarray, b: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The box holding both masks, `margin` pixels wider, clipped to the image."""
    ys, xs = np.nonzero(a | b)
    h, w = a.shape
    return (slice(max(0, ys.min() - margin), min(h, ys.max() + margin + 1)),
            slice(max(0, xs.min() - margin), min(w, xs.max() + margin + 1)))


def boundary_iou(gt: np.ndarray, pred: np.ndarray, *, ratio: float = BOUNDARY_RATIO,
                 d: float | None = None) -> float:
    """Boundary IoU of two (H, W) masks: |(G_d ∩ G) ∩ (P_d ∩ P)| / |(G_d ∩ G) ∪ (P_d ∩ P)|,
    where X_d is the set of pixels within distance d of X's contour; d = `ratio` of the
    image diagonal unless given. Unlike mask IoU it does not saturate for large objects: an
    error of a few pixels along the outline costs a large object as much as a small one.
    1.0 for two empty masks, 0.0 when one is empty."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"masks differ in shape: {gt.shape} vs {pred.shape}")
    if not gt.any() or not pred.any():
        return float(not gt.any() and not pred.any())
    if d is None:
        d = boundary_distance(gt.shape[0], gt.shape[1], ratio=ratio)
    # outside the box holding both masks, widened by d, no pixel can be in a band; the
    # image border stays a contour because the crop is clipped to it
    box = _crop(gt, pred, int(math.ceil(d)) + 1)
    g, p = boundary_band(gt[box], d), boundary_band(pred[box], d)
    union = np.count_nonzero(g | p)
    return float(np.count_nonzero(g & p) / union) if union else 1.0


# ---------------------------------------------------------------- matching
def match_greedy(ious: np.ndarray, scores: Sequence[float], threshold: float
                 ) -> list[int | None]:
    """Greedy matching by score: predictions in descending score each take the unmatched
    ground truth they overlap most at IoU >= `threshold`; one prediction per ground truth.
    `ious` is (predictions, ground truths). Returns, per ground truth, the index of the
    prediction matched to it, or None."""
    n_pred, n_gt = ious.shape
    matched: list[int | None] = [None] * n_gt
    for k in sorted(range(n_pred), key=lambda i: -scores[i]):
        best, best_iou = None, threshold
        for g in range(n_gt):
            if matched[g] is None and ious[k, g] >= best_iou:
                best, best_iou = g, ious[k, g]
        if best is not None:
            matched[best] = k
    return matched


@dataclass
class SizeQuality:
    """The mask quality of one size class (or of "all").

    instances: ground-truth instances of this size.
    matched: share of them matched at each mask IoU threshold (MATCH_IOUS), 0..1; None with
        no instances.
    boundary_iou: mean Boundary IoU over the pairs matched at BOUNDARY_MATCH_IOU (0.5);
        None when none.
    mask_ap: COCO segm AP (IoU 0.50:0.95) of this size, all predictions; -1 when undefined
        (no ground truth of this size).
    """

    instances: int = 0
    matched: dict[float, float | None] = field(default_factory=dict)
    boundary_iou: float | None = None
    mask_ap: float = -1.0


@dataclass
class MaskQuality:
    """Mask quality of a set of images: `by_size[s]` for s in SIZES ("all" first), what it was
    scored on, and the settings used."""

    by_size: dict[str, SizeQuality]
    images: int
    match_score: float = MATCH_SCORE
    boundary_ratio: float = BOUNDARY_RATIO

    def to_dict(self) -> dict:
        """Plain data (IoU thresholds as strings, for JSON)."""
        out = asdict(self)
        for s in out["by_size"].values():
            s["matched"] = {f"{t:g}": v for t, v in s["matched"].items()}
        return out


def _decode(seg: dict) -> np.ndarray:
    rle = {"size": seg["size"], "counts": seg["counts"]}
    if isinstance(rle["counts"], str):
        rle["counts"] = rle["counts"].encode("ascii")
    return cocomask.decode(rle).astype(bool)


def _rle(seg: dict) -> dict:
    counts = seg["counts"]
    return {"size": seg["size"],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def mask_quality(gt: dict, results: list[dict], *, match_score: float = MATCH_SCORE,
                 boundary_ratio: float = BOUNDARY_RATIO,
                 thresholds: Sequence[float] = MATCH_IOUS) -> MaskQuality:
    """Score predicted masks against ground truth.

    gt: a COCO dict (images with width and height; annotations with RLE segmentation, area,
        category_id; iscrowd ones are left out), as `evaluate.ground_truth` makes.
    results: COCO results (image_id, category_id, score, RLE segmentation), as
        `evaluate.prediction_results` makes; ids must agree with `gt`'s.
    match_score: only predictions scoring at least this are matched (mask AP uses all).
    boundary_ratio: Boundary IoU's d as a share of each image's diagonal.

    Each ground-truth instance is counted in its size class (`size_class` of its area) and
    in "all"; matching is per image and category (`match_greedy`), once per threshold."""
    sizes = {im["id"]: (int(im["height"]), int(im["width"])) for im in gt["images"]}
    gts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for a in gt["annotations"]:
        if not a.get("iscrowd", 0):
            gts[a["image_id"], a["category_id"]].append(a)
    dts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for r in results:
        if r["score"] >= match_score:
            dts[r["image_id"], r["category_id"]].append(r)

    counts = dict.fromkeys(SIZES, 0)
    hits = {s: dict.fromkeys(thresholds, 0) for s in SIZES}
    biou: dict[str, list[float]] = {s: [] for s in SIZES}
    for key, anns in gts.items():
        classes = [size_class(a.get("area") or cocomask.area(_rle(a["segmentation"])))
                   for a in anns]
        for c in classes:
            counts["all"] += 1
            counts[c] += 1
        preds = dts.get(key, [])
        if not preds:
            continue
        ious = np.asarray(cocomask.iou([_rle(p["segmentation"]) for p in preds],
                                       [_rle(a["segmentation"]) for a in anns],
                                       [0] * len(anns))).reshape(len(preds), len(anns))
        scores = [p["score"] for p in preds]
        for t in thresholds:
            for g, k in enumerate(match_greedy(ious, scores, t)):
                if k is not None:
                    hits["all"][t] += 1
                    hits[classes[g]][t] += 1
        d = boundary_distance(*sizes[key[0]], ratio=boundary_ratio)
        for g, k in enumerate(match_greedy(ious, scores, BOUNDARY_MATCH_IOU)):
            if k is not None:
                b = boundary_iou(_decode(anns[g]["segmentation"]),
                                 _decode(preds[k]["segmentation"]), d=d)
                biou["all"].append(b)
                biou[classes[g]].append(b)

    segm = evaluate_coco(gt, results)["segm"]
    by_size = {
        s: SizeQuality(
            instances=counts[s],
            matched={t: (hits[s][t] / counts[s] if counts[s] else None) for t in thresholds},
            boundary_iou=float(np.mean(biou[s])) if biou[s] else None,
            mask_ap=float(segm[_AP_STAT[s]]) if counts[s] else -1.0)
        for s in SIZES}
    return MaskQuality(by_size, images=len(gt["images"]), match_score=match_score,
                       boundary_ratio=boundary_ratio)
