"""The canvas's tool hook: which tool gets the mouse, and what a tool may ask of the canvas.

A tool (see `app/canvas/tools/`) gets left-button gestures, double-clicks, the wheel and keys before
the canvas's own click-to-select, unless the user is panning (Space or the middle button).
Each handler returns True when the tool used the event.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtWidgets import QGraphicsView


class ToolHostMixin:
    """Mixed into CanvasView (a QGraphicsView); expects `_tool`, `_image_item`, `_entry`,
    `_space` and `_middle_pos` attributes."""

    @property
    def tool(self):
        return self._tool

    def set_tool(self, tool) -> None:
        """Hand left-button gestures, the wheel and keys to `tool` first (None: plain click
        and rubber-band selection)."""
        if self._tool is not None:
            self._tool.cancel()
        self._tool = tool
        self._reset_pointer()

    def _reset_pointer(self) -> None:
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag if self._tool is None
                         else QGraphicsView.DragMode.NoDrag)
        if self._tool is None:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(self._tool.cursor)

    def set_exact_updates(self, exact: bool) -> None:
        """Repaint only what changed (during a brush drag) or the whole viewport (default:
        cosmetic outlines reach past their items' bounds)."""
        mode = QGraphicsView.ViewportUpdateMode
        self.setViewportUpdateMode(mode.MinimalViewportUpdate if exact
                                   else mode.FullViewportUpdate)
        if not exact:
            self.viewport().update()

    def scene_pos(self, pos: QPointF) -> QPointF:
        """A viewport position in image coordinates (pixel corners), not rounded."""
        return self.viewportTransform().inverted()[0].map(QPointF(pos))

    def image_pixels(self) -> np.ndarray | None:
        """The shown image at full size as BGRA (do not modify), or None while loading."""
        return self._entry.view.levels[0] if self._image_item is not None else None

    def _tool_takes(self) -> bool:
        return (self._tool is not None and self._image_item is not None and not self._space
                and self._middle_pos is None)

    def event(self, event) -> bool:
        """Keys a tool needs mid-gesture (Enter, Esc, Backspace while drawing a polygon) come
        to it before the window's shortcuts for them."""
        if (event.type() == QEvent.Type.ShortcutOverride and self._tool_takes()
                and self._tool.wants_key(event)):
            event.accept()
            return True
        if (event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Tab,
                                                                      Qt.Key.Key_Backtab)
                and self._tool_takes() and self._tool.key_press(event)):
            return True  # Tab belongs to a tool that uses it, not to focus navigation
        return super().event(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if self._tool_takes() and self._tool.mouse_double_click(event):
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def leaveEvent(self, event) -> None:
        if self._tool is not None:
            self._tool.pointer_left()
        super().leaveEvent(event)
