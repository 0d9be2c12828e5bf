"""The ids images and categories have in the COCO file they were imported from (a mixin of
`mrcnn.store.project.Project`).

`mrcnn.coco.io.import_coco` records them; `mrcnn.coco.ids` turns them into the ids every COCO
file the project writes uses (an export, prediction results), so those files line up with the
user's own ground-truth file. No torch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager

from mrcnn.errors import ProjectError


class CocoIdStore:
    """Source COCO ids, mixed into `Project`, which provides the two methods declared just
    below."""

    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def image_coco_ids(self) -> dict[int, int | None]:
        """Every image's id in the COCO file it was imported from (None: it came otherwise),
        by image id, in image id order."""
        return {int(i): c for i, c in self._q("SELECT id, coco_id FROM images ORDER BY id")}

    def category_coco_ids(self) -> dict[int, int | None]:
        """Every category's id in the COCO file it was imported from (None: made otherwise),
        by category id, in category id order."""
        return {int(i): c for i, c in self._q("SELECT id, coco_id FROM categories ORDER BY id")}

    def set_image_coco_id(self, image_id: int, coco_id: int | None) -> None:
        """Record the id the image has in the COCO file it is imported from."""
        self._set_coco_id("images", "image", image_id, coco_id)

    def set_category_coco_id(self, category_id: int, coco_id: int | None) -> None:
        """Record the id the category has in the COCO file it is imported from."""
        self._set_coco_id("categories", "category", category_id, coco_id)

    def _set_coco_id(self, table: str, what: str, row_id: int, coco_id: int | None) -> None:
        with self.transaction():
            cur = self._q(f"UPDATE {table} SET coco_id = ? WHERE id = ?", (coco_id, row_id))
            if cur.rowcount != 1:
                raise ProjectError(f"no {what} with id {row_id}")
