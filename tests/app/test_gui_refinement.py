"""Mask refinement from the window: Model ▸ Check Mask Refinement measures it on the validation
split with the loaded model, keeps the decision and says it (status bar, Model Versions
panel); while it is on, the window's predictions of that model are stored refined, and after a
fine-tune's version is loaded the check runs before the unreviewed images are predicted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import FAST

from mrcnn import masks
from mrcnn.editing.refine import mask_iou
from mrcnn.serving.refinement import stored_refinement
from mrcnn.serving.session import ImagePrediction, ModelInfo, ModelRequest
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project

#: The window loads the fake model at once and predicts the current image only.
OPTIONS = replace(FAST, lookahead=0, auto_load=True, auto_load_delay_ms=0)
UNREVIEWED = 2  # train images set back to "new"

Truth = dict[str, list[tuple[str, np.ndarray]]]  # resolved path -> (category, mask)


def spilled(mask: np.ndarray) -> np.ndarray:
    """A coarse prediction of `mask`: dilated by 3 px, its edge blurred."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8))
    return cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 2) > 0.5


class FakeSession:
    """The `Session` protocol without a model: each image's true masks (the synthetic
    project's, kept before some images were un-reviewed), spilled over their edges by 3 px
    or exact."""

    def __init__(self, truth: Truth, *, spill: bool):
        self.truth = truth
        self.spill = spill
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def load(self, request: ModelRequest, progress=None, should_cancel=None) -> ModelInfo:
        self._info = ModelInfo(request.version_name or "file-fake", "fake (project)", "r18",
                               "version", request.version_id, ("circle",), "CPU")
        return self._info

    def raw(self, path: str | Path) -> list[tuple[str, np.ndarray]]:
        return [(name, spilled(m) if self.spill else m)
                for name, m in self.truth[str(Path(path).resolve())]]

    def predict_path(self, image_id: int, path: str | Path, uncertainty: bool = False,
                     tiles="auto", **_callbacks) -> ImagePrediction:
        info = self._info
        assert info is not None
        items = [(name, masks.encode(m), 0.9) for name, m in self.raw(path)]
        return ImagePrediction(image_id, info.key, info.version_id, items, 0.0)

    def unload(self) -> None:
        self._info = None


def make_project(folder: Path) -> tuple[Path, Truth]:
    """Synthetic shapes (sharp edges): 3 val images, 4 train images of which the first
    UNREVIEWED are "new" again; an active version v1 (the fake model's key)."""
    project_dir = make_synthetic_project(folder, n_train=4, n_val=3, size=96)
    truth: Truth = {}
    with Project.open(project_dir) as p:
        names = {c.id: c.name for c in p.categories()}
        for im in p.images():
            truth[str(p.image_path(im).resolve())] = [
                (names[i.category_id], masks.decode(i.rle)) for i in p.instances(im.id)]
        for im in p.images()[:UNREVIEWED]:
            p.delete_instances([i.id for i in p.instances(im.id)])
            p.set_image_status(im.id, "new")
        p.add_model_version("models/v1.pt", "r18", activate=True)
    return project_dir, truth


def stored(project: Project, image_id: int) -> list[np.ndarray]:
    """The pending masks stored for the image, in score order (as predicted)."""
    return [masks.decode(i.rle) for i in project.instances(image_id, state="pending")]


def unreviewed_ids(project: Project) -> list[int]:
    return [im.id for im in project.images() if im.status in ("new", "predicted")]


def mean_iou(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([mask_iou(x, y) for x, y in zip(a, b, strict=True)]))


@pytest.fixture
def setup(qtbot, make_window, tmp_path):
    def make(*, spill: bool):
        project_dir, truth = make_project(tmp_path / "shapes")
        session = FakeSession(truth, spill=spill)
        w = make_window(model_options=OPTIONS, model_session=session)
        assert w.open_path(project_dir)
        qtbot.waitUntil(lambda: w.model.state == "ready", timeout=10000)
        return w, session
    return make


def check(qtbot, w):
    with qtbot.waitSignal(w.refinement.checked, timeout=60000) as got:
        w.actions["check_refinement"].trigger()
    return got.args[0]


def test_the_check_turns_refinement_on_and_predictions_are_stored_refined(qtbot, setup):
    w, session = setup(spill=True)
    project = w.controller.project
    assert w.finetune.versions.refinement.text() == \
        "Mask refinement: not measured for this model"
    current = w.image_list.current_id
    assert current in unreviewed_ids(project)
    qtbot.waitUntil(lambda: project.predicted_by(current, "v1"), timeout=10000)
    path = project.image_path(project.image(current))
    raw = [m for _n, m in session.raw(path)]
    assert all(np.array_equal(s, r) for s, r in zip(stored(project, current), raw,
                                                    strict=True))  # not measured: as is

    decision = check(qtbot, w)
    assert decision.on and decision.model_key == "v1" and decision.images == 3
    line = decision.describe()
    assert line.startswith("Mask refinement: on (") and "validation instances" in line
    assert w.statusBar().currentMessage().startswith(line)
    assert w.finetune.versions.refinement.text() == line
    assert stored_refinement(project) == decision

    # the image predicted before the check (no one touched it) is predicted again, refined;
    # the next predictions of this model are refined too
    qtbot.waitUntil(lambda: not w.model.busy, timeout=30000)
    w.actions["predict_unreviewed"].trigger()
    qtbot.waitUntil(lambda: not w.model.busy and all(
        project.predicted_by(i, "v1") for i in unreviewed_ids(project)), timeout=30000)
    for image_id in unreviewed_ids(project):
        path = project.image_path(project.image(image_id))
        truth = [m for _n, m in session.truth[str(path.resolve())]]
        raw = [m for _n, m in session.raw(path)]
        refined = stored(project, image_id)
        assert len(refined) == len(truth)
        assert mean_iou(refined, truth) > mean_iou(raw, truth) + 0.01, image_id


def test_exact_predictions_leave_refinement_off_and_are_stored_unchanged(qtbot, setup):
    w, session = setup(spill=False)
    project = w.controller.project
    decision = check(qtbot, w)
    assert not decision.on and decision.iou_before == 1.0
    assert decision.describe().startswith("Mask refinement: off (")
    assert w.finetune.versions.refinement.text() == decision.describe()

    qtbot.waitUntil(lambda: not w.model.busy, timeout=30000)
    w.actions["predict_unreviewed"].trigger()
    qtbot.waitUntil(lambda: not w.model.busy and all(
        project.predicted_by(i, "v1") for i in unreviewed_ids(project)), timeout=30000)
    for image_id in unreviewed_ids(project):
        path = project.image_path(project.image(image_id))
        raw = [m for _n, m in session.raw(path)]
        assert all(np.array_equal(s, r) for s, r in zip(stored(project, image_id), raw,
                                                        strict=True))


def test_a_fine_tunes_reload_checks_refinement_before_predicting(qtbot, setup):
    w, session = setup(spill=True)
    project = w.controller.project
    # as after a fine-tune registered and activated a version: reload, check, predict
    with qtbot.waitSignal(w.refinement.checked, timeout=60000) as got:
        w.finetune._reload_model(predict=True)
    assert got.args[0].on and stored_refinement(project).on
    qtbot.waitUntil(lambda: not w.model.busy and all(
        project.predicted_by(i, "v1") for i in unreviewed_ids(project)), timeout=30000)
    for image_id in unreviewed_ids(project):
        path = project.image_path(project.image(image_id))
        truth = [m for _n, m in session.truth[str(path.resolve())]]
        assert mean_iou(stored(project, image_id), truth) > mean_iou(
            [m for _n, m in session.raw(path)], truth) + 0.01


def test_without_validation_images_the_check_says_what_is_missing(qtbot, setup):
    w, _session = setup(spill=True)
    project = w.controller.project
    for im in project.images():
        if im.split == "val":
            project.set_image_status(im.id, "in_review")
    w.actions["check_refinement"].trigger()
    assert "No reviewed images in the validation split" in w.statusBar().currentMessage()
    assert stored_refinement(project) is None
