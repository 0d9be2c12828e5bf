"""`python -m mrcnn categories`: what a model suggested, and deciding on it from a shell
(the same rule as the window: `mrcnn.serving.named_predictions`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.cli.main import main
from mrcnn.serving.named_predictions import store_named_predictions
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder


def run_here(*args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def images(tmp_path):
    """A folder of one image whose project a COCO model has predicted."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    m = np.zeros((8, 8), bool)
    m[1:4, 1:4] = True
    rle = masks.encode(m)
    with Project.create(folder / ".mrcnn-project", folder) as project:
        scan_folder(project)
        project.add_category("pedestrian")
        store_named_predictions(project, project.images()[0].id, "coco-r50v2",
                                [("person", rle, 0.9), ("person", rle, 0.8),
                                 ("scissors", rle, 0.7), ("broccoli", rle, 0.6)])
    return folder


def test_suggestions_are_listed_with_how_to_decide(images, capsys):
    code, out, _err = run_here("categories", images, capsys=capsys)
    assert code == 0
    assert "categories   pedestrian" in out
    assert "'person': 2 predictions on 1 images" in out
    assert "--accept NAME | --map NAME=CATEGORY | --ignore NAME" in out


def test_accept_map_and_ignore_are_remembered(images, capsys):
    code, _out, err = run_here("categories", images, "--accept", "broccoli",
                               "--map", "person=pedestrian", "--ignore", "scissors",
                               capsys=capsys)
    assert code == 0 and "mapped 'person' to 'pedestrian'" in err
    code, out, _err = run_here("categories", images, "--json", capsys=capsys)
    data = json.loads(out)
    assert data["categories"] == ["pedestrian", "broccoli"]
    assert {(d["name"], d["decision"], d["category"]) for d in data["decisions"]} == {
        ("person", "map", "pedestrian"), ("scissors", "ignore", None)}
    assert data["suggestions"] == []


def test_mapping_to_a_missing_category_is_one_error_line(images, capsys):
    code, out, err = run_here("categories", images, "--map", "person=cyclist", capsys=capsys)
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        "error: the project has no category 'cyclist'; its categories are: pedestrian"]
