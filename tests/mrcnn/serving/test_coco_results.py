"""Predictions as COCO results: numbered like the user's own file, so they score against it."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.coco.io import import_coco
from mrcnn.model.convert import xywh_to_xyxy
from mrcnn.model.predictor import Prediction
from mrcnn.serving.predict import CocoResults


def _segm_ap(gt_path, results: list[dict]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(results), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_perfect_predictions_score_1_against_the_imported_file(make_dataset, new_project,
                                                              helpers):
    ds = make_dataset("rle")
    original = helpers.renumber_coco(ds.coco)  # ids far from 1..N
    ds.write(original)
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    cats = {c.id: c.name for c in project.categories()}
    # the model's classes in another order than the file's, one the user mapped to "cat",
    # and one the project has no category for
    project.set_category_decision("kitty", "map", project.category_by_name("cat").id)
    names = ["zebra", "kitty", *reversed([n for n in cats.values() if n != "cat"])]
    results = CocoResults(project, names)
    for im in project.images():
        insts = project.instances(im.id, state="accepted")
        labels = [names.index("kitty" if cats[i.category_id] == "cat" else cats[i.category_id])
                  + 1 for i in insts]
        everything = np.ones((1, im.height, im.width), bool)
        results.add(im.id, Prediction(
            np.array([xywh_to_xyxy(i.bbox) for i in insts] + [[0, 0, im.width, im.height]],
                     np.float32).reshape(-1, 4),
            np.array([*labels, 1], np.int64),  # a "zebra" everywhere, at a high score
            np.array([0.9] * len(insts) + [0.95], np.float32),
            np.concatenate([np.stack([i.rle.decode() for i in insts]).astype(bool)
                            if insts else everything[:0], everything])))

    file_cats = {c["id"]: c["name"] for c in original["categories"]}
    file_images = {im["id"] for im in original["images"]}
    assert results.results and all(
        r["category_id"] in file_cats and r["image_id"] in file_images for r in results.results)
    assert isinstance(results.results[0]["segmentation"]["counts"], str)
    assert len(results.results) == len(original["annotations"])  # no zebra
    assert _segm_ap(ds.json_path, results.results) == 1.0

