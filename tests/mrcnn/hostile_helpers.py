"""Helpers and the `project` fixture shared by the test_hostile_*.py files.

Nothing trusted: hostile images, COCO files, checkpoints and file names, through the paths a
user takes (scanning a folder, importing COCO, the command line, loading a model). Each gives
a clear message naming the file (or is taken correctly, for odd but valid images), the program
keeps running, and the project is unchanged.

Hostile inputs tried in the whole suite, each refused with a message naming the file or
record, the project unchanged (deterministic cases; "here" is the test_hostile_*.py
files: images in test_hostile_images.py, COCO files and file names in
test_hostile_coco.py, checkpoints in test_hostile_checkpoints.py):

    kind                 here   elsewhere                                                total
    images                 25   14 test_imageio_headers.py, 5 test_coco_import.py BAD       44
    COCO files             11   33 test_coco_import.py, 2 test_cli.py                       46
    YOLO-seg folders        -   24 coco/test_yolo.py HOSTILE                                24
    labelme files           -   34 coco/test_labelme.py BAD, 1 missing source               35
    mask PNG folders        -   12 coco/test_mask_png.py HOSTILE                            12
    Pascal VOC folders      -   11 coco/test_voc.py HOSTILE, 1 too many categories          12
    checkpoints            13   10 test_weights.py                                          23
    file names (paths)     24    3 test_coco_import.py BAD                                  27
    total refused          73  150                                                         223

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

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.cli.main import main
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder

W, H = 30, 20  # stored size of the odd images (width x height)


def _gradient(h: int = H, w: int = W) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                     np.full_like(x, 128)], -1).astype(np.uint8)


def _save(path: Path, im: Image.Image | np.ndarray, fmt: str | None = None, **kw) -> None:
    (im if isinstance(im, Image.Image) else Image.fromarray(im)).save(path, fmt, **kw)


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


def _one_line_error(args, capsys) -> str:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", (code, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


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
