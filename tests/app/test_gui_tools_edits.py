"""Mask actions, categories and undo/redo, driven by key presses on the window: fill holes,
remove specks, split, merge, digit keys, new/rename/merge category, undo and redo of every
kind of step (accept and reject included). Masks are read back from a second, read-only
open of the project."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import wait_image_shown
from PySide6.QtCore import Qt
from tool_helpers import box, disc, make_tool_scene

from app.panels import category_box
from mrcnn import masks

K = Qt.Key
MOD = Qt.KeyboardModifier


@pytest.fixture
def tool_scene(qtbot, window, tmp_path):
    return make_tool_scene(qtbot, window, tmp_path)


def test_fill_holes_fills_exactly_the_hole(qtbot, tool_scene):
    s = tool_scene
    outer = disc((70, 70), 30)
    iid = s.add(qtbot, outer & ~disc((70, 70), 10))
    s.click(qtbot, 45, 70)
    assert s.canvas.selected_ids() == [iid]
    s.key(qtbot, K.Key_H)
    assert np.array_equal(s.stored()[iid], outer)
    assert s.window.saved_label.text() == "All changes saved"


def test_remove_specks_drops_parts_below_the_area(qtbot, tool_scene):
    s = tool_scene
    square = box(20, 20, 60, 60)
    iid = s.add(qtbot, square | box(100, 100, 103, 103))  # a 9-pixel speck
    s.click(qtbot, 40, 40)
    s.window.edits.speck_area.setValue(10)
    s.key(qtbot, K.Key_K)
    assert np.array_equal(s.stored()[iid], square)


def test_split_makes_each_part_an_instance(qtbot, tool_scene):
    s = tool_scene
    big, small = box(20, 20, 70, 70), box(120, 120, 140, 140)
    iid = s.add(qtbot, big | small)
    s.click(qtbot, 40, 40)
    s.key(qtbot, K.Key_X)
    stored = s.stored()
    assert len(stored) == 2 and np.array_equal(stored[iid], big)
    (other,) = set(stored) - {iid}
    assert np.array_equal(stored[other], small)
    assert set(s.stored_categories().values()) == {s.category_id}
    qtbot.waitUntil(lambda: len(s.canvas.instance_items()) == 2, timeout=5000)


def test_merge_selected_makes_one_instance(qtbot, tool_scene):
    s = tool_scene
    a, b = box(20, 20, 50, 50), box(100, 30, 130, 90)
    s.add(qtbot, a)
    larger = s.add(qtbot, b)
    s.key(qtbot, K.Key_A, MOD.ControlModifier)  # select all
    assert len(s.canvas.selected_ids()) == 2
    s.key(qtbot, K.Key_M)
    stored = s.stored()
    # one instance, the union, kept under the largest one's id (and category)
    assert list(stored) == [larger] and np.array_equal(stored[larger], a | b)


def test_digit_keys_and_dropdown_change_the_category(qtbot, tool_scene):
    s = tool_scene
    other = s.doc.add_category("other")
    iid = s.add(qtbot, box(20, 20, 60, 60))
    s.click(qtbot, 40, 40)
    s.key(qtbot, K.Key_2)
    assert s.stored_categories()[iid] == other.id
    combo = s.window.edits.categories.box
    assert combo.currentData() == other.id and "other" in combo.currentText()
    s.key(qtbot, K.Key_1)
    assert s.stored_categories()[iid] == s.category_id
    # the dropdown does the same
    combo.activated.emit(combo.findData(other.id))
    assert s.stored_categories()[iid] == other.id
    # nothing selected: the digit picks the category of the next new instance
    s.key(qtbot, K.Key_Escape)
    s.key(qtbot, K.Key_1)
    s.key(qtbot, K.Key_B)
    s.drag(qtbot, [(150, 150), (160, 150)])
    new = set(s.stored()) - {iid}
    assert len(new) == 1 and s.stored_categories()[new.pop()] == s.category_id


def test_undo_and_redo_keys_restore_masks_exactly(qtbot, tool_scene):
    s = tool_scene
    base = box(20, 120, 60, 160)
    iid = s.add(qtbot, base)
    s.click(qtbot, 40, 140)
    s.key(qtbot, K.Key_B)
    s.window.edits.brush_size.setValue(5)
    s.drag(qtbot, [(58, 140), (100, 150)])
    after = s.stored()[iid]
    assert not np.array_equal(after, base)
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert np.array_equal(s.stored()[iid], base)
    s.key(qtbot, K.Key_Z, MOD.ControlModifier | MOD.ShiftModifier)
    assert np.array_equal(s.stored()[iid], after)
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    s.key(qtbot, K.Key_Y, MOD.ControlModifier)
    assert np.array_equal(s.stored()[iid], after)
    # undo again and again: back to before the instance existed
    for _ in range(2):
        s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert s.stored() == {}
    edit_menu = next(m for m in s.window.menuBar().findChildren(type(s.window.recent_menu))
                     if m.title() == "&Edit")
    assert {s.window.actions["undo"], s.window.actions["redo"]} <= set(edit_menu.actions())


def test_accept_and_reject_are_undoable(qtbot, tool_scene):
    s = tool_scene
    w = s.window
    rle = masks.encode(box(20, 20, 60, 60))
    (pred,) = w.controller.store_predictions(s.image_id, "test-model", [(s.category_id, rle,
                                                                          0.9)])
    qtbot.waitUntil(lambda: pred.id in s.canvas.instance_items(), timeout=5000)
    s.click(qtbot, 40, 40)
    s.key(qtbot, K.Key_Y)  # accept
    assert w.controller.project.instance(pred.id).state == "accepted"
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert w.controller.project.instance(pred.id).state == "pending"
    s.click(qtbot, 40, 40)
    s.key(qtbot, K.Key_Delete)  # reject
    assert s.stored() == {}
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    restored = w.controller.project.instance(pred.id)
    assert restored.state == "pending" and restored.rle == rle and restored.score == 0.9


def test_new_rename_and_merge_categories_are_undoable(qtbot, tool_scene, monkeypatch):
    s = tool_scene
    w = s.window
    project = w.controller.project
    iid = s.add(qtbot, box(20, 20, 60, 60))
    s.click(qtbot, 40, 40)
    # New category… from the dropdown: made and given to the selected instance
    monkeypatch.setattr(category_box, "ask_category_name", lambda *_a, **_k: "cat")
    combo = w.edits.categories.box
    combo.activated.emit(combo.findText(category_box.NEW_ITEM))
    cat = project.category_by_name("cat")
    assert cat is not None and s.stored_categories()[iid] == cat.id
    # rename "thing" → "animal", project-wide; undo brings the old name back
    monkeypatch.setattr(category_box, "ask_category", lambda *_a: "thing")
    monkeypatch.setattr(category_box, "ask_category_name", lambda *_a, **_k: "animal")
    w.actions["rename_category"].trigger()
    assert {c.name for c in project.categories()} == {"animal", "cat"}
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert {c.name for c in project.categories()} == {"thing", "cat"}
    # merge "cat" into "thing": the instance follows; undo gives it back
    answers = iter(["cat", "thing"])
    monkeypatch.setattr(category_box, "ask_category", lambda *_a: next(answers))
    w.actions["merge_categories"].trigger()
    assert [c.name for c in project.categories()] == ["thing"]
    assert s.stored_categories()[iid] == s.category_id
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert s.stored_categories()[iid] == cat.id
    assert {c.name for c in project.categories()} == {"thing", "cat"}
    assert "cat" in [combo.itemText(i).split()[-1] for i in range(combo.count())]


def test_each_image_has_its_own_undo_history(qtbot, window, tmp_path):
    s = make_tool_scene(qtbot, window, tmp_path, images=2)
    first = s.image_id
    iid = s.add(qtbot, box(20, 20, 60, 60))
    s.key(qtbot, K.Key_D)  # next image
    second = window.image_list.current_id
    assert second != first
    wait_image_shown(qtbot, window, second)
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)  # nothing done here: nothing undone anywhere
    assert iid in s.stored()
    s.key(qtbot, K.Key_A)  # back to the first image
    wait_image_shown(qtbot, window, first)
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert s.stored() == {}
