"""Broken images refused by name, odd ones taken as shown: folder scan, command line, COCO."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_helpers import H, W, _coco_for, _gradient, _save
from hostile_helpers import project as project  # the fixture, for the tests below
from PIL import Image

from mrcnn.coco.io import import_coco
from mrcnn.errors import CocoFormatError
from mrcnn.io.images import load_image
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder

REPO = Path(__file__).resolve().parents[2]
ORIENTATION = 0x0112


# ---------------------------------------------------------------- image makers
def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    """A 70-byte PNG whose header claims 65535 x 65535 RGB pixels (12.9 GB decoded)."""
    b = bytearray(_png_bytes(np.zeros((2, 2, 3), np.uint8)))
    b[16:24] = struct.pack(">II", 65535, 65535)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def _animated(path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (W, H), c) for c in ("red", "blue", "green")]
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def write_odd_images(folder: Path) -> dict[str, tuple[int, int]]:
    """Odd but valid images; returns {file name: displayed (width, height)}."""
    folder.mkdir(parents=True, exist_ok=True)
    shown: dict[str, tuple[int, int]] = {}
    _save(folder / "one-pixel.png", np.full((1, 1, 3), 200, np.uint8))
    shown["one-pixel.png"] = (1, 1)
    gray16 = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 97)
    _save(folder / "gray16.png", gray16)
    cv2.imwrite(str(folder / "rgb16.png"), np.dstack([gray16, gray16[::-1], gray16[:, ::-1]]))
    cv2.imwrite(str(folder / "rgb16.tif"), np.dstack([gray16, gray16, gray16]))
    _save(folder / "cmyk.jpg", Image.fromarray(_gradient()).convert("CMYK"), "JPEG")
    pal = Image.fromarray(_gradient()).convert("P")
    pal.info["transparency"] = 0
    _save(folder / "palette-alpha.png", pal, transparency=0)
    rgba = np.dstack([_gradient(), np.linspace(0, 255, W, dtype=np.uint8)[None].repeat(H, 0)])
    _save(folder / "rgba.webp", rgba, lossless=True)
    _save(folder / "png-named.jpg", _gradient(), "PNG")  # the wrong extension
    for name in ("gray16.png", "rgb16.png", "rgb16.tif", "cmyk.jpg", "palette-alpha.png",
                 "rgba.webp", "png-named.jpg"):
        shown[name] = (W, H)
    for o in range(1, 9):
        _save(folder / f"exif-{o}.jpg", _gradient(), "JPEG", exif=_exif(o))
        shown[f"exif-{o}.jpg"] = (H, W) if o >= 5 else (W, H)
    return shown


def write_broken_images(folder: Path) -> dict[str, str]:
    """Images that must be refused; returns {file name: words the reason must contain}."""
    folder.mkdir(parents=True, exist_ok=True)
    good_jpg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        good_jpg, "JPEG")
    png = _png_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8))
    (folder / "truncated.jpg").write_bytes(good_jpg.getvalue()[:800])
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "zero-bytes.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("shopping list, not a photo\n" * 10)
    (folder / "bomb.png").write_bytes(_bomb())
    _animated(folder / "animated.png", "PNG")
    _animated(folder / "animated.webp", "WEBP")
    _animated(folder / "gif-inside.png", "GIF")
    crc = bytearray(_png_bytes(_gradient()))
    crc[20] ^= 0xFF
    (folder / "bad-crc.png").write_bytes(bytes(crc))
    (folder / "dangling.jpg").symlink_to(folder / "gone-for-good.jpg")
    return {
        "truncated.jpg": "truncated", "truncated.png": "truncated",
        "zero-bytes.png": "file is empty (0 bytes)", "notes.jpg": "not a recognised image",
        "bomb.png": "image is too large to open safely (Image size (4294836225 pixels)",
        "animated.png": "animated PNG", "animated.webp": "animated WEBP",
        "gif-inside.png": "unsupported format GIF", "bad-crc.png": "not a recognised image",
        "dangling.jpg": "file not found",
    }


@pytest.fixture
def no_bomb_decoding(monkeypatch):
    """Fails if Pillow ever starts decoding the 65535 x 65535 image."""
    original = Image.Image.load

    def load(self):
        assert self.size != (65535, 65535), "the bomb's pixels were decoded"
        return original(self)

    monkeypatch.setattr(Image.Image, "load", load)


# ---------------------------------------------------------------- images, scanning a folder
def test_scan_takes_odd_images_at_the_size_they_are_shown(project, helpers):
    shown = write_odd_images(project.images_root / "odd")
    report = scan_folder(project)
    assert report.skipped == [] and report.added == len(shown)
    records = {Path(im.path).name: im for im in project.images() if im.path.startswith("odd/")}
    assert {n: (r.width, r.height) for n, r in records.items()} == shown
    for name, rec in records.items():  # the pixels a user labels have the stored size
        rgb = load_image(project.image_path(rec))
        assert rgb.shape == (rec.height, rec.width, 3) and rgb.dtype == np.uint8, name


def test_scan_skips_broken_images_with_a_reason_and_stores_none_of_them(
        project, helpers, no_bomb_decoding):
    broken = write_broken_images(project.images_root / "broken")
    before = helpers.project_state(project)
    report = scan_folder(project)
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert sorted(reasons) == sorted(broken)
    for name, words in broken.items():
        assert words in reasons[name], (name, reasons[name])
    assert report.added == 0 and helpers.project_state(project) == before
    again = scan_folder(project)  # and a rescan says the same, without changing anything
    assert sorted(Path(p).name for p, _ in again.skipped) == sorted(broken)
    assert helpers.project_state(project) == before


@pytest.mark.skipif(sys.platform != "linux", reason="address-space limits are Linux-only")
def test_new_project_over_a_bomb_allocates_nothing_and_says_why(tmp_path):
    """The command line, in a process limited to 1.5 GiB: the 12.9 GB bomb is refused from its
    header and the good image next to it is taken."""
    import resource

    images = tmp_path / "images"
    images.mkdir()
    (images / "bomb.png").write_bytes(_bomb())
    _save(images / "good.png", _gradient())
    limit = 3 << 29

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "mrcnn", "new", str(tmp_path / "proj"),
                        "--images", str(images)], capture_output=True, text=True, env=env,
                       preexec_fn=cap, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 images added, 1 skipped" in r.stdout
    assert r.stderr.startswith(f"warning: skipped {images / 'bomb.png'}: image is too large "
                               "to open safely (Image size (4294836225 pixels)"), r.stderr
    with Project.open(tmp_path / "proj", read_only=True) as p:
        assert [im.path for im in p.images()] == ["good.png"]


# ---------------------------------------------------------------- images, importing COCO
def test_import_of_odd_images_stores_masks_at_the_size_they_are_shown(project, helpers,
                                                                     tmp_path):
    folder = tmp_path / "incoming"
    shown = write_odd_images(folder)
    path = folder / "coco.json"
    path.write_text(json.dumps(_coco_for(shown)))
    report = import_coco(project, path)
    assert report.annotations_added == len(shown)
    for inst in project.instances():
        im = project.image(inst.image_id)
        assert (inst.rle.width, inst.rle.height) == (im.width, im.height)
        assert load_image(project.image_path(im)).shape[:2] == (im.height, im.width)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_masks_drawn_on_the_unrotated_pixels_are_refused(project, helpers, tmp_path,
                                                         orientation):
    """A tool that ignored EXIF wrote the stored size: the sizes disagree, and the message
    says which is which instead of storing masks turned by 90 degrees."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    _save(folder / "photo.jpg", _gradient(), "JPEG", exif=_exif(orientation))
    path = folder / "coco.json"
    path.write_text(json.dumps(_coco_for({"photo.jpg": (W, H)})))
    before = helpers.project_state(project)
    with pytest.raises(CocoFormatError, match=rf"images\[0\] \(id 1\): COCO gives size "
                                              rf"{W}x{H} but photo.jpg is {H}x{W}"):
        import_coco(project, path)
    assert helpers.project_state(project) == before


BROKEN = ("truncated.jpg", "truncated.png", "zero-bytes.png", "notes.jpg", "bomb.png",
          "animated.png", "animated.webp", "gif-inside.png", "bad-crc.png", "animated.gif")


@pytest.mark.parametrize("name", BROKEN)
def test_import_naming_a_broken_image_is_refused_and_changes_nothing(
        project, helpers, tmp_path, name, no_bomb_decoding):
    folder = tmp_path / "incoming"
    reasons = write_broken_images(folder)
    _animated(folder / "animated.gif", "GIF")
    reasons["animated.gif"] = "unsupported format GIF"
    _save(folder / "fine.png", _gradient())
    path = folder / "coco.json"
    path.write_text(json.dumps(_coco_for({"fine.png": (W, H), name: (W, H)})))
    before = helpers.project_state(project)
    with pytest.raises(CocoFormatError) as info:
        import_coco(project, path)
    message = str(info.value)
    assert f"images[1] (id 2): cannot read image {folder / name}: " in message
    assert reasons[name] in message
    assert str(path) in message
    assert helpers.project_state(project) == before
