"""Model ▸ Tiled Prediction for Large Images: checkable, on ("auto") by default, kept in the
UI state, and handed to every prediction job (which hands it to the model session)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gui_helpers import wait_image_shown
from model_fixtures import FAST

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
