"""The Dataset dock (View ▸ Dataset): the data set overview drawn as bars, read back from the
QBarSet objects, and redrawn after edits made through the controller without reopening."""

from __future__ import annotations

import numpy as np
from gui_helpers import PHOTO_NAMES, image_id, open_folder

from mrcnn import masks
from mrcnn.store.overview import SIZE_BINS


def _square(record, side: int) -> np.ndarray:
    m = np.zeros((record.height, record.width), bool)
    m[:side, :side] = True
    return m


def test_the_dataset_dock_draws_the_overview_and_follows_edits(qtbot, window, photos_dir):
    w = window
    open_folder(qtbot, w, photos_dir)
    c = w.controller
    ids = [image_id(w, name) for name in PHOTO_NAMES]  # astronaut, chelsea, coffee, voc
    for i, split in zip(ids, ("train", "train", "val", "val"), strict=True):
        c.move_to_split(i, split)
        c.set_status(i, "new")

    dock, panel = w.overview.dock, w.overview.panel
    view = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    assert dock.toggleViewAction() in view.actions() and dock.windowTitle() == "Dataset"
    assert not dock.isVisible()
    dock.toggleViewAction().trigger()  # View ▸ Dataset
    assert dock.isVisible()
    assert panel.statuses.labels() == ["New", "Predicted", "In review", "Reviewed"]
    assert panel.statuses.values() == {"train": [2, 0, 0, 0], "val": [2, 0, 0, 0]}
    assert panel.categories.values() == {"train": [], "val": []}
    assert panel.line.text() == "0 reviewed images"

    # a category and a manual instance (32 x 32: medium) on a training image, then reviewed
    doc = c.document(ids[0])
    dog = doc.add_category("dog")
    doc.add_instance(_square(c.image(ids[0]), 32), dog.id)
    c.mark_reviewed(ids[0])
    qtbot.waitUntil(lambda: panel.categories.values() == {"train": [1], "val": [0]},
                    timeout=5000)
    assert panel.categories.labels() == ["dog"]
    assert panel.statuses.values() == {"train": [1, 0, 0, 1], "val": [2, 0, 0, 0]}
    assert panel.sizes.labels() == list(SIZE_BINS)  # "<8" too
    sizes = panel.sizes.values()
    assert list(sizes) == ["train: small 0, medium 1, large 0",
                           "val: small 0, medium 0, large 0"]
    assert sizes["train: small 0, medium 1, large 0"] == [0, 0, 0, 1, 0, 0, 0, 0]
    assert panel.line.text() == "1 reviewed image: 1–1 instances each, median 1; 0 without any"

    # a model's predictions on a validation image (a cat 10 x 10, a dog 100 x 100), one
    # accepted: only accepted instances are counted, the other stays pending
    cat = c.document(ids[2]).add_category("cat & <kitten>")  # axis labels are rich text
    record = c.image(ids[2])
    stored = c.store_predictions(ids[2], "test-model", [
        (cat.id, masks.encode(_square(record, 10)), 0.9),
        (dog.id, masks.encode(_square(record, 100)), 0.8)])
    qtbot.waitUntil(lambda: panel.statuses.values()["val"] == [1, 1, 0, 0], timeout=5000)
    assert panel.categories.values() == {"train": [1, 0], "val": [0, 0]}
    assert "2 predictions pending" in panel.line.text()
    c.accept(ids[2], [stored[0].id])
    qtbot.waitUntil(lambda: panel.categories.values() == {"train": [1, 0], "val": [0, 1]},
                    timeout=5000)
    assert panel.categories.labels() == ["dog", "cat & <kitten>"]
    assert panel.sizes.values()["val: small 1, medium 0, large 0"] == [0, 1, 0, 0, 0, 0, 0, 0]
    assert "1 prediction pending" in panel.line.text()


def test_a_hidden_dock_is_not_recounted_until_it_is_shown(qtbot, window, photos_dir):
    w = window
    open_folder(qtbot, w, photos_dir)
    ov = w.overview
    ov.dock.show()
    qtbot.waitUntil(lambda: not ov.stale, timeout=5000)
    ov.dock.hide()
    first = image_id(w, PHOTO_NAMES[0])
    doc = w.controller.document(first)
    doc.add_instance(_square(w.controller.image(first), 20), doc.add_category("dog").id)
    assert ov.stale and not ov.refresh_scheduled  # nothing is recounted while hidden
    assert ov.panel.categories.values() == {"train": [], "val": []}
    ov.dock.show()
    assert not ov.stale  # recounted at once when shown
    split = w.controller.image(first).split
    assert ov.panel.categories.values()[split] == [1]
    w.controller.close()
    qtbot.waitUntil(lambda: ov.panel.line.text() == "No project", timeout=5000)
    assert ov.panel.categories.values() == {"train": [], "val": []}


def test_a_narrow_dataset_dock_scrolls_its_charts_instead_of_squeezing_them(qtbot, window,
                                                                             photos_dir):
    """Shown beside the Errors dock at the bottom (about 540 px), the per-category chart was
    squeezed to a 60 px sliver and the size histogram's range labels ran into each other."""
    from app.panels.overview import CHART_MIN_WIDTH, SIZES_MIN_WIDTH

    w = window
    open_folder(qtbot, w, photos_dir)
    panel = w.overview.panel
    panel.setParent(None)
    qtbot.addWidget(panel)
    panel.resize(540, 440)
    panel.show()
    qtbot.waitUntil(lambda: panel.charts.viewport().width() > 0, timeout=3000)
    qtbot.wait(50)
    # the first chart, in full sight (it was clipped by its own scroll area)
    assert panel.categories.parentWidget().width() >= CHART_MIN_WIDTH  # its scroll viewport
    assert panel.sizes.width() >= SIZES_MIN_WIDTH
    assert panel.statuses.width() >= CHART_MIN_WIDTH
    assert panel.charts.horizontalScrollBar().maximum() > 0  # the rest is a scroll away
    assert panel.minimumSizeHint().width() < 400  # and the window never grows for it
