"""Predicting one image, in tiles when it is much larger than the model's input.

`predict_image` is what `predict_project` and the model session call: it decides by the
tiles setting ("auto", "off" or a tile size; the rule is `mrcnn.serving.tiles.tile_size_for`)
whether the image is predicted whole (`Predictor.predict_one`) or by `predict_tiled`: the
whole image once, resized to the model's input as usual (for objects larger than a tile; it
also gives the image's uncertainty), then each tile of `mrcnn.serving.tiles.tile_grid` at the
image's own resolution, merged by `mrcnn.serving.tiles.merge`. Cancellation is checked before
each pass (`ModelCancelled`: nothing of the image is returned), progress reported after each.
The predictor's `max_detections` applies to each tile and to the whole-image pass.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, cast

import cv2
import numpy as np

from mrcnn.errors import ModelCancelled
from mrcnn.model.predictor import Prediction, Predictor
from mrcnn.serving.tiles import (
    TILES_AUTO,
    CropMasks,
    Piece,
    TileSetting,
    merge,
    tile_grid,
    tile_pieces,
    tile_size_for,
    whole_pieces,
)


def input_size(predictor: Predictor) -> tuple[int, int]:
    """(shorter side, longer side cap) the predictor's model resizes images to, in pixels."""
    transform: Any = predictor.model.transform  # torchvision's GeneralizedRCNNTransform
    return int(transform.min_size[-1]), int(transform.max_size)


def resized_for_model(image: np.ndarray, short: int, long: int) -> np.ndarray:
    """The image resized (area-averaged) to what the model would resize it to: shorter side
    `short`, longer side at most `long`; as it is when that is no smaller."""
    h, w = image.shape[:2]
    scale = min(short / min(h, w), long / max(h, w))
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def predict_image(predictor: Predictor, image: np.ndarray, *, tiles: TileSetting = TILES_AUTO,
                  key: Hashable | None = None, uncertainty: bool = False,
                  should_cancel: Callable[[], bool] | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Prediction:
    """Predict an (H, W, 3) uint8 RGB image, in tiles when `tiles` says so for its size
    (progress and cancellation per pass); else whole, with its features kept under `key`
    (a tiled image's are not: Box → Mask then reads the image again)."""
    short, long = input_size(predictor)
    h, w = image.shape[:2]
    tile = tile_size_for(tiles, h, w, input_short=short, input_long=long)
    if tile is None:
        return predictor.predict_one(image, key=key, uncertainty=uncertainty)
    return predict_tiled(predictor, image, tile=tile, uncertainty=uncertainty,
                         should_cancel=should_cancel, on_progress=on_progress)


def predict_tiled(predictor: Predictor, image: np.ndarray, *, tile: int,
                  overlap: int | None = None, uncertainty: bool = False,
                  should_cancel: Callable[[], bool] | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Prediction:
    """Predict an (H, W, 3) uint8 RGB image as the whole image resized to the model's input
    plus `tile`-pixel tiles (`overlap`: None, the module default of `tiles.overlap_for`),
    merged. The result's masks are a `CropMasks` (full-size masks pasted one at a time when
    read). `uncertainty` is measured on the whole-image pass. ModelCancelled when
    `should_cancel` says so before a pass; `on_progress(done, total)` after each."""
    h, w = image.shape[:2]
    grid = tile_grid(h, w, tile, overlap)
    total = len(grid) + 1

    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise ModelCancelled(f"tiled prediction cancelled ({h}x{w} image, {len(grid)} "
                                 "tiles)")

    check()
    short, long = input_size(predictor)
    small = resized_for_model(image, short, long)
    coarse = predictor.predict_one(small, uncertainty=uncertainty)
    pieces: list[Piece] = whole_pieces(coarse.boxes, coarse.labels, coarse.scores,
                                       coarse.masks, height=h, width=w)
    if on_progress is not None:
        on_progress(1, total)
    for index, t in enumerate(grid):
        check()
        crop = np.ascontiguousarray(image[t.y0:t.y1, t.x0:t.x1])
        p = predictor.predict_one(crop)
        pieces += tile_pieces(index, t, p.boxes, p.labels, p.scores, p.masks, height=h,
                              width=w)
        if on_progress is not None:
            on_progress(index + 2, total)
    merged = merge(pieces, grid)
    boxes = np.array([p.box for p in merged], np.float32).reshape(-1, 4)
    labels = np.array([p.label for p in merged], np.int64)
    scores = np.array([p.score for p in merged], np.float32)
    # the masks stay crops until read (one full-size mask at a time): see CropMasks
    masks = cast(np.ndarray, CropMasks.of(h, w, merged))
    return Prediction(boxes, labels, scores, masks, coarse.uncertainty)
