"""Moving through images: keys, status filter, search, counts."""

from __future__ import annotations

from collections import Counter

from gui_helpers import PHOTO_NAMES, contrast, image_id, open_folder, wait_image_shown
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication


def names(window) -> list[str]:
    by_id = {r.id: r.path for r in window.controller.images()}
    return [by_id[i] for i in window.image_list.visible_ids()]


def test_next_and_previous_with_keys(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    window.canvas.setFocus()
    order = [image_id(window, n) for n in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")]
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.image_list.current_id == order[1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.image_list.current_id == order[2]
    wait_image_shown(qtbot, window, order[2])
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.image_list.current_id == order[0]
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)  # already the first: stays
    assert window.image_list.current_id == order[0]
    wait_image_shown(qtbot, window, order[0])


def test_status_filter_and_counts(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    c = window.controller
    c.set_status(image_id(window, "chelsea.jpg"), "reviewed")
    c.set_status(image_id(window, "voc.jpg"), "in_review")
    counts = window.image_list.counts.text()
    assert "4 images" in counts and "2 new" in counts and "1 reviewed" in counts
    assert "1 in review" in counts

    window.image_list.set_status_filter("Reviewed")
    assert names(window) == ["chelsea.jpg"]
    assert "showing 1" in window.image_list.counts.text()
    window.image_list.set_status_filter("Not reviewed")
    assert names(window) == ["astronaut.jpg", "coffee.jpg", "voc.jpg"]
    window.image_list.set_status_filter("All images")
    assert len(names(window)) == 4


def test_filtering_never_switches_the_image_by_itself(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    first = window.image_list.current_id
    window.image_list.set_status_filter("Reviewed")  # hides the current image
    assert window.image_list.current_id == first
    assert window.canvas.image_id == first
    window.image_list.set_status_filter("New")
    # next from a filtered-out image goes to the next visible one in list order
    window.controller.set_status(first, "reviewed")
    assert window.image_list.neighbor(first, +1) == image_id(window, "chelsea.jpg")


def test_mark_reviewed_with_a_not_reviewed_filter_moves_on(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    window.image_list.set_status_filter("Not reviewed")
    window.actions["mark_reviewed"].trigger()
    assert window.image_list.current_id == image_id(window, "chelsea.jpg")
    assert names(window) == ["chelsea.jpg", "coffee.jpg", "voc.jpg"]
    wait_image_shown(qtbot, window)


def test_search_by_name(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    window.actions["focus_search"].trigger()
    qtbot.keyClicks(window.image_list.search, "CO")
    assert names(window) == ["coffee.jpg"]
    # typing letters that are also shortcuts (D, A) goes into the search box
    window.image_list.search.clear()
    qtbot.keyClicks(window.image_list.search, "da")
    assert window.image_list.search.text() == "da"
    assert window.image_list.current_id == image_id(window, "astronaut.jpg")
    # Enter in the search box does not mark the image reviewed
    qtbot.keyClick(window.image_list.search, Qt.Key.Key_Return)
    assert window.controller.project.image(window.image_list.current_id).status == "new"


def test_esc_in_the_search_box_gives_the_search_up(qtbot, window, photos_dir):
    """Esc left the text and moved the keyboard to the canvas, so a person's next Ctrl+A,
    Backspace (to clear the box) selected and deleted the image's instances. Now Esc
    clears the box as it hands the keys back; Enter keeps the search."""
    open_folder(qtbot, window, photos_dir)
    search = window.image_list.search
    window.actions["focus_search"].trigger()
    qtbot.keyClicks(search, "CO")
    assert names(window) == ["coffee.jpg"]
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == "" and len(names(window)) == len(PHOTO_NAMES)
    assert QApplication.focusWidget() is window.canvas  # single keys work on the image again


def test_clicking_a_row_shows_that_image(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    view = window.image_list.view
    index = window.image_list.proxy.index(3, 0)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())
    assert window.image_list.current_id == image_id(window, "voc.jpg")
    wait_image_shown(qtbot, window, image_id(window, "voc.jpg"))
    assert "voc.jpg · 500×375" in window.image_info.text()


def test_counts_say_1_image_not_1_images(qtbot, window, tmp_path, photos_dir):
    one = tmp_path / "one"
    one.mkdir()
    (one / "coffee.jpg").write_bytes((photos_dir / "coffee.jpg").read_bytes())
    assert window.open_path(one)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == 1, timeout=10000)
    counts = window.image_list.counts.text()
    assert "<b>1 image</b>" in counts and "1 images" not in counts


def test_the_val_mark_reads_on_the_selected_row(qtbot, window, photos_dir):
    """A validation image's "val" mark was purple text on the selection's blue, where it
    could hardly be read on the very row a person is working on. The mark is found as the
    pixels that change when the selected image moves to validation; its text must stand out
    from the mark's own background as body text does (contrast >= 4.5)."""
    from app.theme import dark_palette

    open_folder(qtbot, window, photos_dir)
    view = window.image_list.view
    view.setPalette(dark_palette())  # the window's look (main.py applies it app-wide)
    first = window.image_list.current_id
    row = window.image_list.model.index(window.image_list.model.row_of(first))
    rect = view.visualRect(window.image_list.proxy.mapFromSource(row))
    assert view.selectionModel().isSelected(window.image_list.proxy.mapFromSource(row))

    def shot():
        view.viewport().repaint()
        return view.viewport().grab(rect).toImage()

    before = shot()
    qtbot.waitUntil(window.actions["move_split"].isEnabled, timeout=5000)
    window.actions["move_split"].trigger()  # to the other split, whichever it was in
    after = shot()
    val, train = ((after, before) if window.controller.project.image(first).split == "val"
                  else (before, after))
    changed = [(x, y) for y in range(val.height()) for x in range(val.width())
               if val.pixel(x, y) != train.pixel(x, y)]
    assert changed, "the val mark is not drawn"
    xs, ys = [x for x, _ in changed], [y for _, y in changed]
    box = [QColor(val.pixel(x, y)) for y in range(min(ys) + 3, max(ys) - 2)
           for x in range(min(xs) + 3, max(xs) - 2)]
    background = Counter(c.rgb() for c in box).most_common(1)[0][0]
    best = max(contrast(c, QColor.fromRgb(background)) for c in box)
    assert best >= 4.5, f"the val mark's text has contrast {best:.1f} on its background"
