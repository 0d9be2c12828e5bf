"""On a GPU the Predictor times autocast against fp32 on its own model when it is made, and
predicts in the faster one (a tie goes to fp32): the status bar then says what autocast
measured. Exercised here on the CPU by letting the Predictor time its precision there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrcnn.model import predictor as predictor_module
from mrcnn.model.device import DeviceChoice
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model

BF16 = DeviceChoice(torch.device("cpu"), "GPU found", torch.bfloat16, True)


@pytest.fixture
def timed_here(monkeypatch):
    """The Predictor times precisions on this CPU as it would on a GPU; returns the inputs
    of each timed forward pass."""
    monkeypatch.setattr(predictor_module, "times_autocast",
                        lambda choice: choice.amp_dtype is not None)
    monkeypatch.setattr(predictor_module, "_MEASURED_PRECISION", {})
    probes: list[tuple] = []
    forward = Predictor._forward

    def recording(self, tensors, keys=None):
        probes.append((self.choice.amp_dtype, tuple(tensors[0].shape)))
        return forward(self, tensors, keys)

    monkeypatch.setattr(Predictor, "_forward", recording)
    return probes


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset="r18", num_classes=3, min_size=96, max_size=160)


def test_the_predictor_predicts_in_the_precision_it_timed_faster(timed_here):
    predictor = Predictor(_model(), device=BF16, fold_batchnorm=True)
    chosen = predictor.choice
    # timed on a probe at the model's input size: a warm-up and three rounds of each
    assert timed_here == [(torch.bfloat16, (3, 96, 128)), (None, (3, 96, 128))] * 4
    weight = next(predictor.model.backbone.parameters())
    assert weight.is_contiguous(memory_format=torch.channels_last) == chosen.channels_last
    if chosen.amp_dtype is None:
        assert predictor.describe().startswith("CPU — GPU found · fp32 (bf16 measured at ")
    else:
        assert chosen == BF16 and predictor.describe() == "CPU — GPU found · bf16"
    # the same detections as a Predictor made in that precision outright
    image = np.random.default_rng(0).integers(0, 255, (120, 90, 3), np.uint8)
    got = predictor.predict_one(image)
    plain = Predictor(_model(), device=chosen, fold_batchnorm=True,
                      tune_precision=False).predict_one(image)
    assert np.array_equal(got.labels, plain.labels)
    np.testing.assert_allclose(got.boxes, plain.boxes, atol=1e-3)


def test_a_second_model_of_the_same_build_is_not_timed_again(timed_here):
    first = Predictor(_model(), device=BF16).choice
    timed = len(timed_here)
    assert Predictor(_model(), device=BF16).choice == first
    assert len(timed_here) == timed
    Predictor(build_model(preset="r18", num_classes=3, min_size=64, max_size=96), device=BF16)
    assert len(timed_here) == 2 * timed  # another input size is timed on its own


def test_nothing_is_timed_in_fp32_or_when_asked_not_to(timed_here):
    fp32 = DeviceChoice(torch.device("cpu"), "GPU found", None, False)
    assert Predictor(_model(), device=fp32).choice == fp32
    assert Predictor(_model(), device=BF16, tune_precision=False).choice == BF16
    assert timed_here == []

