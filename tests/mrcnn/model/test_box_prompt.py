"""Box → mask from the model's own heads over kept features: the features of the images
predicted last are kept (a bounded number), a box costs no second backbone run, and the
answer is a mask of the image's size, a class and a score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrcnn.errors import MaskToolError
from mrcnn.model.box_prompt import FeatureCache, ImageFeatures
from mrcnn.model.device import choose_device
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, min_size=64, max_size=96)
    return Predictor(model, device=choose_device("cpu", amp=False), feature_cache=2)


def photo(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


class BackboneCalls:
    def __init__(self, model):
        self.n = 0
        self._handle = model.backbone.register_forward_hook(self._count)

    def _count(self, *_args) -> None:
        self.n += 1

    def close(self) -> None:
        self._handle.remove()


def test_a_box_on_a_predicted_image_runs_only_the_heads(predictor):
    image = photo()
    predictor.predict_one(image, key=7)
    assert 7 in predictor.features
    calls = BackboneCalls(predictor.model)
    try:
        answer, cached = predictor.box_mask(7, None, (10, 5, 50, 40))
        assert cached and calls.n == 0
        assert answer.mask.shape == image.shape[:2] and answer.mask.dtype == bool
        assert answer.label in (1, 2) and 0.0 <= answer.score <= 1.0
        x0, y0, x1, y1 = answer.box
        assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 60
        # an image never predicted: its features are made once, then kept
        other = photo(seed=1)
        _, cached = predictor.box_mask(8, other, (0, 0, 30, 30))
        assert not cached and calls.n == 1
        _, cached = predictor.box_mask(8, None, (5, 5, 40, 30))
        assert cached and calls.n == 1
    finally:
        calls.close()


def test_the_cache_keeps_a_bounded_number_of_images(predictor):
    for key in (1, 2, 3):
        predictor.predict_one(photo(seed=key), key=key)
    assert len(predictor.features) == 2 and 1 not in predictor.features
    with pytest.raises(KeyError):
        predictor.box_mask(1, None, (0, 0, 10, 10))
    assert predictor.features.nbytes() > 0


def test_a_box_off_the_image_is_refused_with_a_clear_error(predictor):
    predictor.predict_one(photo(), key="x")
    with pytest.raises(MaskToolError, match="holds no pixel"):
        predictor.box_mask("x", None, (100, 100, 120, 130))
    # a box hanging over the edge is clipped to the image
    answer, _ = predictor.box_mask("x", None, (-20, -20, 30, 30))
    assert answer.box[0] >= 0 and answer.box[1] >= 0


def test_least_recently_used_goes_first():
    cache = FeatureCache(capacity=2)
    f = ImageFeatures({}, (1, 1), (1, 1))  # type: ignore[arg-type]
    cache.put("a", f)
    cache.put("b", f)
    assert cache.get("a") is f  # "a" used: "b" is now the oldest
    cache.put("c", f)
    assert "a" in cache and "c" in cache and "b" not in cache
    cache.clear()
    assert len(cache) == 0
    none = FeatureCache(capacity=0)
    none.put("a", f)
    assert len(none) == 0
