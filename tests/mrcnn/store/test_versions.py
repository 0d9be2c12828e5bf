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
    assert s[0].val_text == ""  # an older version: what it was scored on is unknown
    staged = versions.staging_path(project)
    staged.write_bytes(b"weights")
    versions.register_staged(project, staged, preset="r18", parent_id=None, metadata={
        "metrics": {"after": dict(metrics(0.4), scored={"images": 3, "instances": 24})}})
    newest = versions.summarize(project)[0]
    assert newest.val_text == "val: 3 images, 24 instances" and newest.noisy


def test_readiness_counts_what_is_missing(project):
    r = finetune.readiness(project)
    assert (r.train, r.val, r.needed) == (3, 1, 6)
    assert r.val_instances == len([i for im in project.images("reviewed") if im.split == "val"
                                   for i in project.instances(im.id, state="accepted")])
    assert r.describe() == "needs 10 reviewed images; the project has only 4 images"  # 4 in all
    assert finetune.Readiness(8, 1).describe() == "needs 1 more reviewed image"
    assert finetune.Readiness(9, 2, 90, 20).ready
    assert finetune.Readiness(9, 2, 90, 20).describe() == ""


def test_a_project_of_fewer_images_than_a_fine_tune_needs_says_so():
    """7 images in the folder: 'needs 3 more reviewed images' once all 7 are reviewed would
    send the user looking for images that are not there."""
    few = finetune.Readiness(5, 2, 50, 20, images=7)
    assert not few.ready
    assert few.describe() == "needs 10 reviewed images; the project has only 7 images"
    assert "add images to its folder" in few.advice()
    assert finetune.Readiness(5, 2, 50, 20, images=12).describe() == (
        "needs 3 more reviewed images")  # enough images: review more of them
    assert finetune.Readiness(5, 2, 50, 20).describe() == "needs 3 more reviewed images"


def test_the_validation_split_needs_two_images_and_a_tenth_of_the_data():
    # enough images in all, but one for validation: fine-tune says how many more
    one = finetune.Readiness(11, 1, 110, 10)
    assert not one.ready and one.needed == 0 and one.val_needed == 1
    assert one.describe() == "needs 1 more validation image"
    assert "Move to Validation" in one.advice() and "1 of 12 reviewed images" in one.advice()
    assert finetune.Readiness(12, 0).describe() == "needs 2 more validation images"
    # a tenth of the reviewed images: 2 of 30 is too few
    assert finetune.Readiness(28, 2, 280, 20).val_needed == 1
    assert finetune.Readiness(27, 3, 270, 30).ready
    # and a tenth of the instances: validation images with almost nothing on them
    sparse = finetune.Readiness(27, 3, 270, 5)
    assert not sparse.ready and sparse.val_needed == 0 and sparse.val_instances_needed == 23
    assert sparse.describe() == "needs more instances in the validation images"
    assert finetune.Readiness(0, 10).describe() == "needs a reviewed image in the training split"


def test_a_run_and_a_tiny_validation_set_are_described_in_words():
    assert finetune.describe_run("r18", 9, 1, 3) == (
        "Training r18 on 9 images; 1 validation image (3 instances) scores it")
    assert finetune.describe_run("r50", 20, 4).endswith("4 validation images score it")
    assert finetune.describe_run("r18", 9, 0).endswith("no validation images, so it cannot "
                                                       "be scored")
    assert versions.describe_val(3, 24) == "val: 3 images, 24 instances"
    assert versions.describe_val(1, 1) == "val: 1 image, 1 instance"
    assert versions.is_noisy(3, 240) and versions.is_noisy(30, 12)
    assert not versions.is_noisy(5, 20)
    assert "mostly noise" in versions.noise_warning(3, 24)
    assert versions.noise_warning(8, 80) == ""
    scored = dict(metrics(0.3), scored={"images": 3, "instances": 24})
    assert versions.scored_on(scored) == (3, 24) and versions.scored_on(metrics(0.3)) is None


def test_only_combinations_that_can_run_are_offered_and_the_others_say_why():
    opts = finetune.FinetuneOptions(preset="r18", start="auto")
    cached = {"r50v2": True, "r50": False}
    c = finetune.choices(opts, active_preset=None, coco_cached=cached)
    assert c.why_not("start", "coco") == "r18 has no COCO weights (only r50v2, r50 have)"
    assert c.why_not("start", "active") == "the project has no active model version"
    assert c.allowed("start", "auto") and c.allowed("start", "scratch")
    c = finetune.choices(finetune.FinetuneOptions(preset="r50v2", start="coco"),
                         active_preset=None, coco_cached=cached)
    assert "r18 has no COCO weights" in c.why_not("preset", "r18")
    assert "not on this machine" in c.why_not("preset", "r50")
    assert c.allowed("preset", "r50v2") and c.allowed("start", "coco")
    c = finetune.choices(finetune.FinetuneOptions(preset="r50v2", start="active"),
                         active_preset="r18", coco_cached=cached)
    assert c.why_not("start", "active") == "the active version is an r18 model, not r50v2"
    assert c.allowed("preset", "r18") and not c.allowed("preset", "r50v2")
    # an impossible remembered choice becomes the nearest one that runs
    fixed = finetune.runnable(finetune.FinetuneOptions(preset="r18", start="coco"),
                              active_preset=None, coco_cached=cached)
    assert (fixed.preset, fixed.start) == ("r18", "auto")
    fixed = finetune.runnable(finetune.FinetuneOptions(preset="r18", start="auto"),
                              active_preset="r50v2", coco_cached=cached)
    assert (fixed.preset, fixed.start) == ("r50v2", "auto")


def test_start_problem_reads_the_project_and_the_torch_cache(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    assert "r18 has no COCO weights" in finetune.start_problem(project, "r18", "coco")
    assert "not on this machine" in finetune.start_problem(project, None, "coco")
    assert finetune.start_problem(project, None, "coco", allow_download=True) is None
    assert finetune.start_problem(project, "r18", "scratch") is None
    add_version(project)  # an r18 version, active
    assert "an r18 model, not r50" in finetune.start_problem(project, "r50", "active")
    assert finetune.start_problem(project, "r18", "auto") is None


def test_bad_options_are_listed_one_per_line():
    bad = finetune.FinetuneOptions(preset="big", max_iters=0, device="tpu")
    with pytest.raises(ValueError) as info:
        bad.validate()
    assert str(info.value).splitlines() == [
        "invalid fine-tune option preset='big'", "invalid fine-tune option device='tpu'",
        "invalid fine-tune option max_iters=0"]


def test_train_command():
    opts = finetune.FinetuneOptions(max_iters=40, size=128, device="cpu", start="scratch")
    argv = finetune.train_command("/p", opts, stage="/p/models/.s.pt", baseline="v2")
    assert argv[:5] == [sys.executable, "-m", "mrcnn", "train", "/p"]
    text = " ".join(argv)
    for part in ("--from scratch", "--max-iters 40", "--size 128", "--device cpu",
                 "--stage /p/models/.s.pt", "--baseline v2", "--json"):
        assert part in text
    # what the user left to the one-click recipe is not on the command line: the training
    # process decides it with the same rule (mrcnn.training.recipe)
    for flag in ("--preset", "--batch-size", "--warmup-iters"):
        assert flag not in argv
    one_click = finetune.train_command("/p", finetune.FinetuneOptions(), stage="s",
                                       baseline=None)
    for flag in ("--preset", "--max-iters", "--size", "--batch-size", "--device"):
        assert flag not in one_click
    assert " --from auto " in " ".join(one_click) + " "
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
    # settings written before the one-click recipe held its old fixed r18 defaults: those
    # three are not restored (they would pin every project to r18 at 256 px)
    old = {"preset": "r18", "max_iters": 300, "size": 256, "device": "cpu", "start": "auto",
           "activate": "if-better"}
    got = finetune.restore(old)
    assert (got.preset, got.max_iters, got.size, got.device) == ("auto", None, None, "cpu")


def test_the_baseline_is_what_the_window_shows():
    assert finetune.baseline_name("v3", "coco") == "v3"
    assert finetune.baseline_name(None, "coco") == "coco"
    assert finetune.baseline_name(None, "checkpoint") is None
    assert finetune.baseline_name(None, None) is None
