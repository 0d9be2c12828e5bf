"""Keyboard shortcuts: defaults from `resources/shortcuts.json`, keyed by action name, with
per-action overrides from the user's `shortcuts.json` in the app's config folder.

The user file is validated once, at load time: unknown action names, key sequences Qt cannot
parse and keys already taken by another action are reported as warnings and ignored, so a
typo never breaks the window.

`FieldKeyGuard` decides, for the whole window, when shortcuts do not fire: while a text or
number field has the keyboard, plain keys (letters, digits, Enter, Delete, Esc...) are typing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QStandardPaths, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QKeySequenceEdit,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

log = logging.getLogger(__name__)

DEFAULTS_PATH = Path(__file__).resolve().parent.parent / "resources" / "shortcuts.json"


@dataclass
class ShortcutConfig:
    """Action name → key sequences (portable text, e.g. "Ctrl+O"), and what was ignored."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    user_path: Path | None = None

    def for_action(self, name: str) -> list[QKeySequence]:
        return [QKeySequence(k) for k in self.keys.get(name, [])]

    def text(self, name: str) -> str:
        """The keys of an action as the user reads them ("D, PgDown")."""
        return ", ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText)
                         for k in self.keys.get(name, []))


def user_shortcuts_path() -> Path:
    """Where the user's overrides live (AppConfigLocation/shortcuts.json)."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
    return Path(folder) / "shortcuts.json"


def _read(path: Path, warnings: list[str]) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.append(f"{path}: cannot read shortcuts ({exc}); using the defaults")
        return {}
    if not isinstance(data, dict):
        warnings.append(f"{path}: expected an object of action name → keys; ignored")
        return {}
    out: dict[str, list[str]] = {}
    for name, value in data.items():
        if name.startswith("_"):
            continue  # comments
        keys = [value] if isinstance(value, str) else value
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            warnings.append(f"{path}: {name!r} must be a key or a list of keys; ignored")
            continue
        out[name] = keys
    return out


def _valid(key: str) -> bool:
    seq = QKeySequence(key)
    return not seq.isEmpty() and seq.toString() != "" and seq.count() == 1


def load_shortcuts(actions: list[str], *, defaults_path: Path = DEFAULTS_PATH,
                   user_path: Path | None = None) -> ShortcutConfig:
    """Shortcuts for the known `actions`: defaults, then the user's overrides."""
    config = ShortcutConfig(user_path=user_path)
    merged = {name: [] for name in actions}
    for path in (defaults_path, user_path):
        if path is None:
            continue
        for name, keys in _read(path, config.warnings).items():
            if name not in merged:
                config.warnings.append(f"{path}: unknown action {name!r}; known actions: "
                                       + ", ".join(sorted(merged)))
                continue
            good = []
            for key in keys:
                if _valid(key):
                    good.append(key)
                else:
                    config.warnings.append(f"{path}: {name!r}: {key!r} is not a key sequence")
            merged[name] = good
    taken: dict[str, str] = {}
    for name in actions:
        kept = []
        for key in merged[name]:
            norm = QKeySequence(key).toString()
            if norm in taken:
                config.warnings.append(f"shortcut {key!r} of {name!r} is already used by "
                                       f"{taken[norm]!r}; ignored")
                continue
            taken[norm] = name
            kept.append(key)
        config.keys[name] = kept
    for w in config.warnings:
        log.warning(w)
    return config


#: Text and number fields: while one has the keyboard, plain keys are typing, not shortcuts.
_FIELDS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit, QKeySequenceEdit)
#: Modifiers that still leave a key "plain" (Shift+Y types "Y", keypad digits are digits).
_PLAIN = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
_HAND_BACK = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)


def typing_field(widget: QWidget | None) -> QWidget | None:
    """`widget` if the user can type into it (an editable line, number, text or editable
    combo box), else None."""
    if isinstance(widget, QComboBox):
        return widget if widget.isEditable() else None
    if isinstance(widget, _FIELDS):
        read_only = getattr(widget, "isReadOnly", None)
        return None if read_only is not None and read_only() else widget
    return None


def is_plain_key(event: QKeyEvent) -> bool:
    """No Ctrl, Alt or Meta held, and not a function key (F1 still opens the help)."""
    if event.modifiers() & ~_PLAIN:
        return False
    return not Qt.Key.Key_F1.value <= event.key() <= Qt.Key.Key_F35.value


class FieldKeyGuard(QObject):
    """Keeps the window's plain-key shortcuts (review, digits, tool letters, D / A, Delete,
    Esc) from firing while a text or number field has the keyboard focus; Ctrl shortcuts
    still work. Return or Esc in a field hands the keyboard back to `home` (the canvas), so
    single keys work again.

    Installed on the window: the key events a field leaves unhandled (a shortcut override it
    does not claim, a Return it has acted on) travel up to the window, so one filter covers
    every field, those added later included."""

    def __init__(self, window: QWidget, home: QWidget):
        super().__init__(window)
        self._home = home
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        field = typing_field(QApplication.focusWidget())
        if field is None or not is_plain_key(event):
            return False
        if kind == QEvent.Type.ShortcutOverride:
            event.accept()  # the key goes to the field, not to a shortcut
            return True
        if event.key() in _HAND_BACK:  # the field has taken its value (or given up)
            self._hand_back(field)
            return True
        return False

    def _hand_back(self, field: QWidget) -> None:
        if self._home.isVisible() and self._home.isEnabled():
            self._home.setFocus(Qt.FocusReason.OtherFocusReason)
        else:
            field.clearFocus()
