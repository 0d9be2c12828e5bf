"""Training at a mask resolution: a model trained from scratch at 56 x 56 learns from 56 x 56
masks, its version says so, and it loads back predicting exactly as it was trained; fine-tuning
a loaded model keeps the model's own resolution."""

from __future__ import annotations

import pytest
import torch

from mrcnn.model.presets import build_model, mask_resolution_of
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.loop import HookBase
from mrcnn.training.train import TrainConfig, train_project

SIZE = 64


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    return make_synthetic_project(tmp_path_factory.mktemp("mask56"), n_train=3, n_val=2,
                                  size=SIZE, seed=0)


def _config(**kw) -> TrainConfig:
    settings = {"preset": "r18", "max_iters": 3, "size": SIZE, "batch_size": 2,
                "warmup_iters": 1, "scale_jitter": (1.0, 1.0), "device": "cpu", "amp": False}
    return TrainConfig(**{**settings, **kw})


class KeepModel(HookBase):
    """Keeps the trained model and the side of every mask logits tensor of the training steps."""

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None
        self.sides: list[tuple[int, ...]] = []

    def before_train(self) -> None:
        self.model = self.trainer.model
        self.model.roi_heads.mask_predictor.register_forward_hook(
            lambda module, args, out: self.sides.append(tuple(out.shape[-2:])))


def test_a_model_trained_at_56_saves_and_loads_predicting_as_trained(project_dir):
    keep = KeepModel()
    with Project.open(project_dir) as project:
        version = train_project(project, _config(mask_resolution=56), hooks=[keep],
                                evaluate_before=False)
        assert version.metadata["mask_resolution"] == 56
        assert keep.sides and set(keep.sides) == {(56, 56)}  # the loss saw 56 x 56 logits
        loaded = load_model(project=project, source="active").model
    trained = keep.model.eval()
    assert mask_resolution_of(loaded) == 56
    sides: list[tuple[int, ...]] = []
    loaded.roi_heads.mask_predictor.register_forward_hook(
        lambda module, args, out: sides.append(tuple(out.shape[-2:])))
    for m in (trained, loaded):
        m.roi_heads.score_thresh = 0.0  # a 3-iteration model: show every detection
    torch.manual_seed(1)
    image = torch.rand(3, SIZE, SIZE)
    with torch.no_grad():
        ours, theirs = trained([image])[0], loaded([image])[0]
    assert len(theirs["masks"]) > 0 and sides == [(56, 56)]
    for key in ("boxes", "labels", "scores", "masks"):
        assert torch.equal(ours[key], theirs[key]), key


def test_fine_tuning_keeps_the_loaded_models_resolution(project_dir):
    with Project.open(project_dir) as project:
        n = len(project.categories()) + 1
        model = build_model(preset="r18", num_classes=n, min_size=SIZE, mask_resolution=56)
        version = train_project(project, _config(max_iters=1), model=model,
                                evaluate_before=False)
    assert version.metadata["mask_resolution"] == 56  # the config's 28 builds nothing here
    assert mask_resolution_of(model) == 56


def test_the_default_stays_28_and_other_values_are_refused():
    assert _config().mask_resolution == 28
    _config(mask_resolution=56).validate()
    with pytest.raises(ValueError, match="mask_resolution"):
        _config(mask_resolution=112).validate()
