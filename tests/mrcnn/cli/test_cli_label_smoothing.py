"""`python -m mrcnn train --label-smoothing EPS`: parsed, handed to the trainer's config,
and an out-of-range value is one clear error line before any training."""

from __future__ import annotations

import pytest

from mrcnn.cli.main import build_parser, main
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training import train as training


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return make_synthetic_project(tmp_path, n_train=2, n_val=2, size=64)


@pytest.fixture
def configs(monkeypatch) -> list:
    """The TrainConfigs `train` hands to train_project (which does not train here)."""
    seen: list = []

    def fake_train_project(project, config, **kwargs):
        seen.append(config)

    monkeypatch.setattr(training, "train_project", fake_train_project)
    return seen


def train_args(project_dir, tmp_path, *extra) -> list[str]:
    return ["train", str(project_dir), "--preset", "r18", "--from", "scratch", "--size", "64",
            "--max-iters", "1", "--device", "cpu", "--stage", str(tmp_path / "staged.pt"),
            *extra]


def test_the_option_is_parsed_and_off_by_default():
    parse = build_parser().parse_args
    assert parse(["train", "p", "--label-smoothing", "0.1"]).label_smoothing == 0.1
    assert parse(["train", "p"]).label_smoothing == 0.0


def test_train_passes_it_to_the_trainer(project_dir, tmp_path, configs, capsys):
    assert main(train_args(project_dir, tmp_path, "--label-smoothing", "0.1")) == 0
    assert [c.label_smoothing for c in configs] == [0.1]
    assert main(train_args(project_dir, tmp_path)) == 0
    assert configs[-1].label_smoothing == 0.0


def test_out_of_range_is_one_clear_error(project_dir, tmp_path, configs, capsys):
    capsys.readouterr()
    code = main(train_args(project_dir, tmp_path, "--label-smoothing", "1.5"))
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "label_smoothing" in lines[0] and "1.5" in lines[0]
    assert configs == []  # nothing trained
    with Project.open(project_dir, read_only=True) as project:
        assert project.model_versions() == []
