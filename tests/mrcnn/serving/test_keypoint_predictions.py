"""A model with a keypoint head stores each detection's points with it: `predict_project`
and the model session give a detection of a keypoint category its category's points
(visible, in image pixels), pending like the mask; categories without keypoints, points of
another count and tiled images store masks only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrcnn.io.images import load_image
from mrcnn.keypoints import KeypointSchema
from mrcnn.masks import encode
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.keypoint_head import layout_for
from mrcnn.model.presets import build_model
from mrcnn.serving.named_predictions import store_named_predictions
from mrcnn.serving.predict import predict_project
from mrcnn.serving.session import ModelRequest, ModelSession
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project

SIZE = 64


@pytest.fixture
def project(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=0, size=SIZE, keypoints=True)
    with Project.open(folder) as p:
        yield p


def _model(project: Project):
    names = [c.name for c in project.categories()]
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=len(names) + 1, min_size=SIZE,
                        max_size=SIZE, keypoints=layout_for(project.keypoint_schemas(), names))
    return model, names


def test_predictions_are_stored_with_their_points(project):
    model, names = _model(project)
    ids = [im.id for im in project.images()]
    report = predict_project(project, model, names, model_key="kp", image_ids=ids,
                             uncertainty=False, max_detections=8, score_threshold=0.0)
    assert report.predicted == len(ids)
    schemas = {c.id: c.keypoints for c in project.categories()}
    pending = [i for im in ids for i in project.instances(im, state="pending")]
    with_points = [i for i in pending if i.keypoints is not None]
    assert with_points, "a random model predicts some squares and triangles"
    for inst in pending:
        schema = schemas[inst.category_id]
        if schema is None:
            assert inst.keypoints is None
            continue
        assert inst.keypoints is not None and len(inst.keypoints) == schema.size
        assert all(v == 2 and 0 <= x <= SIZE and 0 <= y <= SIZE for x, y, v in inst.keypoints)
        assert inst.source == "model" and inst.state == "pending"


def test_tiled_images_store_masks_without_points(project):
    model, names = _model(project)
    ids = [im.id for im in project.images()]
    report = predict_project(project, model, names, model_key="tiled", image_ids=ids,
                             uncertainty=False, max_detections=10, score_threshold=0.0,
                             tiles=48)
    assert report.predicted == len(ids) and not report.failed
    pending = [i for im in ids for i in project.instances(im, state="pending")]
    assert pending and all(i.keypoints is None for i in pending)


def test_points_that_do_not_fit_the_category_are_dropped(project):
    image = project.images()[0]
    cats = {c.name: c for c in project.categories()}
    mask = np.zeros((SIZE, SIZE), bool)
    mask[5:20, 5:20] = True
    rle = encode(mask)
    tri = ((10.0, 5.0, 2), (5.0, 19.0, 2), (19.0, 19.0, 2))
    stored = store_named_predictions(project, image.id, "m", [
        ("triangle", rle, 0.9, tri), ("disc", rle, 0.8, tri), ("square", rle, 0.7, tri),
        ("triangle", rle, 0.6)])
    by_score = {i.score: i for i in stored.instances}
    assert by_score[0.9].keypoints == tri
    assert by_score[0.8].keypoints is None  # a disc has no keypoints
    assert by_score[0.7].keypoints is None  # a square has 4
    assert by_score[0.6].keypoints is None
    # the window's form: plain items and their points beside them
    stored = store_named_predictions(project, image.id, "m", [("triangle", rle, 0.5)],
                                     keypoints=[tri])
    assert stored.instances[0].keypoints == tri
    assert cats["triangle"].keypoints == KeypointSchema(("apex", "left_base", "right_base"))


def test_the_model_session_returns_points_beside_its_items(project, tmp_path):
    model, names = _model(project)
    path = tmp_path / "kp.pt"
    layout = layout_for(project.keypoint_schemas(), names)
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18", categories=names,
                    metadata={"keypoints": {k: list(v) for k, v in layout.items()},
                              "size": SIZE, "max_size": SIZE})
    session = ModelSession()
    session.load(ModelRequest(str(path), device="cpu", score_threshold=0.0,
                              max_detections=8, amp=False))
    image = project.images()[0]
    result = session.predict_array(image.id, load_image(project.image_source(image)))
    assert result.keypoints is not None and len(result.keypoints) == len(result.items)
    for (name, _rle, _score), points in zip(result.items, result.keypoints, strict=True):
        assert (points is None) == (name not in layout)
        if points is not None:
            assert len(points) == len(layout[name])
    stored = store_named_predictions(project, image.id, result.model_key, result.items,
                                     keypoints=result.keypoints)
    assert any(i.keypoints is not None for i in stored.instances)
