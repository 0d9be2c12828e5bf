"""`python -m mrcnn info`: the data set overview (`mrcnn.store.overview`) under "overview" in
--json, equal to the function's result, and a compact form in the text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mrcnn import masks
from mrcnn.cli.main import main
from mrcnn.store.overview import dataset_overview
from mrcnn.store.project import Project


def _square(side: int) -> masks.Rle:
    m = np.zeros((120, 160), bool)
    m[:side, :side] = True
    return masks.encode(m)


@pytest.fixture
def project(tmp_path):
    """Three images: a reviewed training image (2 dogs 10², a cat 40²), a reviewed
    validation image with nothing, and a predicted one with a pending cat."""
    folder = tmp_path / "project"
    with Project.create(folder, tmp_path) as p:
        dog, cat = p.add_category("dog"), p.add_category("cat")
        ims = [p.add_image(tmp_path / f"{k}.png", 160, 120, f"{k:064x}", status=status)
               for k, status in enumerate(("reviewed", "reviewed", "predicted"))]
        for im, split in zip(ims, ("train", "val", "train"), strict=True):
            if im.split != split:
                p.set_image_split(im.id, split)
        for category, side in ((dog, 10), (dog, 10), (cat, 40)):
            p.add_instance(ims[0].id, category.id, _square(side))
        p.add_instance(ims[2].id, cat.id, _square(20), source="model", score=0.6,
                       state="pending")
    return folder


def run_here(capsys, *args) -> str:
    capsys.readouterr()
    assert main([str(a) for a in args]) == 0
    return capsys.readouterr().out


def test_info_json_has_the_overview_equal_to_the_functions_result(project, capsys):
    info = json.loads(run_here(capsys, "info", project, "--json"))
    with Project.open(project, read_only=True) as p:
        expected = json.loads(json.dumps(dataset_overview(p).to_dict()))
    assert info["overview"] == expected
    o = info["overview"]
    assert [(c["name"], c["train"], c["val"], c["pending"]) for c in o["categories"]] == [
        ("dog", 2, 0, 0), ("cat", 1, 0, 1)]
    assert o["images"]["reviewed"] == {"train": 1, "val": 1}
    assert o["sizes"]["train"]["small"] == 2 and o["per_image"]["negatives"] == 1
    assert info["images"]["total"] == 3  # the summary is still there, beside it


def test_info_text_names_each_category_with_its_counts(project, capsys):
    out = run_here(capsys, "info", project)
    assert "dog  (2)  train 2, val 0, pending 0" in out
    assert "cat  (1)  train 1, val 0, pending 1" in out
    assert "train: small 2, medium 1, large 0; val: small 0, medium 0, large 0" in out
    assert "2 reviewed images: 0 to 3 instances, median 1.5; 1 without any" in out
    assert "  train      new 0, predicted 1, in_review 0, reviewed 1" in out
    assert "  val        new 0, predicted 0, in_review 0, reviewed 1" in out


def test_info_says_whether_fine_tune_can_run_as_the_window_does(project, capsys):
    """The window's Fine-tune rule, from the command line too: 3 images in all cannot make
    the 10 reviewed images it needs, and info says so rather than 'review 8 more'."""
    assert "fine-tune    needs 10 reviewed images; the project has only 3 images" in run_here(
        capsys, "info", project)
    info = json.loads(run_here(capsys, "info", project, "--json"))
    assert info["fine_tune"]["ready"] is False
    assert info["fine_tune"]["missing"] == "needs 10 reviewed images; the project has only 3 images"
    assert "add images to its folder" in info["fine_tune"]["advice"]
