"""The status bar shows one whole message at a time: a long message is never cut off by
(and run into) the model and image labels on its right."""

from __future__ import annotations

from gui_helpers import open_folder, wait_model_ready

#: A message of the window (Mark Reviewed and Next on the last unreviewed image).
MESSAGE = ("astronaut.jpg marked reviewed (3 pending predictions left unaccepted: not "
           "exported) · no unreviewed image left in the list · Ctrl+Z undoes")


def text_end(bar, text: str) -> int:
    return 6 + bar.fontMetrics().horizontalAdvance(text)


def first_label_start(window) -> int:
    labels = (window.progress, window.model_status, window.image_info, window.zoom_label,
              window.saved_label)
    return min(w.x() for w in labels if w.isVisible())


def test_a_long_message_is_shown_whole_and_the_labels_come_back_after(qtbot, window,
                                                                      photos_dir):
    open_folder(qtbot, window, photos_dir)
    wait_model_ready(qtbot, window)
    bar = window.statusBar()
    bar.clearMessage()
    window.model_status.set_model("Model: COCO weights · r50v2")  # as in the report
    window.model_status.set_device("CPU — no CUDA device found · bf16")
    qtbot.waitUntil(lambda: window.model_status.isVisible()
                    and window.model_status.width() > 300)
    assert text_end(bar, MESSAGE) > first_label_start(window)  # it would run into them

    window.feedback.say("Brush size: 12 px")  # fits: nothing moves
    assert window.model_status.isVisible()

    window.feedback.say(MESSAGE, 60000)
    qtbot.waitUntil(lambda: bar.currentMessage() == MESSAGE
                    and text_end(bar, MESSAGE) < first_label_start(window), timeout=3000)
    assert window.saved_label.isVisible()  # "All changes saved" never steps aside
    assert bar.toolTip() == MESSAGE

    bar.clearMessage()  # the message is gone (its time is up): the labels are back
    qtbot.waitUntil(window.model_status.isVisible)
    assert window.image_info.isVisible() and window.zoom_label.isVisible()


def test_a_message_shown_just_before_the_model_label_grows_still_reads_whole(qtbot, window,
                                                                             photos_dir):
    """As seen under Xvfb: "Model v1 (project) (r18) ready on CPU …" appears, then the model
    label gets its text and grows leftwards, cutting the message off mid-word ("fp32
    (lModel: v1 (project)")."""
    open_folder(qtbot, window, photos_dir)
    wait_model_ready(qtbot, window)
    window.resize(1400, 800)  # the screen it was seen on
    qtbot.waitUntil(lambda: window.width() == 1400)
    bar = window.statusBar()
    bar.clearMessage()
    window.model_status.set_model("Model: none")
    window.model_status.set_device("CPU")
    qtbot.waitUntil(lambda: not bar.currentMessage() and window.model_status.isVisible())
    message = ("Model v1 (project) (r18) ready on CPU — no CUDA device found · fp32 (bf16 "
               "measured at 1.05x)")
    window.feedback.say(message, 60000)
    qtbot.wait(50)
    assert window.model_status.isVisible()  # it fits beside the short labels

    window.model_status.set_model("Model: v1 (project) · r18 · trained 2026-11-29")
    window.model_status.set_device("CPU — no CUDA device found · fp32 (bf16 measured at "
                                   "1.05x) · backbone in ONNX Runtime")
    # the next layout pass gives the label its new width (or it has stepped aside)
    qtbot.waitUntil(lambda: not window.model_status.isVisible()
                    or window.model_status.width() > 500)
    qtbot.waitUntil(lambda: text_end(bar, message) < first_label_start(window), timeout=3000)
    assert bar.currentMessage() == message
    assert window.saved_label.isVisible()


def test_a_long_model_line_is_cut_short_and_never_widens_the_window(qtbot, window,
                                                                     photos_dir):
    """As seen on a 1400 px screen: the device line grew ("… · backbone in ONNX Runtime")
    and the window grew with it, past the screen's right edge. The no-weights banner (up
    here: no model) once did the same on a 1280 px screen, its three buttons in a row."""
    open_folder(qtbot, window, photos_dir)
    wait_model_ready(qtbot, window)
    window.statusBar().clearMessage()
    window.resize(1200, 700)
    qtbot.waitUntil(lambda: window.width() == 1200)
    assert window.banner.isVisible()
    model = "Model: microscopy_batch_7_finetuned_2026-11-28_lr0.005_long_name.pt · r50v2"
    device = ("CPU — no CUDA device found · fp32 (bf16 measured at 0.68x) · backbone in "
              "ONNX Runtime")
    window.model_status.set_model(model, "the checkpoint's path")
    window.model_status.set_device(device)
    qtbot.wait(200)  # a window that must grow does so on the next layout pass

    assert window.width() == 1200
    assert window.minimumSizeHint().width() <= 1200
    labels = (window.model_status.model_label, window.model_status.device_label)
    cut = [label for label in labels if label.elided()]
    assert cut, "at 1200 px the two lines cannot both fit whole"
    for label in cut:
        assert label.shown_text().endswith("…")
        assert label.toolTip().startswith(label.text())  # the whole line, on hovering
    assert "the checkpoint's path" in window.model_status.model_label.toolTip()

    window.resize(2400, 700)  # room again: whole lines, no ellipsis
    qtbot.waitUntil(lambda: not any(label.elided() for label in labels))
    assert window.model_status.model_label.toolTip() == "the checkpoint's path"
