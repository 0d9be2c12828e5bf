"""Property-based fuzzing (hypothesis) of the COCO boundary.

- COCO import of a valid file mutated at random (keys dropped, values replaced by wrong types,
  NaN, infinities, negative or huge numbers, strings, paths, nested junk; records
  duplicated): it either imports exactly what the mutated file means, or raises
  CocoFormatError with a message, and then the project is unchanged. Never another exception.
- Segmentation conversion (`masks.from_coco_segmentation`) of valid, slightly broken and
  random polygons and RLEs: a ValueError, or a canonical Rle holding exactly the pixels
  pycocotools gives the input.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from mrcnn import masks
from mrcnn.coco.io import import_coco
from mrcnn.coco.validate import BACKGROUND_NAMES
from mrcnn.errors import CocoFormatError
from mrcnn.store.project import Project

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SIZES = {"a.png": (24, 32), "b.png": (18, 14)}  # (height, width)

NUMBERS = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, 0, -0.0, 0.5, 1.0,
                           2, 7, 10**6, 2**31, 2**63, 2**64 + 1, 10**30, 1e308, -(2**63)])
JUNK = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)
    | st.sampled_from(["", " ", "../a.png", "/etc/passwd", "C:\\a.png", "a.png", "b.png",
                       "a.png\x00", "_background_", "0", "NaN", "[]", "PPPPPPPP0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "size", "counts", "name", "x"]) | st.text(max_size=3), inner,
        max_size=3),
    max_leaves=6)


def _mask(h: int, w: int, box) -> np.ndarray:
    m = np.zeros((h, w), bool)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = True
    return m


def _runs(m: np.ndarray) -> list[int]:
    flat = m.flatten(order="F").astype(np.int8)
    counts = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]).tolist()
    return [0, *counts] if flat[0] else counts


def base_coco() -> dict:
    """A valid file: two images, two categories (and a background), the three encodings."""
    (ha, wa), (hb, wb) = SIZES["a.png"], SIZES["b.png"]
    ring = _mask(ha, wa, (4, 20, 6, 26)) & ~_mask(ha, wa, (8, 14, 10, 20))
    return {
        "info": {"description": "fuzz base"},
        "images": [{"id": 1, "file_name": "a.png", "width": wa, "height": ha},
                   {"id": 2, "file_name": "b.png", "width": wb, "height": hb}],
        "categories": [{"id": 0, "name": "_background_"}, {"id": 1, "name": "disc"},
                       {"id": 2, "name": "square", "supercategory": "shape"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 10.0,
             "bbox": [2, 3, 10, 12], "segmentation": [[2, 3, 12, 3, 12, 15, 2, 15]]},
            {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0,
             "segmentation": masks.encode(ring).to_coco()},
            {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [hb, wb], "counts": _runs(_mask(hb, wb, (1, 9, 2, 5)))}},
        ],
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A closed project over a.png, b.png and c.png holding earlier work on c.png."""
    root = tmp_path_factory.mktemp("fuzz")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {**SIZES, "c.png": (10, 10)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(images / name)
    prior = {"images": [{"id": 1, "file_name": "c.png"}],
             "categories": [{"id": 1, "name": "prior"}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                              "segmentation": masks.encode(_mask(10, 10, (2, 5, 2, 5))).to_coco()}]}
    (images / "prior.json").write_text(json.dumps(prior))
    with Project.create(root / "project", images) as p:
        import_coco(p, images / "prior.json")
    return root


def _locations(value, path=()):
    """Every (path to a container, key) in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path, k
            yield from _locations(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield path, i
            yield from _locations(v, (*path, i))


def _at(value, path):
    for k in path:
        value = value[k]
    return value


def mutate(data, coco: dict) -> list[str]:
    """Apply 1..3 random mutations drawn from `data`; return what was done, for messages."""
    done = []
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        locations = list(_locations(coco))
        if not locations:
            break
        path, key = data.draw(st.sampled_from(locations), label="where")
        container = _at(coco, path)
        action = data.draw(st.sampled_from(["delete", "junk", "number", "string", "wrap",
                                            "duplicate"]), label="action")
        old = container[key]
        if action == "delete":
            del container[key]
        elif action == "junk":
            container[key] = data.draw(JUNK, label="junk")
        elif action == "number":
            container[key] = data.draw(NUMBERS, label="number")
        elif action == "string":
            container[key] = str(old)
        elif action == "wrap":
            container[key] = [old] if data.draw(st.booleans()) else {"value": old}
        elif isinstance(old, list) and old:
            old.append(copy.deepcopy(old[data.draw(st.integers(0, len(old) - 1))]))
        else:
            container[key] = copy.deepcopy(old)
        done.append(f"{action} {'/'.join(map(str, (*path, key)))}")
    return done


def meaning(coco: dict, images_dir: Path, helpers) -> set:
    """What a file that was accepted means, worked out here with pycocotools alone:
    {(image file, category name, mask identity)} for every non-empty mask."""
    names = {c["id"]: c["name"].strip() for c in coco["categories"]}
    files = {im["id"]: os.path.normpath(im["file_name"].replace("\\", "/"))
             for im in coco["images"]}
    out = set()
    for a in coco.get("annotations", []):
        name = files[a["image_id"]]
        with Image.open(images_dir / name) as im:
            w, h = im.size
        m = helpers.rasterize(a["segmentation"], h, w)
        assert names[a["category_id"]] not in BACKGROUND_NAMES
        if m.any():
            out.add((Path(name).as_posix(), names[a["category_id"]], helpers.mask_key(m)))
    return out


@FUZZ
@given(data=st.data())
def test_mutated_coco_imports_exactly_or_is_refused_leaving_nothing(data, template, helpers):
    coco = base_coco()
    done = mutate(data, coco)
    work = template / f"project-{uuid.uuid4().hex}"  # beside the original: same images root
    path = template / "images" / f"{work.name}.json"
    try:
        shutil.copytree(template / "project", work)
        path.write_text(json.dumps(coco))  # NaN and infinities as JSON's NaN / Infinity
        with Project.open(work) as p:
            before = helpers.project_state(p)
            known = {i.id for i in p.instances()}
            try:
                import_coco(p, path)
            except CocoFormatError as exc:
                event("refused")
                assert str(exc).startswith(f"{path}: "), (done, str(exc))
                assert helpers.project_state(p) == before, done
            else:
                event("imported")
                images = {im.id: im.path for im in p.images()}
                cats = {c.id: c.name for c in p.categories()}
                new = [i for i in p.instances() if i.id not in known]
                got = {(images[i.image_id], cats[i.category_id], helpers.mask_key(i.rle.decode()))
                       for i in new}
                assert len(got) == len(new), done
                assert got == meaning(coco, template / "images", helpers), done
            assert p.integrity_check() == "ok"
    finally:
        shutil.rmtree(work)
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- segmentations alone
RLE_ALPHABET = "".join(chr(c) for c in range(48, 112))


@st.composite
def segmentations(draw):
    """(segmentation, height, width): valid encodings of a random mask, the same slightly
    broken, and plain junk."""
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    m = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(0, 3))):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        m[y0:draw(st.integers(y0, h)), x0:draw(st.integers(x0, w))] = True
    kind = draw(st.sampled_from(["compressed", "uncompressed", "polygon", "junk-string",
                                 "junk-counts", "junk-polygon", "junk"]))
    if kind == "compressed":
        seg = masks.encode(m).to_coco()
        counts = seg["counts"]
        if counts and draw(st.booleans()):  # one character changed, dropped or added
            i = draw(st.integers(0, len(counts) - 1))
            c = draw(st.sampled_from(RLE_ALPHABET + "\x00 ~é"))
            counts = draw(st.sampled_from([counts[:i] + c + counts[i + 1:],
                                           counts[:i] + counts[i + 1:],
                                           counts[:i] + c + counts[i:]]))
        seg["counts"] = counts
    elif kind == "uncompressed":
        counts = _runs(m)
        if draw(st.booleans()):
            i = draw(st.integers(0, len(counts) - 1))
            counts[i] = draw(st.integers(-3, h * w + 3) | NUMBERS)
        seg = {"size": draw(st.sampled_from([[h, w], [w, h], [h, w, 1], [h]])), "counts": counts}
    elif kind == "polygon":
        n = draw(st.integers(0, 6))
        coords = st.floats(-w, 2 * w + 2, allow_nan=False) | st.integers(-2, w + 2) | NUMBERS
        seg = [draw(st.lists(coords, min_size=2 * n, max_size=2 * n + 1))
               for _ in range(draw(st.integers(0, 3)))]
    elif kind == "junk-string":
        seg = {"size": [h, w], "counts": draw(st.text(RLE_ALPHABET, max_size=40))}
    elif kind == "junk-counts":
        seg = {"size": [h, w], "counts": draw(st.lists(st.integers(-5, h * w + 5), max_size=8))}
    elif kind == "junk-polygon":
        seg = draw(st.lists(st.lists(JUNK, max_size=8), max_size=3))
    else:
        seg = draw(JUNK)
    return seg, h, w


@settings(max_examples=300, deadline=None, database=None)
@given(case=segmentations())
def test_segmentation_conversion_is_exact_or_a_value_error(case, helpers):
    seg, h, w = case
    try:
        rle = masks.from_coco_segmentation(copy.deepcopy(seg), h, w)
    except ValueError as exc:
        event("refused")
        assert str(exc)
        return
    event("converted")
    assert isinstance(rle, masks.Rle) and (rle.height, rle.width) == (h, w)
    m = rle.decode()
    assert m.shape == (h, w)
    assert masks.encode(m) == rle  # canonical: one spelling per set of pixels
    assert rle.area == int(m.sum())
    assert np.array_equal(m, helpers.rasterize(seg, h, w))  # what pycocotools makes of it
