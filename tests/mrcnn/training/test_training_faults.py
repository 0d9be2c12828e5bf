"""Training faults while fine-tuning the active model version: a loss that turns NaN, a CUDA
out-of-memory error, a disk that fills up while the new checkpoint (or the resumable state)
is written. Each gives a clear message; the previous active version stays active with its
file intact, and no new or half-written version is listed or left in models/.

The faults are injected (monkeypatch) into a real run of `train_project` on a tiny synthetic
project (r18 preset, 64 px images, one or two iterations on a CPU).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil

import pytest
import torch
import torchvision.models.detection.roi_heads as tv_roi_heads

from mrcnn.errors import TrainingError
from mrcnn.io import atomic
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.train import TrainConfig, train_project

CONFIG = {"preset": "r18", "size": 64, "max_iters": 1, "batch_size": 1, "warmup_iters": 1,
          "device": "cpu", "amp": False, "seed": 0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A synthetic project (4 train, 1 val images) whose model version v1 is active."""
    root = make_synthetic_project(tmp_path_factory.mktemp("faults"), n_train=4, n_val=1,
                                  size=64).parent
    with Project.open(root / "project") as p:
        train_project(p, TrainConfig(**CONFIG), evaluate_before=False)
    return root


@pytest.fixture
def project(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "copy")
    p = Project.open(tmp_path / "copy" / "project")
    yield p
    p.close()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fine_tune(project: Project, prepare=None, **config):
    """Fine-tune the active version, as the GUI's button and `mrcnn train` do;
    `prepare(model)` may plant a fault in the loaded model first."""
    cats = [c.name for c in project.categories()]
    loaded = load_model(project=project, source="active", categories=cats)
    if prepare is not None:
        prepare(loaded.model)
    return train_project(project, TrainConfig(**{**CONFIG, **config}), model=loaded.model,
                         parent_id=loaded.version_id, evaluate_before=False)


@pytest.fixture
def unchanged(project):
    """Asserts, after the test, that v1 is still the one active version with the same file."""
    versions = project.model_versions()
    (v1,) = versions
    assert v1.active and v1.name == "v1"
    digest = _sha(project.folder / v1.path)
    yield
    assert project.model_versions() == versions
    assert project.active_model_version() == v1
    assert sorted(os.listdir(project.models_dir)) == ["v1.pt"]  # no v2, no temp, no resume
    assert _sha(project.folder / v1.path) == digest
    assert project.integrity_check() == "ok"


def test_a_nan_loss_names_the_iteration_and_keeps_the_active_version(project, unchanged,
                                                                     monkeypatch):
    real = tv_roi_heads.maskrcnn_loss
    calls = []

    def diverging(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(tv_roi_heads, "maskrcnn_loss", diverging)
    with pytest.raises(TrainingError, match=r"non-finite at iteration 2 of 2 \(.*loss_mask=nan"):
        fine_tune(project, max_iters=2, checkpoint_period=1)


def oom_when(training: bool):
    """A fault for `fine_tune`: the model's backbone runs out of GPU memory in every forward
    pass made in training mode (or, with training=False, in evaluation mode)."""
    def prepare(model):
        backbone = model.backbone
        real = backbone.forward

        def forward(*args, **kwargs):
            if backbone.training == training:
                raise torch.OutOfMemoryError(
                    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total "
                    "capacity; 5.91 GiB already allocated)")
            return real(*args, **kwargs)

        backbone.forward = forward
    return prepare


def test_out_of_memory_while_training_is_a_clear_training_error(project, unchanged):
    with pytest.raises(TrainingError, match=r"out of memory on cpu at iteration 1: try a "
                                            r"smaller image size or batch size"):
        fine_tune(project, oom_when(training=True))


def test_out_of_memory_while_evaluating_the_new_model_is_a_clear_training_error(
        project, unchanged):
    with pytest.raises(TrainingError, match="out of memory"):
        fine_tune(project, oom_when(training=False))


class _FillingDisk:
    """A file object whose disk fills up halfway through the write."""

    def __init__(self, f):
        self._f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def write(self, data: bytes) -> int:
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize(("target", "iters", "period"), [("v2.pt", 1, 0), ("resume.pt", 2, 1)])
def test_a_full_disk_while_saving_leaves_no_half_written_file(project, unchanged, monkeypatch,
                                                              target, iters, period):
    """The new checkpoint (or the periodic resumable state) is being written when the disk
    fills up: the error says so, and its temporary file is gone."""
    doomed: list[int] = []
    seen: list[str] = []
    real_create, real_fdopen = atomic._create_temp, os.fdopen

    def create(path):
        fd, tmp = real_create(path)
        seen.append(tmp)
        if path.name == target:
            doomed.append(fd)
        return fd, tmp

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        return _FillingDisk(f) if fd in doomed else f

    monkeypatch.setattr(atomic, "_create_temp", create)
    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises((OSError, TrainingError)) as info:
        fine_tune(project, max_iters=iters, checkpoint_period=period)
    assert "No space left on device" in str(info.value)
    assert doomed, f"{target} was never written"
    assert not any(os.path.exists(t) for t in seen)
