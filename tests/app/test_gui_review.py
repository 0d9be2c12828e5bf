"""The review loop as a user lives it: import, look, select, accept, mark reviewed, export."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from gui_helpers import image_id, open_folder, run_data_action, wait_image_shown
from PySide6.QtCore import QPoint, Qt

from app import dialogs
from app.dialogs import ExportOptions, ImportOptions
from mrcnn import masks


@pytest.fixture
def voc_window(qtbot, window, photos_dir, voc_coco, monkeypatch):
    """A window on the photos, the VOC masks imported through File ▸ Import…, and
    voc.jpg shown."""
    open_folder(qtbot, window, photos_dir)
    monkeypatch.setattr(dialogs, "ask_import_options",
                        lambda *_a: ImportOptions(voc_coco.path, None, "reviewed"))
    run_data_action(qtbot, window, "import_coco")
    voc = image_id(window, "voc.jpg")
    window.image_list.select_image(voc)
    wait_image_shown(qtbot, window, voc)
    return window


def add_predictions(window, name: str, n: int) -> list[int]:
    """Store n pending predictions on an image, as the model side will (a square each)."""
    project = window.controller.project
    image = project.image(image_id(window, name))
    cat = project.add_category("bottle")
    items = []
    for k in range(n):
        m = np.zeros((image.height, image.width), bool)
        m[10 + 30 * k: 30 + 30 * k, 10: 40 + 10 * k] = True
        items.append((cat.id, masks.encode(m), 0.9 - 0.1 * k))
    added = window.controller.store_predictions(image.id, "test-model", items)
    return [i.id for i in added]


def click_instance(qtbot, window, instance_id: int, modifier=Qt.KeyboardModifier.NoModifier):
    """Click a pixel of the instance's mask where it is the top-most item."""
    canvas = window.canvas
    item = canvas.instance_items()[instance_id]
    shape = item.shape_data
    for r, c in np.argwhere(shape.fill[..., 3] > 0)[::7]:
        scene_pos = item.mapToScene(shape.x + c + 0.5, shape.y + r + 0.5)
        view_pos = canvas.mapFromScene(scene_pos)
        if canvas.itemAt(view_pos) is item:
            qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, modifier, view_pos)
            return
    raise AssertionError(f"instance {instance_id} is covered everywhere")


def test_imported_masks_show_on_canvas_and_in_list(voc_window, voc_coco):
    w = voc_window
    items = w.canvas.instance_items()
    assert len(items) == 19
    assert w.instance_list.row_count() == 19
    assert Counter(i.row.category for i in items.values()) == Counter(voc_coco.categories)
    assert all(not i.row.pending and i.row.source == "manual" for i in items.values())
    # each mask is drawn from a crop at its bbox, not from a full-size layer
    for item in items.values():
        h, w_ = item.shape_data.fill.shape[:2]
        x, y, bw, bh = item.row.instance.bbox
        assert (item.shape_data.x, item.shape_data.y, w_, h) == (x, y, bw, bh)
    assert "Reviewed" in w.image_info.text()
    assert "19 instances" in w.instance_list.summary.text()


def test_bad_coco_is_reported_and_changes_nothing(qtbot, window, photos_dir, errors,
                                                  monkeypatch):
    open_folder(qtbot, window, photos_dir)
    bad = photos_dir / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "voc.jpg", "width": 500,
                                           "height": 375}],
                               "categories": [{"id": 1, "name": "x"}],
                               "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                                "segmentation": [[1, 2, 3]]}]}))
    monkeypatch.setattr(dialogs, "ask_import_options",
                        lambda *_a: ImportOptions(bad, None, "reviewed"))
    run_data_action(qtbot, window, "import_coco")
    assert errors and errors[-1][0] == "Cannot import COCO JSON"
    assert "annotations[0]" in errors[-1][1]
    assert window.controller.project.instances() == []
    assert window.controller.project.categories() == []


def test_canvas_and_list_selection_follow_each_other(qtbot, voc_window):
    w = voc_window
    items = w.canvas.instance_items()
    smallest = min(items.values(), key=lambda i: i.row.instance.area).instance_id
    click_instance(qtbot, w, smallest)
    assert w.canvas.selected_ids() == [smallest]
    assert w.instance_list.selected_ids() == [smallest]

    # selecting rows in the list selects on the canvas
    tree = w.instance_list.tree
    ids = [tree.topLevelItem(r).data(0, Qt.ItemDataRole.UserRole + 1) for r in (0, 2)]
    tree.clearSelection()
    for r in (0, 2):
        tree.topLevelItem(r).setSelected(True)
    assert w.canvas.selected_ids() == sorted(ids)
    # clicking on empty background clears both
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(3, 3))
    assert w.canvas.selected_ids() == [] and w.instance_list.selected_ids() == []


def test_hover_highlights_an_instance(qtbot, voc_window):
    w = voc_window
    item = min(w.canvas.instance_items().values(), key=lambda i: i.row.instance.area)
    shape = item.shape_data
    r, c = np.argwhere(shape.fill[..., 3] > 0)[0]
    pos = w.canvas.mapFromScene(shape.x + c + 0.5, shape.y + r + 0.5)
    qtbot.mouseMove(w.canvas.viewport(), pos)
    qtbot.waitUntil(lambda: item.hovered, timeout=3000)


def test_pending_predictions_look_different_and_can_be_hidden(qtbot, voc_window):
    w = voc_window
    ids = add_predictions(w, "voc.jpg", 3)
    wait_image_shown(qtbot, w)
    items = w.canvas.instance_items()
    assert all(items[i].row.pending and items[i].row.source == "model" for i in ids)
    assert "3 pending" in w.instance_list.summary.text()
    w.actions["toggle_predictions"].trigger()  # hide
    assert not any(items[i].isVisible() for i in ids)
    assert all(items[i].isVisible() for i in items if i not in ids)
    w.actions["toggle_predictions"].trigger()
    assert all(items[i].isVisible() for i in ids)


def test_accept_selected_then_all(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    name = "chelsea.jpg"
    window.image_list.select_image(image_id(window, name))
    ids = add_predictions(window, name, 3)
    wait_image_shown(qtbot, window)
    assert window.image_list.model.index(1).data(Qt.ItemDataRole.UserRole + 2) == "predicted"

    window.instance_list.select_ids([ids[1]])
    window.instance_list.selection_changed.emit([ids[1]])
    window.actions["accept_selected"].trigger()
    assert window.statusBar().currentMessage() == "Accepted 1 prediction"  # never "1 predictions"
    project = window.controller.project
    assert [i.id for i in project.instances(state="accepted")] == [ids[1]]
    assert not window.canvas.instance_items()[ids[1]].row.pending
    assert project.image(image_id(window, name)).status == "in_review"
    assert project.instance(ids[1]).source == "model"  # provenance kept
    states = {window.instance_list.tree.topLevelItem(r).data(0, Qt.ItemDataRole.UserRole + 1):
              window.instance_list.tree.topLevelItem(r).text(3) for r in range(3)}
    assert states == {ids[0]: "pending", ids[1]: "accepted", ids[2]: "pending"}
    assert window.instance_list.selected_ids() == [ids[1]]  # the row stays selected

    window.actions["accept_all"].trigger()
    assert window.statusBar().currentMessage() == "Accepted 2 predictions"
    assert sorted(i.id for i in project.instances(state="accepted")) == ids
    assert "pending" not in window.instance_list.summary.text()


def test_accept_all_says_how_many_it_took_that_the_threshold_hid(qtbot, window, photos_dir):
    """Accept All takes every pending prediction, those the score threshold hides too: a
    person who saw one must learn that two more were accepted, and be able to undo."""
    open_folder(qtbot, window, photos_dir)
    name = "chelsea.jpg"
    window.image_list.select_image(image_id(window, name))
    ids = add_predictions(window, name, 3)  # scores 0.9, 0.8, 0.7
    wait_image_shown(qtbot, window)
    window.threshold.setValue(85)
    assert [window.canvas.instance_items()[i].isVisible() for i in ids] == [True, False, False]

    window.actions["accept_all"].trigger()
    message = window.statusBar().currentMessage()
    assert message.startswith("Accepted 3 predictions, 2 of them hidden below the score "
                              "threshold 0.85")
    assert "Ctrl+Z undoes" in message
    project = window.controller.project
    assert sorted(i.id for i in project.instances(state="accepted")) == ids
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.instances(state="accepted") == []


def test_delete_selected(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    ids = add_predictions(window, "astronaut.jpg", 2)
    wait_image_shown(qtbot, window)
    click_instance(qtbot, window, ids[0])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert [i.id for i in window.controller.project.instances()] == [ids[1]]
    assert set(window.canvas.instance_items()) == {ids[1]}
    assert window.instance_list.row_count() == 1


def test_review_key_marks_reviewed_and_moves_to_the_next(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    first = window.image_list.current_id
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.project.image(first).status == "reviewed"
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    wait_image_shown(qtbot, window)
    assert "1 reviewed" in window.image_list.counts.text()


def test_review_then_undo_brings_the_image_back_to_review(qtbot, window, photos_dir):
    """A review (which moves on) is undone by Ctrl+Z: back to that image, not reviewed; and
    Mark Not Reviewed takes a reviewed image out of the training data, undoably."""
    open_folder(qtbot, window, photos_dir)
    first = window.image_list.current_id
    status = window.controller.project.image(first).status
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.project.image(first).status == "reviewed"
    assert window.image_list.current_id != first
    wait_image_shown(qtbot, window)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.project.image(first).status == status
    assert window.image_list.current_id == first
    assert "Undid mark reviewed" in window.statusBar().currentMessage()
    assert "1 reviewed" not in window.image_list.counts.text()
    # Redo reviews again; Mark Not Reviewed undoes that, and Undo restores it
    wait_image_shown(qtbot, window)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.controller.project.image(first).status == "reviewed"
    window.actions["mark_not_reviewed"].trigger()
    assert window.controller.project.image(first).status == "in_review"
    assert "no longer reviewed" in window.statusBar().currentMessage()
    window.actions["undo"].trigger()
    assert window.controller.project.image(first).status == "reviewed"


def test_export_writes_the_accepted_instances(qtbot, voc_window, voc_coco, photos_dir,
                                              monkeypatch, tmp_path):
    w = voc_window
    add_predictions(w, "voc.jpg", 2)  # pending: never exported
    out = tmp_path / "export.json"
    monkeypatch.setattr(dialogs, "ask_export_options",
                        lambda *_a: ExportOptions(out, "polygon", True))
    run_data_action(qtbot, w, "export_coco")
    coco = json.loads(out.read_text())
    assert [im["file_name"] for im in coco["images"]] == ["voc.jpg"]
    assert len(coco["annotations"]) == 19
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert Counter(names[a["category_id"]] for a in coco["annotations"]) == Counter(
        voc_coco.categories)
    assert "Exported 19 instances on 1 image to" in w.statusBar().currentMessage()


def test_editing_a_reviewed_image_says_it_changes_training_data(qtbot, voc_window):
    w = voc_window
    image = w.image_list.current_id
    w.controller.mark_reviewed(image)
    iid = w.controller.project.instances(image)[0].id
    w.edits.commands.commit("Fill holes", lambda d: d.apply(iid, lambda m: ~m))
    assert "reviewed: the change is in the training data" in w.statusBar().currentMessage()
    assert w.controller.project.image(image).status == "reviewed"


def test_review_key_skips_reviewed_images_in_the_list_order_and_stays_when_none_is_left(
        qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    astronaut, chelsea, coffee, voc = (image_id(window, n) for n in
                                       ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "voc.jpg"))
    window.controller.mark_reviewed(chelsea)
    assert window.image_list.current_id == astronaut
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.image_list.current_id == coffee  # chelsea is reviewed already: skipped
    wait_image_shown(qtbot, window, coffee)
    # the list's order decides (as "Most uncertain first" does): voc, coffee, astronaut, …
    window.image_list.set_rank({voc: 0, coffee: 1, astronaut: 2})
    window.controller.mark_not_reviewed(astronaut)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.image_list.current_id == astronaut  # next in this order (file order: voc)
    wait_image_shown(qtbot, window, astronaut)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.image_list.current_id == voc  # round to the top, past reviewed chelsea
    wait_image_shown(qtbot, window, voc)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    # the last unreviewed image: reviewed, and the window stays on it and says so
    assert {r.status for r in window.controller.images()} == {"reviewed"}
    assert window.image_list.current_id == voc
    assert "no unreviewed image left" in window.statusBar().currentMessage()
