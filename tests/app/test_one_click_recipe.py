"""One click of Fine-tune starts from the strongest model the machine has, and the Training
panel says what it will run before the click: from the (stand-in) COCO weights when they are
in the torch cache, else from scratch."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from finetune_fixtures import WINDOW_OPTIONS, make_project, open_project

from app.controllers.finetune import FinetuneController
from mrcnn.training.events import StartEvent
from mrcnn.training.launcher import FinetuneOptions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LINE = re.compile(r"Next run: (\S+) from (.+?) · (\d+) px · (\d+) iterations · batch (\d+) · "
                  r"about (\d+) min on this CPU")


def _first_start_event(qtbot, w) -> StartEvent:
    seen: list[StartEvent] = []
    w.finetune.process.event.connect(
        lambda e: seen.append(e) if isinstance(e, StartEvent) else None)
    qtbot.waitUntil(lambda: bool(seen), timeout=600000)
    return seen[0]


def _one_click(qtbot, w) -> tuple[list[str], StartEvent, str]:
    """Click Fine-tune (the options left to the recipe except a tiny run: 1 iteration at
    64 px, as a user may fix them), wait for the start event, then cancel."""
    ft = w.finetune
    ft.options = replace(FinetuneOptions(), max_iters=1, size=64, device="cpu", nice=5)
    ft.panel.set_options(ft.options)
    w.actions["fine_tune"].trigger()
    assert ft.running
    argv = ft.process.argv
    event = _first_start_event(qtbot, w)
    line = ft.panel.recipe.text()  # while it runs
    with qtbot.waitSignal(ft.run_ended, timeout=120000):
        ft.cancel()
    return argv, event, line


def test_with_coco_weights_one_click_starts_from_them(qtbot, make_window, tmp_path,
                                                      monkeypatch, stand_in_coco_home):
    monkeypatch.setenv("TORCH_HOME", str(stand_in_coco_home))
    project_dir = make_project(tmp_path, weak_v1=False)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    w.finetune.show_panel()
    line = w.finetune.panel.recipe.text()
    m = LINE.fullmatch(line)
    assert m, line
    preset, start, size, iters, batch, minutes = m.groups()
    assert (preset, start) == ("r50v2", "COCO weights")
    assert int(size) < 800 and int(minutes) <= 15  # a reduced size, within the CPU budget
    assert w.finetune.panel.recipe.isVisible()

    argv, event, running_line = _one_click(qtbot, w)
    assert "--preset" not in argv and argv[argv.index("--from") + 1] == "auto"
    assert (event.start, event.preset) == ("coco", "r50v2")
    assert event.recipe.startswith("r50v2 from COCO weights · 64 px · 1 iterations")
    assert running_line == f"This run: {event.recipe}"


def test_without_weights_one_click_trains_from_scratch_and_says_so(qtbot, make_window,
                                                                   tmp_path):
    project_dir = make_project(tmp_path, weak_v1=False)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    m = LINE.fullmatch(w.finetune.panel.recipe.text())
    assert m and m.group(1, 2, 3) == ("r18", "scratch", "256"), w.finetune.panel.recipe.text()
    # fixing a field in the panel changes the line at once
    w.finetune.panel.iterations.setValue(120)
    assert " · 120 iterations · " in w.finetune.panel.recipe.text()
    w.finetune.panel.iterations.setValue(0)  # back to "auto"
    assert w.finetune.panel.iterations.text() == "auto"

    argv, event, _ = _one_click(qtbot, w)
    assert "--preset" not in argv
    assert (event.start, event.preset) == ("scratch", "r18")


def test_the_window_asks_the_machine_once(qtbot, make_window, tmp_path, monkeypatch):
    """The real question (a `python -m mrcnn hardware` process), answered in the
    background: the line first says it is checking."""
    monkeypatch.setattr(FinetuneController, "hardware", None)
    project_dir = make_project(tmp_path, weak_v1=False)
    w = make_window(model_options=WINDOW_OPTIONS)
    open_project(qtbot, w, project_dir)
    assert w.finetune.panel.recipe.text() == "Next run: checking this machine…"
    qtbot.waitUntil(lambda: FinetuneController.hardware is not None, timeout=120000)
    where = "this CPU" if FinetuneController.hardware.device == "cpu" else "this GPU"
    qtbot.waitUntil(lambda: where in w.finetune.panel.recipe.text(), timeout=5000)


def test_when_the_window_shows_coco_predictions_they_are_the_baseline(
        qtbot, make_window, tmp_path, monkeypatch, stand_in_coco_home):
    """No project version, the window predicts with COCO weights: a run from scratch is
    compared with that model ("Activate when better" compares with what the user sees)."""
    monkeypatch.setenv("TORCH_HOME", str(stand_in_coco_home))
    project_dir = make_project(tmp_path, weak_v1=False)
    w = make_window(model_options=replace(WINDOW_OPTIONS, auto_load=True))
    open_project(qtbot, w, project_dir)
    qtbot.waitUntil(lambda: w.model.info is not None, timeout=120000)
    assert w.model.info.kind == "coco"
    ft = w.finetune
    ft.options = replace(FinetuneOptions(), preset="r18", start="scratch", max_iters=1,
                         size=64, device="cpu")
    ft.panel.set_options(ft.options)
    w.actions["fine_tune"].trigger()
    argv = ft.process.argv
    assert argv[argv.index("--baseline") + 1] == "coco"
    with qtbot.waitSignal(ft.run_ended, timeout=120000):
        ft.cancel()
