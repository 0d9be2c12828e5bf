"""A monkey at the keyboard: 2,000 seeded random key presses, clicks and drags (fields
focused, tools switched, images changing mid-way) over a project with predictions and
reviewed images. No exception escapes, the window keeps answering, no image becomes or
stops being reviewed except by a review action (or its undo/redo), and undoing everything
each image's history holds restores its instances."""

from __future__ import annotations

import random
import time
from collections import Counter

import numpy as np
import pytest
from gui_helpers import image_id, open_folder, run_data_action, wait_image_shown
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication

from app import dialogs
from app.dialogs import ImportOptions
from app.stall_probe import StallProbe
from mrcnn import masks

K = Qt.Key
M = Qt.KeyboardModifier
CTRL, SHIFT = M.ControlModifier, M.ShiftModifier
#: Keys with their modifiers; none opens a modal dialog or the model.
KEYS = [
    (K.Key_D, M.NoModifier), (K.Key_A, M.NoModifier), (K.Key_PageDown, M.NoModifier),
    (K.Key_PageUp, M.NoModifier), (K.Key_Y, M.NoModifier), (K.Key_Y, SHIFT),
    (K.Key_T, M.NoModifier), (K.Key_Delete, M.NoModifier), (K.Key_Backspace, M.NoModifier),
    (K.Key_A, CTRL), (K.Key_Escape, M.NoModifier), (K.Key_P, M.NoModifier),
    (K.Key_Plus, M.NoModifier), (K.Key_Minus, M.NoModifier), (K.Key_F, M.NoModifier),
    (K.Key_0, CTRL), (K.Key_V, M.NoModifier), (K.Key_B, M.NoModifier), (K.Key_E, M.NoModifier),
    (K.Key_N, M.NoModifier), (K.Key_R, M.NoModifier), (K.Key_W, M.NoModifier),
    (K.Key_BracketLeft, M.NoModifier), (K.Key_BracketRight, M.NoModifier),
    (K.Key_H, M.NoModifier), (K.Key_K, M.NoModifier), (K.Key_X, M.NoModifier),
    (K.Key_M, M.NoModifier), (K.Key_Z, CTRL), (K.Key_Z, CTRL | SHIFT), (K.Key_Y, CTRL),
    (K.Key_1, M.NoModifier), (K.Key_2, M.NoModifier), (K.Key_3, M.NoModifier),
    (K.Key_Return, M.NoModifier), (K.Key_Enter, M.NoModifier), (K.Key_Return, CTRL),
    (K.Key_Return, CTRL | SHIFT), (K.Key_Space, M.NoModifier), (K.Key_Q, M.NoModifier),
    (K.Key_4, M.NoModifier), (K.Key_Backslash, M.NoModifier),
]
#: Keys whose action may move an image into or out of `reviewed`.
REVIEW_KEYS = {(K.Key_Return, CTRL), (K.Key_Return, CTRL | SHIFT), (K.Key_Z, CTRL),
               (K.Key_Z, CTRL | SHIFT), (K.Key_Y, CTRL)}


def _instances(project, image) -> Counter:
    return Counter((i.category_id, str(i.state), i.rle.counts) for i in project.instances(image))


def _add_predictions(window, name: str, n: int, seed: int) -> None:
    project = window.controller.project
    image = project.image(image_id(window, name))
    cat = project.add_category("bottle")
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        m = np.zeros((image.height, image.width), bool)
        y, x = rng.integers(0, image.height - 40), rng.integers(0, image.width - 40)
        m[y:y + rng.integers(10, 40), x:x + rng.integers(10, 40)] = True
        items.append((cat.id, masks.encode(m), float(rng.uniform(0.3, 0.95))))
    window.controller.store_predictions(image.id, "test-model", items)


@pytest.mark.slow
def test_two_thousand_random_gestures_change_nothing_silently(qtbot, window, photos_dir,
                                                              voc_coco, monkeypatch, errors):
    w = window
    open_folder(qtbot, w, photos_dir)
    monkeypatch.setattr(dialogs, "ask_import_options",
                        lambda *_a: ImportOptions(voc_coco.path, None, "reviewed"))
    run_data_action(qtbot, w, "import_coco")
    _add_predictions(w, "chelsea.jpg", 12, 1)
    _add_predictions(w, "astronaut.jpg", 8, 2)
    project = w.controller.project
    ids = [im.id for im in project.images()]
    before = {i: _instances(project, i) for i in ids}
    assert sum(map(len, before.values())) > 30
    assert "reviewed" in {project.image(i).status for i in ids}

    rng = random.Random(20261127)
    view = w.canvas.viewport()
    size_box = next(s for s in w.findChildren(QAbstractSpinBox) if s.isVisible())
    probe = StallProbe(10)
    probe.start()
    reviewed = {i: project.image(i).status == "reviewed" for i in ids}
    slow: list[tuple[float, int, str]] = []
    for step in range(2000):
        t0 = time.perf_counter()
        r = rng.random()
        key = None
        if r < 0.55:
            key = rng.choice(KEYS)
            target = QApplication.focusWidget() or w.canvas
            qtbot.keyClick(target, key[0], key[1])
        elif r < 0.75:
            p = QPoint(rng.randrange(view.width()), rng.randrange(view.height()))
            if rng.random() < 0.2:
                qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=p)
            else:
                qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=p)
        elif r < 0.92:
            a = QPoint(rng.randrange(view.width()), rng.randrange(view.height()))
            b = QPoint(rng.randrange(view.width()), rng.randrange(view.height()))
            qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
            for k in range(1, 4):
                qtbot.mouseMove(view, a + (b - a) * (k / 3))
            qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
        else:  # a slip into a field: the brush size box, then keys meant for the image
            size_box.setFocus()
            for _ in range(rng.randrange(1, 4)):
                key = rng.choice(KEYS[:12] + [(K.Key_4, M.NoModifier),
                                              (K.Key_Return, M.NoModifier)])
                qtbot.keyClick(QApplication.focusWidget() or size_box, key[0], key[1])
            key = None  # plain keys in a field must not review anything
        QApplication.processEvents()
        slow.append((time.perf_counter() - t0, step, f"{r:.2f} {key} tool={w.canvas.tool}"))
        now = {i: project.image(i).status == "reviewed" for i in ids}
        moved = [i for i in ids if now[i] != reviewed[i]]
        assert not moved or key in REVIEW_KEYS, (
            f"step {step}: {key} changed reviewed of images {moved}")
        reviewed = now
    probe.stop()
    qtbot.keyClick(QApplication.focusWidget() or w.canvas, K.Key_Escape)
    wait_image_shown(qtbot, w)
    slowest = sorted(slow, reverse=True)[:5]
    # the window's own stalls: not the time its GUI thread waited for a core that another
    # program held (the suite runs on every core; see app.stall_probe)
    assert probe.max_own_stall <= 2.0, (
        f"the window stopped answering: {probe.report()}; slowest steps: {slowest}")
    assert not [e for e in errors if "Traceback" in e[1]]

    # Undo everything each image's history holds: its instances are back as they were.
    for i in ids:
        doc = w.controller.documents.peek(i)
        while doc is not None and doc.can_undo:
            doc.undo()
        assert _instances(project, i) == before[i], project.image(i).path
