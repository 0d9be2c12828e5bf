"""Predictions named as the model names its classes: stored under the project's category of
that name or the one the user mapped it to, ignored, or kept aside as a suggestion until the
user decides — never a category added without the user (`mrcnn predict` and the window both
store through here). No torch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.errors import ProjectError
from mrcnn.serving.named_predictions import (
    accept_suggestion,
    category_ids,
    ignore_suggestion,
    map_suggestion,
    store_named_predictions,
)
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder


@pytest.fixture
def project(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    Image.fromarray(np.full((16, 16, 3), 9, np.uint8)).save(tmp_path / "imgs" / "b.png")
    p = Project.create(tmp_path / "proj", tmp_path / "imgs")
    scan_folder(p)
    yield p
    p.close()


def _mask(x: int) -> masks.Rle:
    m = np.zeros((16, 16), bool)
    m[2:6, x:x + 4] = True
    return masks.encode(m)


COCO = [("person", _mask(0), 0.9), ("wine glass", _mask(6), 0.8), ("person", _mask(10), 0.5),
        ("broccoli", _mask(3), 0.7)]


def test_a_project_without_categories_gets_none_from_a_coco_model(project):
    a, b = project.images()
    stored = store_named_predictions(project, a.id, "coco-r50v2", COCO)
    store_named_predictions(project, b.id, "coco-r50v2", COCO[:2])
    assert project.categories() == [] and project.instances() == []
    assert stored.suggested == {"person": 2, "wine glass": 1, "broccoli": 1}
    assert stored.set_aside == 4
    assert project.predicted_by(a.id, "coco-r50v2")
    assert project.image(a.id).status == "predicted"
    offered = {s.name: (s.predictions, s.image_ids) for s in project.category_suggestions()}
    assert offered == {"person": (3, (a.id, b.id)), "wine glass": (2, (a.id, b.id)),
                       "broccoli": (1, (a.id,))}
    assert project.category_suggestions()[0].name == "person"  # most predictions first


def test_names_the_project_has_are_stored_under_its_categories(project):
    square = project.add_category("square")
    image = project.images()[0]
    items = [("disc", _mask(0), 0.9), ("square", _mask(6), 0.8), ("disc", _mask(10), 0.5)]
    stored = store_named_predictions(project, image.id, "v1", items)
    assert [i.category_id for i in stored.instances] == [square.id]
    assert stored.suggested == {"disc": 2}
    assert [c.name for c in project.categories()] == ["square"]
    assert category_ids(project, ["disc", "square", "disc"]) == {"disc": None,
                                                                  "square": square.id}


def test_accepting_adds_the_category_and_its_images_are_predicted_again(project):
    a, b = project.images()
    store_named_predictions(project, a.id, "coco-r50v2", COCO)
    store_named_predictions(project, b.id, "coco-r50v2", COCO[1:2])
    broccoli = accept_suggestion(project, "broccoli")
    assert [c.name for c in project.categories()] == ["broccoli"]
    assert not project.predicted_by(a.id, "coco-r50v2")  # the next run predicts it again
    assert project.predicted_by(b.id, "coco-r50v2")  # no broccoli there
    stored = store_named_predictions(project, a.id, "coco-r50v2", COCO)
    assert [i.category_id for i in stored.instances] == [broccoli.id]
    assert {s.name for s in project.category_suggestions()} == {"person", "wine glass"}


def test_mapping_stores_the_class_under_the_users_category_once_for_the_project(project):
    pedestrian = project.add_category("pedestrian")
    image = project.images()[0]
    store_named_predictions(project, image.id, "coco-r50v2", COCO)
    map_suggestion(project, "person", "pedestrian")
    stored = store_named_predictions(project, image.id, "coco-r50v2", COCO)
    assert [i.category_id for i in stored.instances] == [pedestrian.id, pedestrian.id]
    assert [c.name for c in project.categories()] == ["pedestrian"]
    assert "person" not in {s.name for s in project.category_suggestions()}
    with pytest.raises(ProjectError, match="no category 'cyclist'"):
        map_suggestion(project, "wine glass", "cyclist")


def test_ignoring_stores_nothing_and_offers_it_no_more(project):
    image = project.images()[0]
    store_named_predictions(project, image.id, "coco-r50v2", COCO)
    ignore_suggestion(project, "wine glass")
    assert project.predicted_by(image.id, "coco-r50v2")  # nothing to predict again
    stored = store_named_predictions(project, image.id, "coco-r50v2", COCO)
    assert stored.ignored == 1 and "wine glass" not in stored.suggested
    assert "wine glass" not in {s.name for s in project.category_suggestions()}
    assert project.instances() == []


def test_decisions_outlive_reopening_and_follow_a_merge(project, tmp_path):
    pedestrian = project.add_category("pedestrian")
    walker = project.add_category("walker")
    map_suggestion(project, "person", pedestrian.id)
    ignore_suggestion(project, "scissors")
    project.merge_categories(pedestrian.id, walker.id)
    project.close()
    with Project.open(tmp_path / "proj") as again:
        image = again.images()[0]
        stored = store_named_predictions(again, image.id, "coco-r50v2",
                                         [*COCO, ("scissors", _mask(1), 0.6)])
        assert [i.category_id for i in stored.instances] == [walker.id, walker.id]
        assert stored.ignored == 1
