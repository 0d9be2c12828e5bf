"""Mask refinement per project: measured on the validation split, kept in the project, and
applied to that model's stored predictions only when on (`mrcnn.serving.refinement`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mrcnn import masks
from mrcnn.editing.refine import RefinementDecision, mask_iou, refine_mask
from mrcnn.errors import ProjectError
from mrcnn.io.images import load_image
from mrcnn.model.predictor import Prediction
from mrcnn.serving import predict as predict_module
from mrcnn.serving.predict import predict_project
from mrcnn.serving.refinement import (
    match_masks,
    measure_refinement,
    refinement_for,
    save_refinement,
    stored_predictions,
    stored_refinement,
    validation_image_ids,
)
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def spilled(mask: np.ndarray) -> np.ndarray:
    """A coarse prediction of `mask`: dilated by 3 px, its edge blurred."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8))
    return cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 2) > 0.5


def accepted(project: Project, image_id: int) -> list[np.ndarray]:
    return [masks.decode(i.rle) for i in project.instances(image_id, state="accepted")]


@pytest.fixture
def project(tmp_path, open_projects):
    folder = make_synthetic_project(tmp_path / "shapes", n_train=1, n_val=3, size=96)
    p = Project.open(folder)
    open_projects.append(p)
    return p


def test_spilled_predictions_turn_refinement_on(project):
    def predict(image_id, _image):
        return [spilled(m) for m in accepted(project, image_id)]

    decision = measure_refinement(project, predict, model_key="v1")
    n_val = sum(len(accepted(project, i)) for i in validation_image_ids(project))
    assert 0 < decision.instances <= n_val  # those a prediction overlaps by IoU >= 0.5
    assert decision.images == 3
    assert decision.on and decision.gain >= 0.005
    assert decision.model_key == "v1"
    print(decision.describe(), decision.by_method, round(decision.iou_before, 3))


def test_exact_predictions_leave_it_off(project):
    decision = measure_refinement(project, lambda i, _im: accepted(project, i), model_key="v1")
    assert not decision.on
    assert decision.iou_before == 1.0
    print(decision.describe())


def test_no_matched_prediction_is_off(project):
    decision = measure_refinement(project, lambda _i, _im: [], model_key="v1")
    assert not decision.on and decision.instances == 0


def test_matching_is_one_to_one_and_needs_half_overlap():
    a = np.zeros((20, 20), bool)
    a[2:10, 2:10] = True
    b = np.zeros((20, 20), bool)
    b[10:18, 10:18] = True
    slightly = a.copy()
    slightly[10, 2:10] = True
    assert match_masks([slightly, a, b], [a]) == [(1, 0)]
    assert match_masks([b], [a]) == []


def test_the_decision_is_kept_for_the_model_it_was_measured_on(project):
    assert stored_refinement(project) is None
    assert refinement_for(project, "v1") is None
    on = RefinementDecision(True, "guided", 5, 0.8, 0.85, {"guided": 0.85}, "v1", 2)
    save_refinement(project, on)
    assert stored_refinement(project) == on
    assert refinement_for(project, "v1") == "guided"
    assert refinement_for(project, "v2") is None  # a new model is measured anew
    save_refinement(project, RefinementDecision(False, "guided", 5, 0.8, 0.79, {}, "v1", 2))
    assert refinement_for(project, "v1") is None


def test_an_unreadable_setting_is_a_project_error(project):
    project.set_meta("mask_refinement", "{not json")
    with pytest.raises(ProjectError, match="mask refinement"):
        stored_refinement(project)


def test_stored_predictions_are_those_of_the_version(project):
    image_id = validation_image_ids(project)[0]
    truth = accepted(project, image_id)[0]
    category = project.categories()[0].id
    version = project.add_model_version("models/v1.pt", "r18")
    project.replace_predictions(image_id, "v1", [(category, masks.encode(spilled(truth)), 0.9)],
                                model_version_id=version.id)
    got = stored_predictions(project, version.id)(image_id, np.zeros((1, 1, 3), np.uint8))
    assert len(got) == 1 and np.array_equal(got[0], spilled(truth))
    assert stored_predictions(project, version.id + 1)(image_id, np.zeros((1, 1, 3))) == []


class FakePredictor:
    """Stands in for the model: each image's first accepted mask, spilled."""

    masks_by_shape: dict = {}

    def __init__(self, model, **_kw):
        self.project = model

        class Choice:
            def describe(self) -> str:
                return "cpu"
        self.choice = Choice()

        class Transform:  # the input size tiled prediction reads: these images stay whole
            min_size, max_size = (800,), 1333

        class Model:
            transform = Transform()
        self.model = Model()

    def describe(self) -> str:
        return self.choice.describe()

    def predict_one(self, image: np.ndarray, **_kw) -> Prediction:
        mask = FakePredictor.masks_by_shape[image.tobytes()]
        return Prediction(np.zeros((1, 4), np.float32), np.array([1]), np.array([0.9],
                          np.float32), mask[None])


def _predict_stored(project, monkeypatch, key: str) -> tuple[list, list, list]:
    """Run predict_project with the fake model; (raw masks, stored masks, images)."""
    ids = validation_image_ids(project)
    raw, images = [], []
    for i in ids:
        image = load_image(project.image_path(project.image(i)))
        raw.append(spilled(accepted(project, i)[0]))
        images.append(image)
        FakePredictor.masks_by_shape[image.tobytes()] = raw[-1]
    monkeypatch.setattr(predict_module, "Predictor", FakePredictor)
    name = project.categories()[0].name
    predict_project(project, None, [name], model_key=key, image_ids=ids, force=True)
    stored = [masks.decode(project.instances(i, state="pending")[0].rle) for i in ids]
    return raw, stored, images


def test_predictions_are_stored_unchanged_while_refinement_is_off(project, monkeypatch):
    save_refinement(project, measure_refinement(
        project, lambda i, _im: accepted(project, i), model_key="v1"))
    raw, stored, _images = _predict_stored(project, monkeypatch, "v1")
    assert all(np.array_equal(r, s) for r, s in zip(raw, stored, strict=True))


def test_predictions_are_stored_refined_when_on_for_that_model(project, monkeypatch):
    decision = measure_refinement(
        project, lambda i, _im: [spilled(m) for m in accepted(project, i)], model_key="v1")
    assert decision.on
    save_refinement(project, decision)
    raw, stored, images = _predict_stored(project, monkeypatch, "v1")
    truths = [accepted(project, i)[0] for i in validation_image_ids(project)]
    for r, s, image in zip(raw, stored, images, strict=True):
        assert np.array_equal(s, refine_mask(image, r, method=decision.method))
    assert np.mean([mask_iou(s, t) for s, t in zip(stored, truths, strict=True)]) > np.mean(
        [mask_iou(r, t) for r, t in zip(raw, truths, strict=True)])
    raw, stored, _images = _predict_stored(project, monkeypatch, "v2")  # not measured
    assert all(np.array_equal(r, s) for r, s in zip(raw, stored, strict=True))


def test_measuring_plain_validation_data_decides_as_the_project_does(project):
    from mrcnn.serving.refinement import measure_validation, validation_set

    def predict(image_id, _image):
        return [spilled(m) for m in accepted(project, image_id)]

    images = validation_set(project)  # read here, measured anywhere (a window's worker)
    assert [v.image_id for v in images] == validation_image_ids(project)
    assert measure_validation(images, predict, model_key="v1") == measure_refinement(
        project, predict, model_key="v1")


def test_the_line_says_whether_it_was_measured_for_this_model(project):
    from mrcnn.serving.refinement import describe_refinement

    assert describe_refinement(project, "v1") == "Mask refinement: not measured for this model"
    on = RefinementDecision(True, "grabcut", 14, 0.8, 0.821, {"grabcut": 0.821}, "v1", 3)
    save_refinement(project, on)
    assert describe_refinement(project, "v1") == (
        "Mask refinement: on (GrabCut, +0.021 mean IoU on 14 validation instances)")
    assert describe_refinement(project, "v2") == "Mask refinement: not measured for this model"


def test_refined_detections_keep_names_and_scores(project):
    from mrcnn.serving.refinement import refine_items

    image_id = validation_image_ids(project)[0]
    image = load_image(project.image_path(project.image(image_id)))
    truth = accepted(project, image_id)
    items = [("circle", masks.encode(spilled(m)), 0.9 - k / 10) for k, m in enumerate(truth)]
    assert refine_items(items, image, None) == items
    refined = refine_items(items, image, "grabcut")
    assert [(n, s) for n, _r, s in refined] == [(n, s) for n, _r, s in items]
    got = [masks.decode(r) for _n, r, _s in refined]
    for g, m in zip(got, truth, strict=True):
        assert np.array_equal(g, refine_mask(image, spilled(m), method="grabcut"))
    assert np.mean([mask_iou(g, t) for g, t in zip(got, truth, strict=True)]) > np.mean(
        [mask_iou(spilled(t), t) for t in truth])
