"""BatchNorm folded into convolutions for prediction: the same predictions for less work,
and only on a model handed over for prediction (a model still training keeps its norms)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import skimage.data
import torch

from mrcnn.model.device import DeviceChoice
from mrcnn.model.fold import fold_batchnorm
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model

FP32 = DeviceChoice(torch.device("cpu"), "test", None, False)


def norms(model: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def model_with_learned_norms(preset: str) -> torch.nn.Module:
    """A random model whose BatchNorms are not the identity (as after training)."""
    torch.manual_seed(0)
    model = build_model(preset=preset, num_classes=4, min_size=192, max_size=192).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.6, 1.4)
            m.bias.data.uniform_(-0.1, 0.1)
    return model


@pytest.mark.parametrize("preset", ["r50v2", "r50"])
def test_folding_removes_every_batchnorm_and_keeps_the_features(preset):
    model = model_with_learned_norms(preset)
    folded = copy.deepcopy(model)
    count = fold_batchnorm(folded)
    assert count == norms(model) > 0 and norms(folded) == 0
    x = torch.rand(1, 3, 192, 192)
    with torch.inference_mode():
        a, b = model.backbone(x), folded.backbone(x)
    for k in a:
        scale = a[k].abs().max().item()
        assert (a[k] - b[k]).abs().max().item() <= 1e-4 * max(scale, 1.0), k


def test_a_folded_predictor_predicts_what_the_plain_one_does():
    model = model_with_learned_norms("r50v2")
    image = skimage.data.coffee()
    plain = Predictor(copy.deepcopy(model), device=FP32, score_threshold=0.0).predict_one(image)
    fast = Predictor(copy.deepcopy(model), device=FP32, score_threshold=0.0,
                     fold_batchnorm=True)
    assert norms(fast.model) == 0
    folded = fast.predict_one(image)
    assert len(plain) == len(folded) > 0
    np.testing.assert_allclose(folded.boxes, plain.boxes, atol=0.5)
    np.testing.assert_allclose(folded.scores, plain.scores, atol=1e-3)
    agree = (folded.masks == plain.masks).mean()
    assert agree > 0.999


def test_group_norm_is_left_alone_and_a_training_model_is_never_folded():
    r18 = build_model(preset="r18", num_classes=3, min_size=128, max_size=128)
    assert fold_batchnorm(copy.deepcopy(r18)) == 0  # GroupNorm depends on each input
    model = model_with_learned_norms("r50")
    before = norms(model)
    Predictor(model, device=FP32)  # e.g. evaluation between training rounds
    assert norms(model) == before  # still trainable
