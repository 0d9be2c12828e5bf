"""The Model Versions panel shows a Keypoint AP column only while some version has a scored
keypoint head (a masks-only project keeps its table as it was)."""

from __future__ import annotations

import pytest

from app.panels.versions import KEYPOINT_AP, VersionsPanel
from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


@pytest.fixture
def project(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=1, size=64)
    with Project.open(folder) as p:
        yield p


def register(p: Project, metrics: dict):
    staged = versions.staging_path(p)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    return versions.register_staged(p, staged, preset="r18", parent_id=None, metadata={"metrics":
                                                                      {"after": metrics}})


def test_the_keypoint_column_shows_only_when_a_version_has_one(qtbot, project):
    panel = VersionsPanel()
    qtbot.addWidget(panel)
    register(project, {"segm": {"AP": 0.3}})
    panel.set_versions(versions.summarize(project), can_rollback=False, writable=True)
    assert panel.table.isColumnHidden(KEYPOINT_AP)
    register(project, {"segm": {"AP": 0.3}, "keypoints": {"AP": 0.5}})
    panel.set_versions(versions.summarize(project), can_rollback=False, writable=True)
    assert not panel.table.isColumnHidden(KEYPOINT_AP)
    assert panel.table.item(0, KEYPOINT_AP).text() == "0.500"
    assert panel.table.item(1, KEYPOINT_AP).text() == "—"
