"""Keyboard shortcuts: defaults from `resources/shortcuts.json`, keyed by action name, with
per-action overrides from the user's `shortcuts.json` in the app's config folder.

The user file is validated once, at load time: unknown action names, key sequences Qt cannot
parse and keys already taken by another action are reported as warnings and ignored, so a
typo never breaks the window.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QKeySequence

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
