"""Box → Mask (G): a box dragged around an object the model knows becomes an accepted
instance from the model's own heads over the image's kept features (no second backbone run);
undo removes it; with no model loaded the box goes to GrabCut and the status bar says so."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from gui_helpers import wait_image_shown, wait_model_ready
from PySide6.QtCore import QPointF, Qt
from tool_helpers import RECT, box, make_tool_scene

from app.controllers.model import ModelOptions
from mrcnn.editing.refine import mask_iou
from mrcnn.store.project import Project

LEFT = Qt.MouseButton.LeftButton
#: The trained model at its own input size (no build_kwargs: the version's size is used).
OPTIONS = ModelOptions(device="cpu", max_detections=30, lookahead=0)


def drag_box(qtbot, canvas, x0: float, y0: float, x1: float, y1: float) -> None:
    port = canvas.viewport()
    a, b = canvas.mapFromScene(QPointF(x0, y0)), canvas.mapFromScene(QPointF(x1, y1))
    qtbot.mousePress(port, LEFT, pos=a)
    qtbot.mouseMove(port, (a + b) / 2)
    qtbot.mouseMove(port, b)
    qtbot.mouseRelease(port, LEFT, pos=b)


@pytest.fixture
def shapes_copy(trained_shapes, tmp_path):
    """A copy of the trained synthetic project (images and all): the window writes to it."""
    root = tmp_path / "shapes"
    shutil.copytree(trained_shapes.project.parent, root)
    return root / trained_shapes.project.name


def test_a_box_around_a_known_object_becomes_its_mask_and_undo_removes_it(
        qtbot, make_window, model_process, shapes_copy):
    with Project.open(shapes_copy, read_only=True) as p:
        val = [im for im in p.images() if im.split == "val"][0]
        truth = {i.id: i.rle.decode() for i in p.instances(val.id, state="accepted")}
    w = make_window(model_session=model_process, model_options=OPTIONS)
    assert w.open_path(shapes_copy)
    wait_model_ready(qtbot, w)
    assert w.model.state == "ready"
    w.image_list.select_image(val.id)
    wait_image_shown(qtbot, w, val.id)
    project = w.controller.project
    w.actions["predict_image"].trigger()  # a reviewed image is predicted only when asked
    qtbot.waitUntil(lambda: project.predicted_by(val.id, w.model.info.key), timeout=60000)
    doc = w.controller.document(val.id)
    doc.delete_instances(list(truth))  # the person's own masks go: the box makes it anew
    doc.reject_predictions([i.id for i in doc.instances("pending")])
    qtbot.waitUntil(lambda: not w.canvas.instance_items(), timeout=5000)
    w.canvas.set_scale(4.0)

    target_id, target = max(truth.items(), key=lambda kv: kv[1].sum())
    ys, xs = np.nonzero(target)
    w.canvas.centerOn((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2)
    w.canvas.setFocus()
    qtbot.keyClick(w.canvas, Qt.Key.Key_G)
    assert w.canvas.tool.name == "boxmask"
    drag_box(qtbot, w.canvas, xs.min() - 2, ys.min() - 2, xs.max() + 3, ys.max() + 3)

    qtbot.waitUntil(lambda: len(doc.instances("accepted")) == 1, timeout=30000)
    made = doc.instances("accepted")[0]
    assert mask_iou(made.rle.decode(), target) >= 0.85
    assert made.source == "manual"  # a person's box: their instance
    message = w.statusBar().currentMessage()
    assert message.startswith("Box → Mask: ") and "kept features" in message

    w.actions["undo"].trigger()
    assert not doc.instances("accepted")


def test_with_no_model_the_box_goes_to_grabcut_and_says_so(qtbot, window, tmp_path):
    s = make_tool_scene(qtbot, window, tmp_path)
    assert window.model.state != "ready"
    s.key(qtbot, Qt.Key.Key_G)
    assert s.canvas.tool.name == "boxmask"
    x0, y0, x1, y1 = RECT
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    s.drag(qtbot, [(x0 - 6, y0 - 6), (x1 + 6, y1 + 6)])
    qtbot.waitUntil(lambda: len(s.stored()) == 1, timeout=15000)
    assert "No model loaded: Box → Mask used GrabCut" in messages
    (mask,) = s.stored().values()
    assert mask_iou(mask, box(*RECT)) >= 0.9
