"""The Model Versions panel: every version with its date, metrics and training images, the
active one marked; Activate, Roll Back and Delete; and one line saying whether the loaded
model's masks are refined with the image. Shows `mrcnn.store.versions.summarize` rows and the
line `mrcnn.serving.refinement.describe_refinement` writes; the controllers do the work."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mrcnn.store.versions import VersionSummary, noise_warning

COLUMNS = ("", "Version", "Created", "Mask AP", "Box AP", "Scored on", "Train images",
           "Iterations", "From", "Keypoint AP")
#: shown only while some version has a keypoint head that was scored
KEYPOINT_AP = COLUMNS.index("Keypoint AP")
SCORED_ON = COLUMNS.index("Scored on")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


class VersionsPanel(QWidget):
    """A table of model versions (newest first) and the buttons that act on them."""

    activate_requested = Signal(int)  # version id
    rollback_requested = Signal()
    delete_requested = Signal(int)  # version id

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.activate_button = QPushButton("Activate")
        self.rollback_button = QPushButton("Roll Back")
        self.rollback_button.setToolTip("Activate the version the active one was trained "
                                        "from (else the one before it)")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected version and its file (not the "
                                      "active one)")
        self.activate_button.clicked.connect(self._on_activate_clicked)
        self.rollback_button.clicked.connect(self.rollback_requested)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self._on_activate_clicked())
        self.refinement = QLabel()
        self.refinement.setToolTip("Whether the loaded model's predicted masks are snapped to "
                                   "image edges: on only where that raised their IoU on the "
                                   "validation images (Model ▸ Check Mask Refinement)")
        buttons = QHBoxLayout()
        for b in (self.activate_button, self.rollback_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.refinement)
        layout.addLayout(buttons)
        self._rows: list[VersionSummary] = []
        self._can_rollback = False
        self._writable = False
        self._update_buttons()

    def set_versions(self, rows: list[VersionSummary], *, can_rollback: bool,
                     writable: bool) -> None:
        selected = self.selected_id()
        self._rows = rows
        self.table.setColumnHidden(KEYPOINT_AP, all(v.keypoint_ap is None for v in rows))
        self._can_rollback, self._writable = can_rollback, writable
        self.table.setRowCount(len(rows))
        for i, v in enumerate(rows):
            cells = ("●" if v.active else "", v.name,
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
                     _num(v.segm_ap), _num(v.bbox_ap),
                     (v.val_text or "—") + (" ⚠" if v.noisy else ""),
                     "—" if v.train_images is None else str(v.train_images),
                     "—" if v.iterations is None else str(v.iterations), v.started_from or "—",
                     _num(v.keypoint_ap))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.id)
                if v.active:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                    item.setToolTip("the active version: it predicts")
                if j == SCORED_ON:
                    item.setToolTip(noise_warning(v.val_images, v.val_instances)
                                    or "the validation images and instances its AP is from")
                if j in (3, 4, 6, 7, KEYPOINT_AP):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        if selected is not None:
            self.select(selected)
        self._update_buttons()

    def set_refinement(self, text: str) -> None:
        """The mask refinement line ("Mask refinement: on (GrabCut, ...)"); "" hides it."""
        self.refinement.setText(text)
        self.refinement.setVisible(bool(text))

    def names(self) -> list[str]:
        return [v.name for v in self._rows]

    def active_name(self) -> str | None:
        return next((v.name for v in self._rows if v.active), None)

    def select(self, version_id: int) -> None:
        for i, v in enumerate(self._rows):
            if v.id == version_id:
                self.table.selectRow(i)
                return

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self._rows):
            return None
        return self._rows[rows[0].row()].id

    def _selected(self) -> VersionSummary | None:
        vid = self.selected_id()
        return next((v for v in self._rows if v.id == vid), None)

    def _update_buttons(self) -> None:
        v = self._selected()
        self.activate_button.setEnabled(self._writable and v is not None and not v.active)
        self.delete_button.setEnabled(self._writable and v is not None and not v.active)
        self.rollback_button.setEnabled(self._writable and self._can_rollback)

    def _on_activate_clicked(self) -> None:
        v = self._selected()
        if v is not None and not v.active and self._writable:
            self.activate_requested.emit(v.id)

    def _on_delete_clicked(self) -> None:
        v = self._selected()
        if v is not None and not v.active:
            self.delete_requested.emit(v.id)
