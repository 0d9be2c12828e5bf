"""Small dialogs and the message boxes of the window.

The window calls these module functions (never QMessageBox/QFileDialog directly), so tests
replace them with `monkeypatch.setattr(dialogs, "...", ...)` and no modal box ever blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.actions import ACTIONS
from app.shortcuts import ShortcutConfig
from app.text import plural
from mrcnn.coco.formats import FORMATS
from mrcnn.io.remote import is_url


# ---------------------------------------------------------------- messages
def show_error(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.critical(parent, title, text)


def show_info(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_open_read_only(parent: QWidget | None, text: str) -> bool:
    """The project is locked by another process: open it read-only instead?"""
    box = QMessageBox(QMessageBox.Icon.Warning, "Project in use", text,
                      QMessageBox.StandardButton.Cancel, parent)
    read_only = box.addButton("Open Read-Only", QMessageBox.ButtonRole.AcceptRole)
    box.exec()
    return box.clickedButton() is read_only


# ---------------------------------------------------------------- file choosers
def choose_folder(parent: QWidget | None, title: str, start: str = "") -> str | None:
    folder = QFileDialog.getExistingDirectory(parent, title, start)
    return folder or None


def choose_open_file(parent: QWidget | None, title: str, start: str = "",
                     filter_: str = "COCO JSON (*.json);;All files (*)") -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, start, filter_)
    return path or None


def choose_save_file(parent: QWidget | None, title: str, start: str = "",
                     filter_: str = "COCO JSON (*.json)") -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, start, filter_)
    return path or None


def _path_row(edit: QLineEdit, browse) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    row.addWidget(button)
    return row


# ---------------------------------------------------------------- export
def _format_combo() -> QComboBox:
    combo = QComboBox()
    for f in FORMATS.values():
        combo.addItem(f.title, f.name)
    return combo


@dataclass(frozen=True)
class ExportOptions:
    path: Path
    mask_format: str  # "rle" | "polygon" (COCO only)
    reviewed_only: bool
    format: str = "coco"  # a name in mrcnn.coco.formats.FORMATS


class ExportDialog(QDialog):
    """Which format, where to write it (a file for COCO, a folder for the others), RLE or
    polygons for COCO, reviewed images only or all."""

    def __init__(self, default_path: str, parent: QWidget | None = None,
                 folder_default: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.format = _format_combo()
        self.path = QLineEdit(default_path)
        self._where = QLabel("File")
        self.rle = QRadioButton("RLE (exact masks, holes kept)")
        self.polygon = QRadioButton("Polygons (RLE where a polygon would lose pixels)")
        self.rle.setChecked(True)
        self.reviewed_only = QCheckBox("Reviewed images only")
        self.reviewed_only.setChecked(True)
        self.reviewed_only.setToolTip("Only images marked reviewed; accepted instances only "
                                      "(pending predictions are never exported)")
        self.about = QLabel()
        self.about.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow(self._where, _path_row(self.path, self._browse))
        masks = QVBoxLayout()
        masks.addWidget(self.rle)
        masks.addWidget(self.polygon)
        self._masks_label = QLabel("Masks")
        form.addRow(self._masks_label, masks)
        form.addRow("", self.reviewed_only)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.about)
        layout.addWidget(buttons)
        # Folder exports go beside the images folder by default, never inside it: a later
        # scan would take the images a format copies (YOLO, VOC) for new ones.
        self._file_folder = str(Path(default_path).parent)
        self._folder_folder = folder_default or self._file_folder
        self.format.currentIndexChanged.connect(self._on_format_changed)
        self._on_format_changed()

    def _chosen(self):
        return FORMATS[self.format.currentData()]

    def _on_format_changed(self) -> None:
        f = self._chosen()
        to_file = f.output == "file"
        self._where.setText("File" if to_file else "Folder")
        for w in (self.rle, self.polygon, self._masks_label):
            w.setVisible(to_file)
        self.about.setText(f.describe[0].upper() + f.describe[1:] + "."
                           + ("" if to_file else " Written whole into a new or empty folder "
                              "(an earlier export there is replaced)."))
        text = self.path.text().strip()
        if text and Path(text).parent not in (Path(self._file_folder),
                                              Path(self._folder_folder)):
            folder = str(Path(text).parent)  # the user chose a place: keep it
        else:
            folder = self._file_folder if to_file else self._folder_folder
        self.path.setText(str(Path(folder) / ("annotations.json" if to_file
                                              else f"export-{f.name}")))

    def _browse(self) -> None:
        if self._chosen().output == "file":
            path = choose_save_file(self, "Export COCO", self.path.text())
            if path:
                self.path.setText(path if path.endswith(".json") else path + ".json")
        else:
            folder = choose_folder(self, "Export into folder", self.path.text())
            if folder:
                self.path.setText(folder)

    def options(self) -> ExportOptions:
        return ExportOptions(Path(self.path.text().strip()),
                             "polygon" if self.polygon.isChecked() else "rle",
                             self.reviewed_only.isChecked(), self.format.currentData())


def ask_export_options(parent: QWidget | None, default_path: str,
                       folder_default: str | None = None) -> ExportOptions | None:
    dialog = ExportDialog(default_path, parent, folder_default)
    if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.path.text().strip():
        return None
    return dialog.options()


# ---------------------------------------------------------------- import
@dataclass(frozen=True)
class ImportOptions:
    path: Path
    images_dir: Path | str | None  # a folder or a URL; None: the format's own place
    status: str  # "reviewed" | "in_review"
    format: str = "coco"  # a name in mrcnn.coco.formats.FORMATS


class ImportDialog(QDialog):
    """Which format and file or folder, where its images are, and what the annotated images
    become."""

    def __init__(self, start: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import")
        self.format = _format_combo()
        self.path = QLineEdit()
        self._what = QLabel("COCO file")
        self.images = QLineEdit()
        self.status = QComboBox()
        self.status.addItem("Reviewed (finished work)", "reviewed")
        self.status.addItem("In review (to be checked)", "in_review")
        self._start = start
        self.about = QLabel()
        self.about.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow(self._what, _path_row(self.path, self._browse_file))
        form.addRow("Images folder", _path_row(self.images, self._browse_images))
        form.addRow("Annotated images are", self.status)
        note = QLabel("Everything is checked first and imported in one step: "
                      "if any record is bad, nothing changes.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.about)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.format.currentIndexChanged.connect(self._on_format_changed)
        self._on_format_changed()

    def _chosen(self):
        return FORMATS[self.format.currentData()]

    def _on_format_changed(self) -> None:
        f = self._chosen()
        self._what.setText("COCO file" if f.source == "file" else "Folder")
        self.images.setPlaceholderText(
            "the JSON file's folder" if f.source == "file" else
            "the project's images folder" if f.images_default == "project" else
            "where the format keeps them")
        self.about.setText(f.describe[0].upper() + f.describe[1:] + ".")

    def _browse_file(self) -> None:
        if self._chosen().source == "file":
            path = choose_open_file(self, "Import COCO", self.path.text() or self._start)
        else:
            path = choose_folder(self, f"Import {self._chosen().title}",
                                 self.path.text() or self._start)
        if path:
            self.path.setText(path)

    def _browse_images(self) -> None:
        folder = choose_folder(self, "Images folder", self.images.text() or self._start)
        if folder:
            self.images.setText(folder)

    def options(self) -> ImportOptions:
        images = self.images.text().strip()
        return ImportOptions(Path(self.path.text().strip()),
                             (images if is_url(images) else Path(images)) if images else None,
                             self.status.currentData(), self.format.currentData())


def ask_import_options(parent: QWidget | None, start: str) -> ImportOptions | None:
    dialog = ImportDialog(start, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.path.text().strip():
        return None
    return dialog.options()


# ---------------------------------------------------------------- shortcuts
class ShortcutsDialog(QDialog):
    """Every action and its keys, and where to change them."""

    def __init__(self, config: ShortcutConfig, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(560, 560)
        self.table = QTableWidget(len(ACTIONS), 3)
        self.table.setHorizontalHeaderLabels(["Action", "Keys", "Name"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, spec in enumerate(ACTIONS):
            self.table.setItem(row, 0, QTableWidgetItem(spec.text.replace("&", "")))
            self.table.setItem(row, 1, QTableWidgetItem(config.text(spec.name) or "—"))
            self.table.setItem(row, 2, QTableWidgetItem(spec.name))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        extra = ("Canvas: mouse wheel zooms · drag with Space held or the middle button to pan"
                 " · click selects, Ctrl+click adds · drag on empty space selects several")
        where = (f"To change a shortcut, put {{\"name\": [\"keys\"]}} in "
                 f"{config.user_path}" if config.user_path else "")
        text = "\n".join(t for t in (extra, where, *config.warnings) if t)
        info = QLabel(text)
        info.setWordWrap(True)
        info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(info)
        layout.addWidget(buttons)


class UnreadableFilesDialog(QDialog):
    """The files the last scan of the images folder could not read, and why (not modal: it
    stays open beside the window)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Unreadable Files")
        self.resize(720, 360)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def set_files(self, folder: Path, skipped: list[tuple[str, str]]) -> None:
        """`skipped`: (path, reason) per file, as the scan report lists them."""
        self.summary.setText(
            f"{plural(len(skipped), 'file')} in {folder} could not be read and "
            f"{'is' if len(skipped) == 1 else 'are'} not in the project. Fix or remove "
            "them, then open the folder again to scan it again." if skipped else
            f"Every image file in {folder} could be read.")
        self.table.setRowCount(len(skipped))
        for row, (path, reason) in enumerate(skipped):
            shown = Path(path)
            if shown.is_relative_to(folder):
                shown = shown.relative_to(folder)
            item = QTableWidgetItem(str(shown))
            item.setToolTip(path)
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem(reason))

    def rows(self) -> list[tuple[str, str]]:
        """(file, reason) as shown."""
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text())
                for r in range(self.table.rowCount())]
