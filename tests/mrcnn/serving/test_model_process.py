"""The model in a child process: same answers as in this process, the library's own error
types, a crash costs the model and not the caller, and no torch in the caller; the torch
cache is found without torch exactly where torch looks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrcnn.errors import (
    CheckpointError,
    ImageReadError,
    ModelCancelled,
    ModelProcessError,
    NoWeightsError,
)
from mrcnn.model import coco_weights
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.presets import DEFAULT_PRESET, build_model
from mrcnn.serving.process import ModelProcess
from mrcnn.serving.session import (
    COCO_WEIGHT_FILES,
    DEFAULT_COCO_PRESET,
    ModelRequest,
    ModelSession,
    cached_coco_weights,
    no_weights_message,
    torch_hub_dir,
)

REPO = Path(__file__).resolve().parents[3]
SMALL = {"min_size": 64, "max_size": 96}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proc")
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, min_size=64)
    ckpt = folder / "small.pt"
    save_checkpoint(ckpt, state_dict=model.state_dict(), preset="r18", categories=["a", "b"])
    image = folder / "img.png"
    rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(image)
    return ckpt, image


@pytest.fixture(scope="module")
def proc(tmp_path_factory):
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("empty_torch_home"))
    p = ModelProcess()
    try:
        p.start()  # the child keeps this environment
    finally:
        os.environ.pop("TORCH_HOME") if old is None else os.environ.update(TORCH_HOME=old)
    yield p
    p.close()


def request(ckpt: Path) -> ModelRequest:
    return ModelRequest(str(ckpt), device="cpu", amp=False, max_detections=10,
                        build_kwargs=SMALL)


def test_same_answers_as_in_this_process(proc, files):
    ckpt, image = files
    info = proc.load(request(ckpt))
    here = ModelSession()
    assert here.load(request(ckpt)).key == info.key == proc.info.key
    theirs, ours = proc.predict_path(7, image), here.predict_path(7, image)
    assert theirs.image_id == 7 and theirs.model_key == info.key
    assert [(n, r) for n, r, _s in theirs.items] == [(n, r) for n, r, _s in ours.items]
    assert [s for *_x, s in theirs.items] == pytest.approx([s for *_x, s in ours.items])
    assert theirs.uncertainty is None  # not asked for: no second pass
    # asked for: the mirrored pass runs in the child too, with the same answer
    theirs, ours = proc.predict_path(7, image, True), here.predict_path(7, image, True)
    assert theirs.uncertainty is not None and 0.0 <= theirs.uncertainty <= 1.0
    assert theirs.uncertainty == pytest.approx(ours.uncertainty)


def test_a_large_image_is_predicted_in_tiles_in_the_child(proc, files, tmp_path):
    ckpt, _image = files
    proc.load(request(ckpt))
    big = tmp_path / "big.png"
    rgb = np.random.default_rng(1).integers(0, 255, (100, 200, 3), np.uint8)
    Image.fromarray(rgb).save(big)
    steps: list[tuple[int, int | None]] = []

    def step(done: int, total: int | None) -> None:
        steps.append((done, total))

    result = proc.predict_path(3, big, False, 64, progress=step)
    # 4 x 2 tiles of 64 px and the whole image: a progress step after each pass
    assert steps == [(k, 9) for k in range(1, 10)] and result.image_id == 3
    assert all(rle.height == 100 and rle.width == 200 for _n, rle, _s in result.items)
    proc.predict_path(3, big, False, "off", progress=step)
    proc.predict_path(3, big, False, "auto", progress=step)  # under 2666 px: whole
    assert len(steps) == 9  # not tiled: no passes to report
    with pytest.raises(ModelCancelled):  # between tiles
        proc.predict_path(3, big, False, 64, should_cancel=lambda: len(steps) >= 11,
                          progress=step)
    assert len(steps) < 18
    assert proc.predict_path(3, big, False, "off").image_id == 3  # the child goes on


def test_errors_come_back_typed_and_the_model_stays(proc, files, tmp_path):
    ckpt, image = files
    first = proc.load(request(ckpt))
    with pytest.raises(ImageReadError, match="file not found") as exc:
        proc.predict_path(1, tmp_path / "missing.jpg")
    assert exc.value.reason == "file not found"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.pt"):
        proc.load(ModelRequest(str(bad)))
    with pytest.raises(NoWeightsError, match="What you can do"):
        proc.load(ModelRequest("coco"))
    assert proc.info == first
    assert proc.predict_path(1, image).model_key == first.key


def test_the_caller_never_imports_torch_nor_runs_twice(files, tmp_path):
    """An unguarded script (no `if __name__ == "__main__":`) is not run again in the child."""
    ckpt, image = files
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        print("script ran", flush=True)
        from mrcnn.serving.process import ModelProcess
        from mrcnn.serving.session import ModelRequest
        p = ModelProcess()
        p.load(ModelRequest({str(ckpt)!r}, device="cpu", build_kwargs={SMALL!r}))
        n = len(p.predict_path(1, {str(image)!r}).items)
        p.close()
        print(n, "torch" in sys.modules)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines.count("script ran") == 1
    n, imported = lines[-1].split()
    assert int(n) > 0 and imported == "False"


def test_the_torch_cache_is_found_without_torch(tmp_path, monkeypatch):
    assert DEFAULT_COCO_PRESET == DEFAULT_PRESET
    for home in (None, tmp_path / "th"):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        if home is not None:
            monkeypatch.setenv("TORCH_HOME", str(home))
        assert torch_hub_dir() == Path(torch.hub.get_dir())
        for preset, name in COCO_WEIGHT_FILES.items():
            path = coco_weights.coco_cache_path(preset)
            assert path.name == name
            assert cached_coco_weights(preset) is None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
            assert cached_coco_weights(preset) == path == coco_weights.find_coco_weights(preset)
        reason = "nothing here"
        # the message the window shows without torch names the loader's default preset
        assert no_weights_message(reason) == no_weights_message(reason, DEFAULT_PRESET)


def test_a_killed_model_process_is_reported_then_restarted(proc, files):
    ckpt, image = files
    proc.load(request(ckpt))
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(ModelProcessError, match="stopped unexpectedly"):
        proc.predict_path(1, image)
    assert proc.info is None and proc.pid is None
    result = proc.predict_path(1, image)  # a new child, the last model reloaded
    assert result.items and proc.pid is not None
    proc.close()
    assert proc.pid is None
