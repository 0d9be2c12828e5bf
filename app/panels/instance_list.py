"""The instance list (right dock): category, score, source, accepted or pending."""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.project import InstanceRow
from app.text import plural
from mrcnn.keypoints import labelled_count

COLUMNS = ("Category", "Score", "Source", "State")
PENDING_COLOR = QColor("#e0a030")
ID_ROLE = Qt.ItemDataRole.UserRole + 1


@functools.cache
def swatch(color: str, size: int = 12) -> QIcon:
    """A colour square (made once per colour: a hundred rows must not make a hundred). On a
    selected row it has a white rim: a category colour near the selection's own would
    vanish into it."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    icon = QIcon(pixmap)
    rimmed = QPixmap(pixmap)
    painter = QPainter(rimmed)
    painter.setPen(QColor("white"))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    icon.addPixmap(rimmed, QIcon.Mode.Selected)
    return icon


class InstanceListWidget(QWidget):
    """Lists the current image's instances; its selection mirrors the canvas."""

    selection_changed = Signal(list)  # instance ids
    instance_activated = Signal(int)  # double-click: show it

    def __init__(self, parent=None):
        super().__init__(parent)
        self.summary = QLabel("No image")
        self.summary.setStyleSheet("padding: 2px 2px;")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree, 1)
        self._italic = QFont(self.tree.font())
        self._italic.setItalic(True)
        self._items: dict[int, QTreeWidgetItem] = {}
        self._rows: list[InstanceRow] | None = None
        self._shows: Callable[[InstanceRow], bool] = lambda _row: True
        self._quiet = False
        self.tree.itemSelectionChanged.connect(self._on_tree_selection_changed)
        self.tree.itemDoubleClicked.connect(
            lambda item, _col: self.instance_activated.emit(item.data(0, ID_ROLE)))

    def set_rows(self, rows: list[InstanceRow] | None) -> None:
        """Show these instances (None: no image), keeping the selection of those that stay."""
        selected = set(self.selected_ids())
        self._rows = rows
        self._quiet = True
        try:
            self.tree.clear()
            self._items = {row.id: self._make_item(row) for row in rows or []}
            self.tree.addTopLevelItems(list(self._items.values()))
            for iid in selected & self._items.keys():
                self._items[iid].setSelected(True)
        finally:
            self._quiet = False
        self._apply_filter(selected)
        # Clearing a tree that has a selection repaints only the rows that were selected
        # (Qt), leaving the others drawn under "0 instances" until the mouse passes: repaint.
        self.tree.viewport().update()

    def set_row_filter(self, shows: Callable[[InstanceRow], bool]) -> None:
        """Rows for which `shows(row)` is False are hidden (the canvas's filters)."""
        self._shows = shows
        self.refilter()

    def refilter(self) -> None:
        """The filter's settings changed (e.g. the score threshold): re-apply it."""
        self._apply_filter(set(self.selected_ids()))

    def _apply_filter(self, selected_before: set[int]) -> None:
        rows = self._rows
        hidden = 0
        self._quiet = True
        try:
            for row in rows or []:
                item = self._items[row.id]
                hide = not self._shows(row)
                hidden += hide
                item.setHidden(hide)
                if hide:
                    item.setSelected(False)
        finally:
            self._quiet = False
        if rows is None:
            self.summary.setText("No image")
        else:
            pending = sum(r.pending for r in rows)
            text = plural(len(rows), "instance")
            if pending:
                text += f" · {pending} pending"
            if hidden:
                text += f" ({hidden} hidden)"
            self.summary.setText(text)
        if set(self.selected_ids()) != selected_before:
            self.selection_changed.emit(self.selected_ids())

    def visible_count(self) -> int:
        return sum(not item.isHidden() for item in self._items.values())

    def _make_item(self, row: InstanceRow) -> QTreeWidgetItem:
        score = row.instance.score
        points = ""
        if row.schema is not None:  # how many of its keypoints are placed
            points = f"  · {labelled_count(row.instance.keypoints)}/{row.schema.size} points"
        item = QTreeWidgetItem([
            row.category + points,
            f"{score:.2f}" if score is not None else "—",
            row.source,
            "pending" if row.pending else "accepted",
        ])
        item.setData(0, ID_ROLE, row.id)
        item.setIcon(0, swatch(row.color))
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setToolTip(0, f"instance {row.id} · area {row.instance.area} px")
        if row.pending:
            for col in range(len(COLUMNS)):
                item.setFont(col, self._italic)
            item.setForeground(3, PENDING_COLOR)
        return item

    def row_count(self) -> int:
        return self.tree.topLevelItemCount()

    def selected_ids(self) -> list[int]:
        return sorted(item.data(0, ID_ROLE) for item in self.tree.selectedItems())

    def select_ids(self, ids: list[int]) -> None:
        """Select exactly these instances (without echoing selection_changed)."""
        wanted = set(ids)
        self._quiet = True
        try:
            for iid, item in self._items.items():
                item.setSelected(iid in wanted)
            if ids and ids[0] in self._items:
                self.tree.scrollToItem(self._items[ids[0]])
        finally:
            self._quiet = False

    def _on_tree_selection_changed(self) -> None:
        if not self._quiet:
            self.selection_changed.emit(self.selected_ids())
