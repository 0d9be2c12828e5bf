"""Which category a model's prediction gets, by the name the model gives its class: the rule.

A model names its classes; the project stores category ids. For each name, in this order:

1. a project category of that name: the prediction is stored under it;
2. the user mapped the name to one of their categories (COCO `person` → `pedestrian`):
   stored under that one;
3. the user ignores the name: not stored;
4. otherwise the name is *suggested*: its predictions are not stored, and the name, how many
   predictions and on which images are kept in the project (`Project.category_suggestions`)
   so the user can decide once for the project: `accept_suggestion` (adds the category),
   `map_suggestion` or `ignore_suggestion`.

No category is ever added without the user: a COCO model on a project with no categories
stores nothing until one is accepted. Deciding to accept or map forgets that the suggestion's
images were predicted, so the next prediction run (the window's look-ahead, `mrcnn predict`)
stores their predictions under the decided category. `mrcnn predict`, `mrcnn categories` and
the window all go through here. Torch-free: the window calls it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mrcnn.errors import ProjectError
from mrcnn.keypoints import Points
from mrcnn.masks import Rle
from mrcnn.store.project import Project
from mrcnn.store.records import Category, Instance
from mrcnn.store.suggestions import CategorySuggestion


@dataclass
class StoredPredictions:
    """What storing one image's predictions did."""

    instances: list[Instance] = field(default_factory=list)
    #: class name → predictions kept aside as a suggestion (no category, no decision)
    suggested: dict[str, int] = field(default_factory=dict)
    ignored: int = 0  # predictions of names the user ignores

    @property
    def set_aside(self) -> int:
        """Predictions not stored (suggested or ignored)."""
        return sum(self.suggested.values()) + self.ignored


def category_ids(project: Project, names: Iterable[str]) -> dict[str, int | None]:
    """Each name's category id by the rule above; None when its predictions are not stored
    (the name is ignored or only suggested). Changes nothing."""
    ids: dict[str, int | None] = {}
    for name in dict.fromkeys(names):
        cat = project.category_by_name(name)
        if cat is not None:
            ids[name] = cat.id
            continue
        decision = project.category_decision(name)
        ids[name] = decision.category_id if decision and decision.decision == "map" else None
    return ids


def category_for_box(project: Project, name: str, chosen: int | None) -> int | None:
    """The category of an instance the model made from a box a person drew (Box → Mask):
    the one its class name gets by the rule above, else the category the person chose for
    new instances (they drew the box: they want an instance, whatever the model calls it)."""
    known = category_ids(project, [name]).get(name) if name else None
    return known if known is not None else chosen


def store_named_predictions(project: Project, image_id: int, model_key: str,
                            items: Sequence[tuple[str, Rle, float]
                                            | tuple[str, Rle, float, Points | None]], *,
                            model_version_id: int | None = None,
                            uncertainty: float | None = None,
                            keypoints: Sequence[Points | None] | None = None
                            ) -> StoredPredictions:
    """Store an image's predictions (class name, mask, score), or (class name, mask, score,
    keypoints), as pending instances under `model_key` (`Project.replace_predictions`),
    named by the rule above; the names with no category and no decision become the image's
    suggestions. One transaction. `keypoints`: each item's points, beside 3-tuple items
    (`ImagePrediction.keypoints`). Points are kept where the category they are stored under
    has a keypoint schema of their count, else dropped (the mask is stored all the same)."""
    result = StoredPredictions()
    if keypoints is not None:
        items = [(item[0], item[1], item[2], points)
                 for item, points in zip(items, keypoints, strict=True)]
    with project.transaction():
        ids = category_ids(project, (item[0] for item in items))
        sizes: dict[int, int | None] = {}
        kept = []
        aside: Counter[str] = Counter()
        for name, rle, score, *rest in items:
            if (cat_id := ids[name]) is not None:
                points = rest[0] if rest else None
                if points is not None:
                    if cat_id not in sizes:
                        schema = project.category_schema(cat_id)
                        sizes[cat_id] = None if schema is None else schema.size
                    if sizes[cat_id] != len(points):
                        points = None
                kept.append((cat_id, rle, score, points))
            elif project.category_decision(name) is not None:
                result.ignored += 1
            else:
                aside[name] += 1
        result.instances = project.replace_predictions(image_id, model_key, kept,
                                                       model_version_id=model_version_id,
                                                       uncertainty=uncertainty)
        project.replace_suggestions(image_id, model_key, aside)
    result.suggested = dict(aside)
    return result


def suggestions(project: Project) -> list[CategorySuggestion]:
    """The class names waiting for the user's decision, most predictions first."""
    return project.category_suggestions()


def accept_suggestion(project: Project, name: str) -> Category:
    """Add the category `name` (or take the one there is); the suggestion's images will be
    predicted again. One transaction."""
    with project.transaction():
        project.clear_category_decision(name)
        category = project.add_category(name)
        project.forget_predictions(project.drop_suggestion(name))
    return category


def map_suggestion(project: Project, name: str, category: str | int) -> Category:
    """From now on predictions of class `name` go to the project's `category` (a name or
    id); the suggestion's images will be predicted again. One transaction."""
    target = _category(project, category)
    if target.name == name:
        return accept_suggestion(project, name)
    with project.transaction():
        project.set_category_decision(name, "map", target.id)
        project.forget_predictions(project.drop_suggestion(name))
    return target


def ignore_suggestion(project: Project, name: str) -> None:
    """Never store predictions of class `name` in this project (unless a category of that
    name is made). One transaction."""
    with project.transaction():
        project.set_category_decision(name, "ignore")
        project.drop_suggestion(name)


def _category(project: Project, category: str | int) -> Category:
    for c in project.categories():
        if c.id == category or c.name == category:
            return c
    raise ProjectError(f"the project has no category {category!r}; its categories are: "
                       + (", ".join(c.name for c in project.categories()) or "none yet"))
