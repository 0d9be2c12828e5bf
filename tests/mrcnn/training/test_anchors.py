"""Anchors fitted to the training boxes: the fit measure agrees with the anchors torchvision
actually lays out, fitting covers small objects the preset's anchors miss (and never does
worse), a model trained from scratch is built with them and saved with them, and
fine-tuning never changes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from mrcnn.model.presets import Anchors, anchors_of, build_model, default_anchors
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.store.records import Instance
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.anchors import (
    STRIDES,
    best_ious,
    boxes_at_input_size,
    fit_anchors,
    input_scale,
    measure_anchors,
)
from mrcnn.training.build import build_anchors, build_data
from mrcnn.training.dataset import Sample
from mrcnn.training.train import TrainConfig, train_project

R18 = default_anchors("r18")


def _boxes(rng: np.random.Generator, n: int, lo: float, hi: float, *, ratio: float = 1.0,
           extent: float = 200) -> np.ndarray:
    side = rng.uniform(lo, hi, n)
    r = ratio * np.exp(rng.normal(0, 0.1, n))
    w, h = side / np.sqrt(r), side * np.sqrt(r)
    x, y = rng.uniform(hi, extent, n), rng.uniform(hi, extent, n)
    return np.stack([x, y, x + w, y + h], axis=1)


@pytest.mark.parametrize("anchors", [R18, Anchors((7, 14, 28, 56, 112), (0.8, 1.0, 1.25))])
def test_the_measure_is_the_best_iou_over_every_anchor_torchvision_lays_out(anchors):
    rng = np.random.default_rng(0)
    boxes = np.concatenate([_boxes(rng, 150, 5, 20), _boxes(rng, 150, 20, 120, ratio=2.0)])
    h = w = 384
    feats = [torch.zeros(1, 1, h // s, w // s) for s in STRIDES]
    images = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
    laid_out = anchors.generator()(images, feats)[0]
    expected = box_iou(torch.as_tensor(boxes, dtype=torch.float32), laid_out).max(dim=1).values
    assert np.allclose(best_ious(boxes, anchors), expected.numpy(), atol=1e-4)


def test_fitted_anchors_cover_small_objects_the_presets_miss():
    boxes = _boxes(np.random.default_rng(1), 2000, 5, 9)  # 5-9 px objects at the input size
    fitted = fit_anchors(boxes, R18)
    assert fitted.default_fit.recall < 0.05  # 16 px anchors and up: no IoU >= 0.5
    assert fitted.fit.recall > 0.6
    assert fitted.fit.mean_iou > fitted.default_fit.mean_iou + 0.3
    a = fitted.anchors
    assert 5 <= a.sizes[0] <= 9
    assert all(b == 2 * s for s, b in zip(a.sizes, a.sizes[1:], strict=False))
    assert len(a.ratios) == len(R18.ratios) and len(set(a.ratios)) == len(a.ratios)


def test_tall_objects_get_tall_anchors():
    boxes = _boxes(np.random.default_rng(2), 2000, 20, 40, ratio=3.0)
    fitted = fit_anchors(boxes, R18)
    assert fitted.anchors.ratios[1] == pytest.approx(3.0, rel=0.15)
    assert fitted.fit.positive > fitted.default_fit.positive


def test_the_presets_anchors_stay_when_nothing_fits_better():
    # boxes that are exactly the preset's 1:1 anchors, on their grid points
    boxes = np.array([[c - s / 2, c - s / 2, c + s / 2, c + s / 2]
                      for s, stride in zip(R18.sizes, STRIDES, strict=False)
                      for c in (stride * 10,)])
    fitted = fit_anchors(boxes, R18)
    assert not fitted.changed and fitted.anchors == R18
    assert fitted.fit.recall == 1.0 == fitted.fit.mean_iou
    assert fit_anchors(np.zeros((0, 4)), R18).anchors == R18


def test_boxes_scale_with_the_resize_to_the_training_size():
    inst = Instance(id=1, image_id=1, category_id=1, rle=None, bbox=(100, 50, 20, 10),
                    area=200, source="manual", state="accepted", score=None,
                    model_version_id=None)
    sample = Sample(1, "x.png", height=512, width=1024, instances=(inst,))
    assert input_scale(512, 1024, size=256, max_size=10_000) == 0.5
    assert input_scale(512, 1024, size=256, max_size=256) == 0.25  # the longer side caps it
    boxes = boxes_at_input_size([sample], size=256, max_size=10_000)
    assert boxes.tolist() == [[50, 25, 60, 30]]
    assert measure_anchors(boxes, R18).boxes == 1


# ---------------------------------------------------------------- in training
SIZE = 128


@pytest.fixture(scope="module")
def small_objects(tmp_path_factory):
    folder = make_synthetic_project(tmp_path_factory.mktemp("small"), n_train=3, n_val=2,
                                    size=SIZE, seed=0, objects="small")
    return folder


def _config(**kw) -> TrainConfig:
    return TrainConfig(preset="r18", max_iters=1, size=SIZE, batch_size=2, warmup_iters=1,
                       scale_jitter=(1.0, 1.0), device="cpu", amp=False, **kw)


def test_training_from_scratch_fits_anchors_and_the_saved_version_rebuilds_with_them(
        small_objects):
    with Project.open(small_objects) as project:
        version = train_project(project, _config())
        saved = Anchors.from_dict(version.metadata["anchors"])
        assert saved != R18 and saved.sizes[0] < R18.sizes[0]  # 10-20 px objects
        loaded = load_model(project=project, source="active")
        assert anchors_of(loaded.model) == saved
        for laid, fresh in zip(loaded.model.rpn.anchor_generator.cell_anchors,
                               saved.generator().cell_anchors, strict=True):
            assert torch.equal(laid, fresh)

        data = build_data(project, _config(anchors="default"))
        assert build_anchors(_config(anchors="default"), data) is None  # the preset's
        assert build_anchors(_config(), data) == saved


def test_fine_tuning_keeps_the_models_anchors(small_objects):
    own = Anchors((24, 48, 96, 192, 384), (0.5, 1.0, 2.0))
    with Project.open(small_objects) as project:
        n = len(project.categories()) + 1
        model = build_model(preset="r18", num_classes=n, min_size=SIZE, anchors=own)
        version = train_project(project, _config(anchors="fit"), model=model)
        assert Anchors.from_dict(version.metadata["anchors"]) == own


def test_an_unknown_anchors_setting_is_refused():
    with pytest.raises(ValueError, match="anchors"):
        _config(anchors="kmeans").validate()
