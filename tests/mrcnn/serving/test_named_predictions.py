"""Predictions named as the model names its categories: adopted or dropped, in one place
(`mrcnn predict` and the window both store through it). No torch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.serving.named_predictions import category_ids, store_named_predictions
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder


@pytest.fixture
def project(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    p = Project.create(tmp_path / "proj", tmp_path / "imgs")
    scan_folder(p)
    yield p
    p.close()


def _mask(x: int) -> masks.Rle:
    m = np.zeros((16, 16), bool)
    m[2:6, x:x + 4] = True
    return masks.encode(m)


def test_adopting_adds_the_names_the_project_lacks(project):
    square = project.add_category("square")
    image = project.images()[0]
    items = [("disc", _mask(0), 0.9), ("square", _mask(6), 0.8), ("disc", _mask(10), 0.5)]
    added, dropped = store_named_predictions(project, image.id, "v1", items, model_version_id=None)
    assert dropped == 0 and len(added) == 3
    disc = project.category_by_name("disc")
    assert [c.name for c in project.categories()] == ["square", "disc"]
    assert [i.category_id for i in added] == [disc.id, square.id, disc.id]
    assert project.predicted_by(image.id, "v1")
    assert project.image(image.id).status == "predicted"


def test_without_adopting_unknown_names_are_dropped(project):
    square = project.add_category("square")
    image = project.images()[0]
    items = [("disc", _mask(0), 0.9), ("square", _mask(6), 0.8)]
    added, dropped = store_named_predictions(project, image.id, "coco-r50v2", items,
                                             adopt_categories=False)
    assert dropped == 1 and [i.category_id for i in added] == [square.id]
    assert [c.name for c in project.categories()] == ["square"]
    assert category_ids(project, ["disc", "square", "disc"], adopt_categories=False) == {
        "disc": None, "square": square.id}
