"""Click → Mask (S): clicks on an object go to a SAM-family model (the user's ONNX files,
`app/controllers/sam.py`): a click adds (positive), Alt+click or a right click removes
(negative); each click re-runs the decoder with all the clicks and the previous mask as
context, and the answer is shown in the chosen category's colour. Enter accepts it as a new
instance (one undoable step); Backspace drops the last click; Esc drops them all. With one
instance selected when the first click lands, the clicks refine that instance instead (its
mask is the decoder's context) and Enter replaces its mask (undoable). Without a SAM model
the status bar says how to get one."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.canvas.tools.base import CanvasTool
from app.canvas.tools.overlay import MaskPreview
from mrcnn.serving.sam import Click, SamAnswer

PREVIEW_OPACITY = 0.55
KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Backspace)


class ClickMaskTool(CanvasTool):
    name = "clickmask"

    def __init__(self, host):
        super().__init__(host)
        self.clicks: list[Click] = []
        self.answer: SamAnswer | None = None
        self._image_id: int | None = None
        self._asked = 0  # clicks sent to the model (answers to fewer clicks are stale)
        self._preview = MaskPreview(self.canvas.scene(), PREVIEW_OPACITY)
        self.refining: int | None = None  # the selected instance the clicks refine

    def mouse_press(self, event) -> bool:
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        doc = self.host.document()
        if doc is None:
            return True
        if self._image_id != doc.image_id:
            self.cancel()
            self._image_id = doc.image_id
        negative = (button == Qt.MouseButton.RightButton or bool(
            event.modifiers() & (Qt.KeyboardModifier.AltModifier
                                 | Qt.KeyboardModifier.ControlModifier)))
        x, y = self.point(event)
        h, w = doc.shape
        if not (0 <= x < w and 0 <= y < h):
            return True
        if not self.clicks:
            self.refining = self.host.selected_one("refine", required=False)
        self.clicks.append(Click(x, y, positive=not negative))
        self._ask()
        return True

    def mouse_release(self, event) -> bool:
        return event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton)

    def _ask(self) -> None:
        image_id = self._image_id
        clicks = tuple(self.clicks)
        if not clicks:
            self._preview.drop()
            self.answer = None
            return
        previous = self.answer.low_res if self.answer is not None else None
        doc = self.host.document()
        refining = (doc.mask(self.refining) if doc is not None and self.refining is not None
                    else None)
        job = self.host.sam_segment_job(image_id, clicks, previous, refining)
        if job is None:
            self.clicks.clear()
            self.host.say(self.host.sam_missing_message(), 15000)
            return
        self._asked = len(clicks)
        self.host.say(f"Click → Mask: asking the model ({len(clicks)} "
                      f"click{'s' * (len(clicks) != 1)})…", 0)

        def done(answer: SamAnswer) -> None:
            if self._image_id != image_id or tuple(self.clicks) != clicks:
                return  # another click or image came meanwhile
            self.answer = answer
            self._show(answer)
            self.host.say(f"Click → Mask: {len(clicks)} click{'s' * (len(clicks) != 1)}, "
                          f"predicted IoU {answer.score:.2f} · Enter accepts, Alt+click "
                          "removes, Backspace drops the last click, Esc all")

        job.succeeded.connect(done)
        job.failed.connect(lambda message: self.host.report(f"Click → Mask failed: {message}"))

    def _show(self, answer: SamAnswer) -> None:
        category = self.host.new_category_id()
        color = self.host.category_color(category) if category is not None else "#33aaff"
        self._preview.show(answer.mask, color)

    def wants_key(self, event) -> bool:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return False  # Ctrl+Enter stays Mark Reviewed
        return bool(self.clicks) and event.key() in KEYS

    def key_press(self, event) -> bool:
        if not self.wants_key(event):
            return False
        key = event.key()
        if key == Qt.Key.Key_Escape:
            self.cancel()
        elif key == Qt.Key.Key_Backspace:
            self.clicks.pop()
            self.answer = None  # the context was made with the dropped click
            self._ask()
        elif self.answer is None or not self.answer.mask.any():
            self.host.say("Click → Mask: no mask yet")
        else:
            mask = self.answer.mask
            target = self.refining
            if target is not None:
                self.host.commit("Click → Mask", lambda d: d.edit_mask(
                    target, mask, label="Click → Mask refine"))
                self.cancel()
                return True
            category = self.host.new_category_id(ask=True)
            if category is None:
                return True
            new = self.host.commit("Click → Mask", lambda d: d.add_instance(
                mask, category, label="Click → Mask"))
            self.cancel()
            self.host.select_new(new)
        return True

    def cancel(self) -> None:
        self.clicks.clear()
        self.answer = None
        self.refining = None
        self._preview.drop()
