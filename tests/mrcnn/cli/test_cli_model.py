"""The model commands of the CLI, end to end: train, predict, eval (and torchrun DDP)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def run(*args, env=None, timeout=600):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "mrcnn", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=e)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = make_synthetic_project(tmp_path_factory.mktemp("syn"), n_train=6, n_val=2,
                                    size=64)
    return folder


@pytest.fixture
def project_dir(synthetic, tmp_path):
    """A fresh copy of the small synthetic project (images shared, read-only)."""
    dst = tmp_path / "copy"
    shutil.copytree(synthetic.parent, dst, symlinks=True)
    return dst / synthetic.name


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    return {"TORCH_HOME": str(home)}


def test_train_from_scratch_then_fine_tune_then_predict(project_dir, empty_torch_home):
    r = run("train", project_dir, "--preset", "r18", "--max-iters", 3, "--size", 64,
            "--from", "scratch", "--json", env=empty_torch_home)
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "start" and kinds[-1] == "done"
    steps = [e for e in ev if e["event"] == "step"]
    assert [s["iteration"] for s in steps] == [1, 2, 3]
    assert all(s["loss"] > 0 and s["lr"] > 0 for s in steps)
    assert ev[-1]["version"] == "v1"
    with Project.open(project_dir, read_only=True) as p:
        v1 = p.active_model_version()
        assert v1.name == "v1" and (p.folder / v1.path).is_file()
        assert v1.metadata["preset"] == "r18" and v1.metadata["training_image_ids"]

    # fine-tune from the active version: a child version, evaluated before and after
    r = run("train", project_dir, "--max-iters", 2, "--size", 64, "--json",
            env=empty_torch_home)
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    assert {e["stage"] for e in ev if e["event"] == "eval"} == {"before", "after"}
    with Project.open(project_dir, read_only=True) as p:
        v2 = p.active_model_version()
        assert (v2.name, v2.metadata["parent_version"]) == ("v2", "v1")
        assert v2.preset == "r18"

    # predict uses the active version; a second run recomputes nothing
    r = run("predict", project_dir, "--images", "all", "--json", env=empty_torch_home)
    assert r.returncode == 0, r.stderr
    done = events(r.stdout)[-1]
    assert done["event"] == "done" and done["model_key"] == "v2"
    assert done["predicted"] == 8 and done["cached"] == 0
    r = run("predict", project_dir, "--images", "all", "--json", env=empty_torch_home)
    done = events(r.stdout)[-1]
    assert (done["predicted"], done["cached"]) == (0, 8)
    with Project.open(project_dir, read_only=True) as p:
        pending = p.instances(state="pending")
        assert len(pending) == done["instances"] or pending
        assert all(i.model_version_id == v2.id and i.source == "model" for i in pending)

    # eval: numbers for both IoU types, per class, on the val split
    r = run("eval", project_dir, "--json", env=empty_torch_home)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["split"] == "val" and m["images"] == 2 and m["model_key"] == "v2"
    for kind in ("bbox", "segm"):
        assert 0.0 <= m[kind]["AP"] <= 1.0
        assert set(m[kind]["per_class"]) <= {"disc", "square", "ring", "triangle"}


def test_no_weights_is_one_clear_line_and_fast(project_dir, empty_torch_home):
    t = time.monotonic()
    r = run("predict", project_dir, env=empty_torch_home)
    assert time.monotonic() - t < 30  # includes interpreter and torch start-up
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No model weights")
    assert "checkpoint" in lines[0] and "scratch" in lines[0]


def test_predict_with_checkpoint_file_and_unknown_version(project_dir, tmp_path,
                                                          empty_torch_home):
    with Project.open(project_dir, read_only=True) as p:
        names = [c.name for c in p.categories()]
    torch.manual_seed(0)
    ck = tmp_path / "model.pt"
    save_checkpoint(ck, state_dict=build_model(preset="r18", num_classes=len(names) + 1,
                                               min_size=64).state_dict(),
                    preset="r18", categories=names)
    r = run("predict", project_dir, "--model", ck, "--images", "all", "--json",
            env=empty_torch_home)
    assert r.returncode == 0, r.stderr
    done = events(r.stdout)[-1]
    assert done["model_key"].startswith("file-") and done["predicted"] == 8
    r = run("predict", project_dir, "--model", "v7", env=empty_torch_home)
    assert r.returncode == 1 and "v7" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_train_refuses_bad_settings_and_changes_nothing(project_dir, empty_torch_home):
    r = run("train", project_dir, "--preset", "r18", "--max-iters", 0, "--from", "scratch",
            env=empty_torch_home)
    assert r.returncode == 1 and "max_iters" in r.stderr
    with Project.open(project_dir, read_only=True) as p:
        assert p.model_versions() == []
        assert not list(p.models_dir.glob("*.pt"))


@pytest.mark.slow
def test_torchrun_two_gloo_processes(project_dir, empty_torch_home):
    torchrun = shutil.which("torchrun")
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"])
    r = subprocess.run(
        [*cmd, "--standalone", "--nproc_per_node=2", "-m", "mrcnn", "train",
         str(project_dir), "--preset", "r18", "--max-iters", "3", "--size", "64", "--from",
         "scratch", "--device", "cpu", "--json"],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, **empty_torch_home, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    ev = events(r.stdout)
    start = next(e for e in ev if e["event"] == "start")
    assert start["world_size"] == 2
    assert [e["event"] for e in ev].count("done") == 1  # rank 0 alone reports and writes
    with Project.open(project_dir, read_only=True) as p:
        assert [v.name for v in p.model_versions()] == ["v1"]
        assert p.active_model_version().metadata["world_size"] == 2
