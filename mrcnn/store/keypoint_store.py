"""The keypoint part of the project store (a mixin of `mrcnn.store.project.Project`): a
category's keypoint schema and an instance's points, checked by the rules of
`mrcnn.keypoints`. A schema change that would leave points without their names is refused,
never applied silently. Every method that changes data is one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager

from mrcnn.errors import ProjectError
from mrcnn.keypoints import (
    KeypointError,
    KeypointSchema,
    Points,
    check_points,
    points_from_json,
    points_to_json,
)
from mrcnn.store.records import Category


class KeypointStore:
    """Keypoint schemas and points, mixed into `Project`, which provides the methods declared
    just below."""

    # ------------------------------------------------ provided by the host (Project)
    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def categories(self) -> list[Category]:
        raise NotImplementedError

    # ---------------------------------------------------------------- schemas
    def category_schema(self, category_id: int) -> KeypointSchema | None:
        """The category's keypoint schema (None: it has none)."""
        row = self._q("SELECT keypoints FROM categories WHERE id = ?", (category_id,)).fetchone()
        if row is None:
            raise ProjectError(f"no category with id {category_id}")
        return None if row[0] is None else KeypointSchema.from_json(row[0])

    def keypoint_schemas(self) -> dict[str, KeypointSchema]:
        """Every category that has a keypoint schema, by name, in category order."""
        return {c.name: c.keypoints for c in self.categories() if c.keypoints is not None}

    def set_category_keypoints(self, category_id: int, schema: KeypointSchema | None) -> None:
        """Give a category a keypoint schema, change it, or remove it (None). Where instances
        of the category carry points, the new schema must keep the number of names (a
        rename or a new skeleton); otherwise it is refused, naming how many carry them."""
        with self.transaction():
            old = self.category_schema(category_id)
            carrying = self._carrying(category_id)
            if carrying and (schema is None or old is None or schema.size != old.size):
                raise ProjectError(
                    f"{carrying} instance(s) of this category carry keypoints; a schema with "
                    f"{'no' if schema is None else schema.size} keypoint(s) would lose them "
                    f"(clear their keypoints first, or keep {old.size if old else 0} names)")
            self._q("UPDATE categories SET keypoints = ? WHERE id = ?",
                    (None if schema is None else schema.to_json(), category_id))

    def _carrying(self, category_id: int) -> int:
        return int(self._q("SELECT COUNT(*) FROM instances WHERE category_id = ? AND "
                           "keypoints IS NOT NULL", (category_id,)).fetchone()[0])

    # ---------------------------------------------------------------- points
    def checked_points(self, category_id: int, points: Iterable | None,
                       where: str = "keypoints") -> Points | None:
        """Points checked against the category's schema (None stays None: no points)."""
        if points is None:
            return None
        schema = self.category_schema(category_id)
        if schema is None:
            raise ProjectError(f"{where}: the category has no keypoint schema")
        try:
            return check_points(list(points), schema, where)
        except KeypointError as exc:
            raise ProjectError(str(exc)) from None

    def set_instance_keypoints(self, instance_id: int, points: Iterable | None) -> None:
        """Set (or clear, None) an instance's points, checked against its category's
        schema."""
        with self.transaction():
            row = self._q("SELECT category_id FROM instances WHERE id = ?",
                          (instance_id,)).fetchone()
            if row is None:
                raise ProjectError(f"no instance with id {instance_id}")
            checked = self.checked_points(row[0], points, f"instance {instance_id}")
            self._q("UPDATE instances SET keypoints = ? WHERE id = ?",
                    (points_to_json(checked), instance_id))

    def points_by_instance(self, state: str = "accepted",
                           image_ids: Iterable[int] | None = None) -> dict[int, Points]:
        """The points of every instance in `state` that carries some (on `image_ids`,
        default all images), by instance id: one query over the points, no mask read."""
        wanted = None if image_ids is None else set(image_ids)
        return {int(iid): points for iid, image_id, text in self._q(
            "SELECT id, image_id, keypoints FROM instances WHERE state = ? AND "
            "keypoints IS NOT NULL", (state,))
            if (wanted is None or image_id in wanted)
            and (points := points_from_json(text)) is not None}

    def _require_points_fit(self, instance_ids: Iterable[int], category_id: int) -> None:
        """Refuse moving instances that carry points to a category whose schema has another
        number of keypoints (their points would mean nothing there)."""
        target = self.category_schema(category_id)
        for iid in instance_ids:
            row = self._q("SELECT keypoints, category_id FROM instances WHERE id = ?",
                          (iid,)).fetchone()
            if row is None or row[0] is None or row[1] == category_id:
                continue
            source = self.category_schema(row[1])
            if target is None or source is None or target.size != source.size:
                raise ProjectError(
                    f"instance {iid} carries keypoints its new category cannot hold "
                    f"({'no keypoint schema' if target is None else f'{target.size} keypoints'}"
                    f"); clear them first")
