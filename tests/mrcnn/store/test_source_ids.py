"""The ids images and categories had in the COCO file they were imported from."""

from __future__ import annotations

import pytest

from mrcnn.errors import ProjectError
from mrcnn.store import schema
from mrcnn.store.project import Project
from mrcnn.store.records import Category


def test_a_project_from_before_source_ids_upgrades_with_none(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    monkeypatch.setattr(schema, "LATEST", 3)  # the program before the source ids
    with Project.create(tmp_path / "old", tmp_path / "images") as old:
        image = old.add_image(tmp_path / "images" / "a.png", 4, 3, "a" * 64)
        # written as that program did (today's reads know columns it did not have)
        with old.transaction():
            cur = old._q("INSERT INTO categories(name, color) VALUES ('dog', '#aa0000')")
        dog = Category(cur.lastrowid, "dog", "#aa0000")
    monkeypatch.undo()
    with Project.open(tmp_path / "old") as p:
        assert p.image_coco_ids() == {image.id: None}
        assert p.category_coco_ids() == {dog.id: None}
        p.set_image_coco_id(image.id, 4711)
        p.set_category_coco_id(dog.id, 18)
    with Project.open(tmp_path / "old", read_only=True) as p:  # durable
        assert (p.image_coco_ids(), p.category_coco_ids()) == ({image.id: 4711}, {dog.id: 18})
        assert p.images() == [image] and p.categories() == [dog]  # records as before


def test_setting_the_id_of_an_unknown_image_or_category_is_an_error(tmp_path):
    (tmp_path / "images").mkdir()
    with Project.create(tmp_path / "p", tmp_path / "images") as p:
        with pytest.raises(ProjectError, match="no image with id 9"):
            p.set_image_coco_id(9, 1)
        with pytest.raises(ProjectError, match="no category with id 9"):
            p.set_category_coco_id(9, 1)
