"""Headers read without decoding; too-large, broken or unsupported files fail naming the file."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from imageio_helpers import assert_names_file, exif_with, noise, save
from PIL import Image

from mrcnn.errors import ImageReadError
from mrcnn.io.images import (
    ImageInfo,
    file_sha256,
    is_image_path,
    load_image,
    read_image_info,
    verify_image,
)

# --------------------------------------------------------------------------- helpers


def with_png_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with IHDR claiming another size (and a valid CRC): a decompression bomb."""
    b = bytearray(png)
    assert b[12:16] == b"IHDR"
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(noise(2, 2)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def no_decoding(monkeypatch):
    """Records every pixel decode Pillow starts for an image read from a file (in-memory images,
    such as the ones the test itself saves, have nothing to decode and are not recorded)."""
    calls: list[str] = []
    original = Image.Image.load

    def spy(self):
        if self.format:
            calls.append(self.format)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    return calls


# --------------------------------------------------------------------------- header reads


def test_read_image_info_gives_size_format_and_content_hash(tmp_path):
    arr = noise(7, 11)
    p = save(arr, tmp_path / "a.png")
    info = read_image_info(p)
    assert info == ImageInfo(11, 7, hashlib.sha256(p.read_bytes()).hexdigest(), "PNG")
    assert info.sha256 == file_sha256(p)
    assert verify_image(p) == info
    q = save(noise(7, 11, seed=1), tmp_path / "b.png")
    assert read_image_info(q).sha256 != info.sha256
    assert read_image_info(save(arr, tmp_path / "a.jpg")).format == "JPEG"
    assert read_image_info(save(arr, tmp_path / "a.webp")).format == "WEBP"


@pytest.mark.parametrize(
    "make",
    [
        lambda d: save(noise(40, 30), d / "plain.png"),
        lambda d: save(noise(40, 30), d / "exif.png", exif=exif_with(6)),
        lambda d: save(noise(40, 30), d / "exif.jpg", exif=exif_with(8)),
        lambda d: save(noise(40, 30), d / "exif.tif", exif=exif_with(5)),
        lambda d: save(noise(40, 30), d / "exif.webp", exif=exif_with(6)),
        lambda d: save(Image.fromarray(np.zeros((40, 30), np.uint16)), d / "deep.png"),
    ],
)
def test_read_image_info_decodes_no_pixels(tmp_path, no_decoding, make):
    p = make(tmp_path)
    info = read_image_info(p)
    assert no_decoding == []
    assert info.width in (30, 40) and info.height in (30, 40)


def test_is_image_path():
    for name in ("a.jpg", "b.JPEG", "c.png", "d.Bmp", "e.tif", "f.TIFF", "g.webp"):
        assert is_image_path(name), name
    for name in ("a.gif", "b.txt", "c", "d.json", "png"):
        assert not is_image_path(name), name
    assert is_image_path(Path("x") / "y.PNG")


# --------------------------------------------------------------------------- size guard


def test_decompression_bomb_header_is_refused_without_decoding(tmp_path, no_decoding):
    p = tmp_path / "bomb.png"
    p.write_bytes(with_png_size(tiny_png(), 65535, 65535))
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "pixels")
        assert "limit" in str(err.value) or "too large" in str(err.value)
        assert "4,294,836,225" in str(err.value) or "4294836225" in str(err.value)
    assert no_decoding == []


def test_header_above_max_pixels_is_refused_with_size_and_limit(tmp_path, no_decoding):
    # 12000 x 12000 claimed by a 70-byte file: refused by our own limit, nothing allocated.
    p = tmp_path / "big.png"
    p.write_bytes(with_png_size(tiny_png(), 12000, 12000))
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p, max_pixels=50_000_000)
        assert_names_file(err.value, p, "12000x12000", "144,000,000", "50,000,000")
    assert no_decoding == []


def test_max_pixels_on_a_small_image(tmp_path):
    p = save(noise(10, 10), tmp_path / "small.png")
    with pytest.raises(ImageReadError) as err:
        load_image(p, max_pixels=99)
    assert_names_file(err.value, p, "10x10", "100 pixels", "limit of 99")
    with pytest.raises(ImageReadError):
        read_image_info(p, max_pixels=99)
    with pytest.raises(ImageReadError):
        verify_image(p, max_pixels=99)
    assert load_image(p, max_pixels=100).shape == (10, 10, 3)
    assert read_image_info(p, max_pixels=100).width == 10


# --------------------------------------------------------------------------- broken files


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jpg"
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "not found")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "empty")


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "not a recognised image")


def test_folder_path(tmp_path):
    p = tmp_path / "folder.png"
    p.mkdir()
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "folder")


def test_truncated_jpeg_is_refused_by_load_and_verify(tmp_path):
    good = save(noise(64, 96), tmp_path / "good.jpg", quality=90)
    data = good.read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    for read in (load_image, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "truncated")
    # The header is intact, so a header-only read still tells the size.
    assert read_image_info(p).width == 96


def test_truncated_png_is_refused_by_load_and_verify(tmp_path):
    good = save(noise(64, 96), tmp_path / "good.png")
    data = good.read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    for read in (load_image, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, "truncated")


def test_corrupt_header_bytes(tmp_path):
    data = bytearray(tiny_png())
    data[20] ^= 0xFF  # breaks IHDR's CRC
    p = tmp_path / "crc.png"
    p.write_bytes(bytes(data))
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p)
        assert err.value.reason


@pytest.mark.parametrize(("suffix", "name"), [(".gif", "GIF"), (".webp", "WEBP"), (".png", "PNG")])
def test_animated_images_are_refused(tmp_path, suffix, name):
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue", "green")]
    p = tmp_path / f"anim{suffix}"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    for read in (load_image, read_image_info, verify_image):
        with pytest.raises(ImageReadError) as err:
            read(p)
        assert_names_file(err.value, p, name)
        assert "animated" in str(err.value) or "unsupported" in str(err.value)


def test_unsupported_format_is_refused(tmp_path):
    p = save(noise(4, 4), tmp_path / "pic.gif")
    with pytest.raises(ImageReadError) as err:
        load_image(p)
    assert_names_file(err.value, p, "unsupported format GIF")
