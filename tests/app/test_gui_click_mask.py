"""Click → Mask (S) with a SAM-family model: the user's ONNX files picked once (their sha256
kept), the embedding made off the GUI thread, a click shows the decoder's mask, Enter makes
it an instance (undoable); without a model, or with a wrong file, the window says what to do.
The model is a stand-in with a SAM export's inputs and outputs (tests/conftest.py)."""

from __future__ import annotations

import time

import numpy as np
from gui_helpers import assert_responsive
from PySide6.QtCore import Qt
from tool_helpers import DISC_CENTER, H, W, make_tool_scene

from app.controllers.sam import NO_MODEL
from app.stall_probe import StallProbe
from mrcnn.io.images import file_sha256
from mrcnn.serving.sam import SamModel

K = Qt.Key
SAM_HALF = 10


def square(cx: float, cy: float, half: int = SAM_HALF) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W] + 0.5
    return np.maximum(abs(xx - cx), abs(yy - cy)) < half


def load(qtbot, window, sam) -> None:
    job = window.sam.load(str(sam.encoder), str(sam.decoder))
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert window.sam.ready


def test_without_a_model_the_tool_says_how_to_get_one(qtbot, window, tmp_path):
    s = make_tool_scene(qtbot, window, tmp_path)
    s.key(qtbot, K.Key_S)
    assert s.canvas.tool.name == "clickmask"
    s.click(qtbot, *DISC_CENTER)
    assert window.statusBar().currentMessage() == NO_MODEL
    assert not s.stored()


def test_a_click_shows_the_models_mask_and_enter_makes_it_an_instance(qtbot, window, tmp_path,
                                                                        stand_in_sam):
    s = make_tool_scene(qtbot, window, tmp_path)
    load(qtbot, window, stand_in_sam)
    kept = window.ui.sam_model()
    assert kept["encoder_sha256"] == file_sha256(stand_in_sam.encoder)
    assert kept["decoder"] == str(stand_in_sam.decoder)
    s.key(qtbot, K.Key_S)
    x, y = s.at(s.vp(*DISC_CENTER))  # the image point the click lands on
    s.click(qtbot, *DISC_CENTER)
    tool = s.canvas.tool
    qtbot.waitUntil(lambda: tool.answer is not None, timeout=10000)
    assert np.array_equal(tool.answer.mask, square(x, y))
    assert window.statusBar().currentMessage().startswith("Click → Mask: 1 click, predicted")

    s.key(qtbot, K.Key_Return)
    stored = s.stored()
    assert len(stored) == 1 and np.array_equal(next(iter(stored.values())), square(x, y))
    assert not tool.clicks and tool.answer is None
    window.actions["undo"].trigger()
    assert not s.stored()


def test_the_embedding_never_runs_on_the_gui_thread(qtbot, window, tmp_path, stand_in_sam,
                                                    monkeypatch):
    s = make_tool_scene(qtbot, window, tmp_path)
    slow_embed = SamModel.embed

    def embed(self, image):
        time.sleep(1.0)  # a real encoder takes about this long on a CPU
        return slow_embed(self, image)

    monkeypatch.setattr(SamModel, "embed", embed)
    probe = StallProbe(10)
    probe.start()
    load(qtbot, window, stand_in_sam)  # embeds the image shown, in the background
    s.key(qtbot, K.Key_S)
    s.click(qtbot, *DISC_CENTER)
    qtbot.waitUntil(lambda: s.canvas.tool.answer is not None, timeout=15000)
    probe.stop()
    assert_responsive(probe, what="while the image was embedded")


def test_a_wrong_model_file_is_refused_and_named(qtbot, window, tmp_path, stand_in_sam,
                                                 errors):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx")
    job = window.sam.load(str(junk), str(stand_in_sam.decoder))
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert not window.sam.ready
    (title, text), = errors
    assert text.startswith("Cannot use this SAM model: encoder ") and "junk.onnx" in text
    assert "not an ONNX model" in text
    assert window.ui.sam_model() == {}  # nothing kept


def test_clicks_with_an_instance_selected_refine_it(qtbot, window, tmp_path, stand_in_sam):
    from tool_helpers import DISC_RADIUS, disc

    s = make_tool_scene(qtbot, window, tmp_path)
    load(qtbot, window, stand_in_sam)
    original = disc(DISC_CENTER, DISC_RADIUS)
    iid = s.add(qtbot, original)
    s.click(qtbot, *DISC_CENTER)  # Select tool: select it
    assert s.canvas.selected_ids() == [iid]
    s.key(qtbot, K.Key_S)
    x, y = s.at(s.vp(*DISC_CENTER))
    s.click(qtbot, *DISC_CENTER)
    tool = s.canvas.tool
    assert tool.refining == iid
    qtbot.waitUntil(lambda: tool.answer is not None, timeout=10000)
    # the selected mask went to the decoder as its context (the stand-in echoes it)
    assert tool.answer.low_res.max() == 10.0 and tool.answer.low_res.min() == -10.0
    s.key(qtbot, K.Key_Return)
    assert list(s.stored()) == [iid]  # the same instance, its mask replaced
    assert np.array_equal(s.stored()[iid], square(x, y))
    window.actions["undo"].trigger()
    assert np.array_equal(s.stored()[iid], original)
