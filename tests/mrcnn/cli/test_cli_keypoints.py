"""`python -m mrcnn categories PROJECT --keypoints CATEGORY ...`: a category's keypoint
schema from a shell (names and a skeleton, COCO's person template, or none)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from mrcnn.cli.main import main
from mrcnn.keypoints import COCO_PERSON
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder


def _project(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    with Project.create(folder / ".mrcnn-project", folder) as project:
        scan_folder(project)
        project.add_category("bird")
        project.add_category("person")
    return folder


def _schema(folder, name):
    with Project.open(folder, read_only=True) as p:
        return next(c for c in p.categories() if c.name == name).keypoints


def test_names_skeleton_template_and_clear(tmp_path, capsys):
    folder = _project(tmp_path)
    assert main(["categories", str(folder), "--keypoints", "bird", "--names",
                 "beak, left_wing,right_wing,tail", "--skeleton", "beak-tail,left_wing-tail"]) == 0
    schema = _schema(folder, "bird")
    assert schema.names == ("beak", "left_wing", "right_wing", "tail")
    assert schema.skeleton == ((0, 3), (1, 3)) and schema.flip_indices() == (0, 2, 1, 3)
    assert "'bird' keypoints: beak, left_wing, right_wing, tail" in capsys.readouterr().out
    assert main(["categories", str(folder), "--keypoints", "person", "--template",
                 "coco-person"]) == 0
    assert _schema(folder, "person") == COCO_PERSON
    capsys.readouterr()
    assert main(["categories", "--json", str(folder)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["keypoints"]["bird"]["names"] == ["beak", "left_wing", "right_wing", "tail"]
    assert len(data["keypoints"]["person"]["names"]) == 17
    assert main(["categories", str(folder), "--keypoints", "bird", "--clear-keypoints"]) == 0
    assert _schema(folder, "bird") is None


def test_mistakes_are_one_line_errors(tmp_path, capsys):
    folder = _project(tmp_path)
    for args in (["--keypoints", "bird"],  # nothing to set
                 ["--keypoints", "bird", "--names", "a,b", "--template", "coco-person"],
                 ["--keypoints", "bird", "--names", "a,b", "--skeleton", "a-c"],
                 ["--keypoints", "bird", "--names", "a,a"],
                 ["--keypoints", "fish", "--names", "a"],
                 ["--names", "a,b"]):  # no category
        capsys.readouterr()
        assert main(["categories", str(folder), *args]) != 0, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
    assert _schema(folder, "bird") is None


def test_train_eval_and_predict_follow_the_projects_keypoints(tmp_path, monkeypatch, capsys):
    from mrcnn.testing.synthetic import SHAPE_KEYPOINTS, make_synthetic_project

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    project = make_synthetic_project(tmp_path, n_train=2, n_val=2, size=64, keypoints=True)
    assert main(["train", str(project), "--preset", "r18", "--from", "scratch", "--size", "64",
                 "--max-iters", "2", "--device", "cpu"]) == 0
    with Project.open(project, read_only=True) as p:
        version = p.active_model_version()
        assert version is not None
        assert version.metadata["keypoints"] == {k: list(v) for k, v in SHAPE_KEYPOINTS.items()}
        assert "keypoints" in version.metadata["metrics"]["after"]
    capsys.readouterr()
    assert main(["eval", str(project), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "\nkps " in out and "per-class keypoint AP: " in out
    out_file = tmp_path / "results.json"
    assert main(["predict", str(project), "--images", "all", "--device", "cpu",
                 "--no-uncertainty", "--score-threshold", "0", "--out", str(out_file)]) == 0
    with Project.open(project, read_only=True) as p:
        schemas = {c.id: c.keypoints for c in p.categories()}
        pending = [i for im in p.images() for i in p.instances(im.id, state="pending")]
    assert pending
    for inst in pending:
        schema = schemas[inst.category_id]
        assert (inst.keypoints is None) == (schema is None)
        assert inst.keypoints is None or len(inst.keypoints) == schema.size
    # the results file carries each keypoint category's detections' points as COCO writes
    # them (x, y, v triplets of its own count), and none for the others
    results = json.loads(out_file.read_text())
    with Project.open(project, read_only=True) as p:
        sizes = {c.id: c.keypoints.size if c.keypoints else 0 for c in p.categories()}
    assert results and any("keypoints" in r for r in results)
    for r in results:
        assert len(r.get("keypoints", [])) == 3 * sizes[r["category_id"]]
