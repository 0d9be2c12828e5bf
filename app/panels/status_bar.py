"""The window's status bar: one whole message at a time.

QStatusBar paints a message left of its permanent widgets and cuts it off at the first one,
so a long message ran straight into the model label ("…no CUDModel: COCO weights"), as if
two messages were written into one. Here, a message that does not fit makes the widgets
added with `yielding=True` (model, image facts) step aside, one by one, until it does; they
come back when the message is gone. The whole text is also the bar's tooltip meanwhile.
"""

from __future__ import annotations

from PySide6.QtWidgets import QStatusBar, QWidget

#: Room QStatusBar keeps left of the message and between it and the permanent widgets (px).
MARGIN = 12


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self._yielding: list[QWidget] = []
        self._stepped_aside: list[QWidget] = []
        self.messageChanged.connect(self._on_message_changed)

    def add_permanent(self, widget: QWidget, *, yielding: bool = False) -> None:
        """A widget on the right; `yielding`: it steps aside for a message that needs room."""
        self.addPermanentWidget(widget)
        self._permanent.append(widget)
        if yielding:
            self._yielding.append(widget)

    def _on_message_changed(self, text: str) -> None:
        for widget in self._stepped_aside:
            widget.show()
        self._stepped_aside = []
        self.setToolTip(text)
        if not text:
            return
        need = self.fontMetrics().horizontalAdvance(text) + MARGIN
        room = self._message_room()
        for widget in self._yielding:
            if need <= room:
                break
            if widget.isVisible():
                room += widget.width()
                widget.hide()
                self._stepped_aside.append(widget)

    def _message_room(self) -> int:
        """Width between the bar's left edge and the first visible permanent widget."""
        lefts = [w.x() for w in self._permanent if w.isVisible()]
        return min(lefts, default=self.width()) - MARGIN
