"""Category suggestions and decisions in the project database, including a project made
before they existed (schema version 2), which is upgraded when opened."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.errors import ProjectError
from mrcnn.serving.named_predictions import ignore_suggestion, store_named_predictions
from mrcnn.store import schema
from mrcnn.store.project import DB_NAME, Project
from mrcnn.store.scan import scan_folder


def _mask() -> masks.Rle:
    m = np.zeros((8, 8), bool)
    m[1:4, 1:4] = True
    return masks.encode(m)


def _project_of_schema_2(tmp_path):
    """A project as the program before suggestions made it: images, a COCO-adopted
    category, instances, a prediction record; schema version 2."""
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "models").mkdir()
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    for migration in schema.MIGRATIONS[:2]:
        conn.executescript(migration)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO meta VALUES ('images_root', ?)", (str(tmp_path / "imgs"),))
    conn.execute("INSERT INTO images(path, width, height, sha256, split, added_at, status) "
                 "VALUES ('a.png', 8, 8, 'ab', 'train', 0, 'predicted')")
    conn.execute("INSERT INTO categories(name, color) VALUES ('person', '#ff0000')")
    conn.execute("INSERT INTO predictions VALUES (1, 'coco-r50v2', 0)")
    conn.close()
    return folder


def test_a_schema_2_project_is_upgraded_and_keeps_its_data(tmp_path):
    folder = _project_of_schema_2(tmp_path)
    with Project.open(folder) as project:
        assert project.summary()["schema_version"] == schema.LATEST >= 3
        assert [c.name for c in project.categories()] == ["person"]
        assert project.predicted_by(1, "coco-r50v2")
        assert project.category_suggestions() == [] and project.category_decisions() == []
        stored = store_named_predictions(project, 1, "coco-r50v2",
                                         [("person", _mask(), 0.9), ("scissors", _mask(), 0.8)])
        assert len(stored.instances) == 1 and stored.suggested == {"scissors": 1}
        ignore_suggestion(project, "scissors")
    with Project.open(folder, read_only=True) as project:
        [decision] = project.category_decisions()
        assert (decision.name, decision.decision, decision.category_id) == (
            "scissors", "ignore", None)
        assert project.category_suggestions() == []


@pytest.fixture
def project(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    with Project.create(tmp_path / "proj", tmp_path / "imgs") as p:
        scan_folder(p)
        yield p


def test_a_decision_needs_a_real_category_and_a_name(project):
    with pytest.raises(ProjectError, match="no category with id 99"):
        project.set_category_decision("person", "map", 99)
    with pytest.raises(ProjectError, match="needs a category"):
        project.set_category_decision("person", "map")
    with pytest.raises(ProjectError, match="cannot be empty"):
        project.set_category_decision("  ", "ignore")
    assert project.category_decisions() == []


def test_deleting_a_category_drops_the_mappings_to_it(project):
    cat = project.add_category("pedestrian")
    project.set_category_decision("person", "map", cat.id)
    project.delete_category(cat.id)
    assert project.category_decision("person") is None


def test_suggestions_of_a_deleted_image_go_with_it(project):
    image = project.images()[0]
    project.replace_suggestions(image.id, "coco-r50v2", {"person": 2})
    assert [s.name for s in project.category_suggestions()] == ["person"]
    project._q("DELETE FROM images WHERE id = ?", (image.id,))
    assert project.category_suggestions() == []
