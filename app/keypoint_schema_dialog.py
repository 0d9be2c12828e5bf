"""Edit ▸ Keypoint Schema…: give a category keypoints (ordered names and a skeleton), start
from a template (COCO's 17 person keypoints), or remove them. The names' left/right words
give the flip map training uses (`mrcnn.keypoints.derive_flip`); the dialog shows the pairs it
found. Checked by `mrcnn.keypoints` before the dialog closes; applied by the caller as one
undoable step. `ask_keypoint_schema` is what the window (and tests, by monkeypatching) call."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.theme import BAD
from mrcnn.keypoints import TEMPLATES, KeypointError, KeypointSchema
from mrcnn.store.records import Category


@dataclass(frozen=True)
class SchemaChoice:
    category_id: int
    schema: KeypointSchema | None  # None: the category has no keypoints


def schema_from_text(names_text: str, skeleton_text: str) -> KeypointSchema | None:
    """Names one per line; skeleton lines `a - b` (or `a, b`). No names: no schema."""
    names = [n.strip() for n in names_text.splitlines() if n.strip()]
    if not names:
        return None
    pairs = []
    for line in skeleton_text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace(",", " - ").split(" - ") if p.strip()]
        pairs.append(parts)
    return KeypointSchema.from_names(names, pairs)


def schema_to_text(schema: KeypointSchema | None) -> tuple[str, str]:
    if schema is None:
        return "", ""
    return ("\n".join(schema.names),
            "\n".join(f"{schema.names[a]} - {schema.names[b]}" for a, b in schema.skeleton))


class KeypointSchemaDialog(QDialog):
    def __init__(self, parent: QWidget | None, categories: list[Category],
                 current: int | None):
        super().__init__(parent)
        self.setWindowTitle("Keypoint Schema")
        self.categories = categories
        self.category = QComboBox()
        for c in categories:
            self.category.addItem(c.name, c.id)
        self.names = QPlainTextEdit()
        self.names.setPlaceholderText("one name per line, in order (left_eye, right_eye, …)")
        self.skeleton = QPlainTextEdit()
        self.skeleton.setPlaceholderText("one line per bone: left_eye - right_eye")
        self.flip = QLabel()
        self.flip.setWordWrap(True)
        self.error = QLabel()
        self.error.setStyleSheet(f"color: {BAD.name()}")
        self.error.setWordWrap(True)
        templates = QHBoxLayout()
        for title, schema in TEMPLATES.items():
            button = QPushButton(f"Use {title}")
            button.clicked.connect(lambda _=False, s=schema: self._show(s))
            templates.addWidget(button)
        clear = QPushButton("No keypoints")
        clear.clicked.connect(lambda: self._show(None))
        templates.addWidget(clear)
        form = QFormLayout()
        form.addRow("Category", self.category)
        form.addRow("Keypoints", self.names)
        form.addRow("Skeleton", self.skeleton)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(templates)
        layout.addWidget(self.flip)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.category.currentIndexChanged.connect(self._category_changed)
        self.names.textChanged.connect(self._check)
        self.skeleton.textChanged.connect(self._check)
        self.choice: SchemaChoice | None = None
        index = self.category.findData(current) if current is not None else 0
        self.category.setCurrentIndex(max(index, 0))
        self._category_changed()

    def _category_changed(self) -> None:
        cid = self.category.currentData()
        cat = next((c for c in self.categories if c.id == cid), None)
        self._show(cat.keypoints if cat else None)

    def _show(self, schema: KeypointSchema | None) -> None:
        names, skeleton = schema_to_text(schema)
        self.names.setPlainText(names)
        self.skeleton.setPlainText(skeleton)
        self._check()

    def _check(self) -> KeypointSchema | None:
        try:
            schema = schema_from_text(self.names.toPlainText(), self.skeleton.toPlainText())
        except KeypointError as exc:
            self.error.setText(str(exc))
            self.flip.setText("")
            return None
        self.error.setText("")
        if schema is None:
            self.flip.setText("No keypoints: the category has masks only.")
            return None
        flip = schema.flip_indices()
        pairs = [f"{schema.names[i]} ↔ {schema.names[j]}" for i, j in enumerate(flip) if i < j]
        self.flip.setText(f"{schema.size} keypoints. Mirrored in training: "
                          + (", ".join(pairs) if pairs else "none (no left/right names)"))
        return schema

    def _accept(self) -> None:
        schema = self._check()
        if self.error.text():
            return  # stays open: the message says what to mend
        self.choice = SchemaChoice(self.category.currentData(), schema)
        self.accept()


def ask_keypoint_schema(parent: QWidget | None, categories: list[Category],
                        current: int | None) -> SchemaChoice | None:
    if not categories:
        return None
    dialog = KeypointSchemaDialog(parent, categories, current)
    return dialog.choice if dialog.exec() == QDialog.DialogCode.Accepted else None
