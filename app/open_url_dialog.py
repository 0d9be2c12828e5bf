"""File ▸ Open URL…: the URL of a folder of images and the local folder its project goes in."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mrcnn.errors import MrcnnError
from mrcnn.io.remote import check_url
from mrcnn.store.project import remote_project_folder

ABOUT = ("Images under s3://, gs://, az://, http(s):// or any other URL fsspec reads (cloud "
         "storage needs its plugin: pip install 'mrcnn-studio[remote]'). Credentials come "
         "from the storage's usual places (environment variables, ~/.aws, gcloud, az login) "
         "and are never stored. Images are read in the background, listed as they arrive, "
         "and kept in a local, bounded cache; annotations stay in the local project folder.")


class OpenUrlDialog(QDialog):
    """A URL and a project folder; the folder follows the URL until the user edits it."""

    def __init__(self, url: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open URL")
        self.url = QLineEdit(url)
        self.url.setPlaceholderText("s3://bucket/images")
        self.folder = QLineEdit()
        self._folder_edited = False
        about = QLabel(ABOUT)
        about.setWordWrap(True)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("URL", self.url)
        form.addRow("Project folder", row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(about)
        layout.addWidget(self.buttons)
        self.url.textChanged.connect(self._on_url_text_changed)
        self.folder.textEdited.connect(self._on_folder_text_edited)
        self._on_url_text_changed(self.url.text())
        self.resize(620, self.sizeHint().height())

    def _on_url_text_changed(self, text: str) -> None:
        try:
            folder = str(remote_project_folder(text))
        except MrcnnError:
            folder = None
        if folder is not None and not self._folder_edited:
            self.folder.setText(folder)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        ok.setEnabled(folder is not None and bool(self.folder.text().strip()))

    def _on_folder_text_edited(self, _text: str) -> None:
        self._folder_edited = True
        self._on_url_text_changed(self.url.text())

    def _browse(self) -> None:
        start = self.folder.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Project folder", str(Path(start).parent))
        if folder:
            self._folder_edited = True
            self.folder.setText(folder)
            self._on_url_text_changed(self.url.text())

    def chosen(self) -> tuple[str, Path]:
        return check_url(self.url.text()), Path(self.folder.text().strip()).expanduser()


def ask_open_url(parent: QWidget | None, url: str = "") -> tuple[str, Path] | None:
    """(URL, project folder) the user chose, or None."""
    dialog = OpenUrlDialog(url, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.chosen()
