"""The versions panel's "From": what each model version was trained from, never blank for a
version trained from scratch or from COCO weights."""

from __future__ import annotations

import pytest

from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


@pytest.fixture
def project(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=1, size=64)
    with Project.open(folder) as p:
        yield p


def add_version(p: Project, *, from_scratch: bool, parent: int | None = None):
    staged = versions.staging_path(p)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    parent_name = p.model_version(parent).name if parent is not None else None
    # the metadata train_project records
    return versions.register_staged(p, staged, preset="r18", parent_id=parent,
                                    metadata={"from_scratch": from_scratch,
                                              "parent_version": parent_name},
                                    activate=False)


def from_column(p: Project) -> dict[str, str]:
    return {s.name: s.started_from for s in versions.summarize(p)}


def test_each_version_says_what_it_was_trained_from(project):
    base = len(project.model_versions())
    scratch = add_version(project, from_scratch=True)
    coco = add_version(project, from_scratch=False)
    child = add_version(project, from_scratch=False, parent=coco.id)
    got = from_column(project)
    assert (got[scratch.name], got[coco.name], got[child.name]) == ("scratch", "COCO",
                                                                     coco.name)
    assert len(got) == base + 3
    versions.delete_version(project, coco.id)  # the parent is gone: still said
    assert from_column(project)[child.name] == f"{coco.name} (deleted)"


def test_unrecorded_origin_is_empty_not_a_guess():
    assert versions.started_from({}, None) == ""
    assert versions.started_from({"from_scratch": True}, "v2") == "v2"
