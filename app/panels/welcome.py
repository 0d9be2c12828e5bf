"""The empty state: what the window shows before any project is open."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from mrcnn.store.project import PROJECT_DIRNAME


class WelcomeWidget(QWidget):
    """A short welcome, the two ways in, and the recent projects."""

    open_folder_requested = Signal()
    open_project_requested = Signal()
    recent_requested = Signal(str)  # project folder

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        title = QLabel("Mask R-CNN Studio")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        title.setFont(font)
        text = QLabel(
            "Open a folder of images to start. Your images stay where they are; the project "
            "is kept beside them in a hidden <i>.mrcnn-project</i> folder.<br>"
            "Every change is saved the moment you make it — there is nothing to save.")
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setFixedWidth(520)
        text.setMinimumHeight(text.heightForWidth(520))
        self.open_folder = QPushButton("Open Folder…")
        self.open_folder.setDefault(True)
        self.open_folder.setMinimumSize(200, 40)
        self.open_project = QPushButton("Open Project…")
        self.open_project.setMinimumWidth(200)
        self.open_folder.clicked.connect(self.open_folder_requested)
        self.open_project.clicked.connect(self.open_project_requested)
        self._recent_box = QVBoxLayout()
        self._recent_box.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        for w in (title, text, self.open_folder, self.open_project):
            layout.addWidget(w, 0, Qt.AlignmentFlag.AlignHCenter)
            layout.addSpacing(6)
        layout.addSpacing(12)
        layout.addLayout(self._recent_box)
        layout.addStretch(3)

    def set_recent(self, folders: list[str]) -> None:
        while self._recent_box.count():
            item = self._recent_box.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        if not folders:
            return
        head = QLabel("Recent projects")
        head.setStyleSheet("color: palette(mid);")
        self._recent_box.addWidget(head, 0, Qt.AlignmentFlag.AlignHCenter)
        for folder in folders[:6]:
            p = Path(folder)
            name = p.parent.name if p.name == PROJECT_DIRNAME else p.name
            button = QPushButton(f"{name}   —   {folder}")
            button.setFlat(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, f=folder: self.recent_requested.emit(f))
            self._recent_box.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
