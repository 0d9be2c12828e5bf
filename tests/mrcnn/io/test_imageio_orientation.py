"""EXIF orientation and thumbnails: images load, measure and shrink upright, as a viewer shows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from imageio_helpers import ORIENTATION, assert_names_file, exif_with, gradient, noise, save
from PIL import Image, ImageOps

from mrcnn.errors import ImageReadError
from mrcnn.io.images import (
    apply_orientation,
    load_image,
    load_thumbnail,
    normalize_to_uint8,
    read_image_info,
    verify_image,
)

# --------------------------------------------------------------------------- helpers


def pillow_view(path: Path) -> np.ndarray:
    """What a viewer shows: Pillow's own EXIF transpose of the file, as RGB."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


# --------------------------------------------------------------------------- EXIF orientation


def test_orientation_6_means_rotate_clockwise_for_display(tmp_path):
    # Stored 2 rows x 3 columns; orientation 6 = the camera was turned, display it rotated 90°
    # clockwise: 3 rows x 2 columns, the stored bottom-left pixel lands top-left.
    stored = np.zeros((2, 3, 3), np.uint8)
    stored[..., 0] = [[1, 2, 3], [4, 5, 6]]
    p = save(stored, tmp_path / "rot.png", exif=exif_with(6))
    out = load_image(p)
    assert out[..., 0].tolist() == [[4, 1], [5, 2], [6, 3]]
    info = read_image_info(p)
    assert (info.width, info.height) == (2, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(
    ("suffix", "params"),
    [
        (".jpg", {"quality": 95}),
        (".png", {}),
        (".tif", {}),
        (".webp", {"lossless": True}),
    ],
)
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path, suffix, params, orientation):
    arr = noise(5, 8, seed=orientation)
    p = save(arr, tmp_path / f"o{orientation}{suffix}", exif=exif_with(orientation), **params)
    expected = pillow_view(p)
    rotated = orientation in (5, 6, 7, 8)
    assert expected.shape == ((8, 5, 3) if rotated else (5, 8, 3))  # the reference is sane

    out = load_image(p)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)

    displayed = (expected.shape[1], expected.shape[0])
    assert (read_image_info(p).width, read_image_info(p).height) == displayed
    assert (verify_image(p).width, verify_image(p).height) == displayed


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow_transpose(orientation):
    arr = noise(3, 5, seed=orientation)
    im = Image.fromarray(arr)
    im.getexif()[ORIENTATION] = orientation
    expected = np.asarray(ImageOps.exif_transpose(im))
    out = apply_orientation(arr, orientation)
    np.testing.assert_array_equal(out, expected)
    assert out.flags.c_contiguous
    # 2-D masks too.
    np.testing.assert_array_equal(apply_orientation(arr[..., 0], orientation), expected[..., 0])


def test_out_of_range_orientation_is_ignored(tmp_path):
    arr = noise(4, 6)
    p = save(arr, tmp_path / "odd.png", exif=exif_with(9))
    np.testing.assert_array_equal(load_image(p), arr)
    assert read_image_info(p).width == 6


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_image_with_orientation_is_rotated_once(tmp_path, suffix):
    raw = (np.arange(5 * 7, dtype=np.uint16).reshape(5, 7) * 1000 + 500).astype(np.uint16)
    p = save(Image.fromarray(raw), tmp_path / f"deep{suffix}", exif=exif_with(6))
    out = load_image(p)
    expected = normalize_to_uint8(np.rot90(raw, -1))
    assert out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out[..., 0], expected)
    info = read_image_info(p)
    assert (info.width, info.height) == (5, 7)


# --------------------------------------------------------------------------- thumbnails


def test_thumbnail_of_a_big_jpeg_is_decoded_small_and_looks_the_same(tmp_path):
    path = save(gradient(1500, 2000), tmp_path / "big.jpg", quality=92)
    thumb = load_thumbnail(path, 96)
    assert thumb.shape == (72, 96, 3) and thumb.dtype == np.uint8
    assert thumb.flags["C_CONTIGUOUS"]
    full = cv2.resize(load_image(path), (96, 72), interpolation=cv2.INTER_AREA)
    assert np.abs(thumb.astype(int) - full).mean() < 3


def test_thumbnail_applies_exif_orientation(tmp_path):
    path = save(Image.fromarray(gradient(300, 400)), tmp_path / "turned.jpg",
                exif=exif_with(6), quality=92)
    thumb = load_thumbnail(path, 100)
    assert thumb.shape == (100, 75, 3)  # shown upright: taller than wide
    expected = cv2.resize(load_image(path), (75, 100), interpolation=cv2.INTER_AREA)
    assert np.abs(thumb.astype(int) - expected).mean() < 3


def test_thumbnail_never_enlarges_and_reads_any_format(tmp_path):
    small = save(noise(20, 30), tmp_path / "small.png")
    assert np.array_equal(load_thumbnail(small, 96), load_image(small))
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(gradient(200, 300)).convert("CMYK").save(cmyk, quality=95)
    assert load_thumbnail(cmyk, 60).shape == (40, 60, 3)


def test_thumbnail_of_a_broken_file_names_it(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(save(gradient(400, 400), tmp_path / "ok.jpg").read_bytes()[:300])
    with pytest.raises(ImageReadError) as exc:
        load_thumbnail(broken, 64)
    assert_names_file(exc.value, broken, "corrupt")
