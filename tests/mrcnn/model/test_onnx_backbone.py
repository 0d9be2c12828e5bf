"""The backbone in ONNX Runtime for fp32 prediction on a CPU: prepared in the background after
the first prediction, the same detections as torch afterwards, exported once per model and
reused, and anything that goes wrong leaves the torch backbone predicting."""

from __future__ import annotations

import copy
import logging
import os

import numpy as np
import pytest
import skimage.data
import torch

from mrcnn.model import onnx_backbone as ob
from mrcnn.model.device import DeviceChoice
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model

FP32 = DeviceChoice(torch.device("cpu"), "test", None, False)
BF16 = DeviceChoice(torch.device("cpu"), "test", torch.bfloat16, True)


@pytest.fixture
def onnx_on(tmp_path, monkeypatch):
    """ONNX Runtime allowed (the suite turns it off elsewhere), its cache in tmp_path."""
    monkeypatch.setenv("MRCNN_ONNX", "1")
    monkeypatch.setenv("MRCNN_ONNX_CACHE", str(tmp_path / "onnx"))
    return tmp_path / "onnx"


def random_model(preset: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(preset=preset, num_classes=4, min_size=192, max_size=256).eval()
    for m in model.modules():  # norms that are not the identity, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return model


def same_detections(a, b) -> None:
    assert len(a) == len(b) > 0
    assert np.array_equal(a.labels, b.labels)
    assert np.abs(a.boxes - b.boxes).max() <= 0.5
    assert np.abs(a.scores - b.scores).max() <= 1e-3
    assert (a.masks == b.masks).mean() >= 0.999


@pytest.mark.parametrize("preset", ["r50v2", "r18"])
def test_after_the_first_image_the_backbone_runs_in_onnx_runtime_with_the_same_detections(
        onnx_on, preset):
    model = random_model(preset)
    image = skimage.data.coffee()
    plain = Predictor(copy.deepcopy(model), device=FP32, score_threshold=0.0,
                      fold_batchnorm=True).predict_one(image)
    fast = Predictor(copy.deepcopy(model), device=FP32, score_threshold=0.0,
                     fold_batchnorm=True, onnx_backbone=True)
    first = fast.predict_one(image)
    assert fast.engine == "torch"  # the first image is not kept waiting for the export
    same_detections(plain, first)
    assert fast.fast_backbone is not None and fast.fast_backbone.wait(120)
    assert fast.fast_backbone.error is None
    later = fast.predict_one(image)
    assert fast.engine == "onnxruntime"
    assert isinstance(fast.model.backbone, ob.OrtBackbone)
    assert "backbone in ONNX Runtime" in fast.describe()
    same_detections(plain, later)
    assert len(list(onnx_on.glob("*.onnx"))) == 1


def test_a_model_exported_once_is_read_from_the_cache(onnx_on, monkeypatch):
    model = random_model("r18")
    first = Predictor(copy.deepcopy(model), device=FP32, onnx_backbone=True)
    first.predict_one(skimage.data.astronaut()[::4, ::4])
    assert first.fast_backbone.wait(120) and first.fast_backbone.error is None
    (path,) = onnx_on.glob("*.onnx")

    def no_export(*_args, **_kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(ob, "export_backbone", no_export)
    second = Predictor(copy.deepcopy(model), device=FP32, onnx_backbone=True)
    second.predict_one(skimage.data.astronaut()[::4, ::4])
    assert second.fast_backbone.wait(120) and second.fast_backbone.error is None
    second.predict_one(skimage.data.astronaut()[::4, ::4])
    assert second.engine == "onnxruntime" and list(onnx_on.glob("*.onnx")) == [path]
    # other weights are another file
    other = random_model("r18")
    with torch.no_grad():
        next(other.backbone.parameters()).add_(0.01)
    assert ob.backbone_key(other.backbone) != ob.backbone_key(model.backbone)


def test_a_file_that_disagrees_with_torch_is_dropped_and_torch_keeps_predicting(
        onnx_on, monkeypatch, caplog):
    model = random_model("r18")
    real_export = ob.export_backbone

    def wrong_export(backbone, path, **kwargs):  # the export of other weights
        other = copy.deepcopy(backbone)
        with torch.no_grad():
            for p in other.parameters():
                p.mul_(1.5)
        real_export(other, path, **kwargs)

    monkeypatch.setattr(ob, "export_backbone", wrong_export)
    predictor = Predictor(copy.deepcopy(model), device=FP32, score_threshold=0.0,
                          onnx_backbone=True)
    image = skimage.data.coffee()
    before = predictor.predict_one(image)
    with caplog.at_level(logging.WARNING, logger="mrcnn.model.onnx_backbone"):
        assert predictor.fast_backbone.wait(120)
    assert "differs from torch's" in predictor.fast_backbone.error
    assert "the backbone stays in torch" in caplog.text
    after = predictor.predict_one(image)
    assert predictor.engine == "torch" and "ONNX" not in predictor.describe()
    same_detections(before, after)
    assert list(onnx_on.glob("*.onnx")) == []  # not reused next time


def test_a_damaged_cache_file_is_replaced(onnx_on):
    model = random_model("r18")
    onnx_on.mkdir(parents=True)
    path = onnx_on / f"backbone-{ob.backbone_key(model.backbone)}.onnx"
    path.write_bytes(b"not an onnx file")
    with pytest.raises(RuntimeError, match="could not load"):
        ob.onnx_backbone(model.backbone)
    assert not path.exists()
    fast = ob.onnx_backbone(model.backbone)  # exported afresh
    assert ob.check_agreement(model.backbone, fast) <= ob.AGREEMENT


def test_only_fp32_on_a_cpu_and_only_when_not_turned_off(onnx_on, monkeypatch):
    model = random_model("r18")
    assert Predictor(copy.deepcopy(model), device=BF16, onnx_backbone=True).fast_backbone \
        is None  # bf16 pays on this CPU: torch's bf16 path
    assert Predictor(copy.deepcopy(model), device=FP32).fast_backbone is None  # not asked
    monkeypatch.setenv("MRCNN_ONNX", "0")
    predictor = Predictor(copy.deepcopy(model), device=FP32, onnx_backbone=True)
    assert predictor.fast_backbone is None
    predictor.predict_one(skimage.data.coffee())
    assert predictor.engine == "torch" and not onnx_on.exists()


def test_the_cache_keeps_the_most_recently_used_files(onnx_on):
    onnx_on.mkdir(parents=True)
    for i in range(ob.KEEP_FILES + 2):
        f = onnx_on / f"backbone-old{i}.onnx"
        f.write_bytes(b"x")
        os.utime(f, (1000 + i, 1000 + i))
    fast = ob.onnx_backbone(random_model("r18").backbone)
    kept = sorted(p.name for p in onnx_on.glob("*.onnx"))
    assert fast.path.name in kept and len(kept) == ob.KEEP_FILES
    assert "backbone-old0.onnx" not in kept and f"backbone-old{ob.KEEP_FILES + 1}.onnx" in kept
