"""The Errors panel: a model version's errors on the validation split (false positives,
missed instances, poor fits), what changed since its parent version, and the label suspects
of the reviewed images — lists sortable by any column; a click shows the image with the mask
highlighted. Shows what `mrcnn.training.error_analysis` and `mrcnn.training.label_hints` found;
the controller (`app/controllers/errors.py`) does the work."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mrcnn.store.suspect_checks import SuspectCheck
from mrcnn.training.error_analysis import KIND_LABELS, ErrorDiff, ErrorList, FoundError
from mrcnn.training.label_hints import SUSPECT_LABELS, Suspect

ERROR_COLUMNS = ("Image", "Kind", "Category", "IoU", "Score", "Since parent", "Note")
SUSPECT_COLUMNS = ("Rank score", "Image", "Kind", "Category", "Suggested", "Note")
#: The Show box's views of the error list.
VIEWS = ("all", "new", "fixed")
LEGEND = ("Yellow: the accepted instance · cyan, dashed: the prediction")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
CHECK_ROLE = Qt.ItemDataRole.UserRole + 2  # the SuspectCheck of a suspect found right
MARK_RIGHT = "Label Is Right"
TAKE_BACK = "List It Again"
RIGHT_TIP = ("You looked, and the label is right (or there is nothing to label there): keep "
             "that in the project, so later searches leave it out")


class SortableItem(QTreeWidgetItem):
    """A row that sorts by each column's sort key (numbers as numbers), not its text."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else 0
        mine, theirs = self.data(column, SORT_ROLE), other.data(column, SORT_ROLE)
        if mine is None or theirs is None or type(mine) is not type(theirs):
            return self.text(column) < other.text(column)
        return mine < theirs


def _tree(columns: tuple[str, ...]) -> QTreeWidget:
    tree = QTreeWidget()
    tree.setColumnCount(len(columns))
    tree.setHeaderLabels(list(columns))
    tree.setRootIsDecorated(False)
    tree.setUniformRowHeights(True)
    tree.setAlternatingRowColors(True)
    tree.setSortingEnabled(True)
    header = tree.header()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return tree


def _row(cells: list[tuple[str, object]], payload: object) -> SortableItem:
    item = SortableItem([text for text, _key in cells])
    for j, (_text, key) in enumerate(cells):
        item.setData(j, SORT_ROLE, key)
    item.setData(0, Qt.ItemDataRole.UserRole, payload)
    return item


def _num(value: float | None) -> tuple[str, float]:
    return ("—", -1.0) if value is None else (f"{value:.2f}", float(value))


class ErrorsPanel(QWidget):
    """Two tabs: Errors (one version's list, and its changes since the parent) and Label
    Suspects. Rows carry their FoundError / Suspect; activating one emits it."""

    version_chosen = Signal(str)  # a version name
    error_activated = Signal(object)  # FoundError
    suspect_activated = Signal(object)  # Suspect
    find_errors_requested = Signal()
    find_suspects_requested = Signal()
    mark_right_requested = Signal(object)  # Suspect: the person found its label right
    take_back_requested = Signal(object)  # SuspectCheck: list its suspect again

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tabs = QTabWidget()
        # ---- errors
        self.version = QComboBox()
        self.version.setToolTip("The model version whose errors are listed")
        self.view = QComboBox()
        self.view.setToolTip("Every error of the version, or what changed since the version "
                             "it was trained from (on the validation images both were scored on)")
        self.find_errors_button = QPushButton("Find Errors")
        self.find_errors_button.setToolTip("Predict the reviewed validation images with the "
                                           "loaded model version and list its errors")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.errors = _tree(ERROR_COLUMNS)
        top = QHBoxLayout()
        top.addWidget(QLabel("Version"))
        top.addWidget(self.version)
        top.addWidget(QLabel("Show"))
        top.addWidget(self.view, 1)
        top.addWidget(self.find_errors_button)
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(4, 4, 4, 4)
        column.addLayout(top)
        column.addWidget(self.summary)
        column.addWidget(self.errors, 1)
        self.tabs.addTab(page, "Errors")
        # ---- suspects
        self.find_suspects_button = QPushButton("Find Label Suspects")
        self.find_suspects_button.setToolTip(
            "Predict the reviewed images with the loaded model and list the labels a "
            "confident prediction disagrees with")
        self.suspects_summary = QLabel("Labels on reviewed images that the loaded model "
                                       "confidently disagrees with, worth a second look.")
        self.suspects_summary.setWordWrap(True)
        self.suspects = _tree(SUSPECT_COLUMNS)
        self.right_button = QPushButton(MARK_RIGHT)
        self.right_button.setToolTip(RIGHT_TIP)
        self.right_button.setEnabled(False)
        self.show_right = QCheckBox("Show found right")
        self.show_right.setToolTip("Also list the suspects found right earlier (greyed); "
                                   f"{TAKE_BACK} takes one back")
        top = QHBoxLayout()
        top.addWidget(self.suspects_summary, 1)
        top.addWidget(self.show_right)
        top.addWidget(self.right_button)
        top.addWidget(self.find_suspects_button)
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(4, 4, 4, 4)
        column.addLayout(top)
        column.addWidget(self.suspects, 1)
        self.tabs.addTab(page, "Label Suspects")
        legend = QLabel(LEGEND)
        legend.setToolTip("How the canvas highlights the row you click")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(legend)

        self._can_mark = True
        self._open: list[Suspect] = []
        self._answered: list[tuple[Suspect, SuspectCheck]] = []
        self._suspect_names: dict[int, str] = {}
        self._suspect_text = ""
        self._list: ErrorList | None = None
        self._diff: ErrorDiff | None = None
        self._names: dict[int, str] = {}
        self._message = ""
        self._quiet = False
        self.version.currentTextChanged.connect(self._on_version_current_text_changed)
        self.view.currentIndexChanged.connect(lambda _i: self._fill_errors())
        self.find_errors_button.clicked.connect(self.find_errors_requested)
        self.find_suspects_button.clicked.connect(self.find_suspects_requested)
        self.right_button.clicked.connect(self._on_right_button_clicked)
        self.show_right.toggled.connect(lambda _on: self._fill_suspects())
        self.suspects.currentItemChanged.connect(lambda *_a: self._update_right_button())
        for tree, signal in ((self.errors, self.error_activated),
                             (self.suspects, self.suspect_activated)):
            tree.itemClicked.connect(lambda item, _c, s=signal: self._emit(s, item))
            tree.itemActivated.connect(lambda item, _c, s=signal: self._emit(s, item))
            tree.currentItemChanged.connect(lambda item, _p, s=signal: self._emit(s, item))
        self._set_views(None)

    # ---------------------------------------------------------------- versions
    def set_versions(self, names: list[str], current: str | None) -> None:
        """The versions to choose from (newest first) and the one to show (no signal)."""
        self._quiet = True
        try:
            self.version.clear()
            self.version.addItems(names)
            if current in names:
                self.version.setCurrentText(current)
        finally:
            self._quiet = False

    def chosen_version(self) -> str | None:
        return self.version.currentText() or None

    def _on_version_current_text_changed(self, name: str) -> None:
        if not self._quiet and name:
            self.version_chosen.emit(name)

    # ---------------------------------------------------------------- errors
    def set_errors(self, found: ErrorList | None, diff: ErrorDiff | None,
                   image_names: dict[int, str], message: str = "") -> None:
        """Show a version's error list (None: `message` says why there is none) and its
        changes since the parent (None: nothing to compare with)."""
        self._list, self._diff, self._names, self._message = found, diff, image_names, message
        self._set_views(diff)
        self._fill_errors()

    def _set_views(self, diff: ErrorDiff | None) -> None:
        parent = diff.before if diff else "the parent"
        texts = ("All errors", f"New since {parent}", f"Fixed since {parent}")
        was = max(0, self.view.currentIndex())
        self.view.blockSignals(True)
        self.view.clear()
        self.view.addItems(list(texts))
        for i in (1, 2):  # no comparison: only "All errors"
            self.view.model().item(i).setEnabled(diff is not None)
        self.view.setCurrentIndex(was if diff is not None else 0)
        self.view.blockSignals(False)

    def set_view(self, view: str) -> None:
        """Show "all" errors, the "new" ones or the "fixed" ones (VIEWS)."""
        self.view.setCurrentIndex(VIEWS.index(view))

    def current_view(self) -> str:
        return VIEWS[max(0, self.view.currentIndex())]

    def shown_errors(self) -> list[FoundError]:
        """The errors the list shows, in its current order."""
        return [self.errors.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.errors.topLevelItemCount())]

    def error_item(self, error: FoundError) -> QTreeWidgetItem | None:
        for i in range(self.errors.topLevelItemCount()):
            item = self.errors.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) is error:
                return item
        return None

    def _fill_errors(self) -> None:
        found, diff = self._list, self._diff
        view = self.current_view()
        self.errors.setSortingEnabled(False)
        self.errors.clear()
        if found is None:
            self.summary.setText(self._message)
            self.errors.setSortingEnabled(True)
            return
        if view == "all" or diff is None:
            shown = list(found.errors)
        else:
            shown = list(diff.introduced if view == "new" else diff.fixed)
        new = set(map(id, diff.introduced)) if diff else set()
        parent = diff.before if diff else None
        for e in shown:
            since = ("fixed" if view == "fixed" else "new" if id(e) in new
                     else "—" if parent is None else "as before")
            name = self._names.get(e.image_id, f"image {e.image_id}")
            self.errors.addTopLevelItem(_row([
                (name, name.lower()), (KIND_LABELS[e.kind], str(e.kind)), (e.category, e.category),
                _num(e.iou), _num(e.score), (since, since), (e.describe(), e.describe())], e))
        self.errors.setSortingEnabled(True)
        lines = [found.describe()]
        if diff is not None:
            lines.append(diff.describe())
        elif self._message:
            lines.append(self._message)
        lines.append(found.rule())
        if found.skipped:
            lines.append(f"{len(found.skipped)} unreadable image(s) skipped")
        self.summary.setText("\n".join(lines))

    # ---------------------------------------------------------------- suspects
    def set_suspects(self, suspects: list[Suspect], image_names: dict[int, str], text: str,
                     answered: list[tuple[Suspect, SuspectCheck]] | None = None,
                     select_row: int | None = None) -> None:
        """Show the open label suspects (best first), those found right earlier (`answered`,
        listed greyed when Show found right is on) and a line about them; `select_row`
        makes that row current (clamped to the list)."""
        self._open, self._answered = list(suspects), list(answered or [])
        self._suspect_names, self._suspect_text = image_names, text
        self._fill_suspects(select_row)

    def _fill_suspects(self, select_row: int | None = None) -> None:
        tree = self.suspects
        tree.blockSignals(True)  # rebuilding the rows is not the person choosing one
        tree.setSortingEnabled(False)
        tree.clear()
        rows = [(s, None) for s in self._open]
        if self.show_right.isChecked():
            rows += self._answered
        grey = QBrush(QColor("#8a8a8a"))
        for rank, (s, check) in enumerate(rows):
            name = self._suspect_names.get(s.image_id, f"image {s.image_id}")
            note = s.describe() if check is None else f"found right · {s.describe()}"
            item = _row([
                (f"{s.score:.2f}", s.score - rank * 1e-9 - (2.0 if check else 0.0)),
                (name, name.lower()), (SUSPECT_LABELS[s.kind], str(s.kind)),
                (s.category, s.category), (s.suggested or "—", s.suggested or ""),
                (note, note)], s)
            if check is not None:
                item.setData(0, CHECK_ROLE, check)
                font = QFont(tree.font())
                font.setItalic(True)
                for j in range(len(SUSPECT_COLUMNS)):
                    item.setForeground(j, grey)
                    item.setFont(j, font)
            tree.addTopLevelItem(item)
        tree.sortItems(0, Qt.SortOrder.DescendingOrder)  # best first, found right last
        tree.setSortingEnabled(True)
        tree.blockSignals(False)
        text = self._suspect_text
        if self._answered:
            text += (f" · {len(self._answered)} found right earlier"
                     + ("" if self.show_right.isChecked() else ", not listed"))
        self.suspects_summary.setText(text)
        if select_row is not None and tree.topLevelItemCount():
            tree.setCurrentItem(tree.topLevelItem(min(select_row,
                                                      tree.topLevelItemCount() - 1)))
        self._update_right_button()

    def found_right_shown(self) -> list[Suspect]:
        """The suspects found right that the list shows (greyed)."""
        return [self.suspects.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.suspects.topLevelItemCount())
                if self.suspects.topLevelItem(i).data(0, CHECK_ROLE) is not None]

    def set_can_mark(self, on: bool) -> None:
        """Whether labels found right can be kept (not in a project open read-only)."""
        self._can_mark = on
        self.right_button.setToolTip(RIGHT_TIP if on else "The project is open read-only: "
                                     "a label found right cannot be kept")
        self._update_right_button()

    def _update_right_button(self) -> None:
        item = self.suspects.currentItem()
        check = item.data(0, CHECK_ROLE) if item is not None else None
        self.right_button.setText(TAKE_BACK if check is not None else MARK_RIGHT)
        self.right_button.setEnabled(item is not None and self._can_mark)

    def _on_right_button_clicked(self) -> None:
        item = self.suspects.currentItem()
        if item is None:
            return
        check = item.data(0, CHECK_ROLE)
        if check is not None:
            self.take_back_requested.emit(check)
        else:
            self.mark_right_requested.emit(item.data(0, Qt.ItemDataRole.UserRole))

    def current_suspect_row(self) -> int:
        item = self.suspects.currentItem()
        return self.suspects.indexOfTopLevelItem(item) if item is not None else -1

    def shown_suspects(self) -> list[Suspect]:
        return [self.suspects.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.suspects.topLevelItemCount())]

    def suspect_item(self, suspect: Suspect) -> QTreeWidgetItem | None:
        for i in range(self.suspects.topLevelItemCount()):
            item = self.suspects.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) is suspect:
                return item
        return None

    def _emit(self, signal, item: QTreeWidgetItem | None) -> None:
        if item is not None:
            payload = item.data(0, Qt.ItemDataRole.UserRole)
            if payload is not None:
                signal.emit(payload)
