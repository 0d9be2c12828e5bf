"""Opening folders and projects; what the user sees when something is wrong."""

from __future__ import annotations

from pathlib import Path

from gui_helpers import PHOTO_NAMES, image_id, open_folder, wait_image_shown, wait_thumbnails
from PySide6.QtWidgets import QPushButton

from app import dialogs
from app.controllers.project import PROJECT_DIRNAME
from app.panels.image_rows import STATUS_ROLE
from mrcnn.store.project import Project, is_project


def test_empty_state_offers_open_folder(window):
    assert window.stack.currentWidget() is window.welcome
    assert window.welcome.open_folder.text() == "Open Folder…"
    assert window.welcome.open_folder.isVisible()
    assert not window.actions["export_coco"].isEnabled()
    assert window.actions["open_folder"].isEnabled()


def test_open_folder_lists_photos_with_status_and_thumbnails(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    assert is_project(photos_dir / PROJECT_DIRNAME)
    model = window.image_list.model
    names = [model.index(r).data() for r in range(model.rowCount())]
    assert names == list(PHOTO_NAMES)
    statuses = {model.index(r).data(STATUS_ROLE) for r in range(model.rowCount())}
    assert statuses == {"new"}
    assert "4 images" in window.image_list.counts.text()
    assert "4 new" in window.image_list.counts.text()
    # the first image is shown; thumbnails arrive in the background for painted rows
    assert window.canvas.image_id == image_id(window, "astronaut.jpg")
    wait_thumbnails(qtbot, window)
    assert window.stack.currentWidget() is window.canvas
    assert "photos" in window.windowTitle()
    assert window.saved_label.text() == "All changes saved"


def test_reopening_a_folder_adds_only_new_photos(qtbot, make_window, photos_dir):
    first = make_window()
    open_folder(qtbot, first, photos_dir)
    first.close()
    (photos_dir / "sub").mkdir()
    (photos_dir / "sub" / "again.jpg").write_bytes((photos_dir / "voc.jpg").read_bytes())
    second = make_window()
    assert second.open_path(photos_dir)
    qtbot.waitUntil(lambda: second.image_list.model.rowCount() == 5, timeout=10000)
    paths = sorted(r.path for r in second.controller.images())
    assert paths == sorted([*PHOTO_NAMES, "sub/again.jpg"])


def test_no_path_reopens_the_last_project_where_we_left_off(qtbot, make_window, photos_dir):
    first = make_window()
    open_folder(qtbot, first, photos_dir)
    first.image_list.select_image(image_id(first, "coffee.jpg"))
    first.close()
    second = make_window()  # same UI state file
    second.open_startup(None)
    qtbot.waitUntil(lambda: second.controller.is_open, timeout=5000)
    assert second.controller.project.folder.resolve() == (photos_dir / PROJECT_DIRNAME).resolve()
    assert second.image_list.current_id == image_id(second, "coffee.jpg")
    wait_image_shown(qtbot, second)


def test_a_project_folder_opens_directly(qtbot, window, photos_dir):
    Project.create(photos_dir / "elsewhere.proj", photos_dir).close()
    assert window.open_path(photos_dir / "elsewhere.proj")
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == len(PHOTO_NAMES),
                    timeout=10000)
    assert window.controller.project.folder == photos_dir / "elsewhere.proj"


def test_locked_project_gives_a_message_not_a_crash(qtbot, window, photos_dir, errors,
                                                     monkeypatch):
    holder = Project.create(photos_dir / PROJECT_DIRNAME, photos_dir)  # "another process"
    try:
        asked = []
        monkeypatch.setattr(dialogs, "ask_open_read_only",
                            lambda _p, text: asked.append(text) or False)
        assert not window.open_path(photos_dir)
        assert "already open for writing" in asked[0]
        assert "already open for writing" in window.statusBar().currentMessage()
        assert not window.controller.is_open
        assert window.stack.currentWidget() is window.welcome

        # choosing "Open Read-Only" opens it, with every edit disabled
        monkeypatch.setattr(dialogs, "ask_open_read_only", lambda *_a: True)
        assert window.open_path(photos_dir)
        assert window.controller.read_only
        assert "read-only" in window.windowTitle()
        assert window.saved_label.text() == "Read-only"
        assert not window.actions["mark_reviewed"].isEnabled()
        assert not window.actions["accept_all"].isEnabled()
        assert len(window.controller.images()) == 0  # nothing scanned into a read-only one
    finally:
        holder.close()
    assert errors == []


def test_bad_paths_are_reported(window, tmp_path, errors):
    assert not window.open_path(tmp_path / "missing")
    assert "does not exist" in errors[-1][1]
    file = tmp_path / "a.txt"
    file.write_text("x")
    assert not window.open_path(file)
    assert "not a folder" in errors[-1][1]
    assert window.isVisible()


def test_unreadable_files_are_skipped_and_reported(qtbot, window, photos_dir):
    (photos_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    open_folder(qtbot, window, photos_dir)
    qtbot.waitUntil(lambda: "skipped" in window.statusBar().currentMessage(), timeout=5000)
    assert "broken.jpg" in window.statusBar().currentMessage()


def test_unreadable_files_are_listed_with_their_reason_from_the_file_menu(qtbot, window,
                                                                          photos_dir):
    (photos_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos_dir / "sub").mkdir()
    (photos_dir / "sub" / "empty.png").write_bytes(b"")
    open_folder(qtbot, window, photos_dir)
    action = window.actions["unreadable_files"]
    qtbot.waitUntil(lambda: "(2)" in action.text(), timeout=5000)
    file_menu = window.menuBar().actions()[0].menu()
    assert action in file_menu.actions() and action.isEnabled()
    window.feedback.say("something else")  # the status-bar line is gone; the list is not
    action.trigger()
    dialog = window.unreadable_dialog
    qtbot.waitUntil(dialog.isVisible)
    rows = dict(dialog.rows())
    assert set(rows) == {"broken.jpg", str(Path("sub") / "empty.png")}
    assert all(reason for reason in rows.values())
    assert "2 files" in dialog.summary.text()
    # a folder with nothing unreadable: nothing to list
    window.controller.close()
    assert not action.isEnabled() and "(" not in action.text()


def test_image_that_became_unreadable_shows_a_message(qtbot, window, photos_dir):
    open_folder(qtbot, window, photos_dir)
    voc = image_id(window, "voc.jpg")
    Path(photos_dir / "voc.jpg").write_bytes(b"")  # emptied behind our back
    window.canvas.cache.discard(voc)
    window.image_list.select_image(voc)
    qtbot.waitUntil(lambda: "cannot read image" in window.statusBar().currentMessage(),
                    timeout=5000)
    assert "voc.jpg" in window.statusBar().currentMessage()
    window.image_list.go(-1)  # the app keeps working
    wait_image_shown(qtbot, window, image_id(window, "coffee.jpg"))


def test_recent_projects_in_the_menu_and_on_the_welcome(qtbot, make_window, photos_dir):
    first = make_window()
    open_folder(qtbot, first, photos_dir)
    project = str((photos_dir / PROJECT_DIRNAME).resolve())
    first.recent_menu.aboutToShow.emit()
    assert [a.text() for a in first.recent_menu.actions()][0] == project
    first.close()

    second = make_window()  # a new window lists it on its welcome screen
    buttons = [b for b in second.welcome.findChildren(QPushButton) if project in b.text()]
    assert buttons and "photos" in buttons[0].text()
    buttons[0].click()
    qtbot.waitUntil(lambda: second.controller.is_open, timeout=5000)
    wait_image_shown(qtbot, second)


def test_open_folder_starts_beside_the_current_images_folder(qtbot, window, photos_dir,
                                                            monkeypatch):
    starts: list[str] = []

    def choose(_parent, _title, start=""):
        starts.append(start)
        return None  # the user cancels

    monkeypatch.setattr(dialogs, "choose_folder", choose)
    window.actions["open_folder"].trigger()  # nothing open, nothing chosen before: home
    assert starts[-1] == str(Path.home())
    open_folder(qtbot, window, photos_dir)  # opened from the command line: no last folder
    window.actions["open_folder"].trigger()
    assert Path(starts[-1]) == photos_dir.parent
    window.actions["open_project"].trigger()
    assert Path(starts[-1]) == photos_dir.parent
