"""A model loaded once and kept for predicting single images, plain data in and out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mrcnn.errors import CheckpointError, NoWeightsError
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.keys import file_key
from mrcnn.model.presets import build_model
from mrcnn.serving.session import ModelRequest, ModelSession

REPO = Path(__file__).resolve().parents[3]
CATS = ["disc", "square"]
SMALL = {"min_size": 64, "max_size": 96}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=len(CATS) + 1, min_size=64)
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18", categories=CATS)
    return path


def image() -> np.ndarray:
    return (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)


def test_importing_the_session_does_not_import_torch():
    code = "import sys, mrcnn.serving.session; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_checkpoint_file_predicts_plain_items(checkpoint):
    session = ModelSession()
    info = session.load(ModelRequest(str(checkpoint), device="cpu", max_detections=7,
                                     build_kwargs=SMALL))
    assert info.key == file_key(checkpoint)  # the command line's key
    assert (info.kind, info.preset, info.categories) == ("checkpoint", "r18", tuple(CATS))
    assert info.device.startswith("CPU — requested")
    result = session.predict_array(5, image())
    assert result.image_id == 5 and result.model_key == info.key
    assert 0 < len(result.items) <= 7
    names, rles, scores = zip(*result.items, strict=True)
    assert set(names) <= set(CATS)
    assert all((r.height, r.width) == (48, 64) and r.area > 0 for r in rles)
    assert list(scores) == sorted(scores, reverse=True) and min(scores) >= 0.05


def test_a_project_version_is_keyed_by_its_name(checkpoint):
    info = ModelSession().load(ModelRequest(str(checkpoint), version_id=3, version_name="v3",
                                            device="cpu", build_kwargs=SMALL))
    assert (info.key, info.kind, info.version_id, info.source) == ("v3", "version", 3,
                                                                    "v3 (project)")


def test_failed_load_keeps_the_previous_model(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    session = ModelSession()
    with pytest.raises(RuntimeError, match="no model"):
        session.predict_array(1, image())
    first = session.load(ModelRequest(str(checkpoint), device="cpu", build_kwargs=SMALL))
    with pytest.raises(NoWeightsError, match="What you can do"):
        session.load(ModelRequest("coco"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        session.load(ModelRequest(str(bad)))
    assert session.info == first
    assert session.predict_array(1, image()).model_key == first.key


def test_the_session_and_the_model_process_play_one_role():
    import inspect

    from mrcnn.serving.process import ModelProcess
    from mrcnn.serving.session import Session

    assert isinstance(ModelSession(), Session)
    assert isinstance(ModelProcess(), Session)  # not started: the first call starts it
    for name in ("load", "predict_path", "unload"):
        expected = list(inspect.signature(getattr(Session, name)).parameters)
        for cls in (ModelSession, ModelProcess):
            assert list(inspect.signature(getattr(cls, name)).parameters) == expected, (cls, name)


def test_a_box_is_answered_from_the_predicted_images_features_until_the_model_changes(
        checkpoint, tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(image()).save(path)
    session = ModelSession()
    session.load(ModelRequest(str(checkpoint), device="cpu", build_kwargs=SMALL))
    session.predict_path(5, path)
    answer = session.box_mask(5, path, (4, 4, 40, 30))
    assert answer.cached  # no second backbone run for a predicted image
    assert answer.category in CATS and (answer.rle.height, answer.rle.width) == (48, 64)
    assert answer.image_id == 5 and answer.model_key == session.info.key
    session.load(ModelRequest(str(checkpoint), device="cpu", build_kwargs=SMALL))
    assert not session.box_mask(5, path, (4, 4, 40, 30)).cached  # the features went with it


def test_from_the_second_image_on_the_status_says_the_backbone_runs_in_onnx_runtime(
        checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("MRCNN_ONNX", "1")  # the suite keeps it off elsewhere
    monkeypatch.setenv("MRCNN_ONNX_CACHE", str(tmp_path))
    session = ModelSession()
    session.load(ModelRequest(str(checkpoint), device="cpu", amp=False, build_kwargs=SMALL))
    first = session.predict_array(1, image())
    assert "ONNX" not in session.info.device  # the first image: torch, no waiting
    assert session._predictor.fast_backbone.wait(120)
    second = session.predict_array(1, image())
    assert session.info.device.endswith("· backbone in ONNX Runtime")
    assert [n for n, _, _ in second.items] == [n for n, _, _ in first.items]
    assert [s for _, _, s in second.items] == pytest.approx([s for _, _, s in first.items],
                                                            abs=1e-3)
    assert len(list(tmp_path.glob("*.onnx"))) == 1
