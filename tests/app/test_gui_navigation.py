"""Keys on crowded images: 100 pending predictions per image must not make keys queue up
behind the view, and every key acts on the image that was shown when it was pressed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from gui_helpers import PHOTO_NAMES, image_id, open_folder, wait_image_shown
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mrcnn import masks

CROWD = 100
KEYS = {"D": (Qt.Key.Key_D, Qt.KeyboardModifier.NoModifier),
        "A": (Qt.Key.Key_A, Qt.KeyboardModifier.NoModifier),
        "Y": (Qt.Key.Key_Y, Qt.KeyboardModifier.ShiftModifier),  # accept all
        "R": (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)}  # review, go on


def crowd(window, name: str, n: int = CROWD) -> None:
    """Store n overlapping pending predictions (ellipses) on an image, as a model does."""
    project = window.controller.project
    image = project.image(image_id(window, name))
    cat = project.add_category("thing")
    rng = np.random.default_rng(len(name))
    m = np.zeros((image.height, image.width), np.uint8)
    items = []
    for _ in range(n):
        m[:] = 0
        cv2.ellipse(m, (int(rng.integers(0, image.width)), int(rng.integers(0, image.height))),
                    (int(rng.integers(6, 60)), int(rng.integers(6, 60))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        items.append((cat.id, masks.encode(m), float(rng.uniform(0.5, 1.0))))
    window.controller.store_predictions(image.id, "crowd-model", items)


@pytest.fixture
def crowded(qtbot, window, photos_dir):
    """A window on the four photos, each with 100 pending predictions; the first shown."""
    open_folder(qtbot, window, photos_dir)
    for name in PHOTO_NAMES:
        crowd(window, name)
    window.canvas.forget()  # what was cached before the predictions came
    window.image_list.select_image(image_id(window, PHOTO_NAMES[-1]))
    window.image_list.select_image(image_id(window, PHOTO_NAMES[0]))
    wait_image_shown(qtbot, window)
    return window


def press_quickly(window, keys: str) -> list[int]:
    """Press the keys one after the other, letting the event loop turn once between them
    (the view is still being built when the next key comes). Returns, per key, the image
    shown when it was pressed (on the canvas, named in the status bar)."""
    shown = []
    for k in keys:
        QApplication.processEvents()
        on_screen = window.canvas.image_id
        assert on_screen == window.image_list.current_id
        assert Path(window.controller.image(on_screen).path).name in window.image_info.text()
        shown.append(on_screen)
        key, mod = KEYS[k]
        focus = QApplication.focusWidget()
        assert focus is not None
        QTest.keyClick(focus, key, mod)
    return shown


def replay(order: list[int], keys: str, shown: list[int]) -> tuple[dict, dict]:
    """What the keys do to the images they were pressed on, one at a time:
    (status, pending predictions) per image."""
    status = dict.fromkeys(order, "predicted")
    pending = dict.fromkeys(order, CROWD)
    for k, image in zip(keys, shown, strict=True):
        if k == "Y":
            pending[image] = 0
            if status[image] == "predicted":
                status[image] = "in_review"
        elif k == "R":
            status[image] = "reviewed"
    return status, pending


def test_twenty_quick_keys_each_act_on_the_image_shown_when_pressed(qtbot, crowded):
    window = crowded
    keys = "DYADDYRAARAARDDYADRA"
    assert len(keys) == 20
    order = [image_id(window, n) for n in PHOTO_NAMES]
    shown = press_quickly(window, keys)
    moves = [b for a, b in zip(shown, shown[1:], strict=False) if a != b]
    assert len(moves) >= 10  # the keys went to other images, each shown before the next key
    status, pending = replay(order, keys, shown)
    last = window.image_list.current_id
    wait_image_shown(qtbot, window, last)
    project = window.controller.project
    assert {i: project.image(i).status for i in order} == status
    assert {i: len(project.instances(i, state="pending")) for i in order} == pending
    assert {i: len(project.instances(i)) for i in order} == dict.fromkeys(order, CROWD)
    assert Path(project.image(last).path).name in window.image_info.text()
    assert window.instance_list.row_count() == CROWD


def test_next_image_is_named_before_its_crowd_of_masks_is_all_drawn(qtbot, crowded):
    """D on a crowded image: the status bar and the Instances panel follow the key at once;
    the masks arrive in batches afterwards, so the keyboard never waits for them."""
    window = crowded
    nxt = window.image_list.neighbor(window.image_list.current_id, +1)
    qtbot.waitUntil(lambda: nxt in window.canvas.cache, timeout=20000)  # prefetched
    press_quickly(window, "D")
    name = Path(window.controller.image(nxt).path).name
    assert name in window.image_info.text()
    assert window.instance_list.row_count() == CROWD
    assert window.canvas.is_loaded  # its pixels are there at once
    assert len(window.canvas.instance_items()) < CROWD  # the rest come on later turns
    wait_image_shown(qtbot, window, nxt)
    assert len(window.canvas.instance_items()) == CROWD
