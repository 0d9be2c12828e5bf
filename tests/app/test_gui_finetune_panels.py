"""Around fine-tuning, without training: the action waits for enough reviewed images (and
says how many), the Model Versions panel activates, rolls back and deletes, and the review
queue offers the most uncertain unreviewed image first."""

from __future__ import annotations

import time

from finetune_fixtures import WINDOW_OPTIONS, add_random_version, make_project, open_project
from gui_helpers import contrast
from PySide6.QtCore import Qt

from mrcnn.store.project import Project


def test_fine_tune_waits_for_enough_reviewed_images(qtbot, make_window, tmp_path):
    project_dir = make_project(tmp_path, n_train=7, n_val=3, unreviewed=1, weak_v1=False)
    w = make_window(model_options=WINDOW_OPTIONS)
    action = w.actions["fine_tune"]
    assert not action.isEnabled()  # no project
    open_project(qtbot, w, project_dir)
    assert not action.isEnabled()
    assert action.text() == "&Fine-tune (needs 1 more reviewed image)"
    assert w.finetune.panel.start_button.text() == "Fine-tune (needs 1 more reviewed image)"
    w.image_list.select_image(w.controller.images()[0].id)  # the unreviewed one
    w.actions["mark_reviewed"].trigger()
    qtbot.waitUntil(action.isEnabled, timeout=5000)
    assert action.text() == "&Fine-tune"
    w.finetune.refresh()
    w._update_actions()  # the window's own refresh keeps it enabled
    assert action.isEnabled()


def test_versions_panel_activate_rollback_delete(qtbot, make_window, tmp_path):
    project_dir = make_project(tmp_path, weak_v1=False)
    with Project.open(project_dir) as p:
        v1 = add_random_version(p)
        v2 = add_random_version(p, seed=1)  # active
        p.activate_model_version(v2.id)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    panel = w.finetune.versions
    assert panel.names() == ["v2", "v1"] and panel.active_name() == "v2"
    assert panel.table.item(0, 0).text() == "●" and panel.table.item(1, 0).text() == ""
    # the active one can be neither activated nor deleted
    panel.select(v2.id)
    assert not panel.activate_button.isEnabled() and not panel.delete_button.isEnabled()
    assert panel.rollback_button.isEnabled()

    panel.rollback_button.click()  # v2 has no parent: the one before it
    assert panel.active_name() == "v1"
    assert w.controller.project.active_model_version().id == v1.id
    qtbot.waitUntil(lambda: w.model.info is not None and w.model.info.key == "v1",
                    timeout=60000)  # the model process switched too

    panel.select(v2.id)
    panel.activate_button.click()
    assert panel.active_name() == "v2"

    panel.select(v1.id)
    assert panel.delete_button.isEnabled()
    panel.delete_button.click()  # confirmed (the test fixture answers yes)
    assert panel.names() == ["v2"]
    project = w.controller.project
    assert [v.name for v in project.model_versions()] == ["v2"]
    assert not (project.folder / "models/v1.pt").exists()
    assert not panel.rollback_button.isEnabled()


def ranked_project(tmp_path):
    """A project whose first 4 images are unreviewed and predicted, with uncertainty
    ims[1] > ims[2] > ims[3] > ims[0] (ims[3]: predicted, nothing found). Returns (folder,
    the 4 image records)."""
    project_dir = make_project(tmp_path, unreviewed=4)
    with Project.open(project_dir) as p:
        ims = p.images()[:4]
        cat = p.categories()[0].id
        rle = p.instances(p.images()[10].id)[0].rle  # any mask of the same (square) size
        for im, scores in zip(ims, ([0.97], [0.55, 0.99], [0.6], []), strict=True):
            p.replace_predictions(im.id, "v1", [(cat, rle, s) for s in scores],
                                  model_version_id=p.active_model_version().id)
    return project_dir, ims


def test_next_most_uncertain_and_list_order(qtbot, make_window, tmp_path):
    project_dir, ims = ranked_project(tmp_path)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    first = w.image_list.visible_ids()[0]
    assert first == ims[0].id
    w.actions["next_uncertain"].trigger()
    assert w.image_list.current_id == ims[1].id
    w.actions["next_uncertain"].trigger()  # again: down the queue
    assert w.image_list.current_id == ims[2].id
    w.actions["next_uncertain"].trigger()
    assert w.image_list.current_id == ims[3].id
    w.image_list.select_image(ims[2].id)

    w.image_list.order_box.setCurrentIndex(w.image_list.order_box.findData("uncertain"))
    order = w.image_list.visible_ids()
    assert order[:4] == [ims[1].id, ims[2].id, ims[3].id, ims[0].id]
    assert len(order) == len(w.controller.images())  # reviewed ones follow
    assert w.image_list.current_id == ims[2].id  # moving the rows keeps the current image
    assert w.image_list.neighbor(ims[2].id, +1) == ims[3].id  # D follows the order
    # each row says why it is where it is
    from app.panels.image_rows import UNCERTAINTY_ROLE
    from app.text import uncertainty_text

    model = w.image_list.model

    def shown(image_id):
        index = model.index(model.row_of(image_id))
        return index.data(UNCERTAINTY_ROLE), index.data(Qt.ItemDataRole.ToolTipRole)

    values = [shown(im.id)[0] for im in (ims[1], ims[2], ims[3], ims[0])]
    assert all(v is not None for v in values) and values == sorted(values, reverse=True)
    assert f"uncertainty {uncertainty_text(values[0])}" in shown(ims[1].id)[1]
    assert shown(w.controller.images()[10].id)[0] is None  # reviewed: not in the queue
    w.image_list.order_box.setCurrentIndex(w.image_list.order_box.findData("file"))
    assert w.image_list.visible_ids()[0] == ims[0].id
    assert shown(ims[1].id)[0] is None and "uncertainty" not in shown(ims[1].id)[1]


def test_the_list_order_is_remembered_per_project(qtbot, make_window, tmp_path):
    """Reopened, a project's review goes on in the order chosen there (it once went back to
    file order, and Ctrl+Enter then led through the images in another order, unsaid);
    another project keeps its own."""
    project_dir, ims = ranked_project(tmp_path / "a")
    other_dir, _ = ranked_project(tmp_path / "b")
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    w.image_list.set_order("uncertain")
    open_project(qtbot, w, other_dir)
    assert w.image_list.order == "file"
    w.close()
    w = make_window(model_options=WINDOW_OPTIONS)  # same settings file
    open_project(qtbot, w, project_dir)
    assert w.image_list.order_box.currentText() == "Most uncertain first"
    assert w.image_list.visible_ids()[:4] == [ims[1].id, ims[2].id, ims[3].id, ims[0].id]
    w.image_list.select_image(ims[1].id)
    w.actions["mark_reviewed"].trigger()  # Ctrl+Enter: the next in this order
    qtbot.waitUntil(lambda: w.image_list.current_id == ims[2].id, timeout=5000)


def test_fine_tune_options_are_remembered_between_sessions(qtbot, make_window, tmp_path):
    w = make_window(model_options=WINDOW_OPTIONS)
    panel = w.finetune.panel
    panel.iterations.setValue(77)
    panel.size.setValue(192)
    panel.start_from.setCurrentIndex(panel.start_from.findData("scratch"))
    panel.activate.setCurrentIndex(panel.activate.findData("always"))
    w.close()

    again = make_window(model_options=WINDOW_OPTIONS)  # same settings file
    p = again.finetune.panel
    assert (p.iterations.value(), p.size.value()) == (77, 192)
    assert (p.start_from.currentData(), p.activate.currentData()) == ("scratch", "always")
    assert again.finetune.options.max_iters == 77


def test_moving_an_image_to_val_shows_in_the_list_and_in_the_val_counts(qtbot, make_window,
                                                                        tmp_path):
    from app.panels.image_rows import SPLIT_ROLE

    project_dir = make_project(tmp_path, n_train=11, n_val=1, unreviewed=0, weak_v1=False)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    fine_tune, move = w.actions["fine_tune"], w.actions["move_split"]
    # 12 reviewed images, 1 for validation: fine-tune says what is missing and how to fix it
    assert fine_tune.text() == "&Fine-tune (needs 1 more validation image)"
    assert "Move to Validation" in w.finetune.panel.status.text()
    assert "11 training · " in w.image_list.counts.text()
    image = w.controller.images()[0]  # a reviewed training image
    w.image_list.select_image(image.id)
    qtbot.waitUntil(move.isEnabled, timeout=5000)
    assert move.text() == "Move to &Validation"

    move.trigger()
    row = w.image_list.model.index(w.image_list.model.row_of(image.id))
    assert row.data(SPLIT_ROLE) == "val" and "validation split" in row.data(
        Qt.ItemDataRole.ToolTipRole)
    assert w.controller.project.image(image.id).split == "val"  # durable already
    assert "2 validation" in w.image_list.counts.text()
    assert fine_tune.text() == "&Fine-tune" and fine_tune.isEnabled()
    assert "validation 2 images" in w.finetune.panel.status.text()
    assert move.text() == "Move to &Training"
    w.image_list.split_filter.setCurrentText("Validation")
    assert len(w.image_list.visible_ids()) == 2 and image.id in w.image_list.visible_ids()
    w.image_list.split_filter.setCurrentText("Training")
    assert image.id not in w.image_list.visible_ids()
    w.image_list.split_filter.setCurrentText("Both splits")

    w.actions["undo"].trigger()  # one step: back to training
    assert w.controller.project.image(image.id).split == "train"
    assert row.data(SPLIT_ROLE) == "train" and "1 validation" in w.image_list.counts.text()
    assert fine_tune.text() == "&Fine-tune (needs 1 more validation image)"
    assert move.text() == "Move to &Validation"
    w.actions["redo"].trigger()
    assert w.controller.project.image(image.id).split == "val" and fine_tune.isEnabled()


def test_the_options_offer_only_what_can_run_and_say_why(qtbot, make_window, tmp_path):
    w = make_window(model_options=WINDOW_OPTIONS)
    panel = w.finetune.panel
    panel.preset.setCurrentText("r18")
    panel.start_from.setCurrentIndex(panel.start_from.findData("scratch"))
    coco = panel.start_from.findData("coco")
    assert not panel.choice_enabled(panel.start_from, coco)  # r18 has no COCO weights
    reason = panel.start_from.itemData(coco, Qt.ItemDataRole.ToolTipRole)
    assert reason == "Off: r18 has no COCO weights (only r50v2, r50 have)"
    assert "COCO weights is off: r18 has no COCO weights" in panel.options_note.text()
    # r50v2 has COCO weights, but not on this machine (an empty torch cache): still off
    panel.preset.setCurrentText("r50v2")
    assert not panel.choice_enabled(panel.start_from, coco)
    assert "not on this machine" in panel.start_from.itemData(coco, Qt.ItemDataRole.ToolTipRole)
    assert panel.choice_enabled(panel.start_from, panel.start_from.findData("scratch"))
    # no project: no active version to start from
    active = panel.start_from.findData("active")
    assert "no active model version" in panel.start_from.itemData(
        active, Qt.ItemDataRole.ToolTipRole)


def test_a_low_training_dock_neither_overlaps_nor_clips_the_options(qtbot):
    from app.panels.training import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.options_note.setText("Active version is off: the project has no active model "
                               "version.\nCOCO weights is off: the COCO weights for r50v2 are "
                               "not on this machine (download them: Model ▸ Download COCO "
                               "Weights, or train --download).")
    panel.options_note.show()
    panel.resize(1400, 300)  # lower than the controls: they scroll
    panel.show()
    qtbot.waitExposed(panel)

    box, note = panel.options_box, panel.options_note
    assert note.mapTo(panel, note.rect().topLeft()).y() >= box.mapTo(
        panel, box.rect().bottomLeft()).y(), "the note is drawn over the options"
    column = box.parentWidget()
    scroll = column.parentWidget().parentWidget()
    assert column.width() <= scroll.viewport().width(), "the controls are cut on the right"
    assert note.height() >= note.heightForWidth(note.width())  # every line of the note shows


def test_the_empty_loss_chart_counts_whole_iterations(qtbot):
    from app.panels.charts import LossChartView

    chart = LossChartView()
    qtbot.addWidget(chart)
    assert chart.x_axis.tickInterval() == 1  # 0 and 1, not "0 0 0 0 1"
    chart.reset(300)
    assert (chart.x_axis.min(), chart.x_axis.max(), chart.x_axis.tickInterval()) == (0, 300, 100)
    chart.reset(1000)
    assert chart.x_axis.tickInterval() == 200
    chart.show()
    qtbot.waitExposed(chart)
    t0 = time.perf_counter()
    chart.reset(1_000_000)  # a long run after a short one: laid out with 5 ticks, at once
    chart.repaint()
    assert chart.x_axis.tickInterval() == 200_000 and time.perf_counter() - t0 < 2.0
    t0 = time.perf_counter()
    chart.reset(1)  # and a short one after it
    chart.repaint()
    assert chart.x_axis.tickInterval() == 1 and time.perf_counter() - t0 < 2.0


def test_the_before_after_table_shows_every_change_whole_and_readable(qtbot):
    """In the Training dock as the window lays it out (about 1400 px wide), the changes were
    drawn dark red on the dark base, where they could hardly be read, and the first column's
    header ("Metric (8 images, 25 instances)", said above the table too) was cut."""
    from app.panels.training import TrainingPanel
    from app.theme import BAD, BASE, GOOD
    from mrcnn.store.versions import MetricRow

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(1370, 470)
    panel.show()
    rows = [MetricRow(name, before, after) for name, before, after in (
        ("segm AP", 0.459, 0.455), ("segm AP50", 0.700, 0.670), ("bbox AP", 0.500, 0.477),
        ("bbox AP50", 0.700, 0.670), ("segm AP · disc", 0.651, 0.619),
        ("segm AP · square", 0.180, 0.207), ("segm AP · ring", 0.576, 0.607),
        ("segm AP · triangle", 0.427, 0.388))]
    panel.show_comparison(rows, "v1", "v2", val_text="val: 8 images, 25 instances")
    table = panel.table
    qtbot.waitUntil(lambda: table.viewport().width() > 0, timeout=3000)
    qtbot.wait(50)
    header = table.horizontalHeader()
    assert header.sectionViewportPosition(3) + header.sectionSize(3) <= table.viewport().width()
    first = table.horizontalHeaderItem(0).text()
    assert header.fontMetrics().horizontalAdvance(first) < header.sectionSize(0)
    assert "8 images, 25 instances" in panel.val_note.text()
    metrics = table.fontMetrics()
    for i, r in enumerate(rows):
        item = table.item(i, 3)
        assert item.text() == f"{r.delta:+.3f}"
        assert metrics.horizontalAdvance(item.text()) < table.columnWidth(3)
        assert contrast(item.foreground().color(), BASE) >= 4.5
        assert item.foreground().color() == (GOOD if r.delta > 0 else BAD)
