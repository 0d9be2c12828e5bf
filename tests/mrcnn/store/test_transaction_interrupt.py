"""Ctrl+C (or any BaseException) inside a transaction loses only the interrupted change:
the edits made afterwards are saved, and survive reopening the project."""

from __future__ import annotations

import pytest

from mrcnn.store.project import Project


def test_an_interrupted_transaction_is_undone_and_later_edits_are_saved(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    folder = tmp_path / "project"
    p = Project.create(folder, images)
    try:
        with pytest.raises(KeyboardInterrupt), p.transaction():
            p.add_category("interrupted")
            raise KeyboardInterrupt
        assert not p._conn.in_transaction  # nothing left open behind the user's back
        p.add_category("b")
        assert not p._conn.in_transaction
        assert [c.name for c in p.categories()] == ["b"]
    finally:
        p.close()
    with Project.open(folder, read_only=True) as reopened:
        assert [c.name for c in reopened.categories()] == ["b"]
