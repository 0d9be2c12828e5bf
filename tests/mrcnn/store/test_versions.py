"""Model versions as the app manages them: register a staged checkpoint, delete, roll back,
compare metrics, and decide activation; plus fine-tune readiness and its command line."""

from __future__ import annotations

import sys

import pytest

from mrcnn.errors import ProjectError
from mrcnn.masks import encode
from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training import launcher as finetune


def metrics(segm: float, bbox: float = 0.1, per_class: dict | None = None) -> dict:
    return {"segm": {"AP": segm, "AP50": segm + 0.1, "per_class": per_class or {}},
            "bbox": {"AP": bbox, "AP50": bbox + 0.1, "per_class": {}}}


@pytest.fixture
def project(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=1, size=64)
    with Project.open(folder) as p:
        yield p


def add_version(p: Project, parent: int | None = None, activate: bool = True):
    staged = versions.staging_path(p)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    return versions.register_staged(p, staged, preset="r18", parent_id=parent,
                                    metadata={"metrics": {"after": metrics(0.3)},
                                              "training_image_ids": [1, 2, 3],
                                              "iterations": 20},
                                    activate=activate)


def test_register_staged_moves_the_file_and_registers_it(project):
    v1 = add_version(project)
    assert v1.name == "v1" and v1.active and v1.path == "models/v1.pt"
    assert (project.folder / "models/v1.pt").read_bytes() == b"weights"
    assert not list(project.models_dir.glob(".staged-*"))
    v2 = add_version(project, parent=v1.id, activate=False)
    assert project.active_model_version().id == v1.id and v2.parent_id == v1.id


def test_register_staged_failure_leaves_nothing(project, monkeypatch):
    staged = versions.staging_path(project)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    monkeypatch.setattr(Project, "add_model_version",
                        lambda *a, **k: (_ for _ in ()).throw(ProjectError("disk full")))
    with pytest.raises(ProjectError):
        versions.register_staged(project, staged, preset="r18", parent_id=None, metadata={})
    assert project.model_versions() == []
    assert list(project.models_dir.iterdir()) == []
    with pytest.raises(ProjectError, match="missing"):
        versions.register_staged(project, staged, preset="r18", parent_id=None, metadata={})


def test_delete_refuses_the_active_one_and_keeps_accepted_work(project):
    v1 = add_version(project)
    v2 = add_version(project, parent=v1.id)
    image = project.images()[0]
    rle = encode(project.instances(image.id)[0].rle.decode())
    project.replace_predictions(image.id, "v1", [(1, rle, 0.7), (1, rle, 0.4)],
                                model_version_id=v1.id)
    kept = project.instances(image.id, state="pending")[0]
    project.accept_instances([kept.id])
    with pytest.raises(ProjectError, match="active"):
        versions.delete_version(project, v2.id)
    versions.delete_version(project, v1.id)
    assert [v.name for v in project.model_versions()] == ["v2"]
    assert project.model_version(v2.id).parent_id is None
    assert not (project.folder / "models/v1.pt").exists()
    assert (project.folder / "models/v2.pt").exists()
    assert not project.predicted_by(image.id, "v1")
    assert project.instances(image.id, state="pending") == []
    accepted = project.instance(kept.id)  # the accepted one stays, unlinked
    assert accepted.state == "accepted" and accepted.model_version_id is None


def test_rollback_goes_to_the_parent_else_the_previous(project):
    assert versions.rollback_target(project) is None
    v1 = add_version(project)
    assert versions.rollback_target(project) is None
    v2 = add_version(project)  # trained from scratch: no parent
    v3 = add_version(project, parent=v1.id)
    assert versions.rollback_target(project).id == v1.id
    project.activate_model_version(v2.id)
    assert versions.rollback_target(project).id == v1.id
    assert v3.id != v2.id


def test_should_activate_and_compare():
    assert versions.should_activate("if-better", metrics(0.2), metrics(0.3))
    assert not versions.should_activate("if-better", metrics(0.3), metrics(0.3))
    assert not versions.should_activate("if-better", metrics(0.3), None)
    assert versions.should_activate("if-better", None, metrics(0.0))
    assert versions.should_activate("if-better", metrics(-1.0), metrics(0.0))  # undefined
    assert versions.should_activate("always", metrics(0.9), metrics(0.1))
    with pytest.raises(ValueError):
        versions.should_activate("sometimes", None, None)
    rows = versions.compare(metrics(0.2, per_class={"disc": 0.5, "ring": -1.0}),
                            metrics(0.5, per_class={"disc": 0.25, "ring": 0.4}))
    by = {r.label: r for r in rows}
    assert by["segm AP"].delta == pytest.approx(0.3)
    assert by["bbox AP50"].before == pytest.approx(0.2)
    assert by["segm AP · disc"].delta == pytest.approx(-0.25)
    assert by["segm AP · ring"].before is None and by["segm AP · ring"].delta is None
    assert [r.before for r in versions.compare(None, metrics(0.5))][:4] == [None] * 4


def test_summaries_newest_first(project):
    v1 = add_version(project)
    add_version(project, parent=v1.id)
    s = versions.summarize(project)
    assert [x.name for x in s] == ["v2", "v1"]
    assert s[0].active and not s[1].active and s[0].parent == "v1"
    assert (s[0].train_images, s[0].segm_ap, s[0].iterations) == (3, 0.3, 20)


def test_readiness_counts_what_is_missing(project):
    r = finetune.readiness(project)
    assert (r.train, r.val, r.needed) == (3, 1, 6)
    assert r.describe() == "needs 6 more reviewed images"
    assert finetune.Readiness(12, 0).describe() == "needs a reviewed image in the validation split"
    assert finetune.Readiness(8, 1).describe() == "needs 1 more reviewed image"
    assert finetune.Readiness(9, 2).ready and finetune.Readiness(9, 2).describe() == ""


def test_train_command():
    opts = finetune.FinetuneOptions(max_iters=40, size=128, device="cpu", start="scratch")
    argv = finetune.train_command("/p", opts, stage="/p/models/.s.pt", baseline="v2")
    assert argv[:5] == [sys.executable, "-m", "mrcnn", "train", "/p"]
    text = " ".join(argv)
    for part in ("--from scratch", "--max-iters 40", "--size 128", "--device cpu",
                 "--stage /p/models/.s.pt", "--baseline v2", "--warmup-iters 8", "--json"):
        assert part in text
    with pytest.raises(ValueError, match="preset"):
        finetune.train_command("/p", finetune.FinetuneOptions(preset="big"), stage="x",
                               baseline=None)


def test_training_run_follows_the_events():
    run = finetune.TrainingRun()
    for e in ({"event": "start", "max_iters": 2, "device": "CPU"},
              {"event": "eval", "stage": "baseline", "version": "v1", "metrics": metrics(0.1)},
              {"event": "eval", "stage": "before", "metrics": metrics(0.05)},
              {"event": "step", "iteration": 1, "max_iters": 2, "eta_seconds": 3.0,
               "loss": 1.0, "losses": {}, "lr": 0.01},
              {"event": "eval", "stage": "after", "metrics": metrics(0.4)},
              {"event": "saved", "staged": "x.pt"}):
        run.update(e)
    assert (run.max_iters, run.iteration, run.eta_seconds) == (2, 1, 3.0)
    assert run.baseline["segm"]["AP"] == 0.1 and run.baseline_name == "v1"
    assert run.after["segm"]["AP"] == 0.4 and run.saved.staged == "x.pt"


def test_remembered_options_restore_and_bad_values_keep_defaults():
    chosen = finetune.FinetuneOptions(preset="r50", max_iters=120, size=320, device="cpu",
                                      start="scratch", activate="always")
    saved = finetune.remembered(chosen)
    assert finetune.restore(saved) == finetune.restore(dict(saved)) == chosen
    # a settings file edited by hand or written by another version: bad entries are ignored
    broken = dict(saved, preset="r999", max_iters="many", size=-5, start=None)
    got = finetune.restore(broken)
    default = finetune.FinetuneOptions()
    assert (got.preset, got.max_iters, got.size, got.start) == (
        default.preset, default.max_iters, default.size, default.start)
    assert (got.device, got.activate) == ("cpu", "always")
    assert finetune.restore("not a dict") == default
