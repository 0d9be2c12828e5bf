"""Polygon and Box → GrabCut: tools that draw a shape, then turn it into a mask.

Polygon: click points; close by clicking the first point, double-clicking, or Enter (Esc
drops it, Backspace removes the last point; Ctrl+Enter stays Mark Reviewed). A closed
polygon becomes a new instance, or, with Shift held, is added to the selected instance,
with Alt (or Ctrl on a click) cut from it.
Box → GrabCut: drag a box around an object; OpenCV's GrabCut finds it (in a background
job) and it becomes a new instance.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem

from app.canvas.tools.base import CanvasTool, Point, edit_mode, is_left
from app.canvas.tools.overlay import OVERLAY_Z, cosmetic_pen
from mrcnn.editing import image_tools, mask_tools

#: Clicking within this many screen pixels of the first point closes the polygon.
CLOSE_DISTANCE_PX = 8
#: A box smaller than this (image pixels, either side) is taken for a slip of the hand.
MIN_BOX = 3.0


class PolygonTool(CanvasTool):
    name = "polygon"

    def __init__(self, host):
        super().__init__(host)
        self._points: list[Point] = []
        self._mode = "new"
        self._cursor_at: Point | None = None
        self._item: QGraphicsPathItem | None = None

    @property
    def points(self) -> list[Point]:
        return list(self._points)

    def mouse_press(self, event) -> bool:
        if not is_left(event):
            return False
        at = self.point(event)
        if not self._points:
            self._mode = edit_mode(event.modifiers())
        elif len(self._points) >= 3 and self._near_first(at):
            self._close(event.modifiers())
            return True
        self._points.append(at)
        self._redraw()
        return True

    def mouse_release(self, event) -> bool:
        return bool(self._points) and is_left(event)

    def mouse_double_click(self, event) -> bool:
        if is_left(event) and len(self._points) >= 3:
            self._close(event.modifiers())
            return True
        return bool(self._points)

    def mouse_move(self, event) -> bool:
        if not self._points:
            return False
        self._cursor_at = self.point(event)
        self._redraw()
        return True

    def wants_key(self, event) -> bool:
        keys = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Backspace)
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return False  # Ctrl+Enter is Mark Reviewed, never "close the polygon"
        return bool(self._points) and event.key() in keys

    def key_press(self, event) -> bool:
        if not self.wants_key(event):
            return False
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if len(self._points) >= 3:
                self._close(event.modifiers())
            else:
                self.host.say("A polygon needs at least 3 points")
        elif key == Qt.Key.Key_Escape:
            self.cancel()
        else:  # Backspace: the last point goes; with it the only one, the polygon (a
            self._points.pop()  # redraw of no points crashed the app)
            if self._points:
                self._redraw()
            else:
                self.cancel()
        return True

    def _near_first(self, at: Point) -> bool:
        x, y = self._points[0]
        return np.hypot(at[0] - x, at[1] - y) <= CLOSE_DISTANCE_PX * self.screen_px()

    def _redraw(self) -> None:
        if self._item is None:
            self._item = QGraphicsPathItem()
            self._item.setPen(cosmetic_pen("#ffffff", 1.5))
            self._item.setZValue(OVERLAY_Z)
            self._item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            self.canvas.scene().addItem(self._item)
        path = QPainterPath()
        pts = self._points + ([self._cursor_at] if self._cursor_at else [])
        path.moveTo(QPointF(*pts[0]))
        for p in pts[1:]:
            path.lineTo(QPointF(*p))
        r = 3 * self.screen_px()
        path.addEllipse(QPointF(*self._points[0]), r, r)  # where to click to close
        self._item.setPath(path)

    def _close(self, modifiers) -> None:
        points = list(self._points)
        mode = edit_mode(modifiers) if edit_mode(modifiers) != "new" else self._mode
        doc = self.host.document()
        # A project without categories asks for one: while the outline is still drawn, so
        # the person sees what they are naming.
        category = (self.host.new_category_id(ask=True)
                    if doc is not None and mode == "new" else None)
        self.cancel()
        if doc is None:
            return
        if mode == "new":
            if category is None:
                return
            mask = mask_tools.polygon_mask(points, doc.shape)
            if not mask.any():
                self.host.say("The polygon covers no pixel centre; nothing was added")
                return
            new = self.host.commit("Polygon", lambda d: d.add_instance(
                mask, category, label="polygon"))
            self.host.select_new(new)
            return
        target = self.host.selected_one("add the polygon to" if mode == "add"
                                        else "cut the polygon from")
        if target is None:
            return
        tool = mask_tools.polygon_add if mode == "add" else mask_tools.polygon_cut
        self.host.commit("Polygon", lambda d: d.apply(
            target, tool, points, label=f"polygon {'add' if mode == 'add' else 'cut'}"))

    def cancel(self) -> None:
        self._points = []
        self._cursor_at = None
        if self._item is not None:
            self.canvas.scene().removeItem(self._item)
            self._item = None


def grabcut_job(ctx, bgra: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Job: GrabCut's foreground inside `box` (x0, y0, x1, y1) of a BGRA image."""
    rgb = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
    ctx.check()
    return image_tools.grabcut(rgb, box)


class BoxGrabCutTool(CanvasTool):
    name = "grabcut"

    def __init__(self, host):
        super().__init__(host)
        self._start: Point | None = None
        self._item: QGraphicsRectItem | None = None
        self.job = None  # the running GrabCut job, if any

    def mouse_press(self, event) -> bool:
        if not is_left(event):
            return False
        if self.job is not None:
            self.host.say("GrabCut is still working on the last box")
            return True
        self._start = self.point(event)
        if self._item is None:
            self._item = QGraphicsRectItem()
            self._item.setPen(cosmetic_pen("#ffffff", 1.5, Qt.PenStyle.DashLine))
            self._item.setZValue(OVERLAY_Z)
            self._item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            self.canvas.scene().addItem(self._item)
        self._item.setRect(QRectF(QPointF(*self._start), QPointF(*self._start)))
        return True

    def mouse_move(self, event) -> bool:
        if self._start is None:
            return False
        self._item.setRect(QRectF(QPointF(*self._start), QPointF(*self.point(event)))
                           .normalized())
        return True

    def mouse_release(self, event) -> bool:
        if self._start is None or not is_left(event):
            return self._start is not None
        (x0, y0), (x1, y1) = self._start, self.point(event)
        self._start = None
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if box[2] - box[0] < MIN_BOX or box[3] - box[1] < MIN_BOX:
            self._drop_box()
            return True
        self._run(box)
        return True

    def _run(self, box: tuple[float, float, float, float]) -> None:
        doc = self.host.document()
        pixels = self.canvas.image_pixels()
        category = self.host.new_category_id(ask=True) if doc is not None else None
        if doc is None or pixels is None or category is None:
            self._drop_box()
            return
        job = self.host.runner.submit(grabcut_job, pixels, box, lane="image", name="GrabCut")

        def done(mask: np.ndarray) -> None:
            if not mask.any():
                self.host.say("GrabCut found nothing in the box; try a box closer around "
                              "the object")
                return
            new = self.host.commit("GrabCut", lambda d: d.add_instance(
                mask, category, label="GrabCut"))
            self.host.select_new(new)

        self._track(job, "GrabCut", "GrabCut: finding the object in the box…", done)

    def _track(self, job, title: str, working: str, done) -> None:
        """Follow a job that answers the box: `done(result)` on the GUI thread unless the
        box was cancelled or the user went to another image meanwhile."""
        image_id = self.canvas.image_id
        self.host.gesture_started()
        self.host.say(working, 0)
        self.job = job

        def succeeded(result) -> None:
            if self.job is job and self.canvas.image_id == image_id:
                done(result)

        def finished() -> None:
            if self.job is job:
                self.job = None
                self._drop_box()
                self.host.gesture_ended()

        job.succeeded.connect(succeeded)
        job.failed.connect(lambda message: self.host.report(f"{title} failed: {message}"))
        job.finished.connect(finished)

    def _drop_box(self) -> None:
        if self._item is not None:
            self.canvas.scene().removeItem(self._item)
            self._item = None

    def cancel(self) -> None:
        self._start = None
        if self.job is not None:
            self.job.cancel()
            self.job = None
            self.host.gesture_ended()
        self._drop_box()
