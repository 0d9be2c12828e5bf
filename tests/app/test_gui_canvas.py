"""The canvas: zoom, fit, 1:1, pan, opacity, and big images without stalling the window."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import skimage.data
from gui_helpers import open_folder, wait_image_shown
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.canvas.items import ImageItem
from app.canvas.render import pyramid, to_bgra
from mrcnn import masks


def test_zoom_keys_fit_and_actual_size(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    canvas = window.canvas
    fit = canvas.scale_factor
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Plus)
    assert canvas.scale_factor == pytest.approx(fit * 1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus)
    assert canvas.scale_factor == pytest.approx(fit / 1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale_factor == pytest.approx(1.0)
    assert window.zoom_label.text() == "100%"
    qtbot.keyClick(canvas, Qt.Key.Key_F)
    assert canvas.scale_factor == pytest.approx(fit)
    # fit shows the whole image inside the viewport
    rect = canvas.mapFromScene(canvas.sceneRect()).boundingRect()
    assert canvas.viewport().rect().adjusted(-2, -2, 2, 2).contains(rect)


def test_wheel_zooms_around_the_mouse(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    canvas = window.canvas
    canvas.set_scale(2.0)  # the image overflows the view: nothing clamps the scroll position
    before = canvas.scale_factor
    pos = QPointF(canvas.viewport().width() / 3, canvas.viewport().height() / 3)
    under = canvas.mapToScene(pos.toPoint())
    event = QWheelEvent(pos, canvas.viewport().mapToGlobal(pos), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)
    assert canvas.scale_factor > before * 1.3
    after = canvas.mapToScene(pos.toPoint())
    assert abs(after.x() - under.x()) < 2 and abs(after.y() - under.y()) < 2


def test_pan_with_middle_button_and_with_space(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    canvas = window.canvas
    canvas.set_scale(4.0)
    bar = canvas.horizontalScrollBar()
    bar.setValue(bar.maximum() // 2)
    start = bar.value()
    vp = canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=QPoint(200, 200))
    qtbot.mouseMove(vp, QPoint(150, 200))
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=QPoint(150, 200))
    assert bar.value() == start + 50

    canvas.setFocus()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    assert canvas.dragMode() == canvas.DragMode.ScrollHandDrag
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.dragMode() == canvas.DragMode.RubberBandDrag


def test_opacity_slider_changes_mask_fill(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    window.opacity.setValue(80)
    assert window.canvas.style_.fill_opacity == pytest.approx(0.8)
    assert window.ui.mask_opacity() == 80


def test_pyramid_levels_and_choice():
    rgb = np.zeros((4000, 6000, 3), np.uint8)
    levels = pyramid(to_bgra(rgb))
    assert [lv.shape[:2] for lv in levels] == [(4000, 6000), (2000, 3000), (1000, 1500),
                                               (500, 750)]
    item = ImageItem(levels)
    assert item.level_for(1.0) == 0
    assert item.level_for(0.6) == 0  # never fewer image pixels than screen pixels
    assert item.level_for(0.5) == 1
    assert item.level_for(0.2) == 2
    assert item.level_for(0.01) == 3


def test_big_photo_loads_without_stalling_the_window(qtbot, window, tmp_path):
    """A 6000x4000 photo with 12 large masks: pixels and masks are prepared in the
    background; a 10 ms timer never waits much longer than that."""
    folder = tmp_path / "big"
    folder.mkdir()
    rgb = cv2.resize(skimage.data.astronaut(), (6000, 4000), interpolation=cv2.INTER_LINEAR)
    Image.fromarray(rgb).save(folder / "big.jpg", quality=85)
    assert window.open_path(folder)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == 1, timeout=10000)
    wait_image_shown(qtbot, window)
    c = window.controller
    image = c.images()[0]
    cat = c.project.add_category("thing")
    yy, xx = np.ogrid[:4000, :6000]
    items = [(cat.id, masks.encode((yy - 600 - 250 * k) ** 2 + (xx - 500 - 420 * k) ** 2
                                   < (150 + 40 * k) ** 2), 0.5) for k in range(12)]
    window.canvas.forget()  # as if opened for the first time
    window.image_list._current = None

    gaps, last = [], [time.perf_counter()]

    def probe() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(probe)
    timer.start(10)
    c.store_predictions(image.id, "test", items)
    last[0] = time.perf_counter()  # the probe measures the loading, not the store
    window.image_list.select_image(image.id)
    qtbot.waitUntil(lambda: window.canvas.is_loaded
                    and len(window.canvas.instance_items()) == 12, timeout=30000)
    window.canvas.viewport().repaint()
    timer.stop()
    assert max(gaps) < 0.2, f"longest event-loop stall {max(gaps) * 1000:.0f} ms"
    # zoomed out, the view paints a small pyramid level, so painting stays quick
    start = time.perf_counter()
    for _ in range(5):
        window.canvas.viewport().repaint()
    assert (time.perf_counter() - start) / 5 < 0.1
