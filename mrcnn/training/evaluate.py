"""COCO evaluation with pycocotools' COCOeval, and scoring the version a run is compared
with. Returns numbers; never prints."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn import masks
from mrcnn.errors import ImageReadError, MrcnnError, TrainingCancelled
from mrcnn.keypoints import oks_sigmas
from mrcnn.masks import Rle
from mrcnn.model.convert import LabelMap, coco_results
from mrcnn.model.device import DeviceChoice
from mrcnn.model.keypoint_head import Layout, keypoint_layout_of, slots, total_slots
from mrcnn.model.predictor import Prediction
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.training.dataset import reviewed_image_ids
from mrcnn.training.error_analysis import Detection, TruthImage
from mrcnn.training.events import EvalEvent

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
#: COCO's keypoint AP has no small objects (`COCOeval.params.setKpParams`).
KEYPOINT_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl")


def ground_truth(project: Project, image_ids: Sequence[int], labels: LabelMap,
                 keypoints: Layout | None = None) -> dict:
    """The accepted instances of these images as a COCO dict whose category ids are the
    model labels (1..K), so predictions can be scored without remapping. With a keypoint
    `keypoints` layout, every annotation carries "keypoints" over all of its slots (its
    points in its category's, zeros elsewhere and without points) and "num_keypoints"."""
    cats = {c.id: c.name for c in project.categories()}
    images = [project.image(i) for i in image_ids]
    where = slots(keypoints) if keypoints else {}
    k = total_slots(keypoints) if keypoints else 0
    anns: list[dict[str, object]] = []
    for im in images:
        for inst in project.instances(im.id, state="accepted"):
            name = cats[inst.category_id]
            if name not in labels:
                continue
            ann = {
                "id": len(anns) + 1, "image_id": im.id, "category_id": labels.label(name),
                "segmentation": inst.rle.to_coco(), "area": inst.area, "bbox": list(inst.bbox),
                "iscrowd": 0,
            }
            if keypoints:
                flat = [0.0] * (3 * k)
                if name in where and inst.keypoints is not None:
                    first, count = where[name]
                    for j, (x, y, v) in enumerate(inst.keypoints[:count]):
                        if v > 0:
                            flat[3 * (first + j):3 * (first + j) + 3] = [x, y, v]
                ann["keypoints"] = flat
                ann["num_keypoints"] = sum(1 for v in flat[2::3] if v > 0)
            anns.append(ann)
    return {
        "images": [{"id": im.id, "width": im.width, "height": im.height} for im in images],
        "categories": [{"id": labels.label(n), "name": n} for n in labels.names],
        "annotations": anns,
    }


def prediction_results(predictions: dict[int, Prediction], labels: LabelMap | None = None,
                       keypoints: Layout | None = None) -> list[dict]:
    """Predictions per image id → COCO results list (bbox xywh, RLE segmentation, score),
    category ids the model labels (`mrcnn.model.convert.coco_results`). With a keypoint
    layout (and `labels`), each detection's "keypoints" too: its category's slots as the
    head predicted them (v = 1), zeros elsewhere."""
    out = []
    for image_id, p in predictions.items():
        results = coco_results(p, image_id)  # one per detection, in order
        if keypoints and labels is not None and p.keypoints is not None:
            where = slots(keypoints)
            for r, points, label in zip(results, p.keypoints, p.labels, strict=True):
                flat = np.zeros((len(points), 3), np.float64)
                name = labels.name(int(label))
                if name in where:
                    first, count = where[name]
                    flat[first:first + count, :2] = points[first:first + count, :2]
                    flat[first:first + count, 2] = 1
                r["keypoints"] = flat.reshape(-1).tolist()
        out += results
    return out


def _quiet_coco(data: dict) -> COCO:
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def evaluate_coco(gt: dict, results: list[dict], *,
                  keypoint_sigmas: Sequence[float] | None = None) -> dict:
    """COCOeval for bbox and segm → {"bbox": {...}, "segm": {...}} with AP, AP50, AP75, APs,
    APm, APl and per_class AP (by category name). -1 means undefined (no ground truth).
    "scored": {"images": n, "instances": m} says how much ground truth the numbers rest on
    (shown next to every AP: `mrcnn.store.versions.scored_on`).
    With `keypoint_sigmas` (one OKS sigma per slot of the annotations' "keypoints"), where
    annotations have labelled points and results carry keypoints: "keypoints" too, COCO's
    OKS keypoint AP (AP, AP50, AP75, APm, APl, per_class; `keypoint_ap`)."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    coco_gt = _quiet_coco(gt)
    out: dict[str, dict] = {"scored": {"images": len(gt["images"]),
                                       "instances": len(gt["annotations"])}}
    for iou_type in ("bbox", "segm"):
        if not gt["annotations"]:
            out[iou_type] = {**dict.fromkeys(STAT_NAMES, -1.0), "per_class": {}}
            continue
        if not results:
            out[iou_type] = {**dict.fromkeys(STAT_NAMES, 0.0),
                             "per_class": dict.fromkeys(names.values(), 0.0)}
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(results)
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats[:6], strict=True)}
        per_class = {}
        precision = ev.eval["precision"]  # T x R x K x A x M
        for k, cat_id in enumerate(ev.params.catIds):
            p = precision[:, :, k, 0, -1]
            p = p[p > -1]
            per_class[names[cat_id]] = float(np.mean(p)) if p.size else -1.0
        out[iou_type] = {**stats, "per_class": per_class}
    if keypoint_sigmas is not None:
        scored = keypoint_ap(coco_gt, gt, results, keypoint_sigmas)
        if scored is not None:
            out["keypoints"] = scored
    return out


def keypoint_ap(coco_gt: COCO, gt: dict, results: list[dict], sigmas: Sequence[float]
                ) -> dict | None:
    """COCOeval's OKS keypoint AP over the categories with labelled points (instances
    without points are ignored, as COCO ignores num_keypoints = 0); None when no annotation
    has labelled points or the results carry no keypoints."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    cat_ids = sorted({a["category_id"] for a in gt["annotations"]
                      if a.get("num_keypoints", 0) > 0})
    if not cat_ids:
        return None
    if not results:
        return {**dict.fromkeys(KEYPOINT_STAT_NAMES, 0.0),
                "per_class": {names[c]: 0.0 for c in cat_ids}}
    if not all("keypoints" in r for r in results):
        return None
    scored = [r for r in results if r["category_id"] in cat_ids]
    if not scored:
        return {**dict.fromkeys(KEYPOINT_STAT_NAMES, 0.0),
                "per_class": {names[c]: 0.0 for c in cat_ids}}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(scored)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: float(v) for name, v in zip(KEYPOINT_STAT_NAMES, ev.stats[:5], strict=True)}
    per_class = {}
    precision = ev.eval["precision"]
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[names[cat_id]] = float(np.mean(p)) if p.size else -1.0
    return {**stats, "per_class": per_class}


def predict_images(model, project: Project, image_ids: Sequence[int], *, device=None,
                   score_threshold: float = 0.05) -> dict[int, Prediction]:
    from mrcnn.io.images import load_image
    from mrcnn.model.predictor import Predictor

    predictor = Predictor(model, device=device, score_threshold=score_threshold)
    return {i: predictor.predict_one(load_image(project.image_source(project.image(i))))
            for i in image_ids}


def evaluate_model(model, project: Project, *, labels: LabelMap, image_ids: Sequence[int],
                   device=None,
                   detections: dict[int, list[Detection]] | None = None) -> dict:
    """Predict the images and score them against their accepted instances. With
    `detections`, it also receives each image's predictions as plain data (category name,
    RLE, score), for the error list (`mrcnn.training.error_analysis`) without a second pass.
    A model with a keypoint head (`mrcnn.model.keypoint_head`) is scored on the points too
    (metrics "keypoints": OKS keypoint AP, with `oks_sigmas` over its slots) where the
    images have labelled points."""
    layout = keypoint_layout_of(model)
    preds = predict_images(model, project, image_ids, device=device)
    results = prediction_results(preds, labels, layout)
    if detections is not None:
        detections.update(detections_of(results, labels, image_ids))
    sigmas = ([s for names in layout.values() for s in oks_sigmas(names)] if layout
              else None)
    return evaluate_coco(ground_truth(project, image_ids, labels, layout), results,
                         keypoint_sigmas=sigmas)


def detections_of(results: list[dict], labels: LabelMap,
                  image_ids: Sequence[int]) -> dict[int, list[Detection]]:
    """COCO results entries (model labels) -> each image's (category name, RLE, score)."""
    out: dict[int, list[Detection]] = {i: [] for i in image_ids}
    for r in results:
        seg = r["segmentation"]
        h, w = seg["size"]
        out[int(r["image_id"])].append((labels.name(int(r["category_id"])),
                                        Rle(int(h), int(w), seg["counts"]), float(r["score"])))
    return out


def detect_images(model, categories: Sequence[str], images: Sequence[TruthImage], *,
                  device=None, score_threshold: float = 0.05,
                  progress: Callable[[int, int], None] | None = None,
                  skipped: list[tuple[str, str]] | None = None) -> dict[int, list[Detection]]:
    """Each readable image's predictions scoring at least `score_threshold` (the floor
    predictions are stored down to; the rules pick their detections) as plain data (category
    name `categories[label - 1]`, RLE, score), for the error list and the label suspects;
    unreadable images are left out (and listed in `skipped` as (path, reason))."""
    from mrcnn.io.images import load_image
    from mrcnn.model.predictor import Predictor

    predictor = Predictor(model, device=device, score_threshold=score_threshold)
    out: dict[int, list[Detection]] = {}
    for done, image in enumerate(images):
        try:
            rgb = load_image(image.file)
        except ImageReadError as exc:
            if skipped is not None:
                skipped.append((image.path, exc.reason))
        else:
            p = predictor.predict_one(rgb)
            out[image.image_id] = [(categories[int(label) - 1], masks.encode(m), float(score))
                                   for label, score, m in zip(p.labels, p.scores, p.masks,
                                                              strict=True) if m.any()]
        if progress is not None:
            progress(done + 1, len(images))
    return out


#: `score_baseline`'s name for torchvision's COCO weights, and the version its event names.
COCO_BASELINE = "coco"
COCO_BASELINE_VERSION = "COCO weights"


def score_baseline(project: Project, name: str, *, starting_id: int | None = None,
                   device: DeviceChoice | None = None) -> EvalEvent | None:
    """Val metrics of what the user compares a run with, for the before/after comparison: the
    model version `name` (the one active before a run), or with `name` "coco" torchvision's
    COCO weights from the torch cache (what the window predicts with when the project has no
    version), laid out for the project's categories by name as `eval --model coco` scores
    them (`load_model(source="coco")`); its event's version is "COCO weights".

    Returns a "baseline" EvalEvent, or None when there is nothing to score (no such version,
    it is the starting model `starting_id` which training scores anyway, or no reviewed val
    images). A model that cannot be scored (COCO weights not on this machine, a version that
    knows other categories) gives an event with no metrics and the `error`, so training
    still goes on."""
    source: str | Path
    if name == COCO_BASELINE:
        label, source = COCO_BASELINE_VERSION, COCO_BASELINE
    else:
        version = next((v for v in project.model_versions() if v.name == name), None)
        if version is None or version.id == starting_id:
            return None
        label, source = version.name, project.folder / version.path
    val_ids = reviewed_image_ids(project, "val")
    if not val_ids:
        return None
    try:
        loaded = load_model(project=project, source=source,
                            categories=[c.name for c in project.categories()])
        metrics = evaluate_model(loaded.model, project, labels=loaded.label_map(),
                                 image_ids=val_ids, device=device)
    except TrainingCancelled:
        raise  # a cancel (SIGTERM) while scoring the baseline ends the run
    except MrcnnError as exc:
        return EvalEvent(stage="baseline", version=label, metrics=None, error=str(exc))
    return EvalEvent(stage="baseline", version=label, iteration=0, metrics=metrics)
