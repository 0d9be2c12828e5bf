"""A model version trained before the project's categories changed still starts the next
training run: the categories it knows keep their predictor rows (by name, not position),
new ones start fresh."""

from __future__ import annotations

import torch

from mrcnn.cli.main import main
from mrcnn.model.checkpoint import load_checkpoint
from mrcnn.model.class_rows import PER_CLASS_ROWS, remap_categories
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def test_rows_follow_the_names():
    torch.manual_seed(0)
    old = build_model(preset="r18", num_classes=3).state_dict()  # a=1, b=2
    state, kept = remap_categories(old, "r18", ["a", "b"], ["b", "new", "a"])
    assert kept == ["b", "a"]
    fresh = build_model(preset="r18", num_classes=4)
    fresh.load_state_dict(state)  # strict: every key and shape fits
    for key, rows in PER_CLASS_ROWS.items():
        def row(t, label, rows=rows):
            return t[label * rows:(label + 1) * rows]
        assert torch.equal(row(state[key], 0), row(old[key], 0))  # background
        assert torch.equal(row(state[key], 1), row(old[key], 2))  # b
        assert torch.equal(row(state[key], 3), row(old[key], 1))  # a
        assert state[key].shape[0] == 4 * rows
    backbone = "backbone.body.conv1.weight"
    assert torch.equal(state[backbone], old[backbone])


def test_training_from_a_version_after_a_category_was_added(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    folder = make_synthetic_project(tmp_path, n_train=4, n_val=1, size=64)
    args = ["train", str(folder), "--preset", "r18", "--size", "64", "--max-iters", "2"]
    assert main([*args, "--from", "scratch"]) == 0
    with Project.open(folder) as project:
        v1 = project.active_model_version()
        known = load_checkpoint(project.folder / v1.path)["categories"]
        project.add_category("hexagon")
    assert main([*args, "--from", "active"]) == 0, capsys.readouterr().err
    with Project.open(folder, read_only=True) as project:
        v2 = project.active_model_version()
        assert v2.name == "v2"
        ck = load_checkpoint(project.folder / v2.path)
        assert ck["categories"] == [*known, "hexagon"]
        assert ck["metadata"]["parent_version"] == "v1"
