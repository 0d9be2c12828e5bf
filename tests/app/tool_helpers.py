"""Helpers for the mask-tool GUI tests: a lossless synthetic image whose regions are known,
real mouse gestures at image coordinates, and reading masks back from a second, read-only
open of the project (what a crash-and-reopen would find)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gui_helpers import wait_image_shown
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt

from app.controllers.project import PROJECT_DIRNAME
from mrcnn.masks import decode
from mrcnn.store.project import Project

W, H = 240, 200
BACKGROUND = (90, 90, 90)
DISC_COLOR, DISC_CENTER, DISC_RADIUS = (235, 30, 30), (70.0, 70.0), 35.0
RECT_COLOR, RECT = (30, 60, 220), (150, 20, 210, 80)  # x0, y0, x1, y1 (half-open pixels)
LEFT = Qt.MouseButton.LeftButton


def disc(center: tuple[float, float], radius: float, shape=(H, W)) -> np.ndarray:
    """Pixels whose centre is within `radius` of `center`."""
    yy, xx = np.mgrid[:shape[0], :shape[1]] + 0.5
    return (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius ** 2


def box(x0: int, y0: int, x1: int, y1: int, shape=(H, W)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def stroke(points: list[tuple[float, float]], radius: float, shape=(H, W)) -> np.ndarray:
    """Pixels whose centre lies within `radius` of the polyline (computed here, not by the
    library under test)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]] + 0.5
    out = np.zeros(shape, bool)
    pairs = list(zip(points, points[1:], strict=False)) or [(points[0], points[0])]
    for (ax, ay), (bx, by) in pairs:
        dx, dy = bx - ax, by - ay
        n2 = dx * dx + dy * dy
        t = 0.0 if n2 == 0 else np.clip(((xx - ax) * dx + (yy - ay) * dy) / n2, 0, 1)
        out |= (xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2 <= radius ** 2 + 1e-9
    return out


def synthetic_rgb() -> np.ndarray:
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = BACKGROUND
    rgb[disc(DISC_CENTER, DISC_RADIUS)] = DISC_COLOR
    x0, y0, x1, y1 = RECT
    rgb[y0:y1, x0:x1] = RECT_COLOR
    return rgb


@dataclass
class ToolScene:
    """A window showing the synthetic image, with one category ("thing") made."""

    window: object
    folder: Path
    image_id: int
    category_id: int | None

    @property
    def canvas(self):
        return self.window.canvas

    @property
    def doc(self):
        return self.window.controller.document(self.image_id)

    def vp(self, x: float, y: float) -> QPoint:
        """The viewport pixel showing image point (x, y)."""
        return self.canvas.mapFromScene(QPointF(x, y))

    def at(self, pos: QPoint) -> tuple[float, float]:
        """The image point a viewport pixel stands for (what a tool receives)."""
        p = self.canvas.scene_pos(QPointF(pos))
        return (p.x(), p.y())

    def add(self, qtbot, mask: np.ndarray, category_id: int | None = None) -> int:
        """An accepted instance made through the document; waits until the canvas shows it."""
        iid = self.doc.add_instance(mask, category_id or self.category_id)
        qtbot.waitUntil(lambda: iid in self.canvas.instance_items(), timeout=5000)
        return iid

    def key(self, qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        self.canvas.setFocus()
        qtbot.keyClick(self.canvas, key, modifier)

    def click(self, qtbot, x: float, y: float, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        qtbot.mouseClick(self.canvas.viewport(), LEFT, modifier, self.vp(x, y))

    def drag(self, qtbot, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Press at the first point, move through the others, release at the last; returns
        the image points the canvas received."""
        vps = [self.vp(x, y) for x, y in points]
        port = self.canvas.viewport()
        qtbot.mousePress(port, LEFT, pos=vps[0])
        for p in vps[1:]:
            qtbot.mouseMove(port, p)
        qtbot.mouseRelease(port, LEFT, pos=vps[-1])
        return [self.at(p) for p in vps]

    def stored(self) -> dict[int, np.ndarray]:
        """Instance id → mask, as a second (read-only) open of the project finds them."""
        project = Project.open(self.folder / PROJECT_DIRNAME, read_only=True)
        try:
            return {i.id: decode(i.rle) for i in project.instances(self.image_id)}
        finally:
            project.close()

    def stored_categories(self) -> dict[int, int]:
        project = Project.open(self.folder / PROJECT_DIRNAME, read_only=True)
        try:
            return {i.id: i.category_id for i in project.instances(self.image_id)}
        finally:
            project.close()


def make_tool_scene(qtbot, window, tmp_path, *, images: int = 1,
                    category: str | None = "thing") -> ToolScene:
    """The window on a folder holding the synthetic image (PNG: lossless), shown, and
    `images - 1` copies of it (shapes_2.png, ...) after it in the list; `category` made
    (None: a project without categories, `category_id` None)."""
    folder = tmp_path / "synthetic"
    folder.mkdir()
    Image.fromarray(synthetic_rgb()).save(folder / "shapes.png")
    for k in range(2, images + 1):
        Image.fromarray(synthetic_rgb()).save(folder / f"shapes_{k}.png")
    assert window.open_path(folder)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == images, timeout=10000)
    wait_image_shown(qtbot, window)
    window.canvas.set_scale(2.0)  # two screen pixels per image pixel
    window.canvas.centerOn(W / 2, H / 2)
    image_id = window.image_list.current_id
    if category is None:
        return ToolScene(window, folder, image_id, None)
    cat = window.controller.document(image_id).add_category(category)
    return ToolScene(window, folder, image_id, cat.id)
