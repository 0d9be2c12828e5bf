"""benchmarks/mask_quality.py measures and prints its table by object size; a stand-in
predictor (the ground truth, exact or eroded) replaces the trained models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.mask_quality import (
    Measured,
    format_table,
    measure,
    measure_refined,
    ordered,
)
from mrcnn.model.predictor import Prediction
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.dataset import project_labels, reviewed_image_ids


def _stand_in(project: Project, labels, erode: int):
    """Predicts each image's accepted instances, eroded by `erode` pixels, at score 0.9."""
    names = {c.id: c.name for c in project.categories()}
    kernel = np.ones((3, 3), np.uint8)

    def predict(ids):
        out = {}
        for i in ids:
            insts = project.instances(i, state="accepted")
            ms = [inst.rle.decode() for inst in insts]
            if erode:
                ms = [cv2.erode(m.astype(np.uint8), kernel, iterations=erode).astype(bool)
                      for m in ms]
            im = project.image(i)
            out[i] = Prediction(
                np.array([[0, 0, 1, 1]] * len(ms), np.float32).reshape(-1, 4),
                np.array([labels.label(names[x.category_id]) for x in insts], np.int64),
                np.full(len(ms), 0.9, np.float32),
                np.stack(ms) if ms else np.zeros((0, im.height, im.width), bool))
        return out

    return predict


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = make_synthetic_project(tmp_path_factory.mktemp("mq"), n_train=1, n_val=3,
                                    size=96, seed=2)
    with Project.open(folder, read_only=True) as p:
        yield p


def test_the_table_compares_models_by_object_size(project):
    labels = project_labels(project)
    ids = reviewed_image_ids(project, "val")
    exact, ms, _ = measure(project, ids, labels, _stand_in(project, labels, 0))
    rough, _, _ = measure(project, ids, labels, _stand_in(project, labels, 2))
    assert ms >= 0
    everything = exact.by_size["all"]
    assert everything.instances > 0
    assert everything.matched[0.9] == 1.0 and everything.boundary_iou == pytest.approx(1.0)
    assert everything.mask_ap == pytest.approx(1.0)
    assert rough.by_size["all"].matched[0.9] < 1.0
    assert rough.by_size["all"].boundary_iou < 0.9

    table = format_table([Measured("exact", "stand-in", exact, ms),
                          Measured("eroded", "stand-in", rough, ms)])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["size", "model", "GT"]
    assert "@0.9" in lines[0] and "mask AP" in lines[0] and "bIoU" in lines[0]
    assert [ln.split()[0] for ln in lines[1:9]] == [s for s in ("all", "small", "medium",
                                                               "large") for _ in (0, 1)]
    assert lines[1].split()[1:6] == ["exact", str(everything.instances), "100.0%", "100.0%",
                                     "100.0%"]
    assert lines[-1].startswith("matched @0.9, exact / eroded: all ")


def test_comparing_mask_resolutions_needs_a_common_budget(capsys):
    from benchmarks.mask_quality import parse_args

    args = parse_args(["--synthetic", "--compare-mask-resolution", "--max-iters", "300"])
    assert args.compare_mask_resolution and args.max_iters == 300
    for argv in (["--synthetic", "--compare-mask-resolution"],
                 ["--synthetic", "--compare-mask-resolution", "--max-iters", "3",
                  "--model", "x.pt"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
        assert "--max-iters" in capsys.readouterr().err


def test_refined_rows_snap_eroded_masks_back_and_say_what_the_app_would_do(project):
    labels = project_labels(project)
    ids = reviewed_image_ids(project, "val")
    rough, ms, predictions = measure(project, ids, labels, _stand_in(project, labels, 2))
    base = Measured("eroded", "stand-in", rough, ms)

    refined = measure_refined(project, ids, labels, predictions, base)

    # synthetic shapes have crisp edges: refinement moves the eroded outlines back onto them
    assert refined.refined and refined.name in ("eroded + grabcut", "eroded + guided")
    assert "the app would turn it on" in refined.made
    assert refined.quality.by_size["all"].matched[0.9] > rough.by_size["all"].matched[0.9]
    assert refined.quality.by_size["all"].boundary_iou > rough.by_size["all"].boundary_iou
    assert refined.ms_per_image >= ms

    rows = ordered([base, refined])
    assert [r.name for r in rows] == [refined.name, "eroded"]  # the baseline last
    assert format_table(rows).splitlines()[-1].startswith(f"matched @0.9, {refined.name} / eroded")
