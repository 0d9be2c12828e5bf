"""The keypoint tool: give a category a schema (Edit ▸ Keypoint Schema…), select an
instance, click its keypoints in order, drag one, make one occluded, undo/redo, reopen: all
there. A stray key does nothing to the data when no point was touched."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from tool_helpers import DISC_CENTER, DISC_RADIUS, disc, make_tool_scene

from app import keypoint_schema_dialog
from app.controllers.project import PROJECT_DIRNAME
from app.keypoint_schema_dialog import SchemaChoice, schema_from_text
from mrcnn import keypoints as kp
from mrcnn.keypoints import COCO_PERSON, KeypointSchema
from mrcnn.store.project import Project

K = Qt.Key
TRIANGLE = KeypointSchema(("apex", "left_base", "right_base"), ((0, 1), (1, 2), (2, 0)))
SPOTS = [(70.0, 40.0), (45.0, 90.0), (95.0, 90.0)]


@pytest.fixture
def scene(qtbot, window, tmp_path, monkeypatch):
    s = make_tool_scene(qtbot, window, tmp_path)
    monkeypatch.setattr(keypoint_schema_dialog, "ask_keypoint_schema",
                        lambda parent, cats, current: SchemaChoice(s.category_id, TRIANGLE))
    window.actions["category_keypoints"].trigger()
    assert window.controller.project.category_schema(s.category_id) == TRIANGLE
    s.iid = s.add(qtbot, disc(DISC_CENTER, DISC_RADIUS))
    return s


def stored_points(s):
    with Project.open(s.folder / PROJECT_DIRNAME, read_only=True) as p:
        return p.instance(s.iid).keypoints


def near(points, expected, tol=1.0):
    return all(abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol and a[2] == b[2]
               for a, b in zip(points, expected, strict=True))


def test_place_move_toggle_undo_redo_and_reopen(qtbot, scene, window):
    s = scene
    s.key(qtbot, K.Key_L)
    assert s.canvas.tool.name == "keypoint"
    s.click(qtbot, *DISC_CENTER)  # nothing selected: the click selects the instance
    assert s.canvas.selected_ids() == [s.iid]
    assert "Next keypoint: apex (1 of 3)" in window.statusBar().currentMessage()
    for k, spot in enumerate(SPOTS):
        s.click(qtbot, *spot)
        assert kp.labelled_count(stored_points(s)) == k + 1  # durable at each click
    assert "All 3 keypoints placed" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.instance_list.tree.topLevelItem(0).text(0)
                    == "thing  · 3/3 points", timeout=5000)
    assert near(stored_points(s), [(*p, 2) for p in SPOTS])
    item = s.canvas.keypoints.items[s.iid]
    assert item.isVisible() and item.row.instance.keypoints == stored_points(s)

    s.drag(qtbot, [SPOTS[1], (50.0, 95.0), (52.0, 97.0)])  # grab left_base, move it
    moved = stored_points(s)
    assert abs(moved[1][0] - 52) <= 1 and abs(moved[1][1] - 97) <= 1
    s.key(qtbot, K.Key_O)  # the point last touched becomes occluded
    assert stored_points(s)[1][2] == kp.OCCLUDED

    window.actions["undo"].trigger()
    assert stored_points(s)[1][2] == kp.VISIBLE
    window.actions["undo"].trigger()
    assert near(stored_points(s), [(*p, 2) for p in SPOTS])
    window.actions["redo"].trigger()
    window.actions["redo"].trigger()
    final = stored_points(s)
    assert final[1][2] == kp.OCCLUDED and abs(final[1][0] - 52) <= 1

    window.controller.close()
    assert window.open_path(s.folder)
    qtbot.waitUntil(lambda: s.iid in s.canvas.keypoints.items, timeout=10000)
    assert s.canvas.keypoints.items[s.iid].row.instance.keypoints == final  # drawn again
    assert window.controller.project.category_schema(s.category_id) == TRIANGLE


def test_tab_skips_a_name_and_delete_removes_only_the_touched_point(qtbot, scene, window):
    s = scene
    s.key(qtbot, K.Key_L)
    s.click(qtbot, *DISC_CENTER)
    s.key(qtbot, K.Key_Tab)  # apex is hidden in the photo: skip it
    assert "Next keypoint: left_base" in window.statusBar().currentMessage()
    s.click(qtbot, *SPOTS[1])
    points = stored_points(s)
    assert points[0] == (0.0, 0.0, 0) and points[1][2] == kp.VISIBLE
    s.key(qtbot, K.Key_Delete)  # the point just placed, not the instance
    assert stored_points(s) is None and s.iid in s.stored()
    s.key(qtbot, K.Key_O)  # no point touched now: O changes nothing
    assert stored_points(s) is None


def test_a_category_without_keypoints_says_how_to_get_them(qtbot, scene, window):
    s = scene
    other = s.doc.add_category("blob")
    iid = s.add(qtbot, disc((180.0, 150.0), 12.0), other.id)
    s.key(qtbot, K.Key_L)
    s.click(qtbot, 180.0, 150.0)  # selects it
    assert s.canvas.selected_ids() == [iid]
    s.click(qtbot, 182.0, 150.0)
    assert "has no keypoints" in window.statusBar().currentMessage()
    assert s.doc.instance(iid).keypoints is None


def test_the_dialog_reads_names_and_bones_and_refuses_mistakes():
    schema = schema_from_text("nose\nleft_eye\nright_eye\n", "nose - left_eye\nnose, right_eye")
    assert schema.skeleton == ((0, 1), (0, 2)) and schema.flip_indices() == (0, 2, 1)
    assert schema_from_text("  \n", "") is None
    with pytest.raises(kp.KeypointError, match="no keypoint named ear"):
        schema_from_text("nose\neye", "nose - ear")


def test_the_dialog_offers_the_coco_person_template(qtbot):
    from mrcnn.store.records import Category
    dialog = keypoint_schema_dialog.KeypointSchemaDialog(None, [Category(1, "person", "#f00")],
                                                         1)
    qtbot.addWidget(dialog)
    buttons = [b for b in dialog.findChildren(type(dialog.findChild(
        keypoint_schema_dialog.QPushButton))) if "COCO person" in b.text()]
    buttons[0].click()
    assert dialog._check() == COCO_PERSON
    assert "left_eye ↔ right_eye" in dialog.flip.text()
    dialog.skeleton.setPlainText("")
    dialog.names.setPlainText("a\na")
    dialog._accept()
    assert dialog.choice is None and "unique" in dialog.error.text()
