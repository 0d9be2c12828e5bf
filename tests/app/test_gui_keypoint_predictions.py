"""Predicted keypoints in the window: a model with a keypoint head predicts an image, its
points are stored pending with their instances and drawn as such; accepting the instance
keeps them (they are the person's now)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from model_fixtures import FAST

from mrcnn.serving.session import ImagePrediction, ModelInfo, ModelRequest
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project

OPTIONS = replace(FAST, lookahead=0, auto_load=True, auto_load_delay_ms=0)


class KeypointSession:
    """The `Session` protocol without a model: every image's true instances, with their
    points moved 1 px right (a model's slightly-off keypoints)."""

    def __init__(self, truth: dict[str, list]):
        self.truth = truth
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def load(self, request: ModelRequest, progress=None, should_cancel=None) -> ModelInfo:
        self._info = ModelInfo(request.version_name or "file-fake", "fake (project)", "r18",
                               "version", request.version_id, ("triangle",), "CPU")
        return self._info

    def predict_path(self, image_id: int, path, uncertainty: bool = False, tiles="auto",
                     **_callbacks) -> ImagePrediction:
        info = self._info
        assert info is not None
        found = self.truth[str(Path(path).resolve())]
        items = [(name, rle, 0.9) for name, rle, _ in found]
        points = [None if pts is None else tuple((x + 1, y, 2) for x, y, v in pts)
                  for _, _, pts in found]
        return ImagePrediction(image_id, info.key, info.version_id, items, 0.0,
                               keypoints=points)

    def unload(self) -> None:
        self._info = None


def test_predicted_points_are_pending_drawn_and_kept_when_accepted(qtbot, make_window,
                                                                   tmp_path):
    folder = make_synthetic_project(tmp_path / "shapes", n_train=3, n_val=1, size=96,
                                    keypoints=True)
    truth = {}
    with Project.open(folder) as p:
        names = {c.id: c.name for c in p.categories()}
        for im in p.images():
            truth[str(p.image_path(im).resolve())] = [
                (names[i.category_id], i.rle, i.keypoints) for i in p.instances(im.id)]
        target = next(im for im in p.images()
                      if any(i.keypoints for i in p.instances(im.id)))
        p.delete_instances([i.id for i in p.instances(target.id)])
        p.set_image_status(target.id, "new")
        p.add_model_version("models/v1.pt", "r18", activate=True)
    w = make_window(model_options=OPTIONS, model_session=KeypointSession(truth))
    assert w.open_path(folder)
    w.image_list.select_image(target.id)
    project = w.controller.project
    qtbot.waitUntil(lambda: bool(project.instances(target.id, state="pending")), timeout=20000)
    pending = [i for i in project.instances(target.id, state="pending") if i.keypoints]
    assert pending, [(i.category_id, i.keypoints, i.source) for i in project.instances(target.id)]
    inst = pending[0]
    qtbot.waitUntil(lambda: inst.id in w.canvas.keypoints.items, timeout=10000)
    item = w.canvas.keypoints.items[inst.id]
    assert item.row.pending and item.row.instance.keypoints == inst.keypoints
    doc = w.controller.document(target.id)
    doc.accept_instances([inst.id])
    assert project.instance(inst.id).keypoints == inst.keypoints
    qtbot.waitUntil(lambda: not w.canvas.keypoints.items[inst.id].row.pending, timeout=5000)
