"""The model-version part of the project store (a mixin of `mrcnn.store.project.Project`):
register a checkpoint written under models/ (v1, v2, ...), read them, choose the active one,
forget one that is not active. What a person does with versions (compare, roll back, delete
the file too) is `mrcnn.store.versions`. Every method that changes data is one transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager

from mrcnn.errors import ProjectError
from mrcnn.store.records import ModelVersion
from mrcnn.store.rows import VERSION_COLS, version_from_row


class VersionStore:
    """Model versions, mixed into `Project`, which provides the methods declared below."""

    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def add_model_version(self, path: str, preset: str, *, parent_id: int | None = None,
                          metadata: dict | None = None, activate: bool = False) -> ModelVersion:
        """Register a checkpoint already written under models/. Names are v1, v2, ..."""
        with self.transaction():
            n = self._q("SELECT COALESCE(MAX(id), 0) + 1 FROM model_versions").fetchone()[0]
            cur = self._q(
                "INSERT INTO model_versions(name, path, preset, parent_id, created_at, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (f"v{n}", path, preset, parent_id, time.time(), json.dumps(metadata or {})),
            )
            if cur.lastrowid is None:
                raise ProjectError("the model version was not stored")
            if activate:
                self.activate_model_version(cur.lastrowid)
            return self.model_version(cur.lastrowid)

    def model_versions(self) -> list[ModelVersion]:
        return [version_from_row(r) for r in self._q(f"SELECT {VERSION_COLS} FROM model_versions "
                                             "ORDER BY id")]

    def model_version(self, version_id: int) -> ModelVersion:
        row = self._q(f"SELECT {VERSION_COLS} FROM model_versions WHERE id = ?",
                      (version_id,)).fetchone()
        if row is None:
            raise ProjectError(f"no model version with id {version_id}")
        return version_from_row(row)

    def active_model_version(self) -> ModelVersion | None:
        row = self._q(f"SELECT {VERSION_COLS} FROM model_versions WHERE active = 1").fetchone()
        return version_from_row(row) if row else None

    def activate_model_version(self, version_id: int | None) -> None:
        with self.transaction():
            if version_id is not None:
                self.model_version(version_id)
            self._q("UPDATE model_versions SET active = (id IS ?)", (version_id,))

    def delete_model_version(self, version_id: int) -> ModelVersion:
        """Forget a model version that is not active, in one transaction: its row, its
        pending predictions and the record of which images it predicted. Accepted instances
        it once proposed stay (they are human work) and only lose the link. Versions trained
        from it lose their parent. The checkpoint file is the caller's to remove (see
        `mrcnn.store.versions.delete_version`). Returns the deleted record."""
        with self.transaction():
            version = self.model_version(version_id)
            if version.active:
                raise ProjectError(f"{version.name} is the active model version: activate "
                                   "another one before deleting it")
            self._q("UPDATE instances SET model_version_id = NULL "
                    "WHERE model_version_id = ? AND state = 'accepted'", (version_id,))
            self._q("DELETE FROM instances WHERE model_version_id = ? AND state = 'pending'",
                    (version_id,))
            self._q("DELETE FROM predictions WHERE model_key = ?", (version.name,))
            self._q("DELETE FROM model_versions WHERE id = ?", (version_id,))
        return version
