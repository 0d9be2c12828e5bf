"""Evaluation returns the same numbers as pycocotools run directly on the same predictions."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn import masks
from mrcnn.model.convert import LabelMap
from mrcnn.model.predictor import Prediction
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.dataset import reviewed_image_ids
from mrcnn.training.evaluate import (
    evaluate_coco,
    ground_truth,
    prediction_results,
    score_baseline,
)


def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.fixture
def scored_project(tmp_path):
    """A project with 6 images of discs and squares, and imperfect predictions for them."""
    rng = np.random.default_rng(3)
    (tmp_path / "imgs").mkdir()
    project = Project.create(tmp_path / "p", tmp_path / "imgs")
    disc, square = project.add_category("disc"), project.add_category("square")
    preds = {}
    for i in range(6):
        h, w = 96, 128
        img = project.add_image(tmp_path / "imgs" / f"{i}.png", w, h, f"{i:064x}",
                                status="reviewed")
        boxes, labels, scores, pmasks = [], [], [], []
        for k in range(3):
            cy, cx, r = rng.integers(20, 76), rng.integers(20, 108), rng.integers(8, 18)
            m = _disc(h, w, cy, cx, r)
            cat = disc if k % 2 == 0 else square
            if cat is square:
                m = np.zeros((h, w), bool)
                m[cy - r:cy + r, cx - r:cx + r] = True
            project.add_instance(img.id, cat.id, masks.encode(m))
            # a prediction: the mask grown or shrunk a little, sometimes the wrong class
            kernel = np.ones((3, 3), np.uint8)
            pm = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(m.astype(np.uint8), kernel)
            pm = pm.astype(bool)
            if not pm.any():
                continue
            label = (1 if cat is disc else 2) if rng.random() < 0.8 else (2 if cat is disc else 1)
            ys, xs = np.nonzero(pm)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(label)
            scores.append(rng.uniform(0.3, 1.0))
            pmasks.append(pm)
        # a false positive
        fp = _disc(h, w, 10, 10, 6)
        boxes.append([4, 4, 17, 17])
        labels.append(1)
        scores.append(rng.uniform(0.1, 0.9))
        pmasks.append(fp)
        order = np.argsort(scores)[::-1]
        preds[img.id] = Prediction(np.array(boxes, np.float32)[order],
                                   np.array(labels, np.int64)[order],
                                   np.array(scores, np.float32)[order],
                                   np.array(pmasks)[order])
    yield project, preds
    project.close()


def _pycocotools_direct(tmp_path, gt: dict, results: list, iou_type: str) -> np.ndarray:
    gt_file, res_file = tmp_path / "gt.json", tmp_path / "res.json"
    gt_file.write_text(json.dumps(gt))
    res_file.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        coco_dt = coco_gt.loadRes(str(res_file))
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_metrics_equal_pycocotools_run_directly(scored_project, tmp_path):
    project, preds = scored_project
    labels = LabelMap(["disc", "square"])
    gt = ground_truth(project, list(preds), labels)
    results = prediction_results(preds)
    ours = evaluate_coco(gt, results)
    for iou_type in ("bbox", "segm"):
        direct = _pycocotools_direct(tmp_path, gt, results, iou_type)
        got = [ours[iou_type][k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
        np.testing.assert_allclose(got, direct[:6], atol=1e-12)
        assert 0.05 < ours[iou_type]["AP"] < 0.95  # imperfect predictions: a real test
        assert set(ours[iou_type]["per_class"]) == {"disc", "square"}


def test_perfect_predictions_score_one_and_none_score_zero(scored_project):
    project, preds = scored_project
    labels = LabelMap(["disc", "square"])
    gt = ground_truth(project, list(preds), labels)
    perfect = []
    for ann in gt["annotations"]:
        perfect.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                        "bbox": ann["bbox"], "score": 1.0,
                        "segmentation": ann["segmentation"]})
    m = evaluate_coco(gt, perfect)
    assert m["bbox"]["AP"] == pytest.approx(1.0)
    assert m["segm"]["AP"] == pytest.approx(1.0)
    assert m["segm"]["per_class"] == {"disc": pytest.approx(1.0), "square": pytest.approx(1.0)}
    empty = evaluate_coco(gt, [])
    assert empty["segm"]["AP"] == 0.0 and empty["bbox"]["AP50"] == 0.0
    # every score says what it rests on (shown next to the AP: "val: 3 images, 24 ...")
    assert m["scored"] == {"images": len(gt["images"]), "instances": len(gt["annotations"])}


def test_ground_truth_uses_only_accepted_instances(scored_project):
    project, preds = scored_project
    image_id = next(iter(preds))
    before = len(ground_truth(project, [image_id], LabelMap(["disc", "square"]))["annotations"])
    m = _disc(96, 128, 50, 50, 10)
    project.replace_predictions(image_id, "v1", [(1, masks.encode(m), 0.9)])
    gt = ground_truth(project, [image_id], LabelMap(["disc", "square"]))
    assert len(gt["annotations"]) == before


# ---------------------------------------------------------------- the COCO model as baseline
@pytest.fixture(scope="module")
def shapes_project(tmp_path_factory):
    """The synthetic shapes, 2 val images of 64 px (read-only: scoring changes nothing)."""
    return make_synthetic_project(tmp_path_factory.mktemp("shapes"), n_train=2, n_val=2,
                                  size=64)


def test_cached_coco_weights_are_scored_as_the_baseline(shapes_project, stand_in_coco_home,
                                                        monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(stand_in_coco_home))
    with Project.open(shapes_project, read_only=True) as project:
        event = score_baseline(project, "coco", starting_id=None)
        assert (event.stage, event.version, event.error) == ("baseline", "COCO weights", None)
        assert event.metrics["scored"] == {"images": 2, "instances": sum(
            len(project.instances(i, state="accepted"))
            for i in reviewed_image_ids(project, "val"))}
        # the project's categories, scored by name: what `eval --model coco` reports
        assert set(event.metrics["segm"]["per_class"]) <= {c.name for c in project.categories()}
        assert event.metrics["segm"]["per_class"]


def test_coco_baseline_without_cached_weights_says_so_and_does_not_fail(shapes_project,
                                                                         tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    with Project.open(shapes_project, read_only=True) as project:
        event = score_baseline(project, "coco")
    assert (event.stage, event.version, event.metrics) == ("baseline", "COCO weights", None)
    assert "COCO weights are not in the torch cache" in event.error
