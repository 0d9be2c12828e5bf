"""`train --stage` as the app runs it: the project stays open for writing in another
process, the checkpoint goes to a staging file, nothing is registered until the caller
does it; SIGTERM (the app's Cancel) leaves no file and no version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGTERM semantics")


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return make_synthetic_project(tmp_path, n_train=6, n_val=2, size=64)


def train(folder, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mrcnn", "train", str(folder), "--json",
                             "--preset", "r18", "--size", "64", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_staged_training_while_the_project_is_open(project_dir):
    with Project.open(project_dir) as project:  # holds the write lock, as the app does
        stage = versions.staging_path(project)
        proc = train(project_dir, "--from", "scratch", "--max-iters", 2, "--stage", stage)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        saved = next(e for e in events if e["event"] == "saved")
        assert saved["staged"] == str(stage) and stage.is_file()
        assert saved["metadata"]["metrics"]["after"]["segm"]["AP"] >= 0
        assert project.model_versions() == []  # registered by nobody yet
        v1 = versions.register_staged(project, stage, preset=saved["preset"],
                                      parent_id=saved["parent_id"],
                                      metadata=saved["metadata"])
        assert v1.active and (project.folder / "models/v1.pt").is_file()

        # from scratch again, scoring the active v1 first for the before/after comparison
        stage = versions.staging_path(project)
        proc = train(project_dir, "--from", "scratch", "--max-iters", 1, "--stage", stage,
                     "--baseline", "v1")
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        evals = [e for e in map(json.loads, out.splitlines()) if e["event"] == "eval"]
        assert [e["stage"] for e in evals] == ["baseline", "after"]
        assert evals[0]["version"] == "v1" and "segm" in evals[0]["metrics"]
        stage.unlink()


@pytest.mark.parametrize("staged", [True, False])
def test_sigterm_mid_training_leaves_nothing(project_dir, staged):
    stage = project_dir / "models" / ".staged-test.pt"
    proc = train(project_dir, "--from", "scratch", "--max-iters", 10000,
                 *(["--stage", stage] if staged else []))
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "step":
                break
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "cancelled" in err
    assert not stage.exists()
    assert [p.name for p in (project_dir / "models").glob("*.pt")] == []
    with Project.open(project_dir, read_only=True) as project:
        assert project.model_versions() == []
