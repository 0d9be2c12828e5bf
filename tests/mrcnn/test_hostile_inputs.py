"""Nothing trusted: hostile images, COCO files, checkpoints and file names, through the paths a
user takes (scanning a folder, importing COCO, the command line, loading a model). Each gives
a clear message naming the file (or is taken correctly, for odd but valid images), the program
keeps running, and the project is unchanged.

Hostile inputs tried in the whole suite, each refused with a message naming the file or
record, the project unchanged (deterministic cases; "here" is this file):

    kind                 here   elsewhere                                        total
    images                 25   14 test_imageio.py, 5 test_coco_import.py BAD       44
    COCO files             11   33 test_coco_import.py, 2 test_cli.py               46
    YOLO-seg folders        -   24 coco/test_yolo.py HOSTILE                        24
    labelme files           -   34 coco/test_labelme.py BAD, 1 missing source       35
    mask PNG folders        -   12 coco/test_mask_png.py HOSTILE                    12
    Pascal VOC folders      -   11 coco/test_voc.py HOSTILE, 1 too many categories  12
    checkpoints            13   10 test_weights.py                                  23
    file names (paths)     24    3 test_coco_import.py BAD                          27
    total refused          73  150                                                 223

Each format's cases (wrong column counts, coordinates outside [0, 1], unknown class index,
a mask PNG of the wrong size, a labelme file pointing outside the folder, XML entities, ...)
live beside that format's tests in tests/mrcnn/coco/; every one checks that the message
names the file (and the line or shape) and that the project is unchanged.

Here, images: 10 broken files skipped by a folder scan, the same 10 named by a COCO file,
4 masks drawn on EXIF-unrotated pixels, a 65535x65535 header under a 1.5 GiB memory limit.
Also taken correctly here, not refused: 17 odd but valid images (1x1, 16-bit PNG and TIFF,
CMYK, palette with alpha, RGBA WebP, a PNG named .jpg, EXIF orientations 1..8), each through
a folder scan and through a COCO import; an absurd bbox; hostile category names (data, never
paths). test_fuzz_coco.py adds 100 randomly mutated COCO files and 300 random segmentations
per run; test_training_faults.py 5 injected training faults; test_crash_safety.py 62 kills.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mrcnn import masks
from mrcnn.cli.main import main
from mrcnn.coco import validate as coco_validate
from mrcnn.coco.io import export_coco, import_coco
from mrcnn.errors import CheckpointError, CocoFormatError
from mrcnn.io import images as imageio
from mrcnn.io.images import load_image
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder

REPO = Path(__file__).resolve().parents[2]
ORIENTATION = 0x0112
W, H = 30, 20  # stored size of the odd images (width x height)


# ---------------------------------------------------------------- image makers
def _gradient(h: int = H, w: int = W) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                     np.full_like(x, 128)], -1).astype(np.uint8)


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


def _save(path: Path, im: Image.Image | np.ndarray, fmt: str | None = None, **kw) -> None:
    (im if isinstance(im, Image.Image) else Image.fromarray(im)).save(path, fmt, **kw)


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
def project(tmp_path, open_projects):
    """A project with some work in it already: one image, two categories, one instance."""
    images = tmp_path / "images"
    images.mkdir()
    _save(images / "base.png", _gradient(24, 32))
    p = Project.create(tmp_path / "proj", images)
    open_projects.append(p)
    scan_folder(p)
    cat = p.add_category("disc")
    p.add_category("square")
    m = np.zeros((24, 32), bool)
    m[3:9, 4:12] = True
    p.add_instance(p.images()[0].id, cat.id, masks.encode(m))
    return p


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
def _coco_for(images: dict[str, tuple[int, int]]) -> dict:
    """One COCO image per file (at the given size) with one small square each."""
    coco = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "thing"}]}
    for i, (name, (w, h)) in enumerate(images.items(), start=1):
        m = np.zeros((h, w), bool)
        m[: max(1, h // 2), : max(1, w // 2)] = True
        coco["images"].append({"id": i, "file_name": name, "width": w, "height": h})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 7,
                                    "segmentation": masks.encode(m).to_coco()})
    return coco


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


# ---------------------------------------------------------------- COCO files, command line
def _one_line_error(args, capsys) -> str:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", (code, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def _valid_coco(folder: Path) -> dict:
    folder.mkdir(exist_ok=True)
    _save(folder / "fine.png", _gradient())
    return _coco_for({"fine.png": (W, H)})


COCO_CASES = {
    # id: (bytes of the file, given a valid COCO dict; words of the one error line)
    "non-utf8": (lambda c: json.dumps(c).replace("thing", "caf\xe9").encode("latin-1"),
                 "not UTF-8 text (byte 0xe9 at offset"),
    "utf16": (lambda c: json.dumps(c).encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
    "deeply-nested": (lambda c: json.dumps({**c, "info": 0}).replace(
        '"info": 0', '"info": ' + "[" * 50_000 + "]" * 50_000).encode(), "nested too deeply"),
    "rle-counts-short": (lambda c: json.dumps(_with_seg(c, {"size": [H, W],
                                                             "counts": [5, 10, 20]})).encode(),
                         "counts sum to 35, not height*width = 600"),
    "rle-counts-long": (lambda c: json.dumps(_with_seg(c, {"size": [H, W],
                                                            "counts": [0, 300, 301]})).encode(),
                        "counts sum to 601, not height*width = 600"),
    "rle-string-short": (lambda c: json.dumps(_with_seg(c, {"size": [H, W],
                                                             "counts": "0d1"})).encode(),
                         "bad segmentation: RLE counts sum to"),
    # Found by test_fuzz_coco.py: JSON integers too big for a float once crashed the import.
    "polygon-integer-too-big-for-a-float": (
        lambda c: json.dumps(_with_seg(c, [[0, 0, 5, 0, 2**64 + 1, 9]])).encode(),
        "polygon point (1.84467e+19, 9) lies far outside the 30x20 image"),
    "polygon-integer-too-big-for-any-float": (
        lambda c: json.dumps(_with_seg(c, [[0, 0, 5, 0, 10**400, 9]])).encode(),
        "polygon point (a 401-digit number, 9) lies far outside"),
    "number-with-5000-digits": (
        lambda c: json.dumps(_with_key(c, "area", 0)).replace('"area": 0',
                                                              '"area": ' + "9" * 5000).encode(),
        "unreadable JSON number (Exceeds the limit (4300 digits)"),
}


def _with_key(coco: dict, key: str, value) -> dict:
    coco["annotations"][0][key] = value
    return coco


def _with_seg(coco: dict, seg) -> dict:
    coco["annotations"][0]["segmentation"] = seg
    return coco


@pytest.mark.parametrize("case", COCO_CASES, ids=list(COCO_CASES))
def test_bad_coco_file_is_one_error_line_and_changes_nothing(case, project, helpers,
                                                             tmp_path, capsys):
    make, words = COCO_CASES[case]
    folder = tmp_path / "incoming"
    path = folder / "coco.json"
    data = make(_valid_coco(folder))
    path.write_bytes(data)
    before = helpers.project_state(project)
    project.close()  # the command line opens it itself
    err = _one_line_error(["import-coco", project.folder, path], capsys)
    assert words in err and str(path) in err, err
    with Project.open(project.folder, read_only=True) as p:
        assert helpers.project_state(p) == before


def test_an_absurd_bbox_is_not_trusted_but_recomputed_from_the_mask(project, tmp_path):
    """bbox and area in a file are never trusted (they once crashed the import when too big
    for a float); what is stored comes from the mask."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    coco["annotations"][0].update(bbox=[0, 0, 10**400, 1], area=-5)
    (folder / "coco.json").write_text(json.dumps(coco))
    import_coco(project, folder / "coco.json")
    inst = project.instances()[-1]
    assert inst.bbox == (0.0, 0.0, float(W // 2), float(H // 2)) and inst.area == 150


def test_a_file_above_the_size_limit_is_refused_unread(project, helpers, tmp_path, capsys,
                                                       monkeypatch):
    """Refused from its size alone: nothing is read, so nothing can run out of memory."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    coco["info"] = {"padding": "x" * 3_000_000}  # valid, only too big for the limit below
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    before = helpers.project_state(project)
    project.close()
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    monkeypatch.setattr(coco_validate, "MAX_COCO_BYTES", 2 * 2**20)
    err = _one_line_error(["import-coco", project.folder, path], capsys)
    assert "coco.json: file is 2.9 MiB, above the 2.0 MiB limit for one COCO file" in err
    assert path not in reads
    with Project.open(project.folder, read_only=True) as p:
        assert helpers.project_state(p) == before


@pytest.mark.skipif(os.name != "posix", reason="needs a sparse file")
def test_a_file_above_the_default_limit_is_refused_in_an_instant(project, helpers, tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: 512 MiB + 1 byte that take no disk space
        f.truncate(coco_validate.MAX_COCO_BYTES + 1)
    before = helpers.project_state(project)
    start = time.perf_counter()
    with pytest.raises(CocoFormatError, match=r"huge.json: file is 512.0 MiB, above the "
                                              r"512.0 MiB limit"):
        import_coco(project, path)
    assert time.perf_counter() - start < 2.0
    assert helpers.project_state(project) == before


# ---------------------------------------------------------------- checkpoints
class Payload:
    """Unpickling this calls open(path, "w"): a file appears if the payload ever runs."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def r18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(2)
    from mrcnn.model.presets import build_model

    return build_model(preset="r18", num_classes=3).state_dict()


def _version(project: Project, write) -> None:
    """Register models/v1.pt (written by `write(path)`) as the project's active version."""
    path = project.models_dir / "v1.pt"
    write(path)
    project.add_model_version("models/v1.pt", "r18", activate=True)


def _cats(project: Project) -> list[str]:
    return [c.name for c in project.categories()]


def _ours(state, categories=("disc", "square"), preset="r18", **extra):
    def write(path):
        save_checkpoint(path, state_dict=state, preset=preset, categories=list(categories),
                        metadata=extra)
    return write


def _torch_save(obj):
    return lambda path: torch.save(obj, path)


def _cut(write, size: int):
    """`write`, then keep only the first `size` bytes (a copy or download that stopped)."""
    def cut(path):
        write(path)
        path.write_bytes(path.read_bytes()[:size])
    return cut


def _bytes(data: bytes):
    return lambda path: path.write_bytes(data)


CHECKPOINTS = {
    # id: (writer of models/v1.pt given (state, tmp_path), words the CheckpointError has)
    "pickle-payload": (lambda s, t: _torch_save({
        "format": "mrcnn-studio/1", "preset": "r18", "categories": ["disc", "square"],
        "state_dict": s, "metadata": {"x": Payload(t / "payload-ran")}}),
        "refused to load", "it contains Python objects (io.open)"),
    "legacy-format-payload": (lambda s, t: lambda path: torch.save(
        {"x": Payload(t / "payload-ran")}, path, _use_new_zipfile_serialization=False),
        "refused to load", "it contains Python objects (io.open)"),
    "bare-pickle-payload": (lambda s, t: _bytes(pickle.dumps(Payload(t / "payload-ran"))),
                            "is not a readable checkpoint (not a PyTorch file)"),
    "other-architecture": (lambda s, t: _ours(s, preset="r50v2"),
                           "does not fit the r50v2 architecture", "missing keys"),
    "other-categories": (lambda s, t: _ours(s, categories=("cat", "dog")),
                         "was trained for other categories than the project's",
                         "missing 'disc', 'square'; extra 'cat', 'dog'"),
    "categories-and-rows-disagree": (lambda s, t: _ours(s, categories=("disc", "square", "x")),
                                     "names 3 categories but its predictor has 2"),
    "unknown-preset": (lambda s, t: _ours(s, preset="r101-custom"), "unknown preset"),
    "non-tensor-weight": (lambda s, t: _torch_save({
        "format": "mrcnn-studio/1", "preset": "r18", "categories": ["disc", "square"],
        "state_dict": {**s, "rpn.head.conv.0.0.weight": "nope"}}),
        "rpn.head.conv.0.0.weight is not a tensor"),
    "truncated": (lambda s, t: _cut(_ours(s), 4096), "is not a readable checkpoint"),
    "zero-bytes": (lambda s, t: _cut(_ours(s), 0), "is not a readable checkpoint (file is "
                                                    "empty, 0 bytes)"),
    "json-not-torch": (lambda s, t: _bytes(b'{"format": "mrcnn-studio/1"}'),
                       "is not a readable checkpoint (not a PyTorch file)"),
    "missing-file": (lambda s, t: lambda path: None, "not found"),
}


@pytest.mark.parametrize("case", CHECKPOINTS, ids=list(CHECKPOINTS))
def test_a_bad_active_version_is_refused_by_name_and_changes_nothing(case, project, helpers,
                                                                    r18_state, tmp_path):
    make, *words = CHECKPOINTS[case]
    _version(project, make(r18_state, tmp_path))
    before = helpers.project_state(project)
    files = sorted(p.name for p in project.models_dir.iterdir())
    with pytest.raises(CheckpointError) as info:
        load_model(project=project, source="auto", categories=_cats(project))
    message = str(info.value)
    for w in words:
        assert w in message, message
    assert str(project.models_dir / "v1.pt") in message
    assert not (tmp_path / "payload-ran").exists()
    assert helpers.project_state(project) == before
    assert sorted(p.name for p in project.models_dir.iterdir()) == files


def test_predict_with_a_pickle_payload_is_one_error_line(project, helpers, r18_state,
                                                         tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    CHECKPOINTS["pickle-payload"][0](r18_state, tmp_path)(evil)
    before = helpers.project_state(project)
    project.close()
    err = _one_line_error(["predict", project.folder, "--model", evil], capsys)
    assert "refused to load" in err and "evil.pt" in err
    assert not (tmp_path / "payload-ran").exists()
    with Project.open(project.folder, read_only=True) as p:
        assert helpers.project_state(p) == before


# ---------------------------------------------------------------- file names in a COCO file
def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root (links not followed): (size, mtime_ns)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def escape_setup(tmp_path):
    """tmp/base/images/{fine.png, sub/, link -> tmp/base/elsewhere/deep}, and a valid photo
    at every place outside that a hostile name could reach: if the program ever read one of
    them, the import would succeed."""
    base = tmp_path / "base"
    images = base / "images"
    (images / "sub").mkdir(parents=True)
    deep = base / "elsewhere" / "deep"
    deep.mkdir(parents=True)
    _save(images / "fine.png", _gradient())
    for where in (base, base / "elsewhere", deep, tmp_path):
        _save(where / "x.png", _gradient())
    (images / "link").symlink_to(deep)
    return images


PATHS = {
    # id: (file_name, given the images folder; words of the message)
    "dot-dot": (lambda d: "../x.png", "points outside the images folder"),
    "dot-dot-backslash": (lambda d: "..\\x.png", "points outside the images folder"),
    "sub-dot-dot-backslash": (lambda d: "sub\\..\\..\\x.png", "points outside"),
    "dot-segments": (lambda d: "sub/./../.././x.png", "points outside"),
    "dot-dot-alone": (lambda d: "..", "points outside"),
    "dot": (lambda d: ".", "points outside"),
    "absolute": (lambda d: str(d.parent / "x.png"), "is an absolute path"),
    "absolute-double-slash": (lambda d: "//" + str(d.parent / "x.png").lstrip("/"),
                              "is an absolute path"),
    "backslash-root": (lambda d: "\\..\\x.png", "is an absolute path"),
    "drive-letter": (lambda d: "C:\\Users\\x.png", "is an absolute path"),
    "drive-letter-slash": (lambda d: "c:/x.png", "is an absolute path"),
    "drive-relative": (lambda d: "D:x.png", "is an absolute path"),
    "unc-share": (lambda d: "\\\\server\\share\\x.png", "is an absolute path"),
    "symlink-then-dot-dot": (lambda d: "link/../../x.png", "points outside"),
    # Judged on the name: link/../x.png is images/x.png (absent), never elsewhere/deep/../x.png
    "symlink-dot-dot-physical": (lambda d: "link/../x.png", "file not found"),
    "nul-byte": (lambda d: "fine.png\x00../../x.png", "'file_name' contains a NUL character"),
    "long-component": (lambda d: "a" * 300 + ".png", "File name too long"),
    "long-path": (lambda d: "d/" * 2100 + "x.png", "File name too long"),
    "home-tilde": (lambda d: "~/x.png", "file not found"),
    "env-variable": (lambda d: "$HOME/x.png", "file not found"),
    "windows-env-variable": (lambda d: "%USERPROFILE%\\x.png", "file not found"),
    # a URL names a file by itself: never taken relative to the images folder
    "file-url": (lambda d: "file:///" + str(d.parent / "x.png").lstrip("/"),
                 "is an absolute path"),
    "lookalike-dots": (lambda d: "\u2025/x.png", "file not found"),
    "a-folder": (lambda d: "sub/", "is a folder, not a file"),
}


@pytest.mark.parametrize("case", PATHS, ids=list(PATHS))
def test_no_file_name_reads_or_writes_outside_the_chosen_folders(case, escape_setup, tmp_path,
                                                                  new_project, helpers,
                                                                  monkeypatch):
    images = escape_setup
    project = new_project(images, tmp_path / "proj")
    make, words = PATHS[case]
    coco = _coco_for({"fine.png": (W, H), "placeholder": (W, H)})
    coco["images"][1]["file_name"] = make(images)
    out = tmp_path / "exports"
    out.mkdir()
    path = out / "coco.json"
    path.write_text(json.dumps(coco))
    reads: list[str] = []
    real = imageio._read_bytes
    monkeypatch.setattr(imageio, "_read_bytes", lambda p: reads.append(str(p)) or real(p))
    before = helpers.project_state(project)
    files = _tree(tmp_path)
    with pytest.raises(CocoFormatError) as info:
        import_coco(project, path, images_dir=images)
    message = str(info.value)
    assert "images[1] (id 2)" in message and words in message, message
    assert helpers.project_state(project) == before
    inside = str(images.resolve()) + os.sep
    for p in reads:  # only files named under the images folder were opened
        assert os.path.normpath(p).startswith(inside), p
    changed = {k for k, v in _tree(tmp_path).items() if files.get(k) != v}
    assert changed <= {"proj/project.db", "proj/project.db-wal", "proj/project.db-shm"}, changed


def test_hostile_names_inside_the_project_write_nothing_outside_the_export(
        project, helpers, tmp_path):
    """Category names and image paths are data, never paths the program writes to."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    coco["categories"] = [{"id": i, "name": n} for i, n in enumerate(
        ["../../evil", "/etc/passwd", "C:\\Windows\\x", "con", "a/b\\c", "\u202eexe.png"], 1)]
    coco["annotations"] = [{**coco["annotations"][0], "id": i, "category_id": i}
                           for i in range(1, 7)]
    (folder / "coco.json").write_text(json.dumps(coco))
    import_coco(project, folder / "coco.json")
    files = _tree(tmp_path)
    out = tmp_path / "out" / "export.json"
    out.parent.mkdir()
    export_coco(project, out)
    changed = {k for k, v in _tree(tmp_path).items() if files.get(k) != v}
    assert changed == {"out/export.json"}
    names = {c["name"] for c in json.loads(out.read_text())["categories"]}
    assert {"../../evil", "/etc/passwd", "C:\\Windows\\x"} <= names


def test_errors_leave_the_program_running(project, helpers, tmp_path):
    """After every kind of refusal above, the same open project still takes a valid import."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    bad = json.loads(json.dumps(coco))
    bad["annotations"][0]["segmentation"] = {"size": [H, W], "counts": [1]}
    (folder / "bad.json").write_text(json.dumps(bad))
    (folder / "good.json").write_text(json.dumps(coco))
    with contextlib.suppress(CocoFormatError):
        import_coco(project, folder / "bad.json")
    report = import_coco(project, folder / "good.json")
    assert report.annotations_added == 1 and project.integrity_check() == "ok"
