"""`python -m mrcnn train PROJECT` without --preset/--from makes the one-click choice: COCO
weights when they are on this machine, else scratch; its start event names the start and the
recipe. On CUDA (device query mocked) the preset runs at its own size with a batch that fits."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


@pytest.fixture
def project_dir(tmp_path):
    return make_synthetic_project(tmp_path, n_train=6, n_val=2, size=64)


def _train(folder, *args, env_home) -> list[dict]:
    import os

    env = dict(os.environ, TORCH_HOME=str(env_home))
    done = subprocess.run([sys.executable, "-m", "mrcnn", "train", str(folder), "--json",
                           "--max-iters", "1", "--size", "64", *args],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_one_click_starts_from_cached_coco_weights(project_dir, stand_in_coco_home):
    events = _train(project_dir, env_home=stand_in_coco_home)
    start = events[0]
    assert start["event"] == "start" and start["start"] == "coco"
    assert start["preset"] == "r50v2"
    assert start["recipe"].startswith("r50v2 from COCO weights · 64 px · 1 iterations")
    with Project.open(project_dir, read_only=True) as p:
        meta = p.active_model_version().metadata
    assert meta["start"] == "coco" and meta["finetune_policy"] is True
    assert meta["speed"]["preset"] == "r50v2" and meta["speed"]["seconds_per_iter"] > 0


def test_without_weights_it_starts_from_scratch_and_says_so(project_dir, tmp_path):
    events = _train(project_dir, env_home=tmp_path / "empty_torch_home")
    start = events[0]
    assert (start["start"], start["preset"]) == ("scratch", "r18")
    assert start["recipe"].startswith("r18 from scratch · 64 px · 1 iterations")


def test_on_cuda_the_recipe_is_r50v2_at_its_size(project_dir, tmp_path, monkeypatch):
    """The device query mocked: a 24 GiB GPU. The plan (not the run) is checked."""
    from mrcnn.cli import train as cli_train
    from mrcnn.model import device

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setattr(device, "describe_hardware", lambda requested=None: {
        "device": "cuda", "name": "GPU", "memory_gib": 24.0, "cpu_cores": 8})
    args = argparse.Namespace(init="auto", preset=None, size=None, max_iters=None,
                              batch_size=None, device=None, download=False,
                              mask_resolution=28)
    with Project.open(project_dir, read_only=True) as p:
        recipe, start = cli_train._plan(p, args)
    assert (recipe.preset, recipe.size, recipe.device, recipe.start) == (
        "r50v2", 800, "cuda", "scratch")
    assert recipe.batch_size == 6  # fits 24 GiB, but there are only 6 training images
    assert start.preset == "r50v2" and start.model is None  # built from scratch, untrained
