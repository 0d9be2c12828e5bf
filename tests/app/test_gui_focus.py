"""Keys go where the user expects: typing in a field is typing (no shortcut fires), the image
gets the keys after a project opens and after a field is done, Ctrl+Enter reviews, Enter
closes a polygon, and Delete with nothing selected says so."""

from __future__ import annotations

import pytest
from gui_helpers import image_id, open_folder, press, type_text, wait_image_shown
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from tool_helpers import box, make_tool_scene

K = Qt.Key
CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton


def focus():
    return QApplication.focusWidget()


def click_into(qtbot, widget) -> None:
    qtbot.mouseClick(widget, LEFT)
    qtbot.waitUntil(lambda: focus() is widget, timeout=3000)


def status(window, image: int) -> str:
    return window.controller.image(image).status


@pytest.fixture
def scene(qtbot, window, tmp_path):
    """The synthetic image (and a copy after it), category "thing" made, a second one too."""
    s = make_tool_scene(qtbot, window, tmp_path, images=2)
    s.doc.add_category("other")
    return s


def test_return_in_the_brush_size_box_sets_the_size_and_reviews_nothing(qtbot, window,
                                                                         photos_dir):
    open_folder(qtbot, window, photos_dir)
    first = window.image_list.current_id
    size = window.edits.brush_size
    click_into(qtbot, size)
    press(qtbot, K.Key_A, CTRL)  # select the box's text
    type_text(qtbot, "40")
    press(qtbot, K.Key_Return)
    assert status(window, first) == "new"
    assert window.image_list.current_id == first
    assert "reviewed" not in window.statusBar().currentMessage()
    assert size.value() == 40 and window.edits.commands.options.brush_radius == 40
    # Return handed the keys back to the image: D goes to the next image again
    assert focus() is window.canvas
    press(qtbot, K.Key_D)
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    wait_image_shown(qtbot, window)


def test_digits_in_the_size_box_change_the_size_not_the_category(qtbot, scene):
    s, w = scene, scene.window
    iid = s.add(qtbot, box(20, 20, 60, 60))
    s.click(qtbot, 40, 40)
    assert s.canvas.selected_ids() == [iid]
    chosen = w.edits.categories.box.currentText()
    size = w.edits.brush_size
    click_into(qtbot, size)
    press(qtbot, K.Key_A, CTRL)
    type_text(qtbot, "2")
    press(qtbot, K.Key_Return)
    assert status(w, s.image_id) != "reviewed" and w.image_list.current_id == s.image_id
    assert size.value() == 2 and w.edits.commands.options.brush_radius == 2
    assert s.stored_categories() == {iid: s.category_id}
    assert w.edits.categories.box.currentText() == chosen


def test_after_opening_a_folder_the_image_has_the_keys(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    assert focus() is window.canvas
    press(qtbot, K.Key_N)
    assert window.actions["tool_polygon"].isChecked()
    assert window.image_list.search.text() == ""
    assert window.image_list.proxy.rowCount() == 4
    # after clicking an image in the list, D and A still move between images
    view = window.image_list.view
    qtbot.mouseClick(view.viewport(), LEFT, pos=view.visualRect(
        window.image_list.proxy.index(1, 0)).center())
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    press(qtbot, K.Key_D)
    assert window.image_list.current_id == image_id(window, "coffee.jpg")
    press(qtbot, K.Key_A)
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    wait_image_shown(qtbot, window)


def test_return_in_the_search_box_keeps_it_and_hands_the_keys_back(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    window.actions["focus_search"].trigger()
    type_text(qtbot, "jpg")
    assert window.image_list.search.text() == "jpg"
    press(qtbot, K.Key_Return)  # keep the search, move through what it found
    assert focus() is window.canvas
    press(qtbot, K.Key_D)
    assert window.image_list.search.text() == "jpg"
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    wait_image_shown(qtbot, window)
    window.actions["focus_search"].trigger()
    press(qtbot, K.Key_Escape)  # give the search up: cleared, and the keys go back too
    assert window.image_list.search.text() == ""
    assert focus() is window.canvas


def test_ctrl_return_marks_reviewed_and_moves_on(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    first = window.image_list.current_id
    action = window.actions["mark_reviewed"]
    assert action.shortcut().toString() == "Ctrl+Return"  # what the Image menu shows
    press(qtbot, K.Key_Return, CTRL)
    assert status(window, first) == "reviewed"
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    assert "astronaut.jpg marked reviewed" in window.statusBar().currentMessage()
    wait_image_shown(qtbot, window)


def test_enter_in_the_polygon_tool_closes_the_polygon_and_never_reviews(qtbot, scene):
    s, w = scene, scene.window
    s.key(qtbot, K.Key_N)
    for x, y in ((20, 20), (60, 20), (60, 60), (20, 60)):
        s.click(qtbot, x, y)
    s.key(qtbot, K.Key_Return)  # closes the polygon
    assert len(s.stored()) == 1
    s.key(qtbot, K.Key_Return)  # nothing to close: still not a review
    s.key(qtbot, K.Key_Enter)
    assert status(w, s.image_id) != "reviewed"
    assert w.image_list.current_id == s.image_id
    assert "reviewed" not in w.statusBar().currentMessage()


def test_delete_with_nothing_selected_says_so(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    window.canvas.setFocus()
    assert window.canvas.selected_ids() == []
    press(qtbot, K.Key_Delete)
    assert window.statusBar().currentMessage() == "Nothing selected to delete"
