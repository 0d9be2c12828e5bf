"""Label suspects a person has looked at and found right (a mixin of
`mrcnn.store.project.Project`): the image, the kind of suspect, the label's category and the
mask that was looked at (the accepted instance's, or the detection's where the model saw an
object nobody labelled). Which later suspects such a check answers is the rule of
`mrcnn.training.label_hints`; this only keeps the records. Every method that changes data is
one transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from mrcnn.errors import ProjectError
from mrcnn.masks import Rle


@dataclass(frozen=True)
class SuspectCheck:
    """A suspect found right: `kind` is a `label_hints.SuspectKind` value, `category` the
    label's (the detection's for an unlabelled object), `mask` what was looked at."""

    id: int
    image_id: int
    kind: str
    category: str
    mask: Rle
    checked_at: float


class SuspectCheckStore:
    """Suspect checks, mixed into `Project`, which provides the methods declared below."""

    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def add_suspect_check(self, image_id: int, kind: str, category: str,
                          mask: Rle) -> SuspectCheck:
        """Keep that the person found this suspect's label right."""
        with self.transaction():
            if self._q("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                raise ProjectError(f"no image with id {image_id}")
            now = time.time()
            cur = self._q("INSERT INTO suspect_checks(image_id, kind, category, height, width, "
                          "counts, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (image_id, kind, category, mask.height, mask.width, mask.counts, now))
        return SuspectCheck(int(cur.lastrowid or 0), image_id, kind, category, mask, now)

    def remove_suspect_check(self, check_id: int) -> None:
        """Forget a check (the person takes it back): its suspect is listed again."""
        with self.transaction():
            cur = self._q("DELETE FROM suspect_checks WHERE id = ?", (check_id,))
            if cur.rowcount == 0:
                raise ProjectError(f"no suspect check with id {check_id}")

    def suspect_checks(self) -> list[SuspectCheck]:
        """The checks kept, oldest first."""
        rows = self._q("SELECT id, image_id, kind, category, height, width, counts, checked_at "
                       "FROM suspect_checks ORDER BY id").fetchall()
        return [SuspectCheck(i, im, kind, cat, Rle(h, w, counts), at)
                for i, im, kind, cat, h, w, counts, at in rows]
