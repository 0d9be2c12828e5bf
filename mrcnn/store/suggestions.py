"""Category suggestions and decisions (a mixin of `mrcnn.store.project.Project`).

A model names the classes it predicts; a name the project has no category for, and no
decision on, is kept aside here as a *suggestion*: on which image, under which model key, how
many predictions. The user's *decision* on such a name is remembered once for the project:
`map` it to one of their categories, or `ignore` it (accepting adds a category of that name,
so it needs no record). The rule that reads them is `mrcnn.serving.named_predictions`.
Every method that changes data is one transaction. No torch.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

from mrcnn.errors import ProjectError

Decision = Literal["map", "ignore"]
DECISIONS: tuple[str, ...] = ("map", "ignore")


@dataclass(frozen=True)
class CategoryDecision:
    """What the user decided for a class name a model predicts: `map` (to `category_id`) or
    `ignore`."""

    name: str
    decision: Decision
    category_id: int | None


@dataclass(frozen=True)
class CategorySuggestion:
    """A class name a model predicted that the project has no category for (and no decision
    on): how many predictions were kept aside, on which images, by which model keys."""

    name: str
    predictions: int
    image_ids: tuple[int, ...]
    model_keys: tuple[str, ...]


class SuggestionStore:
    """Suggestions and decisions, mixed into `Project`, which provides the two methods
    declared just below."""

    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    # ---------------------------------------------------------------- suggestions
    def replace_suggestions(self, image_id: int, model_key: str,
                            counts: Mapping[str, int]) -> None:
        """What an image's latest predictions kept aside: `counts` maps a class name to how
        many of its predictions were not stored. Replaces the image's earlier suggestions
        (as `replace_predictions` replaces its pending instances)."""
        with self.transaction():
            self._q("DELETE FROM category_suggestions WHERE image_id = ?", (image_id,))
            for name, n in counts.items():
                if n > 0:
                    self._q("INSERT INTO category_suggestions(name, image_id, model_key, "
                            "predictions) VALUES (?, ?, ?, ?)", (name, image_id, model_key, n))

    def category_suggestions(self) -> list[CategorySuggestion]:
        """The names kept aside that still have no category and no decision, most
        predictions first."""
        rows = self._q(
            "SELECT s.name, s.image_id, s.model_key, s.predictions FROM category_suggestions s "
            "WHERE s.name NOT IN (SELECT name FROM categories) "
            "AND s.name NOT IN (SELECT name FROM category_decisions) ORDER BY s.image_id")
        by_name: dict[str, tuple[int, list[int], list[str]]] = {}
        for name, image_id, key, n in rows:
            total, images, keys = by_name.get(name, (0, [], []))
            images.append(image_id)
            if key not in keys:
                keys.append(key)
            by_name[name] = (total + n, images, keys)
        out = [CategorySuggestion(name, total, tuple(images), tuple(keys))
               for name, (total, images, keys) in by_name.items()]
        return sorted(out, key=lambda s: (-s.predictions, s.name))

    def drop_suggestion(self, name: str) -> list[tuple[int, str]]:
        """Forget the suggestion `name`; returns the (image id, model key) pairs it was on."""
        with self.transaction():
            pairs = [(int(i), str(k)) for i, k in self._q(
                "SELECT image_id, model_key FROM category_suggestions WHERE name = ? "
                "ORDER BY image_id", (name,))]
            self._q("DELETE FROM category_suggestions WHERE name = ?", (name,))
        return pairs

    def forget_predictions(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Forget that these (image id, model key) were predicted, so that the next
        prediction run predicts them again (their pending instances stay until then)."""
        with self.transaction():
            for image_id, key in pairs:
                self._q("DELETE FROM predictions WHERE image_id = ? AND model_key = ?",
                        (image_id, key))

    # ---------------------------------------------------------------- decisions
    def category_decision(self, name: str) -> CategoryDecision | None:
        row = self._q("SELECT name, decision, category_id FROM category_decisions "
                      "WHERE name = ?", (name,)).fetchone()
        return CategoryDecision(*row) if row else None

    def category_decisions(self) -> list[CategoryDecision]:
        return [CategoryDecision(*r) for r in self._q(
            "SELECT name, decision, category_id FROM category_decisions ORDER BY name")]

    def set_category_decision(self, name: str, decision: Decision,
                              category_id: int | None = None) -> CategoryDecision:
        """Remember the decision on a class name (replacing an earlier one)."""
        name = name.strip()
        if not name:
            raise ProjectError("a class name cannot be empty")
        if decision not in DECISIONS:
            raise ProjectError(f"unknown decision {decision!r}; expected one of "
                               + ", ".join(DECISIONS))
        if (decision == "map") != (category_id is not None):
            raise ProjectError("a mapping needs a category, and only a mapping has one")
        with self.transaction():
            if category_id is not None and self._q(
                    "SELECT 1 FROM categories WHERE id = ?", (category_id,)).fetchone() is None:
                raise ProjectError(f"no category with id {category_id}")
            self._q("INSERT OR REPLACE INTO category_decisions(name, decision, category_id, "
                    "decided_at) VALUES (?, ?, ?, ?)", (name, decision, category_id,
                                                        time.time()))
        return CategoryDecision(name, decision, category_id)

    def clear_category_decision(self, name: str) -> None:
        with self.transaction():
            self._q("DELETE FROM category_decisions WHERE name = ?", (name,))

    def _move_decisions(self, source_id: int, target_id: int) -> None:
        """Mappings to `source_id` now map to `target_id` (it is merged into that one)."""
        self._q("UPDATE category_decisions SET category_id = ? WHERE category_id = ?",
                (target_id, source_id))
