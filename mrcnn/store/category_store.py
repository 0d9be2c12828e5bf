"""The category part of the project store (a mixin of `mrcnn.store.project.Project`): add,
rename, merge, delete (with or without their instances) and put back a category. A category
still used by instances is never deleted silently; a merge moves every instance and the
decisions on class names mapped to it. Every method that changes data is one transaction."""

from __future__ import annotations

import colorsys
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from mrcnn.errors import ProjectError
from mrcnn.store.records import Category, Instance
from mrcnn.store.rows import CATEGORY_COLS, INSTANCE_COLS, category_from_row, instance_from_row

#: The first categories' colours: vivid (CIELAB lightness 50-90, chroma at least 35, so a
#: mask reads on a photo and a swatch on the dark window), each as far as could be from all
#: before it (greedy max-min CIEDE2000 distance over an HSV grid, from red). Any two of the
#: first 12 differ by at least 21 (ΔE00), of all 24 by 14. Golden-ratio hues at one
#: saturation and value, used before, put two of the first 12 within 8.4 (a VOC photo's
#: person and dining table were two magentas).
PALETTE = (
    "#e62e37", "#0dff0d", "#0db6ff", "#ffb60d", "#ac59ff", "#08997c", "#8a9908", "#ff80b3",
    "#2ee6e6", "#ff9f80", "#bf6d0a", "#2e77e6", "#e6e673", "#e60ba4", "#73e6ac", "#089925",
    "#0aadbf", "#f280ff", "#bf6073", "#bf9960", "#ff550d", "#80a6ff", "#86bf60", "#bf7860",
)


def category_color(index: int) -> str:
    """A distinct, readable colour for the index-th category: PALETTE's, then golden-ratio
    hues."""
    if 0 <= index < len(PALETTE):
        return PALETTE[index]
    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.75, 0.95)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


class CategoryStore:
    """Categories, mixed into `Project` (first among its mixins: its methods are the ones the
    others declare), which provides the methods declared just below."""

    # ------------------------------------------------ provided by the host (Project)
    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by the other mixins, which come after this one
        def delete_instances(self, instance_ids: Iterable[int]) -> None: ...

        def _require_points_fit(self, instance_ids: Iterable[int], category_id: int
                                ) -> None: ...

        def _move_decisions(self, source_id: int, target_id: int) -> None: ...

    # ---------------------------------------------------------------- categories
    def categories(self) -> list[Category]:
        return [category_from_row(r)
                for r in self._q(f"SELECT {CATEGORY_COLS} FROM categories ORDER BY id")]

    def category_by_name(self, name: str) -> Category | None:
        row = self._q(f"SELECT {CATEGORY_COLS} FROM categories WHERE name = ?",
                      (name,)).fetchone()
        return category_from_row(row) if row else None

    def add_category(self, name: str, color: str | None = None) -> Category:
        """Add a category (or return the one with this name)."""
        name = name.strip()
        if not name:
            raise ProjectError("a category needs a non-empty name")
        with self.transaction():
            existing = self.category_by_name(name)
            if existing:
                return existing
            count = self._q("SELECT COUNT(*) FROM categories").fetchone()[0]
            cur = self._q(
                "INSERT INTO categories(name, color) VALUES (?, ?)",
                (name, color or category_color(count)),
            )
            if cur.lastrowid is None:
                raise ProjectError(f"category {name!r} was not stored")
            return Category(cur.lastrowid, name, color or category_color(count))

    def rename_category(self, category_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise ProjectError("a category needs a non-empty name")
        with self.transaction():
            other = self.category_by_name(name)
            if other and other.id != category_id:
                raise ProjectError(f"a category named {name!r} already exists")
            cur = self._q("UPDATE categories SET name = ? WHERE id = ?", (name, category_id))
            if cur.rowcount != 1:
                raise ProjectError(f"no category with id {category_id}")

    def restore_category(self, category: Category) -> None:
        """Put back a removed category with its id, name and colour (undo of a removal)."""
        with self.transaction():
            if self._q("SELECT 1 FROM categories WHERE id = ?", (category.id,)).fetchone():
                raise ProjectError(f"category id {category.id} is already taken")
            if self.category_by_name(category.name):
                raise ProjectError(f"a category named {category.name!r} already exists")
            self._q("INSERT INTO categories(id, name, color, keypoints) VALUES (?, ?, ?, ?)",
                    (category.id, category.name, category.color,
                     None if category.keypoints is None else category.keypoints.to_json()))

    def delete_category(self, category_id: int) -> None:
        """Remove a category that no instance uses."""
        with self.transaction():
            self._require_category(category_id)
            if self._q("SELECT 1 FROM instances WHERE category_id = ? LIMIT 1",
                       (category_id,)).fetchone():
                raise ProjectError(f"category {category_id} is still used by instances")
            self._q("DELETE FROM categories WHERE id = ?", (category_id,))

    def merge_categories(self, source_id: int, target_id: int) -> list[int]:
        """Move every instance of `source_id` (all images) to `target_id` and remove
        `source_id`. Returns the ids of the moved instances."""
        if source_id == target_id:
            raise ProjectError("cannot merge a category into itself")
        with self.transaction():
            self._require_category(source_id)
            self._require_category(target_id)
            moved = [r[0] for r in self._q(
                "SELECT id FROM instances WHERE category_id = ? ORDER BY id", (source_id,))]
            self._require_points_fit(moved, target_id)
            self._q("UPDATE instances SET category_id = ? WHERE category_id = ?",
                    (target_id, source_id))
            self._move_decisions(source_id, target_id)
            self._q("DELETE FROM categories WHERE id = ?", (source_id,))
        return moved

    def delete_category_and_instances(self, category_id: int) -> list[Instance]:
        """Remove a category and every instance of it (all images), in one transaction.
        Returns the deleted instances, as `restore_instance` puts them back."""
        with self.transaction():
            self._require_category(category_id)
            gone = [instance_from_row(r) for r in self._q(
                f"SELECT {INSTANCE_COLS} FROM instances WHERE category_id = ? ORDER BY id",
                (category_id,))]
            self.delete_instances(i.id for i in gone)
            self._q("DELETE FROM categories WHERE id = ?", (category_id,))
        return gone

    def category_instance_count(self, category_id: int) -> int:
        """How many instances (accepted and pending, all images) have this category."""
        return int(self._q("SELECT COUNT(*) FROM instances WHERE category_id = ?",
                           (category_id,)).fetchone()[0])

    def _require_category(self, category_id: int) -> None:
        if self._q("SELECT 1 FROM categories WHERE id = ?", (category_id,)).fetchone() is None:
            raise ProjectError(f"no category with id {category_id}")
