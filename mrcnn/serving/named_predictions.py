"""Storing a model's predictions whose categories are named as the model names them.

A model proposes categories by name; the project stores category ids. A name the project
knows maps to its category; a name it lacks becomes a new category when the caller adopts the
model's categories, else those detections are dropped (e.g. a COCO model run on a project with
its own categories keeps only the names they share). `mrcnn predict` and the window both store
predictions through here. Torch-free: the window calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mrcnn.masks import Rle
from mrcnn.store.project import Project
from mrcnn.store.records import Instance


def category_ids(project: Project, names: Iterable[str], *,
                 adopt_categories: bool) -> dict[str, int | None]:
    """The project's category id for each name; a name it lacks is added as a category when
    `adopt_categories`, else maps to None (its detections are to be dropped)."""
    ids: dict[str, int | None] = {}
    for name in dict.fromkeys(names):
        cat = project.category_by_name(name)
        if cat is None and adopt_categories:
            cat = project.add_category(name)
        ids[name] = cat.id if cat else None
    return ids


def store_named_predictions(project: Project, image_id: int, model_key: str,
                            items: Sequence[tuple[str, Rle, float]], *,
                            model_version_id: int | None = None,
                            adopt_categories: bool = True) -> tuple[list[Instance], int]:
    """Store an image's predictions (category name, mask, score) as pending instances under
    `model_key` (`Project.replace_predictions`), mapping names with `category_ids`. One
    transaction. Returns (stored instances, detections dropped)."""
    with project.transaction():
        ids = category_ids(project, (n for n, _rle, _score in items),
                           adopt_categories=adopt_categories)
        kept = [(cat_id, rle, s) for n, rle, s in items if (cat_id := ids[n]) is not None]
        added = project.replace_predictions(image_id, model_key, kept,
                                            model_version_id=model_version_id)
    return added, len(items) - len(kept)
