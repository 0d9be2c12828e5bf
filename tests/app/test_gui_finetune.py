"""Fine-tune from the window: one click trains in a separate process, shows progress, loss
curves and before/after metrics, registers a better version, switches to it and re-predicts
the unreviewed images; Cancel leaves everything as it was; the window never stalls."""

from __future__ import annotations

import gc

import pytest
from finetune_fixtures import WINDOW_OPTIONS, make_project, open_project, set_options
from gui_helpers import assert_responsive

from app.stall_probe import StallProbe
from mrcnn.store.project import Project

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

UNREVIEWED = ("new", "predicted", "in_review")


def test_fine_tune_learns_activates_and_repredicts(qtbot, make_window, model_process,
                                                   tmp_path):
    project_dir = make_project(tmp_path)  # v1: random weights, mask AP ~0
    w = make_window(model_options=WINDOW_OPTIONS, model_session=model_process)
    open_project(qtbot, w, project_dir)
    action = w.actions["fine_tune"]
    assert action.isEnabled() and "needs" not in action.text()
    assert w.finetune.versions.names() == ["v1"]
    set_options(w, max_iters=40, warmup_iters=8)

    gc.collect()
    gc.freeze()  # as main.py does (this test process also holds torch)
    probe = StallProbe(10)
    probe.start()
    with qtbot.waitSignal(w.finetune.run_ended, timeout=600000) as ended:
        action.trigger()  # one click
        assert w.finetune.running and w.finetune.training_dock.isVisible()
        assert not action.isEnabled()
    probe.stop()
    gc.unfreeze()
    assert ended.args == ["succeeded"], w.finetune.panel.status.text()

    # live view: one loss point per iteration (total and parts) and the learning rate
    chart = w.finetune.panel.loss_chart
    assert len(chart.points("loss")) == 40 and len(chart.points("loss_mask")) == 40
    assert len(chart.points("lr")) == 40
    assert w.finetune.panel.progress.value() == 40

    # before/after, on the fixed val split: the new version is better, so it is active
    run = w.finetune.run
    before, after = run.baseline["segm"]["AP"], run.after["segm"]["AP"]
    assert after > before, (before, after)
    table = w.finetune.panel.table
    cells = {table.item(r, 0).text(): (table.item(r, 1).text(), table.item(r, 2).text())
             for r in range(table.rowCount())}
    assert {"segm AP", "segm AP50", "bbox AP", "bbox AP50"} <= set(cells)
    assert any(k.startswith("segm AP · ") for k in cells)  # per class
    assert cells["segm AP"] == (f"{before:.3f}", f"{after:.3f}")
    assert w.finetune.panel.metrics_chart.values()[1][0] == pytest.approx(after)

    versions = w.finetune.versions
    assert versions.names() == ["v2", "v1"] and versions.active_name() == "v2"
    assert versions.table.item(0, 3).text() == f"{after:.3f}"  # mask AP column
    project = w.controller.project
    v2 = project.active_model_version()
    assert v2.name == "v2" and v2.metadata["parent_version"] == "v1"
    assert (project.folder / "models/v2.pt").is_file()
    assert not list(project.models_dir.glob(".staged-*"))

    # the model process loads v2 and every unreviewed image is predicted with it
    unreviewed = [im.id for im in project.images(UNREVIEWED)]
    assert len(unreviewed) == 3
    assert "now active; predicting the 3 unreviewed images again" in \
        w.finetune.panel.status.text()
    qtbot.waitUntil(lambda: all(project.predicted_by(i, "v2") for i in unreviewed),
                    timeout=120000)
    assert w.model.info.key == "v2"

    assert len(probe.stalls) > 100
    assert_responsive(probe, what="during training")


def test_cancel_keeps_the_active_version_and_lists_nothing(qtbot, make_window, tmp_path):
    project_dir = make_project(tmp_path)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    set_options(w, max_iters=100000)
    w.actions["fine_tune"].trigger()
    chart = w.finetune.panel.loss_chart
    qtbot.waitUntil(lambda: len(chart.points("loss")) >= 2, timeout=120000)
    process = w.finetune.process
    with qtbot.waitSignal(w.finetune.run_ended, timeout=1000) as ended:
        w.finetune.panel.cancel_button.click()  # immediate
    assert ended.args == ["cancelled"]
    assert not w.finetune.running and w.actions["fine_tune"].isEnabled()
    assert "nothing was saved, v1 stays active" in w.finetune.panel.status.text()
    qtbot.waitUntil(lambda: process.process.state().name == "NotRunning", timeout=10000)
    assert w.finetune.versions.names() == ["v1"]
    w.close()
    with Project.open(project_dir, read_only=True) as p:
        assert [v.name for v in p.model_versions()] == ["v1"]
        assert p.active_model_version().name == "v1"
        assert sorted(f.name for f in p.models_dir.iterdir()) == ["v1.pt"]
