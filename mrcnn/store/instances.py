"""The instance part of the project store (a mixin of `mrcnn.store.project.Project`): instances,
predictions and their provenance. Every method that changes data is one transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager

from mrcnn.errors import ProjectError
from mrcnn.keypoints import Points, points_to_json
from mrcnn.masks import Rle
from mrcnn.store.records import (
    SOURCES,
    STATES,
    Category,
    ImageRecord,
    Instance,
    InstanceState,
    Source,
)
from mrcnn.store.rows import INSTANCE_COLS, check_value, instance_from_row
from mrcnn.store.status import after_predicting


class InstanceStore:
    """Instances of a project's images, mixed into `Project`, which provides the methods
    declared just below (the mixin's whole contract with its host)."""

    # ------------------------------------------------ provided by the host (Project)
    def _connection(self) -> sqlite3.Connection:
        """The project's open connection (ProjectError when it is closed)."""
        raise NotImplementedError

    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        """Run one SQL statement on the project's connection."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic, durable unit of change; nested calls join the outer one."""
        raise NotImplementedError

    def image(self, image_id: int) -> ImageRecord:
        raise NotImplementedError

    def add_category(self, name: str, color: str | None = None) -> Category:
        raise NotImplementedError

    def _require_category(self, category_id: int) -> None:
        """Raise ProjectError when the category does not exist."""
        raise NotImplementedError

    def checked_points(self, category_id: int, points: Iterable | None,
                       where: str = "keypoints") -> Points | None:
        """Points checked against the category's keypoint schema (`KeypointStore`)."""
        raise NotImplementedError

    def _require_points_fit(self, instance_ids: Iterable[int], category_id: int) -> None:
        """Refuse a category change that would strand keypoints (`KeypointStore`)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- instances
    def add_instance(
        self,
        image_id: int,
        category_id: int,
        rle: Rle,
        *,
        source: str = "manual",
        model_version_id: int | None = None,
        score: float | None = None,
        state: str = "accepted",
        keypoints: Iterable | None = None,
    ) -> Instance:
        """Store one instance; bbox and area are derived from its mask. `keypoints`: its
        points, checked against the category's keypoint schema (None: none)."""
        check_value(source, SOURCES, "instance source")
        check_value(state, STATES, "instance state")
        # the record carries the vocabularies typed, as one read back from the database does
        typed_source, typed_state = Source(source), InstanceState(state)
        area = rle.area
        if area <= 0:
            raise ProjectError("an instance mask must cover at least one pixel")
        x, y, w, h = rle.bbox
        with self.transaction():
            img = self.image(image_id)
            self._require_category(category_id)
            if (rle.height, rle.width) != (img.height, img.width):
                raise ProjectError(
                    f"mask size {rle.height}x{rle.width} does not match image {img.path} "
                    f"({img.height}x{img.width})"
                )
            points = self.checked_points(category_id, keypoints)
            cur = self._q(
                "INSERT INTO instances(image_id, category_id, height, width, counts, "
                "bbox_x, bbox_y, bbox_w, bbox_h, area, source, model_version_id, score, state, "
                "created_at, keypoints) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (image_id, category_id, rle.height, rle.width, rle.counts, x, y, w, h, area,
                 source, model_version_id, score, state, time.time(), points_to_json(points)),
            )
        return Instance(_inserted_id(cur), image_id, category_id, rle, (x, y, w, h), area,
                        typed_source, model_version_id, score, typed_state, points)

    def instances(self, image_id: int | None = None, state: str | None = None) -> list[Instance]:
        where: list[str] = []
        args: list[int | str] = []
        if image_id is not None:
            where.append("image_id = ?")
            args.append(image_id)
        if state is not None:
            check_value(state, STATES, "instance state")
            where.append("state = ?")
            args.append(state)
        sql = f"SELECT {INSTANCE_COLS} FROM instances"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [instance_from_row(r) for r in self._q(sql + " ORDER BY id", args)]

    def instance_rows(self, state: str = "accepted") -> Iterator[tuple]:
        """Raw rows for bulk export, cheapest form: (id, image_id, category_id, height, width,
        counts, bbox_x, bbox_y, bbox_w, bbox_h, area, source, model_version_id, score)."""
        check_value(state, STATES, "instance state")
        return self._q(
            "SELECT id, image_id, category_id, height, width, counts, bbox_x, bbox_y, bbox_w, "
            "bbox_h, area, source, model_version_id, score FROM instances WHERE state = ? "
            "ORDER BY id", (state,))

    def instance(self, instance_id: int) -> Instance:
        row = self._q(f"SELECT {INSTANCE_COLS} FROM instances WHERE id = ?",
                      (instance_id,)).fetchone()
        if row is None:
            raise ProjectError(f"no instance with id {instance_id}")
        return instance_from_row(row)

    def set_instance_mask(self, instance_id: int, rle: Rle) -> None:
        area = rle.area
        if area <= 0:
            raise ProjectError("an instance mask must cover at least one pixel")
        x, y, w, h = rle.bbox
        with self.transaction():
            cur = self._q(
                "UPDATE instances SET height = ?, width = ?, counts = ?, bbox_x = ?, bbox_y = ?, "
                "bbox_w = ?, bbox_h = ?, area = ? WHERE id = ?",
                (rle.height, rle.width, rle.counts, x, y, w, h, area, instance_id),
            )
            if cur.rowcount != 1:
                raise ProjectError(f"no instance with id {instance_id}")

    def set_instance_category(self, instance_id: int, category_id: int) -> None:
        with self.transaction():
            self._require_category(category_id)
            self._require_points_fit([instance_id], category_id)
            cur = self._q("UPDATE instances SET category_id = ? WHERE id = ?",
                          (category_id, instance_id))
            if cur.rowcount != 1:
                raise ProjectError(f"no instance with id {instance_id}")

    def accept_instances(self, instance_ids: Iterable[int]) -> None:
        with self.transaction():
            self._connection().executemany(
                "UPDATE instances SET state = 'accepted' WHERE id = ?",
                [(i,) for i in instance_ids],
            )

    def delete_instances(self, instance_ids: Iterable[int]) -> None:
        with self.transaction():
            self._connection().executemany("DELETE FROM instances WHERE id = ?",
                                           [(i,) for i in instance_ids])

    def restore_instance(self, inst: Instance) -> int:
        """Put back a removed instance (undo) with its image, category, mask, provenance and
        state. It keeps its id unless another instance has taken it since; returns the id."""
        check_value(inst.source, SOURCES, "instance source")
        check_value(inst.state, STATES, "instance state")
        rle = inst.rle
        area = rle.area
        if area <= 0:
            raise ProjectError("an instance mask must cover at least one pixel")
        x, y, w, h = rle.bbox
        with self.transaction():
            img = self.image(inst.image_id)
            self._require_category(inst.category_id)
            if (rle.height, rle.width) != (img.height, img.width):
                raise ProjectError(f"mask size {rle.height}x{rle.width} does not match image "
                                   f"{img.path} ({img.height}x{img.width})")
            taken = self._q("SELECT 1 FROM instances WHERE id = ?", (inst.id,)).fetchone()
            points = self.checked_points(inst.category_id, inst.keypoints)
            try:
                cur = self._q(
                    "INSERT INTO instances(id, image_id, category_id, height, width, counts, "
                    "bbox_x, bbox_y, bbox_w, bbox_h, area, source, model_version_id, score, "
                    "state, created_at, keypoints) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (None if taken else inst.id, inst.image_id, inst.category_id, rle.height,
                     rle.width, rle.counts, x, y, w, h, area, inst.source,
                     inst.model_version_id, inst.score, inst.state, time.time(),
                     points_to_json(points)),
                )
            except sqlite3.IntegrityError as exc:
                raise ProjectError(f"cannot restore instance {inst.id}: {exc}") from None
        return _inserted_id(cur)

    def set_instances_state(self, instance_ids: Iterable[int], state: str) -> None:
        """Set instances `accepted` or back to `pending`; unknown ids are a ProjectError."""
        check_value(state, STATES, "instance state")
        with self.transaction():
            for i in instance_ids:
                cur = self._q("UPDATE instances SET state = ? WHERE id = ?", (state, i))
                if cur.rowcount != 1:
                    raise ProjectError(f"no instance with id {i}")

    def set_instances_category(self, instance_ids: Iterable[int], category_id: int) -> None:
        """Give several instances one category, in one transaction."""
        with self.transaction():
            for i in instance_ids:
                self.set_instance_category(i, category_id)

    def replace_predictions(self, image_id: int, model_key: str,
                            items: Iterable[tuple], *,
                            model_version_id: int | None = None,
                            uncertainty: float | None = None) -> list[Instance]:
        """Store a model's predictions for an image as pending instances, replacing the
        image's earlier pending predictions, in one transaction. Accepted (human) instances
        are never touched. The image's status moves as `status.after_predicting` says.
        `items`: (category id, mask, score) or (category id, mask, score, keypoints) each.
        `uncertainty`: how unsure the model was about the image (None: not measured)."""
        with self.transaction():
            self._q("DELETE FROM instances WHERE image_id = ? AND state = 'pending'", (image_id,))
            added = [
                self.add_instance(image_id, item[0], item[1], source="model",
                                  model_version_id=model_version_id, score=float(item[2]),
                                  state="pending",
                                  keypoints=item[3] if len(item) > 3 else None)
                for item in items
            ]
            self._q("INSERT OR REPLACE INTO predictions(image_id, model_key, created_at, "
                    "uncertainty) VALUES (?, ?, ?, ?)",
                    (image_id, model_key, time.time(),
                     None if uncertainty is None else float(uncertainty)))
            status = self.image(image_id).status
            if after_predicting(status) != status:
                self._q("UPDATE images SET status = ? WHERE id = ?",
                        (after_predicting(status), image_id))
        return added

    def predicted_by(self, image_id: int, model_key: str) -> bool:
        """True when this model's predictions for the image are already stored."""
        return self._q("SELECT 1 FROM predictions WHERE image_id = ? AND model_key = ?",
                       (image_id, model_key)).fetchone() is not None

    def pending_scores(self) -> dict[int, list[float]]:
        """Scores of the pending (model) instances, per image id; images the model predicted
        nothing for are absent (see `predicted_image_ids`)."""
        out: dict[int, list[float]] = {}
        for image_id, score in self._q("SELECT image_id, score FROM instances "
                                       "WHERE state = 'pending' AND score IS NOT NULL"):
            out.setdefault(image_id, []).append(float(score))
        return out

    def image_uncertainties(self) -> dict[int, float]:
        """Per image, the uncertainty stored with its latest predictions, where it was
        measured (the pending instances are those predictions)."""
        rows = self._q("SELECT image_id, uncertainty FROM predictions p WHERE created_at = "
                       "(SELECT MAX(created_at) FROM predictions q WHERE q.image_id = "
                       "p.image_id)")
        return {image_id: float(u) for image_id, u in rows if u is not None}

    def predicted_image_ids(self) -> set[int]:
        """Images some model's predictions are stored for."""
        return {r[0] for r in self._q("SELECT DISTINCT image_id FROM predictions")}

    def instance_counts(self, area_edges: Sequence[int] = ()) -> list[tuple[int, str, str, int,
                                                                            int]]:
        """Instances counted in one pass: (category id, split of the image, state, size bin,
        count) for each combination present. The size bin is how many of `area_edges`
        (ascending mask areas in pixels) the area reaches: 0 below the first edge."""
        bins = ("CASE " + " ".join(f"WHEN i.area < {int(e)} THEN {k}"
                                   for k, e in enumerate(area_edges))
                + f" ELSE {len(area_edges)} END") if area_edges else "0"  # small ones stop early
        return [(int(c), str(sp), str(st), int(b), int(n)) for c, sp, st, b, n in self._q(
            f"SELECT i.category_id, im.split, i.state, {bins} AS bin, COUNT(*) "
            "FROM instances i JOIN images im ON im.id = i.image_id "
            "GROUP BY i.category_id, im.split, i.state, bin")]

    def accepted_not_reviewed(self) -> tuple[int, int]:
        """Images not (yet) reviewed that hold accepted instances, and those instances: what
        an export of reviewed images only leaves out."""
        images, instances = next(iter(self._q(
            "SELECT COUNT(DISTINCT im.id), COUNT(i.id) FROM images im JOIN instances i "
            "ON i.image_id = im.id AND i.state = 'accepted' WHERE im.status != 'reviewed'")))
        return int(images), int(instances)

    def reviewed_images_by_instances(self) -> dict[int, int]:
        """How many reviewed images hold n accepted instances, per n (0: none)."""
        return {int(n): int(k) for n, k in self._q(
            "SELECT n, COUNT(*) FROM (SELECT COUNT(i.id) AS n FROM images im "
            "LEFT JOIN instances i ON i.image_id = im.id AND i.state = 'accepted' "
            "WHERE im.status = 'reviewed' GROUP BY im.id) GROUP BY n")}


def _inserted_id(cur: sqlite3.Cursor) -> int:
    """The id of the instance the INSERT run by `cur` added (SQLite always reports it)."""
    if cur.lastrowid is None:
        raise ProjectError("the database did not report the id of the instance just added")
    return cur.lastrowid
