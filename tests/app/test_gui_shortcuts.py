"""Shortcuts: defaults keyed by action name, user overrides validated once, a help dialog."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from app.actions import ACTIONS
from app.dialogs import ShortcutsDialog
from app.shortcuts import DEFAULTS_PATH, load_shortcuts

NAMES = [a.name for a in ACTIONS]


def test_defaults_cover_every_action_without_conflicts(qapp):
    config = load_shortcuts(NAMES)
    assert config.warnings == []
    defaults = json.loads(DEFAULTS_PATH.read_text())
    assert {k for k in defaults if not k.startswith("_")} == set(NAMES)
    assert config.keys["next_image"] == ["D", "PgDown"]
    assert config.keys["previous_image"] == ["A", "PgUp"]
    assert config.keys["mark_reviewed"] == ["Ctrl+Return", "Ctrl+Enter"]
    assert config.keys["zoom_fit"] == ["F"]


def test_user_file_overrides_and_bad_entries_are_ignored_with_warnings(qapp, tmp_path):
    user = tmp_path / "shortcuts.json"
    user.write_text(json.dumps({
        "next_image": ["N"],  # replaces D / PgDown
        "zoom_fit": [],  # removes F
        "no_such_action": ["X"],
        "accept_all": ["Bogus+Key"],
        "delete_selected": ["N"],  # already taken by next_image
    }))
    config = load_shortcuts(NAMES, user_path=user)
    assert config.keys["next_image"] == ["N"]
    assert config.keys["zoom_fit"] == []
    assert config.keys["accept_all"] == []
    assert config.keys["delete_selected"] == []
    text = "\n".join(config.warnings)
    assert "unknown action 'no_such_action'" in text
    assert "'Bogus+Key' is not a key sequence" in text
    assert "already used by 'next_image'" in text


def test_broken_user_file_keeps_the_defaults(qapp, tmp_path):
    user = tmp_path / "shortcuts.json"
    user.write_text("{not json")
    config = load_shortcuts(NAMES, user_path=user)
    assert config.keys["next_image"] == ["D", "PgDown"]
    assert "cannot read shortcuts" in config.warnings[0]


def test_window_uses_the_user_file(qtbot, make_window, tmp_path, photos_dir):
    (tmp_path / "user_shortcuts.json").write_text(json.dumps({"next_image": ["N"]}))
    window = make_window()
    assert [k.toString() for k in window.actions["next_image"].shortcuts()] == ["N"]
    from gui_helpers import image_id, open_folder

    open_folder(qtbot, window, photos_dir)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")


def test_help_dialog_lists_every_action(qtbot, window):
    dialog = ShortcutsDialog(window.shortcuts, window)
    qtbot.addWidget(dialog)
    rows = {dialog.table.item(r, 2).text(): dialog.table.item(r, 1).text()
            for r in range(dialog.table.rowCount())}
    assert set(rows) == set(NAMES)
    assert rows["next_image"] == "D, PgDown"
    assert rows["zoom_fit"] == "F"
