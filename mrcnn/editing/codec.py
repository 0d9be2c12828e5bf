"""The fast RLE codec the edit steps and the document share: the same RLE as
`mrcnn.masks.encode`/`decode`, several times faster on big masks. No Qt, no torch here."""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as cocomask

from mrcnn.errors import EditError
from mrcnn.masks import Rle


def encode(mask: np.ndarray) -> Rle:
    """`mrcnn.masks.encode`, the same RLE, several times faster on big masks: OpenCV makes
    the column-major copy pycocotools needs (numpy's is ~85 ms for 6000x4000)."""
    if mask.ndim != 2:
        raise EditError(f"a mask must be 2-D, got shape {mask.shape}")
    m = np.ascontiguousarray(mask.astype(bool, copy=False)).view(np.uint8)
    r = cocomask.encode(cv2.transpose(m).T)
    return Rle(int(mask.shape[0]), int(mask.shape[1]), r["counts"].decode("ascii"))


def decode(rle: Rle) -> np.ndarray:
    """`mrcnn.masks.decode` as a C-ordered (H, W) bool array (OpenCV transposes)."""
    raw = cocomask.decode(rle.to_coco())  # column-major uint8
    return cv2.transpose(raw.T).view(bool)


def encode_transposed(transposed: np.ndarray) -> Rle:
    """The RLE of a mask given as its (W, H) C-ordered uint8 transpose (no copy needed)."""
    r = cocomask.encode(transposed.T)
    return Rle(int(transposed.shape[1]), int(transposed.shape[0]), r["counts"].decode("ascii"))
