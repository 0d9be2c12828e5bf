"""Model ▸ Tiled Prediction for Large Images: checkable, on ("auto") by default, kept in the
UI state, and handed to every prediction job (which hands it to the model session)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gui_helpers import wait_image_shown
from model_fixtures import FAST
from PySide6.QtCore import Qt

from mrcnn.serving.session import ImagePrediction, ModelInfo, ModelRequest
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project

OPTIONS = replace(FAST, lookahead=0, auto_load=True, auto_load_delay_ms=0)


class RecordingSession:
    """The `Session` protocol without a model: records the tiles setting of each prediction
    and reports two passes, as a tiled image does."""

    def __init__(self) -> None:
        self._info: ModelInfo | None = None
        self.calls: list[tuple[int, object]] = []

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def load(self, request: ModelRequest, progress=None, should_cancel=None) -> ModelInfo:
        self._info = ModelInfo(request.version_name or "file-fake", "fake (project)", "r18",
                               "version", request.version_id, ("disc",), "CPU")
        return self._info

    def predict_path(self, image_id: int, path: str | Path, uncertainty: bool = False,
                     tiles="auto", *, should_cancel=None, progress=None) -> ImagePrediction:
        assert should_cancel is not None and not should_cancel()
        if progress is not None:
            progress(1, 2)
            progress(2, 2)
        self.calls.append((image_id, tiles))
        info = self._info
        assert info is not None
        return ImagePrediction(image_id, info.key, info.version_id, [], 0.0)

    def unload(self) -> None:
        self._info = None


def test_the_option_is_kept_and_passed_to_prediction_jobs(qtbot, make_window, tmp_path):
    project_dir = make_synthetic_project(tmp_path / "shapes", n_train=2, n_val=2, size=64)
    with Project.open(project_dir) as p:
        p.add_model_version("models/v1.pt", "r18", activate=True)
    session = RecordingSession()
    w = make_window(model_options=OPTIONS, model_session=session)
    action = w.actions["tiled_prediction"]
    (model_menu,) = [m.menu() for m in w.menuBar().actions() if m.text() == "&Model"]
    assert action in model_menu.actions()
    assert action.isCheckable() and action.isChecked() and w.ui.tiles() == "auto"  # default

    assert w.open_path(project_dir)
    wait_image_shown(qtbot, w)
    qtbot.waitUntil(lambda: w.model.state == "ready", timeout=10000)
    w.actions["predict_image"].trigger()
    qtbot.waitUntil(lambda: len(session.calls) == 1 and not w.model.busy, timeout=10000)
    assert session.calls[0] == (w.image_list.current_id, "auto")

    action.trigger()  # off
    assert not action.isChecked() and w.ui.tiles() == "off"
    w.actions["predict_image"].trigger()
    qtbot.waitUntil(lambda: len(session.calls) == 2 and not w.model.busy, timeout=10000)
    assert session.calls[1][1] == "off"

    w.ui.sync()
    again = make_window()  # the same UI state file: the choice was kept
    assert not again.actions["tiled_prediction"].isChecked() and again.ui.tiles() == "off"
    again.actions["tiled_prediction"].trigger()
    assert again.ui.tiles() == "auto"


class SlowTiledSession(RecordingSession):
    """Every image is 'large': four passes, each waiting for the test to let it go, and
    stopping between passes when cancelled, as a tiled image does."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.go = threading.Semaphore(0)
        self.started: list[int] = []

    def predict_path(self, image_id: int, path: str | Path, uncertainty: bool = False,
                     tiles="auto", *, should_cancel=None, progress=None) -> ImagePrediction:
        from mrcnn.errors import ModelCancelled

        self.started.append(image_id)
        for k in range(1, 5):
            while not self.go.acquire(timeout=0.02):
                if should_cancel():
                    raise ModelCancelled("cancelled between tiles")
            progress(k, 4)
        self.calls.append((image_id, tiles))
        info = self._info
        assert info is not None
        return ImagePrediction(image_id, info.key, info.version_id, [], 0.0)


def test_a_large_image_predicted_ahead_shows_its_tiles_and_can_be_stopped(qtbot, make_window,
                                                                          tmp_path):
    """The image on screen, predicted ahead of time in tiles, said only 'predicting…' for
    minutes: now its tiles show in the status bar with the time left and Cancel, and a
    cancelled one is not started again on its own (Predict runs it)."""
    project_dir = make_synthetic_project(tmp_path / "shapes", n_train=2, n_val=2, size=64)
    with Project.open(project_dir) as p:
        p.add_model_version("models/v1.pt", "r18", activate=True)
        for im in p.images():
            p.set_image_status(im.id, "new")  # the look-ahead predicts unreviewed images
    session = SlowTiledSession()
    w = make_window(model_options=OPTIONS, model_session=session)
    assert w.open_path(project_dir)
    wait_image_shown(qtbot, w)
    current = w.image_list.current_id
    name = Path(w.controller.image(current).path).name
    qtbot.waitUntil(lambda: session.started == [current], timeout=10000)
    session.go.release()  # the first tile
    qtbot.waitUntil(lambda: w.progress.isVisible()
                    and f"1/4 · tiles of {name}" in w.progress.label.text(), timeout=10000)
    assert w.progress.label.text().startswith("Predicting 1/4")
    qtbot.wait(100)  # progress shows at most 20 times a second; a real tile takes seconds
    session.go.release()
    qtbot.waitUntil(lambda: w.progress.bar.value() == 2 and w.progress.bar.maximum() == 4,
                    timeout=10000)

    qtbot.mouseClick(w.progress.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.progress.isVisible(), timeout=10000)
    assert f"Stopped predicting {name}" in w.statusBar().currentMessage()
    qtbot.wait(300)  # the look-ahead would have started it again by now
    assert session.started == [current] and session.calls == []

    w.actions["predict_image"].trigger()  # the person asks: it runs
    qtbot.waitUntil(lambda: len(session.started) == 2, timeout=10000)
    qtbot.mouseClick(w.progress.cancel, Qt.MouseButton.LeftButton)  # and may stop it too
    qtbot.waitUntil(lambda: f"Predicting {name} cancelled" in w.statusBar().currentMessage(),
                    timeout=10000)
    w.actions["predict_image"].trigger()
    qtbot.waitUntil(lambda: len(session.started) == 3, timeout=10000)
    for _ in range(4):
        session.go.release()
    qtbot.waitUntil(lambda: session.calls == [(current, "auto")], timeout=10000)
    assert w.controller.project.predicted_by(current, session.info.key)
