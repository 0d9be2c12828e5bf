"""Fine-tune with "activate when better": a run whose new version scores lower than the active
one lists the new version but leaves the old one active, and the window says so. The training
process is a stand-in that prints the events a real run would (each line in two writes)."""

from __future__ import annotations

import sys
import textwrap

import pytest
from finetune_fixtures import WINDOW_OPTIONS, make_project, open_project, set_options

from mrcnn.store.project import Project
from mrcnn.training import launcher

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CHILD = textwrap.dedent("""
    import json, sys, time
    stage = sys.argv[1]
    before, after = float(sys.argv[2]), float(sys.argv[3])
    def ap(x):
        return {"segm": {"AP": x, "AP50": x}, "bbox": {"AP": x, "AP50": x}}
    open(stage, "wb").write(b"weights")
    for event in [
        {"event": "start", "max_iters": 2, "train_images": 14, "val_images": 4,
         "device": "CPU", "preset": "r18", "size": 64},
        {"event": "eval", "stage": "baseline", "version": "v1", "metrics": ap(before)},
        {"event": "step", "iteration": 2, "max_iters": 2, "losses": {}, "loss": 1.0},
        {"event": "eval", "stage": "after", "metrics": ap(after)},
        {"event": "saved", "staged": stage, "preset": "r18", "parent_id": 1,
         "metadata": {"iterations": 2}},
        {"event": "done", "staged": stage},
    ]:
        line = json.dumps(event) + "\\n"
        half = len(line) // 2
        sys.stdout.write(line[:half]); sys.stdout.flush(); time.sleep(0.02)
        sys.stdout.write(line[half:]); sys.stdout.flush()
""")


def fake_training(monkeypatch, tmp_path, before: float, after: float) -> None:
    script = tmp_path / "fake_train.py"
    script.write_text(CHILD)

    def train_command(project_folder, options, *, stage, baseline):
        return [sys.executable, str(script), str(stage), str(before), str(after)]

    monkeypatch.setattr(launcher, "train_command", train_command)


def test_a_worse_new_version_leaves_the_active_one_and_says_so(qtbot, make_window, tmp_path,
                                                              monkeypatch):
    project_dir = make_project(tmp_path)
    fake_training(monkeypatch, tmp_path, before=0.5, after=0.3)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    set_options(w, activate="if-better")
    with qtbot.waitSignal(w.finetune.run_ended, timeout=60000) as ended:
        w.actions["fine_tune"].trigger()
    assert ended.args == ["succeeded"], w.finetune.panel.status.text()

    status = w.finetune.panel.status.text()
    assert "v2 saved (mask AP 0.300" in status and "v1 stays active" in status, status
    assert "now active" not in status
    panel = w.finetune.versions
    assert panel.names() == ["v2", "v1"] and panel.active_name() == "v1"
    assert w.controller.project.active_model_version().name == "v1"
    w.close()
    with Project.open(project_dir, read_only=True) as p:
        assert [v.name for v in p.model_versions()] == ["v1", "v2"]
        assert p.active_model_version().name == "v1"


def test_a_better_new_version_becomes_active(qtbot, make_window, tmp_path, monkeypatch):
    project_dir = make_project(tmp_path)
    fake_training(monkeypatch, tmp_path, before=0.3, after=0.5)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    set_options(w, activate="if-better")
    with qtbot.waitSignal(w.finetune.run_ended, timeout=60000) as ended:
        w.actions["fine_tune"].trigger()
    assert ended.args == ["succeeded"], w.finetune.panel.status.text()
    assert "v2 saved (mask AP 0.500" in w.finetune.panel.status.text()
    assert "now active" in w.finetune.panel.status.text()
    assert w.finetune.versions.active_name() == "v2"
