"""Suggested categories: the classes a model knows but the project lacks (COCO's `wine glass`,
`person`...). Their predictions are kept aside, never added as categories by themselves; this
dialog lists each name with how many predictions it has and offers Accept (add the category),
Map to… (one of the project's categories) or Ignore, once for the project. The rule is
`mrcnn.serving.named_predictions`; the status bar hints when a model suggests new names."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.project import DocumentController
from app.panels.category_box import ask_category
from mrcnn.errors import MrcnnError

HINT_MS = 15000


class CategorySuggestionsDialog(QDialog):
    """One row per suggested class name: name, predictions, images, Accept / Map to… /
    Ignore. A decision is durable when the row goes away."""

    def __init__(self, controller: DocumentController, decide: Callable[..., None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Suggested categories")
        self._c = controller
        self._decide = decide
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Class", "Predictions", "Images", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table)
        layout.addWidget(close)
        self.resize(560, 320)
        controller.suggestions_changed.connect(self.refresh)
        controller.categories_changed.connect(self.refresh)
        self.refresh()

    def names(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def buttons(self, name: str) -> dict[str, QPushButton]:
        """The row's Accept / Map / Ignore buttons, by those words."""
        row = self.names().index(name)
        cell = self.table.cellWidget(row, 3)
        return {b.objectName(): b for b in cell.findChildren(QPushButton)}

    def refresh(self) -> None:
        suggestions = self._c.category_suggestions()
        self.note.setText(
            "The model knows these classes but the project has no category for them; their "
            "predictions are not shown. Accept adds the category, Map to… puts them in one of "
            "yours, Ignore drops them — once for this project."
            if suggestions else "No suggestions: every class the model predicted has a "
            "category or a decision.")
        self.table.setRowCount(len(suggestions))
        for row, s in enumerate(suggestions):
            self.table.setItem(row, 0, QTableWidgetItem(s.name))
            self.table.setItem(row, 1, QTableWidgetItem(str(s.predictions)))
            self.table.setItem(row, 2, QTableWidgetItem(str(len(s.image_ids))))
            cell = QWidget()
            box = QHBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 0)
            for word, text, slot in (("accept", "Accept", self._accept),
                                     ("map", "Map to…", self._map),
                                     ("ignore", "Ignore", self._ignore)):
                button = QPushButton(text)
                button.setObjectName(word)
                button.clicked.connect(lambda _=False, n=s.name, f=slot: f(n))
                box.addWidget(button)
            self.table.setCellWidget(row, 3, cell)
        self.table.resizeColumnsToContents()

    def _accept(self, name: str) -> None:
        self._decide(name, "accept")

    def _map(self, name: str) -> None:
        cats = self._c.project.categories() if self._c.is_open else []
        if not cats:
            self._decide(None, "no-categories")
            return
        target = ask_category(self, "Map to a category",
                              f"Store the model's {name!r} predictions as:",
                              [c.name for c in cats])
        chosen = next((c for c in cats if c.name == target), None)
        if chosen is not None:
            self._decide(name, "map", chosen.id)

    def _ignore(self, name: str) -> None:
        self._decide(name, "ignore")


class SuggestionCommands(QObject):
    """Opens the dialog (Edit / Model ▸ Suggested Categories…), applies decisions, and hints
    in the status bar when a model suggests names not hinted at before."""

    def __init__(self, controller: DocumentController, say: Callable[[str, int], None],
                 report: Callable[[str], None], repredict: Callable[[], None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._c = controller
        self._say = say
        self._report = report
        self._repredict = repredict
        self._parent = parent
        self._hinted: set[str] = set()
        self.dialog: CategorySuggestionsDialog | None = None
        controller.suggestions_changed.connect(self._on_controller_suggestions_changed)
        controller.project_opened.connect(self._hinted.clear)

    def show(self) -> CategorySuggestionsDialog:
        if self.dialog is None:
            self.dialog = CategorySuggestionsDialog(self._c, self.decide, self._parent)
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def decide(self, name: str | None, decision: str, category_id: int | None = None) -> None:
        if name is None:
            self._say("The project has no category to map to yet: Accept the class, or make "
                      "a category first (Edit ▸ New Category…)", 8000)
            return
        try:
            category = self._c.decide_category(name, decision, category_id)
        except MrcnnError as exc:  # said; nothing changed
            self._report(str(exc))
            return
        if decision == "ignore":
            self._say(f"The model's {name!r} predictions will be ignored in this project", 8000)
            return
        where = f"category {category.name!r}" if category else "it"
        self._say(f"The model's {name!r} predictions go to {where}; they appear as images "
                  "are predicted again", 8000)
        self._repredict()

    def _on_controller_suggestions_changed(self) -> None:
        names = {s.name for s in self._c.category_suggestions()}
        new = sorted(names - self._hinted)
        if not new:
            return
        self._hinted |= names
        shown = ", ".join(new[:4]) + (" …" if len(new) > 4 else "")
        self._say(f"The model suggests categories the project lacks ({shown}): Model ▸ "
                  "Suggested Categories…", HINT_MS)
