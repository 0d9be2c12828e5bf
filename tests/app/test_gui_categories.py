"""Categories in the window beyond the first nine and beyond what the user made: a model's
classes are only suggested (Accept / Map to… / Ignore), Edit ▸ Delete Category… is one
undoable step, and `C` + a few letters + Enter picks any category from the keyboard."""

from __future__ import annotations

import shutil

import pytest
from gui_helpers import open_folder, press, type_text, wait_model_ready
from model_fixtures import CATEGORIES, FAST
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QComboBox, QInputDialog
from tool_helpers import box, make_tool_scene

from app.panels import category_box, category_suggestions

K = Qt.Key
MOD = Qt.KeyboardModifier


@pytest.fixture
def coco_like_project(photos_dir, checkpoint):
    """The photos' project with no categories, whose active model knows CATEGORIES (as a
    COCO model knows 'wine glass' and 'person')."""
    from app.controllers.project import PROJECT_DIRNAME
    from mrcnn.store.project import Project
    from mrcnn.store.scan import scan_folder

    with Project.create(photos_dir / PROJECT_DIRNAME, photos_dir) as project:
        scan_folder(project)
        shutil.copy(checkpoint, project.models_dir / "v1.pt")
        project.add_model_version("models/v1.pt", "r18", activate=True)
    return photos_dir


def test_a_project_whose_model_knows_coco_classes_adds_no_category_until_the_user_accepts_one(
        qtbot, make_window, model_process, coco_like_project, monkeypatch):
    w = make_window(model_session=model_process, model_options=FAST)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    open_folder(qtbot, w, coco_like_project)
    wait_model_ready(qtbot, w)
    project = w.controller.project
    current = w.image_list.current_id
    qtbot.waitUntil(lambda: project.predicted_by(current, "v1"), timeout=60000)
    qtbot.waitUntil(lambda: w.controller.category_suggestions() != [], timeout=10000)
    assert project.categories() == [] and project.instances() == []
    assert w.controller.instance_rows(current) == []
    assert any("suggests categories" in m and "Suggested Categories" in m for m in said)

    w.actions["category_suggestions"].trigger()
    dialog = w.edits.suggestions.dialog
    assert dialog.isVisible() and set(dialog.names()) <= set(CATEGORIES)
    name = dialog.names()[0]
    other = next(n for n in CATEGORIES if n != name)
    # Accept: the category is made, and the model's predictions of it appear
    with qtbot.waitSignal(w.model.predictions_stored, timeout=60000):
        dialog.buttons(name)["accept"].click()
    assert [c.name for c in project.categories()] == [name]
    cat = project.category_by_name(name)
    qtbot.waitUntil(lambda: any(r.category == name
                                for r in w.controller.instance_rows(current)), timeout=30000)
    assert {i.category_id for i in project.instances()} == {cat.id}
    assert name not in dialog.names()
    # Map to…: the other class goes into the accepted category, no new one is made
    if other in dialog.names():
        monkeypatch.setattr(category_suggestions, "ask_category", lambda *_a: name)
        dialog.buttons(other)["map"].click()
        assert other not in dialog.names()
        assert [c.name for c in project.categories()] == [name]
        assert project.category_decision(other).category_id == cat.id


def test_ignoring_a_suggestion_is_remembered(qtbot, make_window, model_process,
                                             coco_like_project):
    w = make_window(model_session=model_process, model_options=FAST)
    open_folder(qtbot, w, coco_like_project)
    wait_model_ready(qtbot, w)
    qtbot.waitUntil(lambda: w.controller.category_suggestions() != [], timeout=60000)
    dialog = w.edits.suggestions.show()
    for name in list(dialog.names()):
        dialog.buttons(name)["ignore"].click()
    assert dialog.names() == [] and w.controller.project.categories() == []
    assert {d.decision for d in w.controller.project.category_decisions()} == {"ignore"}


def test_delete_category_moves_or_deletes_its_instances_and_undoes(qtbot, window, tmp_path,
                                                                   monkeypatch):
    s = make_tool_scene(qtbot, window, tmp_path)
    w = s.window
    project = w.controller.project
    dog = s.doc.add_category("dog")
    kept = s.add(qtbot, box(10, 10, 30, 30))
    iid = s.add(qtbot, box(40, 40, 70, 70), dog.id)
    # delete "dog", its instance deleted with it; Ctrl+Z brings both back
    answers = iter(["dog", category_box.DELETE_INSTANCES])
    monkeypatch.setattr(category_box, "ask_category", lambda *_a: next(answers))
    w.actions["delete_category"].trigger()
    assert [c.name for c in project.categories()] == ["thing"]
    assert sorted(s.stored_categories()) == [kept]
    assert iid not in s.canvas.instance_items()
    assert "Deleted 'dog' and its 1 instance " in w.statusBar().currentMessage()
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert [c.name for c in project.categories()] == ["thing", "dog"]
    assert s.stored_categories() == {kept: s.category_id, iid: dog.id}
    qtbot.waitUntil(lambda: iid in s.canvas.instance_items(), timeout=5000)
    # delete "dog" again, its instance moving to "thing"; undo gives it back
    answers = iter(["dog", "Move them to 'thing'"])
    w.actions["delete_category"].trigger()
    assert s.stored_categories() == {kept: s.category_id, iid: s.category_id}
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)
    assert s.stored_categories() == {kept: s.category_id, iid: dog.id}


@pytest.mark.parametrize("action", ["delete_category", "rename_category", "merge_categories"])
def test_category_dialogs_offer_the_category_on_screen_first(qtbot, window, tmp_path, action):
    """Enter on Delete/Rename/Merge Category… acts on the category being worked with, not on
    the project's first one (which once sat in the box: two Enters moved 'thing')."""
    s = make_tool_scene(qtbot, window, tmp_path)
    w = s.window
    dog = s.doc.add_category("dog")
    s.doc.add_category("cat")
    kept = s.add(qtbot, box(10, 10, 30, 30))
    iid = s.add(qtbot, box(40, 40, 70, 70), dog.id)
    s.click(qtbot, 55, 55)
    assert s.canvas.selected_ids() == [iid]
    offered = []

    def read_and_cancel():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QInputDialog)
        offered.append(dialog.findChild(QComboBox).currentText())
        dialog.reject()

    qtbot.waitUntil(lambda: w.actions[action].isEnabled(), timeout=5000)
    QTimer.singleShot(0, read_and_cancel)
    w.actions[action].trigger()
    assert offered == ["dog"]
    assert [c.name for c in w.controller.project.categories()] == ["thing", "dog", "cat"]
    assert s.stored_categories() == {kept: s.category_id, iid: dog.id}  # cancelled: no change


def test_c_and_a_few_letters_pick_a_category_beyond_the_ninth(qtbot, window, tmp_path):
    s = make_tool_scene(qtbot, window, tmp_path)
    w = s.window
    names = [f"class{k:02d}" for k in range(1, 11)] + ["broccoli"]
    for name in names:
        s.doc.add_category(name)
    iid = s.add(qtbot, box(20, 20, 60, 60))
    s.click(qtbot, 40, 40)
    assert s.canvas.selected_ids() == [iid]
    s.key(qtbot, K.Key_C)
    combo = w.edits.categories.box
    assert QApplication.focusWidget() in (combo, combo.lineEdit())
    type_text(qtbot, "broc")  # letters go to the box, not to the tools (B is the brush)
    assert not w.actions["tool_brush"].isChecked()
    press(qtbot, K.Key_Return)
    broccoli = w.controller.project.category_by_name("broccoli")
    assert s.stored_categories()[iid] == broccoli.id
    assert QApplication.focusWidget() is s.canvas  # keys work on the canvas again
    assert w.edits.categories.box.currentText().endswith("broccoli")
    s.key(qtbot, K.Key_Z, MOD.ControlModifier)  # one undoable category change
    assert s.stored_categories()[iid] == s.category_id
    # a name no category has changes nothing and says how to make one
    s.key(qtbot, K.Key_C)
    type_text(qtbot, "bottle")
    press(qtbot, K.Key_Return)
    assert s.stored_categories()[iid] == s.category_id
    assert w.controller.project.category_by_name("bottle") is None
    assert w.statusBar().currentMessage() == (
        "No category matches 'bottle' (Edit ▸ New Category… makes one)")


def test_the_category_for_new_instances_is_remembered_per_project(qtbot, make_window,
                                                                   photos_dir, tmp_path):
    """Reopening a project, new instances get the category they got last there (it once
    fell back to the first one, so the first coin of the day became a 'person'); another
    project never inherits it (its id named another category there)."""
    other = tmp_path / "other"
    shutil.copytree(photos_dir, other)

    def add(w, *names):
        return [w.edits.commands.commit("Add category", lambda d, n=n: d.add_category(n)).id
                for n in names]

    w = make_window()
    open_folder(qtbot, w, photos_dir)
    _person, coin = add(w, "person", "coin")
    w.edits.categories.choose(coin)
    assert w.edits.commands.new_category_id() == coin
    open_folder(qtbot, w, other)
    first, second = add(w, "cat", "dog")
    assert second == coin  # the same id, another category: it must not carry over
    assert w.edits.commands.new_category_id() == first
    w.close()
    w = make_window()
    open_folder(qtbot, w, photos_dir)
    assert w.edits.commands.new_category_id() == coin
    assert w.edits.categories.box.currentText().endswith("coin")
    open_folder(qtbot, w, other)
    assert w.edits.commands.new_category_id() == first
