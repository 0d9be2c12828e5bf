"""Fixtures shared by the editing tests."""

from __future__ import annotations

import pytest
from edit_helpers import make_project

from mrcnn.store.project import Project


@pytest.fixture
def proj(tmp_path, open_projects):
    """(an open project, image a, image b) with edit_helpers' instances."""
    folder = tmp_path / "proj"
    image_a, image_b = make_project(folder, tmp_path / "images")
    p = Project.open(folder)
    open_projects.append(p)
    return p, image_a, image_b
