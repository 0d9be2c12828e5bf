"""`predict --out`: detections as a COCO results file that scores against the user's own
ground-truth file exactly as `eval` scores the project."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.coco.io import build_coco, import_coco
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mrcnn", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module")
def imported(tmp_path_factory, helpers):
    """(project folder, its ground-truth COCO file, a checkpoint for its categories): the
    synthetic shapes exported, renumbered (image ids and category ids far from 1..N) and
    imported into a new project, and a random r18 model."""
    base = tmp_path_factory.mktemp("predict_out")
    synthetic = make_synthetic_project(base / "synthetic", n_train=4, n_val=2, size=64)
    with Project.open(synthetic, read_only=True) as p:
        coco, _ = build_coco(p)
        images_root = p.images_root
    gt = images_root / "ground_truth.json"
    gt.write_text(json.dumps(helpers.renumber_coco(coco)))
    with Project.create(base / "project", images_root) as project:
        import_coco(project, gt)
        names = [c.name for c in project.categories()]
    ck = base / "model.pt"
    torch.manual_seed(8)  # a random model whose AP is not 0 on these images (bbox ~4e-4)
    state = build_model(preset="r18", num_classes=len(names) + 1, min_size=64).state_dict()
    save_checkpoint(ck, state_dict=state, preset="r18", categories=names,
                    metadata={"size": 64})
    return base / "project", gt, ck


@pytest.fixture
def no_torch_home(tmp_path):
    return {"TORCH_HOME": str(tmp_path / "torch_home")}


def _coco_eval(gt: COCO, results: list[dict], iou_type: str) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_results_file_loads_against_the_users_file_and_scores_as_eval(imported, tmp_path,
                                                                       no_torch_home):
    project, gt_path, ck = imported
    # a first run stores the predictions: --out then runs the model again for the file
    r = run("predict", project, "--model", ck, "--images", "all", "--json", env=no_torch_home)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results.json"
    r = run("predict", project, "--model", ck, "--images", "all", "--out", out, "--json",
            env=no_torch_home)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout.splitlines()[-1])
    assert (done["predicted"], done["cached"]) == (0, 6)
    results = json.loads(out.read_text())
    assert done["out"]["detections"] == len(results) > 0

    assert all(set(r) == {"image_id", "category_id", "segmentation", "bbox", "score"}
               and isinstance(r["segmentation"]["counts"], str) for r in results)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        gt.loadRes(json.loads(out.read_text()))  # refuses image ids its file does not have
    assert {r["image_id"] for r in results} <= set(gt.getImgIds())
    assert {r["category_id"] for r in results} <= set(gt.getCatIds())

    r = run("eval", project, "--model", ck, "--split", "all", "--json", env=no_torch_home)
    assert r.returncode == 0, r.stderr
    ours = json.loads(r.stdout)
    assert ours["images"] == 6 and ours["bbox"]["AP"] > 0  # else the comparison is weak
    for iou_type in ("segm", "bbox"):
        theirs = _coco_eval(gt, json.loads(out.read_text()), iou_type)
        assert theirs == pytest.approx(ours[iou_type]["AP"], abs=1e-9), iou_type


@pytest.mark.parametrize("where", ["missing folder", "a folder", "under a file"])
def test_an_unwritable_out_is_refused_before_predicting(imported, tmp_path, no_torch_home,
                                                        where):
    project, _gt, ck = imported
    (tmp_path / "file").write_text("x")
    out = {"missing folder": tmp_path / "no" / "results.json", "a folder": tmp_path,
           "under a file": tmp_path / "file" / "results.json"}[where]
    with Project.open(project, read_only=True) as p:
        before = p.summary()
    r = run("predict", project, "--model", ck, "--images", "all", "--out", out,
            env=no_torch_home)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(out.parent) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written
    with Project.open(project, read_only=True) as p:
        assert p.summary() == before  # nothing predicted either
