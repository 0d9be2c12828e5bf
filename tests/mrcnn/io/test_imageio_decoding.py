"""Every format, colour mode and bit depth loads as the (H, W, 3) uint8 RGB a viewer shows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from imageio_helpers import gradient, noise, save
from PIL import Image

from mrcnn.io.images import (
    load_image,
    normalize_to_uint8,
    read_image_info,
    verify_image,
)

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
