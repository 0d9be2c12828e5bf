"""What the review actions do: a user gesture → a controller call → one status line.

Errors from `mrcnn` become a message box and a status line (`Feedback.guard`), never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMainWindow

from app import dialogs
from app.canvas.canvas import CanvasView, below_threshold
from app.controllers.project import DocumentController
from app.panels.image_list import ImageListWidget
from app.settings import UiState
from app.text import plural
from mrcnn.errors import MrcnnError

log = logging.getLogger(__name__)


class Feedback:
    """Status-bar messages and error boxes for one window."""

    def __init__(self, window: QMainWindow):
        self._window = window

    def say(self, message: str, ms: int = 5000) -> None:
        self._window.statusBar().showMessage(message, ms)

    def report(self, message: str, *, box: bool = False,
               title: str = "Mask R-CNN Studio") -> None:
        """Say what went wrong in the status bar (and in a box for what the user asked)."""
        log.warning(message)
        self.say(message, 15000)
        if box:
            dialogs.show_error(self._window, title, message)

    @contextmanager
    def guard(self, title: str) -> Iterator[None]:
        """Run a user command; a library error becomes a message, never a crash."""
        try:
            yield
        except MrcnnError as exc:
            self.report(str(exc), box=True, title=title)


@contextmanager
def busy() -> Iterator[None]:
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        yield
    finally:
        QApplication.restoreOverrideCursor()


class ReviewCommands:
    """Accept, delete, mark reviewed."""

    def __init__(self, window: QMainWindow, controller: DocumentController, canvas: CanvasView,
                 image_list: ImageListWidget, ui: UiState, feedback: Feedback):
        self._window = window
        self._c = controller
        self._canvas = canvas
        self._images = image_list
        self._ui = ui
        self._fb = feedback

    def connect(self, actions: dict) -> None:
        table: dict[str, Callable[[], None]] = {
            "accept_selected": self.accept_selected,
            "accept_all": self.accept_all,
            "accept_above_threshold": self.accept_above_threshold,
            "delete_selected": self.delete_selected,
            "mark_reviewed": self.mark_reviewed_and_next,
            "mark_not_reviewed": self.mark_not_reviewed,
        }
        for name, slot in table.items():
            actions[name].triggered.connect(slot)

    def accept_selected(self) -> None:
        image_id = self._images.current_id
        if image_id is None:
            return
        with self._fb.guard("Cannot accept"):
            n = self._c.accept(image_id, self._canvas.selected_ids())
            self._fb.say(f"Accepted {plural(n, 'prediction')}" if n else
                         "Select pending predictions to accept them")

    def accept_all(self) -> None:
        image_id = self._images.current_id
        if image_id is None:
            return
        t = self._canvas.score_threshold
        hidden = sum(below_threshold(r, t) for r in self._c.instance_rows(image_id))
        with self._fb.guard("Cannot accept"):
            n = self._c.accept_all(image_id)
            if not n:
                self._fb.say("No pending predictions on this image")
            elif hidden:  # labels the person never saw: say so, loudly enough to undo
                self._fb.say(f"Accepted {plural(n, 'prediction')}, {hidden} of them hidden "
                             f"below the score threshold {t:.2f} · Ctrl+Z undoes · Accept ≥ "
                             "Threshold takes only the shown ones", 15000)
            else:
                self._fb.say(f"Accepted {plural(n, 'prediction')}")

    def accept_above_threshold(self) -> None:
        """Accept the pending predictions the score threshold shows (those scoring at least
        the threshold); the ones below stay pending and hidden."""
        image_id = self._images.current_id
        if image_id is None:
            return
        t = self._canvas.score_threshold
        ids = [r.id for r in self._c.instance_rows(image_id)
               if r.pending and not below_threshold(r, t)]
        with self._fb.guard("Cannot accept"):
            n = self._c.accept(image_id, ids)
            self._fb.say(f"Accepted {plural(n, 'prediction')} scoring at least {t:.2f}" if n else
                         f"No pending predictions score {t:.2f} or more on this image")

    def delete_selected(self) -> None:
        image_id = self._images.current_id
        ids = self._canvas.selected_ids()
        if image_id is None:
            return
        if not ids:
            self._fb.say("Nothing selected to delete")
            return
        with self._fb.guard("Cannot delete"):
            n = self._c.delete(image_id, ids)
            self._fb.say(f"Deleted {plural(n, 'instance')} (Edit ▸ Undo brings "
                         f"{'it' if n == 1 else 'them'} back)")

    def mark_reviewed_and_next(self) -> None:
        """Mark the image reviewed and go to the next unreviewed one in the list's order
        (`mrcnn.store.status`); when none is left, stay and say so."""
        image_id = self._images.current_id
        if image_id is None:
            return
        nxt = self._images.next_unreviewed(image_id)  # in the list's order, before it moves
        with self._fb.guard("Cannot mark reviewed"):
            pending = self._c.mark_reviewed(image_id)
            msg = f"{Path(self._c.image(image_id).path).name} marked reviewed"
            if pending:
                msg += f" ({plural(pending, 'pending prediction')} left unaccepted: not exported)"
            if nxt is None:
                msg += " · no unreviewed image left in the list"
            self._fb.say(msg + " · Ctrl+Z undoes", 8000)
            if nxt is not None:
                self._images.select_image(nxt)

    def mark_not_reviewed(self) -> None:
        image_id = self._images.current_id
        if image_id is None:
            return
        with self._fb.guard("Cannot mark not reviewed"):
            name = Path(self._c.image(image_id).path).name
            if self._c.mark_not_reviewed(image_id):
                self._fb.say(f"{name} is no longer reviewed: not training data (Ctrl+Z undoes)")
            else:
                self._fb.say(f"{name} is not reviewed")

