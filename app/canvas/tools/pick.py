"""Pick: click on an object the model almost found. The predictions whose mask covers the
clicked pixel are offered best first, those the score slider hides included; the offered one
is shown in its category's colour with its score in the status bar. Clicking the same spot
again offers the next; Enter (or Y, as Accept Selected) accepts the offered one, an undoable
step; Esc drops the offer. The rule is `mrcnn.editing.pick`."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.canvas.tools.base import CanvasTool, is_left
from app.canvas.tools.overlay import MaskPreview
from mrcnn.editing.pick import PickCycle
from mrcnn.store.records import Instance

ACCEPT_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Y)
PREVIEW_OPACITY = 0.6


class PickTool(CanvasTool):
    name = "pick"
    cursor = Qt.CursorShape.PointingHandCursor

    def __init__(self, host):
        super().__init__(host)
        self.cycle = PickCycle()
        self._preview = MaskPreview(self.canvas.scene(), PREVIEW_OPACITY)
        self._image_id: int | None = None

    @property
    def offered(self) -> Instance | None:
        return self.cycle.offered if self._image_id == self.canvas.image_id else None

    def mouse_press(self, event) -> bool:
        if not is_left(event):
            return False
        doc = self.host.document()
        if doc is None:
            return True
        if self._image_id != doc.image_id:
            self.cycle.clear()
            self._image_id = doc.image_id
        x, y = self.point(event)
        self.cycle.click(doc.instances(), x, y, mask_of=lambda inst: doc.mask(inst.id))
        self._show(doc)
        self.host.say(self.cycle.describe(self.host.category_name), 0)
        return True

    def mouse_release(self, event) -> bool:
        return is_left(event)

    def wants_key(self, event) -> bool:
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                | Qt.KeyboardModifier.ShiftModifier):
            return False  # Ctrl+Enter stays Mark Reviewed, Shift+Y Accept All
        return self.offered is not None and event.key() in (*ACCEPT_KEYS, Qt.Key.Key_Escape)

    def key_press(self, event) -> bool:
        if not self.wants_key(event):
            return False
        offered = self.offered
        if event.key() == Qt.Key.Key_Escape or offered is None:
            self.cancel()
            self.host.say("", 1)
            return True
        accepted = self.host.commit("Accept prediction",
                                    lambda d: d.accept_instances([offered.id]))
        self.cancel()
        if accepted is not None:
            self.host.select_new(offered.id)
        return True

    def _show(self, doc) -> None:
        offered = self.cycle.offered
        if offered is None:
            self._preview.drop()
            return
        self._preview.show(doc.mask(offered.id), self.host.category_color(offered.category_id))

    def cancel(self) -> None:
        self.cycle.clear()
        self._preview.drop()
