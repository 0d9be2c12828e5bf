"""`python -m mrcnn train --anchors fit|default` and `--mask-resolution 28|56`: parsed (fit
and 28 by default) and handed to the trainer's config; anything else is refused by the
parser."""

from __future__ import annotations

import pytest

from mrcnn.cli.main import build_parser, main
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training import train as training


@pytest.fixture
def configs(monkeypatch) -> list:
    """The TrainConfigs `train` hands to train_project (which does not train here)."""
    seen: list = []
    monkeypatch.setattr(training, "train_project",
                        lambda project, config, **kwargs: seen.append(config))
    return seen


@pytest.fixture
def train_args(tmp_path, monkeypatch) -> list[str]:
    """`train` on a tiny synthetic project, from scratch, staged."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    project_dir = make_synthetic_project(tmp_path, n_train=2, n_val=2, size=64)
    return ["train", str(project_dir), "--preset", "r18", "--from", "scratch", "--size", "64",
            "--max-iters", "1", "--device", "cpu", "--stage", str(tmp_path / "staged.pt")]


def test_anchors_are_fitted_unless_asked_for_the_presets(train_args, configs):
    assert main(train_args) == 0
    assert main([*train_args, "--anchors", "default"]) == 0
    assert [c.anchors for c in configs] == ["fit", "default"]


def test_the_mask_resolution_reaches_the_training_config(train_args, configs):
    assert main(train_args) == 0
    assert main([*train_args, "--mask-resolution", "56"]) == 0
    assert [c.mask_resolution for c in configs] == [28, 56]


@pytest.mark.parametrize("flag,value", [("--anchors", "kmeans"), ("--mask-resolution", "112")])
def test_other_choices_are_refused(capsys, flag, value):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "p", flag, value])
    assert flag in capsys.readouterr().err
