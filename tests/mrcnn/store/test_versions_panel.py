"""What the versions panel and the before/after table show: every column of a version's
summary, the noise warning word for word, an AP of exactly zero shown as a score (not as
"undefined"), and registering a version whose parent was deleted while it trained."""

from __future__ import annotations

import pytest

from mrcnn.errors import ProjectError
from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


@pytest.fixture
def project(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=1, size=64)
    with Project.open(folder) as p:
        yield p


def register(p: Project, metadata: dict, parent_id: int | None = None, **kwargs):
    staged = versions.staging_path(p)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    return versions.register_staged(p, staged, preset="r18", parent_id=parent_id,
                                    metadata=metadata, **kwargs)


def test_the_panel_shows_every_column_of_each_version(project):
    v1 = register(project, {"metrics": {"after": {"segm": {"AP": 0.2}, "bbox": {"AP": 0.25}}},
                            "val_image_ids": [4, 5, 6], "training_image_ids": [1, 2]})
    scored = {"segm": {"AP": 0.3}, "bbox": {"AP": 0.4},
              "scored": {"images": 6, "instances": 30}}
    v2 = register(project, {"metrics": {"after": scored}, "iterations": 20}, parent_id=v1.id)
    register(project, {"val_image_ids": [4, 5]}, activate=False)  # never scored
    s3, s2, s1 = versions.summarize(project)
    records = {v.id: v for v in project.model_versions()}
    assert (s2.id, s2.name, s2.preset, s2.parent, s2.active) == (v2.id, "v2", "r18", "v1", True)
    assert s2.created_at == records[v2.id].created_at > 0
    assert (s2.segm_ap, s2.bbox_ap, s2.iterations) == (0.3, 0.4, 20)
    assert (s2.val_images, s2.val_instances) == (6, 30)
    assert s2.val_text == "val: 6 images, 30 instances"
    assert (s1.segm_ap, s1.bbox_ap, s1.train_images, s1.parent) == (0.2, 0.25, 2, None)
    assert (s1.val_images, s1.val_instances) == (3, None)  # older runs: the val ids only
    assert (s3.segm_ap, s3.val_images, s3.val_text) == (None, None, "")


def test_the_noise_warning_word_for_word():
    assert versions.noise_warning(3, 24) == (
        "AP from 3 images, 24 instances is mostly noise (under 5 images or 20 instances): "
        "move more reviewed images to validation before trusting it")
    assert versions.noise_warning(6, 10).startswith("AP from 6 images, 10 instances is")
    assert versions.noise_warning(6, 30) == versions.noise_warning(None) == ""
    assert not versions.is_noisy(None, 3)


def test_an_ap_of_exactly_zero_is_a_score_not_undefined():
    zero = {"segm": {"AP": 0.0, "AP50": 0.5, "per_class": {"disc": 0.0}},
            "bbox": {"AP": 0.0, "AP50": 0.0}}
    assert versions.metric(zero) == 0.0
    rows = {r.label: (r.before, r.after) for r in versions.compare({"segm": {"AP": 0.1}}, zero)}
    assert rows["segm AP"] == (0.1, 0.0) and rows["segm AP50"] == (None, 0.5)
    assert rows["segm AP · disc"] == (None, 0.0)
    assert versions.metric({"segm": {"AP": -1.0}}) is None  # COCO's "undefined"


def test_scored_on_needs_both_counts():
    assert versions.scored_on({"scored": {"images": 3, "instances": 7}}) == (3, 7)
    assert versions.scored_on({"scored": {"images": 3, "instances": "7"}}) is None
    assert versions.scored_on({"scored": {"images": None, "instances": 7}}) is None


def test_an_unknown_activation_policy_is_named():
    with pytest.raises(ValueError, match="unknown activation policy 'sometimes'"):
        versions.should_activate("sometimes", None, None)


def test_registering_activates_by_default_and_forgets_a_deleted_parent(project):
    v1 = register(project, {})
    assert v1.active
    v2 = register(project, {}, parent_id=v1.id)
    assert v2.active and v2.parent_id == v1.id
    versions.delete_version(project, v1.id)  # deleted while v3 trained from it
    v3 = register(project, {}, parent_id=v1.id)
    assert v3.parent_id is None and v3.active
    assert [v.name for v in project.model_versions()] == ["v2", "v3"]


def test_a_version_whose_file_is_already_gone_can_still_be_deleted(project):
    v1 = register(project, {})
    register(project, {}, parent_id=v1.id)
    (project.folder / v1.path).unlink()  # removed by hand
    versions.delete_version(project, v1.id)
    assert [v.name for v in project.model_versions()] == ["v2"]


def test_a_failed_registration_reports_its_own_error_and_leaves_nothing(project, monkeypatch):
    staged = versions.staging_path(project)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")

    def disk_full(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(versions.os, "replace", disk_full)
    with pytest.raises(OSError, match="disk full"):
        versions.register_staged(project, staged, preset="r18", parent_id=None, metadata={})
    assert project.model_versions() == [] and list(project.models_dir.iterdir()) == []


def test_registering_into_a_read_only_project_is_refused_by_name(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=2, n_val=1, size=64)
    with Project.open(folder, read_only=True) as p:
        staged = p.models_dir / ".staged-test.pt"
        staged.write_bytes(b"weights")
        with pytest.raises(ProjectError, match="read-only"):
            versions.register_staged(p, staged, preset="r18", parent_id=None, metadata={})
        assert not staged.exists()


def test_a_keypoint_head_adds_its_ap_to_the_summary_and_the_before_after_table(project):
    plain = {"segm": {"AP": 0.3}, "bbox": {"AP": 0.4}}
    with_points = {**plain, "keypoints": {"AP": 0.55, "AP50": 0.8}}
    register(project, {"metrics": {"after": plain}})
    register(project, {"metrics": {"after": with_points}})
    newer, older = versions.summarize(project)
    assert (newer.keypoint_ap, older.keypoint_ap) == (0.55, None)
    rows = {r.label: (r.before, r.after) for r in versions.compare(plain, with_points)}
    assert rows["keypoints AP"] == (None, 0.55) and rows["keypoints AP50"] == (None, 0.8)
    assert not any(r.label.startswith("keypoints")
                   for r in versions.compare(plain, plain))  # masks only: no such rows

