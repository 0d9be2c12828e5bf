"""The model in the window: predictions appear by themselves for the current image and the
next ones, the score slider re-filters them without the model, the accepted ones are what
export writes; predictions are never recomputed for the same model; no weights → a banner."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from gui_helpers import (
    image_id,
    open_folder,
    run_data_action,
    wait_image_shown,
    wait_model_ready,
)
from model_fixtures import CATEGORIES, FAST

from app import dialogs
from app.dialogs import ExportOptions


def model_window(make_window, model_process, **kwargs):
    kwargs.setdefault("model_options", FAST)
    return make_window(model_session=model_process, **kwargs)


def wait_predicted(qtbot, window, ids, key: str = "v1", timeout: int = 60000) -> None:
    project = window.controller.project
    qtbot.waitUntil(lambda: all(project.predicted_by(i, key) for i in ids), timeout=timeout)


def test_predict_ahead_threshold_accept_review_export(qtbot, make_window, model_process,
                                                      project_with_model, monkeypatch,
                                                      tmp_path):
    w = model_window(make_window, model_process)
    open_folder(qtbot, w, project_with_model)
    wait_model_ready(qtbot, w)
    assert w.model.state == "ready" and not w.banner.isVisible()
    assert w.model_status.model_label.text().startswith("Model: v1 (project) · r18")
    assert w.model_status.device_label.text().startswith("CPU — requested · ")

    # the current image and the next three are predicted without asking
    project = w.controller.project
    ids = [im.id for im in project.images()]
    wait_predicted(qtbot, w, ids)
    qtbot.waitUntil(lambda: not w.model.busy, timeout=30000)
    first = w.image_list.current_id
    wait_image_shown(qtbot, w)
    rows = w.controller.instance_rows(first)
    assert rows and all(r.pending and r.source == "v1" for r in rows)
    assert {r.category for r in rows} <= set(CATEGORIES)
    assert all(project.image(i).status == "predicted" for i in ids)

    # the slider hides low scores at once, without running the model again
    scores = sorted(r.instance.score for r in rows)
    cut = scores[len(scores) // 2]
    stored = w.model.predictions_stored
    fired = []
    stored.connect(fired.append)
    w.threshold.setValue(int(cut * 100))
    threshold = w.canvas.score_threshold
    shown = [i for i in w.canvas.instance_items().values() if i.isVisible()]
    assert len(shown) == sum(s >= threshold for s in scores) == w.instance_list.visible_count()
    assert 0 < len(shown) < len(rows)
    assert not w.model.busy and fired == []
    w.threshold.setValue(100)
    assert not any(i.isVisible() for i in w.canvas.instance_items().values())
    w.threshold.setValue(int(cut * 100))

    w.actions["accept_above_threshold"].trigger()
    accepted = project.instances(first, state="accepted")
    assert len(accepted) == len(shown)
    assert all(i.source == "model" and i.score >= threshold for i in accepted)
    assert project.image(first).status == "in_review"

    w.canvas.setFocus()
    w.actions["mark_reviewed"].trigger()
    assert project.image(first).status == "reviewed"
    assert w.image_list.current_id != first

    out = tmp_path / "export.json"
    monkeypatch.setattr(dialogs, "ask_export_options",
                        lambda *_a: ExportOptions(out, "rle", True))
    run_data_action(qtbot, w, "export_coco")
    coco = json.loads(out.read_text())
    assert [im["file_name"] for im in coco["images"]] == [Path(project.image(first).path).name]
    assert len(coco["annotations"]) == len(accepted)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_cat = sorted(names[a["category_id"]] for a in coco["annotations"])
    assert by_cat == sorted(w.controller.category(i.category_id).name for i in accepted)
    assert sorted(a["score"] for a in coco["annotations"]) == sorted(i.score for i in accepted)


def test_reopening_recomputes_nothing(qtbot, make_window, model_process, project_with_model):
    options = replace(FAST, lookahead=1)  # the current image and the next
    w = model_window(make_window, model_process, model_options=options)
    open_folder(qtbot, w, project_with_model)
    project = w.controller.project
    ids = [w.image_list.current_id, w.image_list.neighbor(w.image_list.current_id, +1)]
    wait_predicted(qtbot, w, ids)
    qtbot.waitUntil(lambda: not w.model.busy, timeout=30000)
    before = sorted(i.id for i in project.instances())
    # the image ahead was predicted with its uncertainty (the mirrored pass), the one on
    # screen without it: the user waits for that one
    measured = project.image_uncertainties()
    assert ids[1] in measured and 0.0 <= measured[ids[1]] <= 1.0
    assert ids[0] not in measured
    w.close()

    again = model_window(make_window, model_process, ui_name="ui2.ini",
                         model_options=options)
    stored = []
    again.model.predictions_stored.connect(stored.append)
    open_folder(qtbot, again, project_with_model)
    wait_model_ready(qtbot, again)  # the load looks ahead at once: nothing to do
    assert again.model.state == "ready"
    # the look-ahead job may still be checking the cache on a loaded machine: let it end
    qtbot.waitUntil(lambda: not again.model.busy, timeout=30000)
    assert stored == []
    assert sorted(i.id for i in again.controller.project.instances()) == before


def test_predict_this_image_runs_again(qtbot, make_window, model_process,
                                       project_with_model):
    w = model_window(make_window, model_process, model_options=replace(FAST, lookahead=0))
    open_folder(qtbot, w, project_with_model)
    current = w.image_list.current_id
    wait_predicted(qtbot, w, [current])
    project = w.controller.project
    n = len(project.instances(current))
    w.controller.delete(current, [i.id for i in project.instances(current)])
    w.actions["next_image"].trigger()
    w.actions["previous_image"].trigger()  # looking again does not bring them back...
    qtbot.waitUntil(lambda: not w.model.busy, timeout=30000)
    assert project.instances(current) == []
    with qtbot.waitSignal(w.model.predictions_stored, timeout=30000,
                          check_params_cb=lambda i: i == current):
        w.actions["predict_image"].trigger()  # ...asking does
    assert len(project.instances(current, state="pending")) == n


def test_label_by_hand_is_remembered_for_the_project_until_a_model_is_wanted(
        qtbot, make_window, model_process, photos_dir):
    """A person who chose "Label by Hand" reopens the project: the banner stays away (it
    came back with every start, taking a seventh of the canvas). Asking for a prediction
    brings it back, then and next time."""

    def reopen():
        w = model_window(make_window, model_process)  # the same UI state file each time
        open_folder(qtbot, w, photos_dir)
        wait_model_ready(qtbot, w)
        assert w.model.state == "missing"
        return w

    w = reopen()
    assert w.banner.isVisible()
    w.banner.by_hand.click()
    w.close()
    w = reopen()
    assert not w.banner.isVisible()
    assert "no weights" in w.model_status.model_label.text()
    w.actions["predict_image"].trigger()
    assert w.banner.isVisible()
    w.close()
    w = reopen()
    assert w.banner.isVisible()


def test_no_weights_banner_then_a_checkpoint_file(qtbot, make_window, model_process,
                                                  photos_dir, checkpoint, monkeypatch):
    w = model_window(make_window, model_process)
    open_folder(qtbot, w, photos_dir)
    wait_model_ready(qtbot, w)
    assert w.model.state == "missing"
    assert w.banner.isVisible()
    assert "COCO weights are not in the torch cache" in w.banner.reason.text()
    for button in (w.banner.checkpoint, w.banner.download, w.banner.by_hand):
        assert button.isVisible()
    assert model_process.info is None or w.model.info is None

    w.banner.by_hand.click()  # label by hand: the banner goes away...
    assert not w.banner.isVisible()
    w.actions["predict_image"].trigger()  # ...and comes back when a prediction is asked for
    assert w.banner.isVisible()
    assert "No model to predict with" in w.statusBar().currentMessage()

    monkeypatch.setattr(dialogs, "choose_open_file", lambda *_a: str(checkpoint))
    w.banner.checkpoint.click()
    wait_model_ready(qtbot, w)
    qtbot.waitUntil(lambda: w.model.state == "ready", timeout=60000)
    assert not w.banner.isVisible()
    assert w.model.info.key.startswith("file-")
    assert "file r18.pt" in w.model_status.model_label.text()
    current = w.image_list.current_id
    wait_predicted(qtbot, w, [current], key=w.model.info.key)
    # a fresh project gets no category from the model: its classes are only suggested
    assert w.controller.project.categories() == []
    offered = {s.name for s in w.controller.project.category_suggestions()}
    assert offered and offered <= set(CATEGORIES)


def test_a_checkpoint_loaded_by_hand_comes_back_when_the_project_opens_again(
        qtbot, make_window, model_process, photos_dir, checkpoint, tmp_path):
    """A person loaded their checkpoint file into a project without versions, closed the
    app and opened the project the next day: it said "no weights" and they had to find the
    file again. It is loaded again now, while the file is there."""
    picked = tmp_path / "mine.pt"
    shutil.copy(checkpoint, picked)
    first = model_window(make_window, model_process)
    open_folder(qtbot, first, photos_dir)
    wait_model_ready(qtbot, first)
    assert first.model.state == "missing"
    first.model.load_file(picked)
    qtbot.waitUntil(lambda: first.model.state == "ready", timeout=60000)
    first.close()

    second = model_window(make_window, model_process)
    open_folder(qtbot, second, photos_dir)
    qtbot.waitUntil(lambda: second.model.state == "ready", timeout=60000)
    assert "file mine.pt" in second.model_status.model_label.text()
    assert not second.banner.isVisible()
    second.close()

    picked.unlink()  # gone: the project opens without it, with the banner as before
    third = model_window(make_window, model_process)
    open_folder(qtbot, third, photos_dir)
    wait_model_ready(qtbot, third)
    assert third.model.state == "missing" and third.model.info is None
    assert third.banner.isVisible()


def test_download_offline_says_why(qtbot, make_window, model_process, photos_dir, errors):
    w = model_window(make_window, model_process)
    open_folder(qtbot, w, photos_dir)
    wait_model_ready(qtbot, w)
    job = w.model.download_coco()
    assert w.progress.isVisible() and "Downloading COCO weights" in w.progress.label.text()
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert w.model.state == "missing" and w.banner.isVisible()
    reason = w.banner.reason.text().lower()
    assert "cannot reach" in reason or "did not answer" in reason
    assert "could not be downloaded" in w.statusBar().currentMessage()
    # on a machine without the internet, the way on is the same file copied by hand: the
    # banner names it and the folder of this machine's torch cache, to copy
    from mrcnn.model.weight_files import coco_file_path

    offline = w.banner.offline
    assert offline.isVisible()
    assert f"{coco_file_path().name} into {coco_file_path().parent}," in offline.text()
    assert errors == []  # a status line and the banner, no modal box


def test_predict_all_unreviewed_with_progress(qtbot, make_window, model_process,
                                              project_with_model):
    w = model_window(make_window, model_process, model_options=replace(FAST, lookahead=-1))
    open_folder(qtbot, w, project_with_model)
    project = w.controller.project
    reviewed = image_id(w, "coffee.jpg")
    w.controller.set_status(reviewed, "reviewed")
    labels = []
    w.progress.bar.valueChanged.connect(lambda _v: labels.append(w.progress.label.text()))
    w.actions["predict_unreviewed"].trigger()  # loads the model first, then predicts
    qtbot.waitUntil(lambda: w.model.batch_running, timeout=60000)
    assert w.progress.isVisible()
    qtbot.waitUntil(lambda: not w.model.batch_running, timeout=60000)
    others = [im.id for im in project.images() if im.id != reviewed]
    assert all(project.predicted_by(i, "v1") for i in others)
    assert not project.predicted_by(reviewed, "v1")
    assert "Predicting 3/3" in labels
    assert w.statusBar().currentMessage().startswith("Predicted 3 images")
    assert not w.progress.isVisible()

    w.actions["predict_unreviewed"].trigger()  # nothing left to do for this model
    assert "predicted by v1 already" in w.statusBar().currentMessage()
