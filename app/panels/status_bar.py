"""The window's status bar: one whole message at a time.

QStatusBar paints a message left of its permanent widgets and cuts it off at the first one,
so a long message ran straight into the model label ("…no CUDModel: COCO weights"), as if
two messages were written into one. Here, a message that does not fit makes the widgets
added with `yielding=True` (model, image facts) step aside, one by one, until it does; they
come back when the message is gone. The whole text is also the bar's tooltip meanwhile.
The room is measured again whenever a widget on the right grows while a message is shown
(the model label's text arrives just after "Model … ready", and cut that message off mid-word).

The labels themselves give up room too (`ElidedLabel`): a long device line ("… · backbone in
ONNX Runtime") once made the window's minimum width wider than the screen, and the window grew
past the screen's edge the moment it appeared.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

#: Room QStatusBar keeps left of the message and between it and the permanent widgets (px).
MARGIN = 12


class ElidedLabel(QLabel):
    """A one-line label that never widens its window: given less room than its text needs, it
    ends the text with "…" and its tooltip holds the whole text (above its own tooltip)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *,
                 elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight):
        super().__init__(text, parent)
        self._elide = elide
        self._tip = ""

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._update_tip()

    def setToolTip(self, tip: str) -> None:  # noqa: N802 (Qt's name)
        self._tip = tip
        self._update_tip()

    def elided(self) -> bool:
        """Whether the text is cut short at the label's present width."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def shown_text(self) -> str:
        """The text as painted: whole, or cut short with "…"."""
        return self.fontMetrics().elidedText(self.text(), self._elide,
                                             self.contentsRect().width())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        hint = super().minimumSizeHint()
        least = self.fontMetrics().horizontalAdvance("…") * 6
        return QSize(min(hint.width(), least), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._update_tip()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        self.style().drawItemText(painter, self.contentsRect(), int(self.alignment()),
                                  self.palette(), self.isEnabled(), self.shown_text(),
                                  self.foregroundRole())

    def _update_tip(self) -> None:
        whole = self.text() if self.text() and self.elided() else ""
        super().setToolTip("\n".join(t for t in (whole, self._tip) if t))


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self._yielding: list[QWidget] = []
        self._stepped_aside: list[QWidget] = []
        self.messageChanged.connect(self._on_message_changed)
        self._refit_timer = QTimer(self)  # once the layout has placed the widgets again
        self._refit_timer.setSingleShot(True)
        self._refit_timer.setInterval(0)
        self._refit_timer.timeout.connect(self._fit_message)

    def add_permanent(self, widget: QWidget, *, yielding: bool = False) -> None:
        """A widget on the right; `yielding`: it steps aside for a message that needs room."""
        self.addPermanentWidget(widget)
        self._permanent.append(widget)
        widget.installEventFilter(self)
        if yielding:
            self._yielding.append(widget)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if (event.type() in (QEvent.Type.Resize, QEvent.Type.Move, QEvent.Type.Show)
                and self.currentMessage()):
            self._refit_timer.start()
        return False

    def _on_message_changed(self, text: str) -> None:
        for widget in self._stepped_aside:
            widget.show()
        self._stepped_aside = []
        self.setToolTip(text)
        if text:
            self._fit_message()

    def _fit_message(self) -> None:
        """Widgets that yield step aside, one by one, until the message fits left of the
        rest."""
        text = self.currentMessage()
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
