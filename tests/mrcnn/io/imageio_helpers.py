"""Helpers shared by the test_imageio_*.py files: small images saved with Pillow, EXIF
orientation tags, and the check that an ImageReadError names the file and says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mrcnn.errors import ImageReadError

ORIENTATION = 0x0112


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def gradient(h: int, w: int) -> np.ndarray:
    """A smooth image, so that lossy codecs stay close to it."""
    y, x = np.mgrid[:h, :w]
    return np.stack(
        [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 255 // (h + w - 2)],
        axis=-1,
    ).astype(np.uint8)


def save(arr_or_im, path: Path, **params) -> Path:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    im.save(path, **params)
    return path


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


def assert_names_file(exc: ImageReadError, path: Path, *reason_words: str) -> None:
    message = str(exc)
    assert exc.path == str(path)
    assert str(path) in message
    for word in reason_words:
        assert word.lower() in message.lower(), (word, message)
