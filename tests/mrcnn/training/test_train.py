"""The trainer: hooks, progress, cancellation, non-finite losses, resume, seeds, and the
model version a run leaves behind. Tiny settings (64 px images, a few iterations)."""

from __future__ import annotations

import itertools
import math
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from mrcnn.errors import TrainingError
from mrcnn.model.checkpoint import load_checkpoint, load_state
from mrcnn.model.device import choose_device
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.build import lr_factor, scale_jitter_sizes
from mrcnn.training.dataset import (
    InfiniteSampler,
    ProjectDataset,
    collate,
    project_labels,
    reviewed_image_ids,
    train_transform,
)
from mrcnn.training.events import EvalEvent, StepEvent, TrainingEvent
from mrcnn.training.hooks import CallbackHook
from mrcnn.training.loop import HookBase
from mrcnn.training.train import (
    RESUME_FILE,
    TrainConfig,
    Trainer,
    TrainingCancelled,
    train_project,
)

LOSS_NAMES = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
              "loss_rpn_box_reg"}


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    """A synthetic project (6 train, 2 val images of 64 px), made once per module."""
    return make_synthetic_project(tmp_path_factory.mktemp("tiny"), n_train=6, n_val=2,
                                  size=64, seed=5).parent


@pytest.fixture
def project(tiny_source, tmp_path):
    """A private, writable copy of the tiny project."""
    shutil.copytree(tiny_source, tmp_path / "copy")
    p = Project.open(tmp_path / "copy" / "project")
    yield p
    p.close()


def tiny_config(**kw) -> TrainConfig:
    base = {"preset": "r18", "size": 64, "max_iters": 3, "batch_size": 2, "warmup_iters": 2,
            "device": "cpu", "amp": False, "seed": 0}
    return TrainConfig(**{**base, **kw})


def model_files(project: Project) -> list[str]:
    return sorted(p.name for p in project.models_dir.iterdir())


class Recorder(HookBase):
    """Records every hook call with the trainer's iteration and losses."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.losses: dict[int, dict[str, float]] = {}

    def before_train(self):
        self.calls.append(("before_train", self.trainer.iter))

    def before_step(self):
        self.calls.append(("before_step", self.trainer.iter))

    def after_step(self):
        self.calls.append(("after_step", self.trainer.iter))
        self.losses[self.trainer.iter + 1] = dict(self.trainer.losses)

    def after_train(self):
        self.calls.append(("after_train", self.trainer.iter))


# ---------------------------------------------------------------- a whole run
def test_hooks_progress_and_the_saved_version(project):
    rec = Recorder()
    events: list[TrainingEvent] = []
    version = train_project(project, tiny_config(), hooks=[rec], progress=events.append)

    assert rec.calls == [("before_train", 0),
                         ("before_step", 0), ("after_step", 0),
                         ("before_step", 1), ("after_step", 1),
                         ("before_step", 2), ("after_step", 2),
                         ("after_train", 3)]
    kinds = [e.kind for e in events]
    assert kinds == ["start", "step", "step", "step", "eval", "saved"]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [s.iteration for s in steps] == [1, 2, 3]
    for s in steps:
        assert s.max_iters == 3
        assert set(s.losses) == LOSS_NAMES
        assert all(math.isfinite(v) and v >= 0 for v in s.losses.values())
        assert s.loss == pytest.approx(sum(s.losses.values()), rel=1e-5)
        assert s.seconds_per_iter > 0
    assert [s.eta_seconds for s in steps][-1] == 0
    lrs = [s.lr for s in steps]
    assert 0 < lrs[0] < lrs[1], "warmup raises the learning rate"
    eval_after = events[4]
    assert isinstance(eval_after, EvalEvent) and eval_after.stage == "after"
    # the scores, and what they were measured on (shown next to every AP)
    assert set(eval_after.metrics) == {"bbox", "segm", "scored"}
    assert eval_after.metrics["scored"]["images"] >= 1

    # the version: registered, active, file in models/, plain metadata
    assert project.model_versions() == [version]
    assert version.active and version.name == "v1" and version.path == "models/v1.pt"
    assert events[-1].to_json() == {"event": "saved", "version": "v1", "path": "models/v1.pt"}
    assert model_files(project) == ["v1.pt"]
    ckpt = load_checkpoint(project.folder / version.path)
    assert ckpt["preset"] == "r18"
    assert ckpt["categories"] == [c.name for c in project.categories()]
    meta = ckpt["metadata"]
    assert meta["training_image_ids"] == reviewed_image_ids(project, "train")
    assert meta["val_image_ids"] == reviewed_image_ids(project, "val")
    assert meta["iterations"] == 3 and meta["size"] == 64 and meta["from_scratch"]
    assert meta["metrics"]["before"] is None
    assert meta["metrics"]["after"] == eval_after.metrics
    assert version.metadata["parent_version"] is None
    model = build_model(preset="r18", num_classes=len(ckpt["categories"]) + 1)
    model.load_state_dict(ckpt["state_dict"])  # loads into the preset's architecture

    # fine-tuning from it: evaluated before, parent recorded, next name
    events.clear()
    v2 = train_project(project, tiny_config(max_iters=1), init_state=ckpt["state_dict"],
                       parent_id=version.id, progress=events.append)
    assert v2.name == "v2" and v2.active and not project.model_version(version.id).active
    assert v2.metadata["parent_version"] == "v1"
    assert [e.stage for e in events if isinstance(e, EvalEvent)] == ["before", "after"]
    assert model_files(project) == ["v1.pt", "v2.pt"]


def test_cancel_leaves_no_version_and_no_file(project):
    asked = itertools.count()
    rec = Recorder()
    with pytest.raises(TrainingCancelled):
        train_project(project, tiny_config(max_iters=5, checkpoint_period=1),
                      should_cancel=lambda: next(asked) >= 3, hooks=[rec])
    assert [c for c in rec.calls if c[0] == "after_step"] == [("after_step", i) for i in range(3)]
    assert rec.calls[-1][0] == "after_train"
    assert project.model_versions() == []
    assert model_files(project) == []


def test_roi_batch_per_image_sets_the_heads_sampler(project):
    model = build_model(preset="r18", num_classes=5, min_size=64)
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image != 17
    with pytest.raises(TrainingCancelled):  # before the first step: the setting is made
        train_project(project, tiny_config(roi_batch_per_image=17), model=model,
                      evaluate_before=False, should_cancel=lambda: True)
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 17


def test_non_finite_loss_raises_training_error_naming_the_iteration(project):
    def poison(trainer):  # what a diverging run does to the weights
        if trainer.iter == 1:
            with torch.no_grad():
                trainer.model.roi_heads.box_predictor.cls_score.weight.fill_(float("nan"))

    with pytest.raises(TrainingError, match=r"iteration 3 of 4.*loss_classifier=nan"):
        train_project(project, tiny_config(max_iters=4, checkpoint_period=1),
                      hooks=[CallbackHook(after_step=poison)])
    assert project.model_versions() == []
    assert model_files(project) == []


def test_resume_continues_at_the_saved_iteration_with_the_same_losses(project, tmp_path):
    saved = tmp_path / "state.pt"

    def keep_state(trainer):
        if trainer.iter + 1 == 2:
            shutil.copy(project.models_dir / RESUME_FILE, saved)

    full = Recorder()
    train_project(project, tiny_config(max_iters=4, checkpoint_period=2),
                  hooks=[full, CallbackHook(after_step=keep_state)])
    assert RESUME_FILE not in model_files(project), "removed once training finished"
    state = load_state(saved)  # weights_only
    assert state["iteration"] == 2

    resumed = Recorder()
    events: list[TrainingEvent] = []
    train_project(project, tiny_config(max_iters=4, checkpoint_period=2), resume_from=saved,
                  hooks=[resumed], progress=events.append)
    assert resumed.calls[0] == ("before_train", 2)
    assert [e.iteration for e in events if isinstance(e, StepEvent)] == [3, 4]
    assert sorted(resumed.losses) == [3, 4]
    for it in (3, 4):
        for name, value in full.losses[it].items():
            assert resumed.losses[it][name] == pytest.approx(value, rel=1e-4, abs=1e-5)


def test_same_seed_same_first_losses(project):
    runs = []
    for seed in (0, 0, 1):
        rec = Recorder()
        train_project(project, tiny_config(max_iters=2, seed=seed), hooks=[rec])
        runs.append(rec.losses)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_refuses_to_train_without_data(tiny_source, tmp_path):
    shutil.copytree(tiny_source, tmp_path / "c")
    with Project.open(tmp_path / "c" / "project") as p:
        for im in p.images():
            if im.split == "train":
                p.set_image_status(im.id, "in_review")
        with pytest.raises(TrainingError, match="no reviewed images"):
            train_project(p, tiny_config())
        wrong = build_model(preset="r18", num_classes=3)
        for im in p.images():
            p.set_image_status(im.id, "reviewed")
        with pytest.raises(TrainingError, match="2 classes but the project has 4"):
            train_project(p, tiny_config(), model=wrong)
        assert p.model_versions() == []


# ---------------------------------------------------------------- the loop alone
class _Fake(nn.Module):
    """A 'detector' whose losses are whatever `make_losses(call)` says."""

    def __init__(self, make_losses):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls = 0
        self.make_losses = make_losses

    def forward(self, images, targets):
        self.calls += 1
        return self.make_losses(self.calls, self.w)


def _fake_trainer(make_losses, max_iters=5, hooks=()):
    model = _Fake(make_losses)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    data = itertools.repeat(([torch.zeros(3, 4, 4)], [{"labels": torch.zeros(0)}]))
    return Trainer(model, data, opt, max_iters=max_iters, device=choose_device("cpu", amp=False),
                   hooks=hooks)


def test_trainer_reports_out_of_memory_as_training_error():
    def oom(call, w):
        if call == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"loss_a": w * 1.0}

    rec = Recorder()
    with pytest.raises(TrainingError, match="out of memory .*iteration 2"):
        _fake_trainer(oom, hooks=[rec]).train()
    assert rec.calls[-1] == ("after_train", 1)


def test_trainer_infinite_loss_names_parts():
    t = _fake_trainer(lambda call, w: {"loss_a": w * 1.0,
                                       "loss_b": w * (float("inf") if call == 4 else 2.0)})
    with pytest.raises(TrainingError, match=r"iteration 4 of 5 \(loss_a=1, loss_b=inf\)"):
        t.train()
    assert isinstance(t.exception, TrainingError)


# ---------------------------------------------------------------- pieces
def test_lr_schedule_warmup_then_decay():
    kw = {"max_iters": 100, "warmup_iters": 10, "warmup_factor": 0.001}
    assert lr_factor(0, schedule="cosine", **kw) == pytest.approx(0.001)
    assert lr_factor(5, schedule="cosine", **kw) < lr_factor(9, schedule="cosine", **kw) < 1
    assert lr_factor(50, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(100, schedule="cosine", **kw) == pytest.approx(0.0)
    step = {"schedule": "step", "steps": (0.5, 0.8), "gamma": 0.1, **kw}
    assert [lr_factor(i, **step) for i in (20, 49, 50, 79, 80)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01])


def test_config_checks_and_iterations():
    assert TrainConfig(epochs=2, batch_size=4).iterations(10) == 5
    assert TrainConfig(max_iters=7).iterations(10) == 7
    assert TrainConfig().iterations(10) == 1000
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(max_iters=3, epochs=1).validate()
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(preset="r101").validate()
    assert TrainConfig(lr=None, preset="r18").base_lr(from_scratch=True) > 0
    assert scale_jitter_sizes(128, 0.8, 1.2) == (112, 144, 128)
    assert scale_jitter_sizes(64, 1.0, 1.0) == (64,)


def test_dataset_samples_and_flip_keep_masks_and_boxes_together(project):
    labels = project_labels(project)
    ids = reviewed_image_ids(project, "train")
    plain = ProjectDataset(project, ids, labels=labels)
    image, target = plain[0]
    n = len(project.instances(ids[0], state="accepted"))
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, 64, 64)
    assert target["labels"].dtype == torch.int64 and target["labels"].min() >= 1

    from torchvision.transforms import v2

    flipped = ProjectDataset(project, ids, labels=labels,
                             transform=v2.Compose([v2.RandomHorizontalFlip(1.0)]))
    fimage, ftarget = flipped[0]
    assert torch.equal(fimage, image.flip(-1))
    assert torch.equal(ftarget["masks"], target["masks"].flip(-1))
    for box, mask in zip(ftarget["boxes"], ftarget["masks"], strict=True):
        ys, xs = np.nonzero(mask.numpy())
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_images_without_instances_train(project):
    first = reviewed_image_ids(project, "train")[0]
    project.delete_instances(i.id for i in project.instances(first))
    ds = ProjectDataset(project, [first], labels=project_labels(project),
                        transform=train_transform())
    image, target = ds[0]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 64, 64)
    model = build_model(preset="r18", num_classes=5, min_size=64).train()
    losses = model(*collate([ds[0]]))
    assert all(torch.isfinite(v) for v in losses.values())


def test_infinite_sampler_resumes_in_the_same_order():
    whole = list(itertools.islice(iter(InfiniteSampler(5, seed=3)), 17))
    tail = list(itertools.islice(iter(InfiniteSampler(5, seed=3, start=7)), 10))
    assert tail == whole[7:]
    assert sorted(whole[:5]) == list(range(5)) and whole[:5] != whole[5:10]
