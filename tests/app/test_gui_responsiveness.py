"""The window never freezes while the model works: a 10 ms timer keeps firing on time while
every unreviewed image is predicted (model loading included)."""

from __future__ import annotations

import gc
from dataclasses import replace

from gui_helpers import assert_responsive, open_folder
from model_fixtures import FAST

from app.stall_probe import StallProbe


def test_predict_all_keeps_the_event_loop_responsive(qtbot, make_window, model_process,
                                                     project_with_model):
    options = replace(FAST, lookahead=-1, auto_load=False, max_detections=100)
    w = make_window(model_options=options, model_session=model_process)
    open_folder(qtbot, w, project_with_model)
    project = w.controller.project
    # main.py freezes what exists at startup (see there); this test process also holds torch
    # (for the test checkpoint), whose objects would make each full collection ~10x longer
    gc.collect()
    gc.freeze()
    probe = StallProbe(10)
    probe.start()
    w.actions["predict_unreviewed"].trigger()  # loads the model, then predicts all four
    qtbot.waitUntil(lambda: w.model.batch_running, timeout=60000)
    qtbot.waitUntil(lambda: not w.model.batch_running, timeout=120000)
    qtbot.waitUntil(lambda: w.canvas.is_loaded and len(w.canvas.instance_items()) > 50,
                    timeout=30000)  # the current image's masks are drawn too
    probe.stop()
    gc.unfreeze()
    assert all(project.predicted_by(im.id, "v1") for im in project.images())
    assert len(probe.stalls) > 100
    assert_responsive(probe)


def test_cancel_keeps_what_was_predicted(qtbot, make_window, model_process,
                                         project_with_model):
    w = make_window(model_options=replace(FAST, lookahead=-1), model_session=model_process)
    open_folder(qtbot, w, project_with_model)
    project = w.controller.project
    # cancel as soon as the first image is stored: the job is busy with the second one
    w.model.predictions_stored.connect(lambda _id: w.progress.cancel.click())
    w.actions["predict_unreviewed"].trigger()
    qtbot.waitUntil(lambda: w.model.batch_running, timeout=60000)
    qtbot.waitUntil(lambda: not w.model.batch_running, timeout=60000)
    done = [im.id for im in project.images() if project.predicted_by(im.id, "v1")]
    assert 1 <= len(done) < 4
    assert done[0] == w.image_list.current_id  # the batch starts with the current image
    assert "cancelled" in w.statusBar().currentMessage()


def test_while_the_model_process_exports_the_backbone_the_window_stays_responsive(
        qtbot, make_window, project_with_model, tmp_path, monkeypatch):
    from mrcnn.serving.process import ModelProcess

    # a model process of its own, with ONNX Runtime allowed (the suite keeps it off)
    monkeypatch.setenv("MRCNN_ONNX", "1")
    monkeypatch.setenv("MRCNN_ONNX_CACHE", str(tmp_path / "onnx"))
    proc = ModelProcess()
    proc.start()
    try:
        options = replace(FAST, lookahead=-1, auto_load=False, amp=False)
        w = make_window(model_options=options, model_session=proc)
        open_folder(qtbot, w, project_with_model)
        gc.collect()
        gc.freeze()
        probe = StallProbe(10)
        probe.start()
        w.actions["predict_unreviewed"].trigger()  # the export starts after the first image
        qtbot.waitUntil(lambda: w.model.batch_running, timeout=60000)
        qtbot.waitUntil(lambda: not w.model.batch_running, timeout=120000)

        def onnx_shown() -> bool:
            if "backbone in ONNX Runtime" in w.model_status.device_label.text():
                return True
            if not w.model.busy:
                w.actions["predict_image"].trigger()  # again, until the export is in
            return False

        qtbot.waitUntil(onnx_shown, timeout=120000)
        probe.stop()
        gc.unfreeze()
    finally:
        proc.close()
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1
    assert len(probe.stalls) > 100
    assert_responsive(probe)
