"""`python -m mrcnn train --anchors fit|default`: parsed (fit by default) and handed to the
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


def test_anchors_are_fitted_unless_asked_for_the_presets(tmp_path, monkeypatch, configs):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    project_dir = make_synthetic_project(tmp_path, n_train=2, n_val=2, size=64)
    args = ["train", str(project_dir), "--preset", "r18", "--from", "scratch", "--size", "64",
            "--max-iters", "1", "--device", "cpu", "--stage", str(tmp_path / "staged.pt")]
    assert main(args) == 0
    assert main([*args, "--anchors", "default"]) == 0
    assert [c.anchors for c in configs] == ["fit", "default"]


def test_other_anchor_choices_are_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "p", "--anchors", "kmeans"])
    assert "--anchors" in capsys.readouterr().err
