"""The Model Versions panel's "From" column is never blank: scratch, COCO or the parent."""

from __future__ import annotations

from app.panels.versions import COLUMNS, VersionsPanel
from mrcnn.store.versions import VersionSummary


def summary(vid: int, name: str, parent: str | None, started_from: str) -> VersionSummary:
    return VersionSummary(vid, name, "r18", 0.0, vid == 1, parent, 3, 0.3, 0.2, 20,
                          started_from=started_from)


def test_from_column_says_scratch_coco_or_the_parent(qtbot):
    panel = VersionsPanel()
    qtbot.addWidget(panel)
    panel.set_versions([summary(3, "v3", "v2", "v2"), summary(2, "v2", None, "COCO"),
                        summary(1, "v1", None, "scratch"), summary(4, "v4", None, "")],
                       can_rollback=False, writable=True)
    col = COLUMNS.index("From")
    shown = [panel.table.item(r, col).text() for r in range(panel.table.rowCount())]
    assert shown == ["v2", "COCO", "scratch", "—"]
