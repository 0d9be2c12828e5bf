"""Tiled prediction end to end (`mrcnn.serving.tiled_predict`): a stand-in predictor that
"detects" known objects, by their colours, in whatever image it is given (a tile, the whole
image resized), on a large synthetic image; then the real path with a tiny model."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mrcnn.errors import ModelCancelled
from mrcnn.model.predictor import Prediction
from mrcnn.serving.tiled_predict import predict_image, predict_tiled, resized_for_model
from mrcnn.serving.tiles import CropMasks, overlap_for, tile_grid
from mrcnn.testing.mosaic import draw_mosaic
from mrcnn.testing.synthetic import SHAPES

TILE = 200
#: what the stand-in model resizes images to (shorter side, longer side cap)
INPUT = (200, 300)
#: the stand-in sees nothing smaller than this many pixels (as a real model misses specks)
MIN_PIXELS = 12


class ColourPredictor:
    """Knows each object's colour and label; detects an object in an image where at least
    MIN_PIXELS pixels have exactly its colour: mask = those pixels, box = theirs."""

    def __init__(self, colours: dict[tuple[int, int, int], int]):
        self.colours = {(r << 16) | (g << 8) | b: label for (r, g, b), label in colours.items()}
        self.model = SimpleNamespace(transform=SimpleNamespace(min_size=(INPUT[0],),
                                                               max_size=INPUT[1]))
        self.calls: list[tuple[int, int]] = []
        self.keys: list[object] = []

    def predict_one(self, image: np.ndarray, *, key=None, uncertainty: bool = False
                    ) -> Prediction:
        """As a real model: resized to its input, masks back at the image's size."""
        self.calls.append(image.shape[:2])
        self.keys.append(key)
        h, w = image.shape[:2]
        scale = min(INPUT[0] / min(h, w), INPUT[1] / max(h, w))
        if scale >= 1:
            return self._detect(image, uncertainty)
        small = self._detect(resized_for_model(image, *INPUT), uncertainty)
        small.boxes /= scale
        small.masks = np.array([cv2.resize(m.astype(np.uint8), (w, h),
                                           interpolation=cv2.INTER_NEAREST).astype(bool)
                                for m in small.masks]).reshape(-1, h, w)
        return small

    def _detect(self, image: np.ndarray, uncertainty: bool) -> Prediction:
        code = ((image[..., 0].astype(np.int64) << 16) | (image[..., 1].astype(np.int64) << 8)
                | image[..., 2])
        values, counts = np.unique(code, return_counts=True)
        boxes, labels, masks = [], [], []
        for value, count in zip(values, counts, strict=True):
            if int(value) not in self.colours or count < MIN_PIXELS:
                continue
            m = code == value
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(self.colours[int(value)])
            masks.append(m)
        n = len(masks)
        pred = Prediction(np.array(boxes, np.float32).reshape(n, 4), np.array(labels, np.int64),
                          np.linspace(0.9, 0.5, n).astype(np.float32),
                          np.array(masks, bool).reshape(n, *image.shape[:2]))
        pred.uncertainty = 0.25 if uncertainty else None
        return pred


@pytest.fixture(scope="module")
def scene():
    """A 1000 x 1500 image: large shapes (wider than a tile), shapes on the tile seams and
    small ones, each painted flat in a colour of its own on black; the stand-in for it."""
    h, w = 1000, 1500
    grid = tile_grid(h, w, TILE)
    seams = (sorted({t.x0 for t in grid} - {0}) + sorted({t.x1 for t in grid} - {w}),
             sorted({t.y0 for t in grid} - {0}) + sorted({t.y1 for t in grid} - {h}))
    rng = np.random.default_rng(3)
    _texture, objects = draw_mosaic(rng, h, w, small=120, large=3, on_seams=40, seams=seams,
                                    large_radius=(110.0, 160.0))
    image = np.zeros((h, w, 3), np.uint8)
    colours: dict[tuple[int, int, int], int] = {}
    while len(colours) < len(objects):
        c = tuple(int(v) for v in rng.integers(40, 256, 3))
        colours.setdefault(c, 0)
    for obj, colour in zip(objects, list(colours), strict=True):
        label = SHAPES.index(obj.name) + 1
        colours[colour] = label
        x0, y0, x1, y1 = obj.box
        image[y0:y1, x0:x1][obj.mask] = colour
    return image, objects, ColourPredictor(colours)


def test_a_tiled_prediction_returns_every_object_once_with_its_full_mask(scene):
    image, objects, predictor = scene
    h, w = image.shape[:2]
    pred = predict_tiled(predictor, image, tile=TILE)
    assert isinstance(pred.masks, CropMasks) and pred.masks.shape == (len(pred), h, w)
    visible = [o for o in objects if o.area >= MIN_PIXELS]
    assert sum(o.on_seam for o in visible) >= 30 and max(o.mask.shape[1] for o in visible) > TILE
    crops = pred.masks.crops
    found = 0
    for obj in visible:
        x0, y0, x1, y1 = obj.box
        hits = [i for i, (cx, cy, m) in enumerate(crops)
                if cx < x1 and x0 < cx + m.shape[1] and cy < y1 and y0 < cy + m.shape[0]
                and (pred.masks[i][y0:y1, x0:x1] & obj.mask).any()]
        assert len(hits) == 1, (obj.name, obj.box, obj.on_seam, len(hits))  # once, not halves
        (i,) = hits
        assert np.array_equal(pred.masks[i], obj.full(h, w)), (obj.box, obj.on_seam)
        assert pred.labels[i] == SHAPES.index(obj.name) + 1
        found += 1
    assert len(pred) == found  # nothing else
    assert predictor.calls[0] == (200, 300)  # the whole image, resized as the model would
    assert len(predictor.calls) == 1 + len(tile_grid(h, w, TILE))


def test_small_objects_vanish_from_whole_image_prediction_but_not_from_tiles(scene):
    image, objects, predictor = scene
    whole = predict_image(predictor, image, tiles="off")  # resized to 200 x 300 whole
    tiled = predict_image(predictor, image, tiles=TILE)
    small = [o for o in objects if o.area >= MIN_PIXELS and max(o.mask.shape) <= 20]
    assert len(small) > 50

    def found(pred: Prediction) -> int:
        return sum(any(pred.labels[i] == SHAPES.index(o.name) + 1
                       and pred.masks[i][o.y0:o.box[3], o.x0:o.box[2]][o.mask].mean() > 0.5
                       for i in range(len(pred))) for o in small)

    assert found(whole) < 0.1 * len(small) and found(tiled) == len(small)


def test_progress_per_tile_and_cancellation_between_tiles(scene):
    image, _objects, predictor = scene
    n = len(tile_grid(*image.shape[:2], TILE)) + 1
    seen: list[tuple[int, int]] = []
    predict_tiled(predictor, image, tile=TILE, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(k, n) for k in range(1, n + 1)]
    predictor.calls.clear()
    with pytest.raises(ModelCancelled):
        predict_tiled(predictor, image, tile=TILE, should_cancel=lambda: len(predictor.calls) >= 3)
    assert len(predictor.calls) == 3  # stopped before the fourth pass


def test_auto_predicts_large_images_in_tiles_and_others_whole(scene):
    image, _objects, predictor = scene
    predictor.calls.clear()
    predictor.keys.clear()
    pred = predict_image(predictor, image, tiles="auto", key=7, uncertainty=True)
    assert predictor.calls == [(1000, 1500)] and predictor.keys == [7]  # not over 2666 px
    assert pred.uncertainty == 0.25
    predictor.calls.clear()
    large = np.zeros((300, 2667, 3), np.uint8)
    pred = predict_image(predictor, large, tiles="auto", uncertainty=True)
    grid = tile_grid(300, 2667, INPUT[0])  # tiles of the model's shorter input side
    assert len(predictor.calls) == 1 + len(grid) and set(predictor.keys[1:]) == {None}
    assert pred.uncertainty == 0.25  # from the whole-image pass
    predictor.calls.clear()
    predict_image(predictor, image, tiles=400)
    assert len(predictor.calls) == 1 + len(tile_grid(1000, 1500, 400))
    assert overlap_for(400) == 80


def test_the_real_path_with_a_tiny_model():
    import torch

    from mrcnn.model.device import choose_device
    from mrcnn.model.predictor import Predictor
    from mrcnn.model.presets import build_model

    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, min_size=64, max_size=64)
    predictor = Predictor(model, device=choose_device("cpu", amp=False), score_threshold=0.0,
                          max_detections=5)
    image = np.random.default_rng(0).integers(0, 255, (100, 140, 3), np.uint8)
    pred = predict_image(predictor, image, tiles=64, uncertainty=True)
    assert isinstance(pred.masks, CropMasks) and pred.masks.shape[1:] == (100, 140)
    assert len(pred.boxes) == len(pred.labels) == len(pred.scores) == len(pred.masks)
    assert pred.uncertainty is not None
    assert all(m.shape == (100, 140) for m in pred.masks)


def test_predict_project_stores_a_tiled_images_predictions_and_cancels_between_tiles(
        tmp_path):
    import torch
    from PIL import Image

    from mrcnn.model.device import choose_device
    from mrcnn.model.presets import build_model
    from mrcnn.serving.predict import CocoResults, predict_project
    from mrcnn.store.project import Project
    from mrcnn.store.scan import scan_folder

    (tmp_path / "images").mkdir()
    rgb = np.random.default_rng(2).integers(0, 255, (100, 200, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "images" / "big.png")
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=2, min_size=64, max_size=64)
    with Project.create(tmp_path / "project", tmp_path / "images") as project:
        scan_folder(project)
        project.add_category("a")
        (image_id,) = [im.id for im in project.images()]
        steps: list[tuple[int, int]] = []
        kwargs = {"model_key": "random", "image_ids": [image_id], "score_threshold": 0.0,
                  "max_detections": 3, "device": choose_device("cpu", amp=False),
                  "uncertainty": False, "tiles": 64}
        report = predict_project(project, model, ["a"], **kwargs,
                                 should_cancel=lambda: len(steps) >= 2,
                                 tile_progress=lambda d, t: steps.append((d, t)))
        assert report.cancelled and report.predicted == 0  # stopped between tiles...
        assert steps == [(1, 9), (2, 9)]
        assert not project.predicted_by(image_id, "random")  # ...and nothing half stored
        steps.clear()
        results = CocoResults(project, ["a"])
        report = predict_project(project, model, ["a"], **kwargs, on_prediction=results.add,
                                 tile_progress=lambda d, t: steps.append((d, t)))
        assert report.predicted == 1 and len(steps) == 9  # 4 x 2 tiles and the whole image
        assert project.predicted_by(image_id, "random")
        stored = project.instances(image_id)
        assert report.instances == len(stored) == len(results.results) > 0
        assert all((i.rle.height, i.rle.width) == (100, 200) for i in stored)
        assert sorted(r["segmentation"]["counts"] for r in results.results) == sorted(
            i.rle.counts for i in stored)  # the same masks, encoded from their crops
