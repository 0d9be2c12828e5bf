"""Brush and eraser: paint discs along the pointer's path into the selected instance.

Press copies the instance's mask; each move paints the newest segment into that copy
(`mask_tools.paint_stroke`) and repaints only the rectangle it returned; release commits the
whole stroke as one undo step (`ImageDocument.edit_mask` with the stroke's dirty rectangle).
With nothing selected, the brush paints a new instance in the current category.
Size: `[` and `]`, or Ctrl+wheel.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt

from app.canvas.tools.base import MAX_RADIUS, MIN_RADIUS, CanvasTool, Point, is_left
from app.canvas.tools.overlay import BrushOutlineItem, MaskPreviewItem
from mrcnn.editing import mask_tools
from mrcnn.editing.mask_tools import EMPTY, Rect

#: Ctrl+wheel: one notch (120) changes the radius by this factor.
WHEEL_STEP = 1.15


class BrushTool(CanvasTool):
    name = "brush"
    erase = False

    def __init__(self, host):
        super().__init__(host)
        self._outline: BrushOutlineItem | None = None
        self._preview: MaskPreviewItem | None = None
        self._hidden = None  # the instance item hidden while its mask is previewed
        self._work: np.ndarray | None = None
        self._target: int | None = None
        self._category: int | None = None
        self._dirty: Rect = EMPTY
        self._last: Point | None = None

    @property
    def painting(self) -> bool:
        return self._work is not None

    # ---------------------------------------------------------------- outline
    def _show_outline(self, at: Point) -> None:
        if self._outline is None:
            self._outline = BrushOutlineItem(erase=self.erase)
            self.canvas.scene().addItem(self._outline)
        self._outline.place(at, self.host.options.brush_radius, self.screen_px())
        self._outline.show()

    def resize(self, factor: float) -> None:
        """Scale the brush radius (kept within its limits)."""
        opts = self.host.options
        opts.brush_radius = float(min(MAX_RADIUS, max(MIN_RADIUS, opts.brush_radius * factor)))
        if self._outline is not None:
            self._outline.place((self._outline.x(), self._outline.y()), opts.brush_radius,
                                self.screen_px())
        self.host.brush_radius_changed()

    def pointer_left(self) -> None:
        if self._outline is not None and not self.painting:
            self._outline.hide()

    # ---------------------------------------------------------------- gesture
    def mouse_press(self, event) -> bool:
        if not is_left(event):
            return False
        if self.painting:
            return True
        doc = self.host.document()
        if doc is None:
            return True
        at = self.point(event)
        self._target = self.host.selected_one("erase from" if self.erase else "paint on",
                                              required=self.erase)
        if self._target is None:
            if self.erase or self.canvas.selected_ids():
                return True  # host said why
            self._category = self.host.new_category_id()
            if self._category is None:
                return True
            work = np.zeros(doc.shape, bool)
            color = self.host.category_color(self._category)
        else:
            work = doc.mask(self._target).copy()
            self._hidden = self.canvas.instance_items().get(self._target)
            color = self._hidden.row.color if self._hidden else "#ff00ff"
        self._work = work
        self._preview = MaskPreviewItem(doc.shape, color,
                                        min(1.0, self.canvas.style_.fill_opacity + 0.3))
        self.canvas.scene().addItem(self._preview)
        if self._target is not None:
            x, y, w, h = doc.instance(self._target).bbox
            self._preview.show_region(work, Rect(math.floor(x), math.floor(y),
                                                 math.ceil(x + w), math.ceil(y + h)))
        if self._hidden is not None:
            self._hidden.setOpacity(0.0)
        self.canvas.set_exact_updates(True)
        self.host.gesture_started()
        self._dirty = EMPTY
        self._last = at
        self._paint([at])
        self._show_outline(at)
        return True

    def _paint(self, points: list[Point]) -> None:
        rect = mask_tools.paint_stroke(self._work, points, self.host.options.brush_radius,
                                       erase=self.erase)
        self._dirty = self._dirty.union(rect)
        self._preview.show_region(self._work, rect)

    def mouse_move(self, event) -> bool:
        at = self.point(event)
        self._show_outline(at)
        if self.painting:
            if at != self._last:
                self._paint([self._last, at])
                self._last = at
            return True
        return False  # hover still reaches the instances

    def mouse_release(self, event) -> bool:
        if not is_left(event) or not self.painting:
            return self.painting
        at = self.point(event)
        if at != self._last:
            self._paint([self._last, at])
        work, target, dirty, category = self._work, self._target, self._dirty, self._category
        label = "erase" if self.erase else "brush"
        try:
            if target is not None:
                self.host.commit(label.capitalize(), lambda doc: doc.edit_mask(
                    target, work, rect=dirty, label=label))
            elif work.any():
                new = self.host.commit("Brush", lambda doc: doc.add_instance(
                    work, category, label=label))
                self.host.select_new(new)
        finally:
            self._end()
        return True

    def wheel(self, event) -> bool:
        if not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return False
        notches = event.angleDelta().y() / 120.0
        if notches:
            self.resize(WHEEL_STEP ** notches)
        return True

    def _end(self) -> None:
        if self._preview is not None:
            self.canvas.scene().removeItem(self._preview)
        if self._hidden is not None:
            self._hidden.setOpacity(1.0)
        if self._work is not None:
            self.canvas.set_exact_updates(False)
            self.host.gesture_ended()
        self._preview = self._hidden = self._work = None
        self._target = self._category = self._last = None
        self._dirty = EMPTY

    def cancel(self) -> None:
        self._end()
        if self._outline is not None:
            self.canvas.scene().removeItem(self._outline)
            self._outline = None


class EraserTool(BrushTool):
    name = "eraser"
    erase = True
