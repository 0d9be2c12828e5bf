"""Every image a user can drop in a folder loads as the (H, W, 3) uint8 RGB they see in a viewer,
or fails with an ImageReadError that names the file and says why."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from mrcnn.errors import ImageReadError
from mrcnn.io.images import (
    ImageInfo,
    apply_orientation,
    file_sha256,
    is_image_path,
    load_image,
    load_thumbnail,
    normalize_to_uint8,
    read_image_info,
    verify_image,
)

ORIENTATION = 0x0112


# --------------------------------------------------------------------------- helpers


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


def pillow_view(path: Path) -> np.ndarray:
    """What a viewer shows: Pillow's own EXIF transpose of the file, as RGB."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


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


def assert_names_file(exc: ImageReadError, path: Path, *reason_words: str) -> None:
    message = str(exc)
    assert exc.path == str(path)
    assert str(path) in message
    for word in reason_words:
        assert word.lower() in message.lower(), (word, message)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("suffix", "params"),
    [
        (".png", {}),
        (".bmp", {}),
        (".tif", {}),
        (".tiff", {"compression": "tiff_lzw"}),
        (".webp", {"lossless": True}),
    ],
)
def test_lossless_formats_load_exact_rgb(tmp_path, suffix, params):
    arr = noise(13, 17)
    p = save(arr, tmp_path / f"img{suffix}", **params)
    out = load_image(p)
    assert out.dtype == np.uint8
    assert out.shape == (13, 17, 3)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, arr)
    info = read_image_info(p)
    assert (info.width, info.height) == (17, 13)


@pytest.mark.parametrize(("suffix", "params"), [(".jpg", {"quality": 95}), (".webp", {})])
def test_lossy_formats_load_close_to_the_original(tmp_path, suffix, params):
    arr = gradient(48, 64)
    p = save(arr, tmp_path / f"img{suffix}", **params)
    out = load_image(p)
    assert out.dtype == np.uint8
    assert out.shape == (48, 64, 3)
    assert np.abs(out.astype(int) - arr.astype(int)).mean() < 4


def test_uppercase_extension_and_misleading_extension_still_load(tmp_path):
    arr = noise(5, 6)
    np.testing.assert_array_equal(load_image(save(arr, tmp_path / "A.PNG")), arr)
    # A PNG named .jpg: the content decides, not the name.
    p = tmp_path / "really_png.jpg"
    save(arr, p, format="PNG")
    np.testing.assert_array_equal(load_image(p), arr)
    assert read_image_info(p).format == "PNG"


def test_real_photo_loads_with_its_shape(tmp_path):
    skdata = pytest.importorskip("skimage.data")
    photo = skdata.astronaut()
    p = save(photo, tmp_path / "astronaut.jpg", quality=90)
    out = load_image(p)
    assert out.shape == (512, 512, 3)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - photo.astype(int)).mean() < 5
    info = verify_image(p)
    assert (info.width, info.height, info.format) == (512, 512, "JPEG")


def test_one_pixel_image_loads(tmp_path):
    p = save(np.array([[[10, 20, 30]]], np.uint8), tmp_path / "one.png")
    out = load_image(p)
    assert out.shape == (1, 1, 3)
    assert out[0, 0].tolist() == [10, 20, 30]
    assert verify_image(p).width == 1


def test_unicode_path_loads(tmp_path):
    folder = tmp_path / "données 数据"
    folder.mkdir()
    arr = noise(4, 5)
    p = save(arr, folder / "фото_写真 é.png")
    np.testing.assert_array_equal(load_image(p), arr)
    np.testing.assert_array_equal(load_image(str(p)), arr)
    assert read_image_info(p).width == 5
    assert verify_image(p).height == 4


def test_mpo_and_multipage_tiff_load_their_first_frame(tmp_path):
    first, second = noise(6, 8, 1), noise(6, 8, 2)
    mpo = tmp_path / "camera.mpo"
    Image.fromarray(first).save(
        mpo, format="MPO", save_all=True, append_images=[Image.fromarray(second)], quality=95
    )
    out = load_image(mpo)
    assert out.shape == (6, 8, 3)
    assert (
        np.abs(out.astype(int) - first.astype(int)).mean()
        < np.abs(out.astype(int) - second.astype(int)).mean()
    )

    tif = tmp_path / "pages.tif"
    assert cv2.imwritemulti(str(tif), [first[..., ::-1], second[..., ::-1]])
    np.testing.assert_array_equal(load_image(tif), first)


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


# --------------------------------------------------------------------------- colour modes


def test_grayscale_and_one_bit_become_gray_rgb(tmp_path):
    gray = np.random.default_rng(3).integers(0, 256, (6, 9), dtype=np.uint8)
    out = load_image(save(gray, tmp_path / "gray.png"))
    assert out.shape == (6, 9, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)

    bits = gray > 127
    out = load_image(save(Image.fromarray(bits).convert("1"), tmp_path / "bits.png"))
    assert set(np.unique(out).tolist()) <= {0, 255}
    np.testing.assert_array_equal(out[..., 1], np.where(bits, 255, 0))

    out = load_image(save(Image.fromarray(bits).convert("1"), tmp_path / "bits.bmp"))
    np.testing.assert_array_equal(out[..., 2], np.where(bits, 255, 0))


def test_palette_image_shows_its_palette_colours(tmp_path):
    index = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    im = Image.fromarray(index, mode="P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    out = load_image(save(im, tmp_path / "pal.png"))
    colours = {0: [255, 0, 0], 1: [0, 255, 0], 2: [0, 0, 255]}
    for (r, c), i in np.ndenumerate(index):
        assert out[r, c].tolist() == colours[i]
    out = load_image(save(im, tmp_path / "pal.bmp"))
    assert out[0, 2].tolist() == [0, 0, 255]


def test_palette_transparency_is_composited_onto_white(tmp_path):
    index = np.array([[0, 1], [1, 2]], np.uint8)
    im = Image.fromarray(index, mode="P")
    im.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 0])
    out = load_image(save(im, tmp_path / "pal_t.png", transparency=2))
    assert out[1, 1].tolist() == [255, 255, 255]  # transparent index
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == [200, 100, 50]


def test_rgb_and_gray_colour_key_transparency_is_composited_onto_white(tmp_path):
    arr = np.zeros((2, 2, 3), np.uint8)
    arr[0, 0] = (255, 0, 0)
    arr[1, 1] = (0, 0, 255)
    out = load_image(save(arr, tmp_path / "key.png", transparency=(255, 0, 0)))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[1, 1].tolist() == [0, 0, 255]
    assert out[0, 1].tolist() == [0, 0, 0]

    gray = np.array([[0, 100], [200, 100]], np.uint8)
    out = load_image(save(gray, tmp_path / "gkey.png", transparency=100))
    assert out[0, 1].tolist() == [255, 255, 255]
    assert out[1, 0].tolist() == [200, 200, 200]
    assert out[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(("suffix", "params"), [(".png", {}), (".webp", {"lossless": True})])
def test_rgba_alpha_is_composited_onto_white(tmp_path, suffix, params):
    arr = np.zeros((2, 3, 4), np.uint8)
    arr[0, 0] = (10, 20, 30, 0)  # fully transparent
    arr[0, 1] = (10, 20, 30, 255)  # opaque
    arr[0, 2] = (0, 0, 0, 128)  # half: halfway to white
    arr[1, :] = (200, 0, 100, 255)
    out = load_image(save(arr, tmp_path / f"rgba{suffix}", **params))
    assert out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [10, 20, 30]
    assert np.abs(out[0, 2].astype(int) - 127).max() <= 1
    assert (out[1] == [200, 0, 100]).all()


def test_gray_alpha_is_composited_onto_white(tmp_path):
    la = np.zeros((1, 3, 2), np.uint8)
    la[0, 0] = (40, 0)
    la[0, 1] = (40, 255)
    la[0, 2] = (0, 255)
    out = load_image(save(Image.fromarray(la, mode="LA"), tmp_path / "la.png"))
    assert out[0].tolist() == [[255, 255, 255], [40, 40, 40], [0, 0, 0]]


def test_cmyk_jpeg_becomes_rgb_close_to_expected(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (90, 160, 30)]
    arr = np.zeros((16, 16 * len(colours), 3), np.uint8)
    for i, c in enumerate(colours):
        arr[:, 16 * i : 16 * (i + 1)] = c
    p = save(Image.fromarray(arr).convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    with Image.open(p) as im:
        assert im.mode == "CMYK"
    out = load_image(p)
    assert out.shape == arr.shape
    for i, c in enumerate(colours):
        centre = out[8, 16 * i + 8].astype(int)
        assert np.abs(centre - np.array(c)).max() <= 12, (c, centre)


# --------------------------------------------------------------------------- high bit depth


def test_16bit_gray_png_uses_full_range_monotonically(tmp_path):
    values = np.linspace(1000, 3000, 40 * 50).astype(np.uint16)
    raw = np.random.default_rng(5).permutation(values).reshape(40, 50)
    p = tmp_path / "gray16.png"
    assert cv2.imwrite(str(p), raw)
    out = load_image(p)
    assert out.shape == (40, 50, 3)
    assert out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    order = np.argsort(raw, axis=None, kind="stable")
    assert (np.diff(out[..., 0].reshape(-1)[order].astype(int)) >= 0).all()
    # Percentile stretch: the middle value lands in the middle.
    mid = np.abs(raw.astype(int) - 2000).argmin()
    assert abs(int(out[..., 0].flat[mid]) - 128) < 8


def test_16bit_rgb_png_is_stretched_not_truncated(tmp_path):
    rgb = np.zeros((30, 40, 3), np.uint16)
    rgb[..., 0] = np.linspace(1000, 3000, 40)[None, :]  # red ramps left to right
    rgb[..., 1] = np.linspace(1000, 3000, 30)[:, None]  # green ramps top to bottom
    rgb[..., 2] = 2000
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), rgb[..., ::-1])  # OpenCV writes BGR
    out = load_image(p)
    assert out.shape == (30, 40, 3)
    # Dropping the low byte would give 3..11: a near-black image.
    assert out[..., 0].min() <= 2 and out[..., 0].max() >= 253
    assert out[..., 1].min() <= 2 and out[..., 1].max() >= 253
    assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()
    assert (np.diff(out[:, 0, 1].astype(int)) >= 0).all()
    assert abs(int(out[0, 0, 2]) - 128) < 8  # channels share one stretch: 2000 is mid-grey


def test_16bit_rgba_png_alpha_composited_onto_white(tmp_path):
    bgra = np.zeros((2, 2, 4), np.uint16)
    bgra[..., :3] = 1000
    bgra[0, 0, :3] = 3000
    bgra[..., 3] = 65535
    bgra[1, 1, 3] = 0
    p = tmp_path / "rgba16.png"
    assert cv2.imwrite(str(p), bgra)
    out = load_image(p)
    assert out.shape == (2, 2, 3)
    assert out[1, 1].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [0, 0, 0]
    assert out[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("writer", ["opencv", "pillow"])
def test_16bit_gray_tiff_uses_full_range(tmp_path, writer):
    raw = np.tile(np.linspace(1000, 3000, 64).astype(np.uint16), (8, 1))
    p = tmp_path / "gray16.tif"
    if writer == "opencv":
        assert cv2.imwrite(str(p), raw)
    else:
        Image.fromarray(raw).save(p)
    out = load_image(p)
    assert out.shape == (8, 64, 3)
    assert out.min() == 0 and out.max() == 255
    assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()
    np.testing.assert_array_equal(out[0], out[7])


def test_16bit_rgb_tiff_uses_full_range(tmp_path):
    rgb = np.zeros((4, 50, 3), np.uint16)
    rgb[..., 0] = np.linspace(1000, 3000, 50)
    rgb[..., 1] = 3000
    rgb[..., 2] = 1000
    p = tmp_path / "rgb16.tif"
    assert cv2.imwrite(str(p), rgb[..., ::-1])
    out = load_image(p)
    assert out.shape == (4, 50, 3)
    assert out[0, 0].tolist() == [0, 255, 0]
    assert out[0, -1].tolist() == [255, 255, 0]
    assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()


def test_float_tiff_is_stretched(tmp_path):
    raw = np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    p = tmp_path / "float.tif"
    Image.fromarray(raw, mode="F").save(p)
    out = load_image(p)
    assert out.shape == (8, 8, 3)
    assert out.min() == 0 and out.max() == 255


def test_normalize_to_uint8():
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert normalize_to_uint8(u8) is u8  # 8-bit data is never rescaled
    ramp = np.linspace(1000, 3000, 1001).astype(np.uint16)
    out = normalize_to_uint8(ramp)
    assert out.dtype == np.uint8
    assert out[0] == 0 and out[-1] == 255
    assert (np.diff(out.astype(int)) >= 0).all()
    # One hot pixel does not darken everything else (percentiles, not min/max).
    spiky = ramp.copy()
    spiky[500] = 65535
    assert normalize_to_uint8(spiky)[400] >= out[400] - 2
    # Non-finite values and constant images do not crash.
    f = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0], np.float32)
    out = normalize_to_uint8(f)
    assert out.dtype == np.uint8 and out.shape == f.shape
    assert out[1] == 255 and out[2] == 0
    assert normalize_to_uint8(np.full((3, 3), 7, np.uint16)).shape == (3, 3)
    assert not normalize_to_uint8(np.full(4, np.nan)).any()


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
