"""`python -m mrcnn train --mask-resolution 28|56`: parsed (28 by default) and handed to the
trainer's config; anything else is refused by the parser."""

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


def test_the_mask_resolution_reaches_the_training_config(tmp_path, monkeypatch, configs):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    project_dir = make_synthetic_project(tmp_path, n_train=2, n_val=2, size=64)
    args = ["train", str(project_dir), "--preset", "r18", "--from", "scratch", "--size", "64",
            "--max-iters", "1", "--device", "cpu", "--stage", str(tmp_path / "staged.pt")]
    assert main(args) == 0
    assert main([*args, "--mask-resolution", "56"]) == 0
    assert [c.mask_resolution for c in configs] == [28, 56]


def test_other_mask_resolutions_are_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "p", "--mask-resolution", "112"])
    assert "--mask-resolution" in capsys.readouterr().err
