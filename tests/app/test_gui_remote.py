"""File ▸ Open URL…: images under a URL (a local HTTP server) are listed as they are read,
shown, predicted and edited like a folder's; a lost connection is a clear message and loses
no edit. No sleeps: every wait is on what the window shows."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from gui_helpers import PHOTO_NAMES, image_id, wait_image_shown, wait_model_ready, wait_thumbnails
from model_fixtures import CATEGORIES, FAST

from app import open_url_dialog
from mrcnn.store.project import Project
from mrcnn.testing.http_folder import FolderServer

pytestmark = pytest.mark.usefixtures("image_cache_dir")


@pytest.fixture
def served(photos_dir):
    with FolderServer(photos_dir) as server:
        yield server


def test_open_url_lists_images_before_all_are_read_and_shows_them(qtbot, window, served,
                                                                  tmp_path, monkeypatch):
    slow = served.hold(PHOTO_NAMES[-1])  # the last photo is still on its way
    folder = tmp_path / "remote project"
    monkeypatch.setattr(open_url_dialog, "ask_open_url", lambda *_a: (served.url, folder))
    window.actions["open_url"].trigger()

    qtbot.waitUntil(lambda: window.image_list.model.rowCount() >= 1, timeout=10000)
    wait_image_shown(qtbot, window)  # the first image is on the canvas already
    assert window.image_list.model.rowCount() < len(PHOTO_NAMES)
    assert "127.0.0.1" in window.windowTitle()

    slow.set()
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == len(PHOTO_NAMES),
                    timeout=10000)
    qtbot.waitUntil(lambda: "Found 4 new images" in window.statusBar().currentMessage(),
                    timeout=10000)
    assert (folder / "project.db").is_file()  # the project is local, where it was asked
    wait_thumbnails(qtbot, window)
    last = image_id(window, PHOTO_NAMES[-1])
    window.image_list.select_image(last)
    wait_image_shown(qtbot, window, last)
    assert window.canvas.image_id == last


def test_a_lost_connection_is_a_clear_message_and_no_edit_is_lost(qtbot, window, served,
                                                                  tmp_path, image_cache_dir):
    folder = tmp_path / "remote project"
    assert window.open_url(served.url, folder)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == len(PHOTO_NAMES),
                    timeout=10000)
    wait_image_shown(qtbot, window)
    c = window.controller
    first = window.image_list.current_id
    image = c.image(first)
    mask = np.zeros((image.height, image.width), bool)
    mask[10:60, 20:90] = True
    doc = c.document(first)
    doc.add_instance(mask, doc.project.add_category("thing").id)
    c.mark_reviewed(first)

    served.stop()
    shutil.rmtree(image_cache_dir)  # evicted since: the next image needs the storage
    last = image_id(window, PHOTO_NAMES[-1])
    window.image_list.select_image(last)
    qtbot.waitUntil(lambda: "cannot reach" in window.statusBar().currentMessage(),
                    timeout=10000)
    message = window.statusBar().currentMessage()
    assert f"{served.url}/{PHOTO_NAMES[-1]}" in message
    assert "Check the network connection" in message

    window.image_list.select_image(first)  # what was shown stays usable
    wait_image_shown(qtbot, window, first)
    assert len(window.controller.instance_rows(first)) == 1
    window.controller.close()
    with Project.open(folder, read_only=True) as project:
        assert project.image(first).status == "reviewed"
        assert len(project.instances(first, state="accepted")) == 1


def test_open_url_with_the_same_folder_reopens_the_project_and_refuses_another(
        qtbot, window, served, tmp_path, errors):
    folder = tmp_path / "remote project"
    assert window.open_url(served.url, folder)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == len(PHOTO_NAMES),
                    timeout=10000)
    window.controller.close()
    assert window.open_url(served.url + "/", folder)  # the same URL: the same project
    assert window.image_list.model.rowCount() == len(PHOTO_NAMES)
    assert not window.open_url("https://example.org/other", folder)
    assert errors and "not over https://example.org/other" in errors[-1][1]


def test_the_model_predicts_remote_images_in_the_window(qtbot, make_window, model_process,
                                                       checkpoint, served, tmp_path):
    folder = tmp_path / "remote project"
    with Project.create(folder, served.url) as project:  # as `mrcnn new`, with a model
        for name in CATEGORIES:
            project.add_category(name)
        shutil.copy(checkpoint, project.models_dir / "v1.pt")
        project.add_model_version("models/v1.pt", "r18", activate=True)
    w = make_window(model_session=model_process, model_options=FAST)
    assert w.open_url(served.url, folder)
    qtbot.waitUntil(lambda: w.image_list.model.rowCount() == len(PHOTO_NAMES), timeout=10000)
    wait_model_ready(qtbot, w)
    project = w.controller.project
    current = w.image_list.current_id
    qtbot.waitUntil(lambda: project.predicted_by(current, "v1"), timeout=60000)
    wait_image_shown(qtbot, w)
    assert project.image(current).status == "predicted"
