"""Edit ▸ Delete Category: one undoable step, project-wide. Its instances (all images) move to
another category or are deleted with it; undo brings back the category and every instance
exactly, redo does it again."""

from __future__ import annotations

import pytest
from edit_helpers import snapshot

from mrcnn.editing.document import DocumentChange, ImageDocument
from mrcnn.errors import EditError


def test_deleting_a_category_with_its_instances_undoes_exactly(proj):
    project, image_a, image_b = proj
    doc = ImageDocument(project, image_a)
    seen: list[DocumentChange] = []
    doc.subscribe(seen.append)
    before = snapshot(project)
    cat = project.category_by_name("cat")
    cats = [i for i in project.instances() if i.category_id == cat.id]
    assert {i.image_id for i in cats} == {image_a, image_b}
    others = [i for i in project.instances() if i.category_id != cat.id]

    step = doc.delete_category(cat.id)
    assert step is not None and doc.history.undo_count == 1
    assert "cat" not in [c.name for c in project.categories()]
    assert project.instances() == others
    assert seen[-1].categories_changed
    assert seen[-1].removed == {i.id for i in cats if i.image_id == image_a}

    doc.undo()
    assert snapshot(project) == before
    assert seen[-1].added == {i.id for i in cats if i.image_id == image_a}
    doc.redo()
    assert project.instances() == others and project.category_by_name("cat") is None
    doc.undo()
    assert snapshot(project) == before


def test_deleting_a_category_moves_its_instances_to_another_and_undoes(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    before = snapshot(project)
    cat, dog = project.category_by_name("cat"), project.category_by_name("dog")
    cats = [i.id for i in project.instances() if i.category_id == cat.id]
    step = doc.delete_category(cat.id, move_to=dog.id)
    assert step is not None and sorted(step.moved) == sorted(cats)
    assert [c.name for c in project.categories()] == ["dog", "bird"]
    assert {project.instance(i).category_id for i in cats} == {dog.id}
    doc.undo()
    assert snapshot(project) == before
    with pytest.raises(EditError):
        doc.delete_category(cat.id, move_to=cat.id)
