"""labelme JSON: exports that labelme opens as our masks, pixel for pixel; files as labelme
writes them import as labelme shows them; bad files are refused clearly and change nothing.

labelme is not installed: its file format and its rasterisation are re-stated here from its
own loader and `shape_to_mask` (Pillow's ImageDraw on pixel centres, outline included), apart
from the code under test."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mrcnn import masks
from mrcnn.coco import labelme_export
from mrcnn.coco.formats import export_dataset, import_dataset
from mrcnn.coco.io import import_coco
from mrcnn.coco.labelme_export import export_labelme
from mrcnn.coco.labelme_import import read_labelme
from mrcnn.errors import DatasetFormatError
from mrcnn.io.images import file_sha256


# ---------------------------------------------------------------- labelme, re-stated
def _png_b64(arr: np.ndarray, mode: str | None = None) -> str:
    buf = io.BytesIO()
    image = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def labelme_draw(shape: dict, h: int, w: int) -> np.ndarray:
    """What labelme makes of one shape on an (h, w) image (shape_to_mask / shapes_to_label)."""
    if shape["shape_type"] == "mask":
        (x0, y0), _ = shape["points"]
        bitmap = np.array(Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
        out = np.zeros((h, w), bool)
        x0, y0 = round(x0), round(y0)
        out[y0:y0 + bitmap.shape[0], x0:x0 + bitmap.shape[1]] = bitmap
        return out
    canvas = Image.fromarray(np.zeros((h, w), np.uint8))
    draw = ImageDraw.Draw(canvas)
    xy = [tuple(p) for p in shape["points"]]
    if shape["shape_type"] == "circle":
        (cx, cy), (px, py) = xy
        d = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
        draw.ellipse([cx - d, cy - d, cx + d, cy + d], outline=1, fill=1)
    elif shape["shape_type"] == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    else:
        assert shape["shape_type"] == "polygon" and len(xy) > 2
        draw.polygon(xy=xy, outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def labelme_instances(data: dict) -> list[tuple[str, np.ndarray]]:
    """(label, mask) per object as labelme groups shapes: by (label, group_id), each shape
    with a null group_id alone."""
    h, w = data["imageHeight"], data["imageWidth"]
    groups: dict = {}
    for i, s in enumerate(data["shapes"]):
        key = (s["label"], s["group_id"] if s["group_id"] is not None else f"alone{i}")
        m = labelme_draw(s, h, w)
        groups[key] = groups[key] | m if key in groups else m
    return [(label, m) for (label, _), m in groups.items()]


TOP_KEYS = {"version": str, "flags": dict, "shapes": list, "imagePath": str,
            "imageData": type(None), "imageHeight": int, "imageWidth": int}
SHAPE_KEYS = {"label", "points", "group_id", "description", "shape_type", "flags", "mask"}


def check_labelme_file(path: Path) -> dict:
    """The checks labelme's LabelFile.load makes, and the rules of our export: keys and
    types, shape types, relative imagePath that finds the image, no embedded image, points
    inside the image, mask bitmaps that fit their box. Returns the file's data."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == set(TOP_KEYS), path
    for key, kind in TOP_KEYS.items():
        assert isinstance(data[key], kind) and not isinstance(data[key], bool), (path, key)
    assert re.fullmatch(r"5\.\d+\.\d+", data["version"])
    assert data["imageData"] is None
    image_path = data["imagePath"]
    assert "\\" not in image_path and not PurePosixPath(image_path).is_absolute()
    image = path.parent / image_path  # labelme: relative to the JSON file's folder
    assert image.is_file(), (path, image_path)
    with Image.open(image) as im:
        assert im.size == (data["imageWidth"], data["imageHeight"])
    h, w = data["imageHeight"], data["imageWidth"]
    labels_of_group: dict[int, str] = {}
    for s in data["shapes"]:
        assert set(s) == SHAPE_KEYS
        assert isinstance(s["label"], str) and s["label"]
        assert s["description"] == "" and s["flags"] == {}
        assert s["group_id"] is None or (isinstance(s["group_id"], int)
                                         and not isinstance(s["group_id"], bool))
        if s["group_id"] is not None:
            assert labels_of_group.setdefault(s["group_id"], s["label"]) == s["label"]
        pts = s["points"]
        assert isinstance(pts, list) and pts
        for p in pts:
            assert isinstance(p, list) and len(p) == 2
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
            assert 0 <= p[0] <= w - 1 and 0 <= p[1] <= h - 1
        assert s["shape_type"] in ("polygon", "mask")
        if s["shape_type"] == "polygon":
            assert len(pts) > 2 and s["mask"] is None
        else:
            (x0, y0), (x1, y1) = pts
            assert all(float(v).is_integer() for v in (x0, y0, x1, y1))
            assert isinstance(s["mask"], str)
            with Image.open(io.BytesIO(base64.b64decode(s["mask"], validate=True))) as bm:
                assert bm.format == "PNG"
                arr = np.array(bm)
            assert arr.shape == (y1 - y0 + 1, x1 - x0 + 1)
            assert set(np.unique(arr)) <= {0, 1}
    return data


# ---------------------------------------------------------------- a project to export
def _add_synthetic(project, images_dir: Path) -> None:
    """An image with a ring (a hole), a two-part instance, a one-pixel-wide line, a single
    pixel, a diagonal band and a box touching the image's corner."""
    h, w = 60, 80
    yy, xx = np.mgrid[:h, :w]
    rgb = np.stack([(xx * 3) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
    path = images_dir / "synthetic.png"
    Image.fromarray(rgb).save(path)
    image = project.add_image(path, w, h, file_sha256(path))
    d2 = (yy - 20) ** 2 + (xx - 20) ** 2
    shapes = {
        "ring": (d2 <= 12 ** 2) & (d2 > 5 ** 2),
        "blob": ((yy - 45) ** 2 + (xx - 15) ** 2 <= 36) | ((yy >= 40) & (yy < 55)
                                                          & (xx >= 50) & (xx < 70)),
        "line": (yy == 5) & (xx >= 40) & (xx < 75),
        "dot": (yy == 30) & (xx == 60),
        "band": (np.abs(xx - yy - 20) <= 2) & (yy >= 10) & (yy < 35),
        "corner": (yy < 4) & (xx < 6),
    }
    for name, mask in shapes.items():
        cat = project.add_category(name)
        project.add_instance(image.id, cat.id, masks.encode(mask), source="manual",
                             state="accepted")
    project.set_image_status(image.id, "reviewed")


@pytest.fixture
def source(make_dataset, new_project):
    """A project holding the sample photos' masks and the synthetic image, and the dataset."""
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    _add_synthetic(project, ds.images_dir)
    return project, ds


# ---------------------------------------------------------------- round trip
def test_export_then_import_gives_every_mask_pixel_for_pixel(source, new_project, helpers,
                                                             tmp_path):
    project, ds = source
    out = tmp_path / "exports" / "labelme"
    out.parent.mkdir()
    report = export_dataset(project, out, "labelme")
    n = len(project.instances(state="accepted"))
    assert (report.format, report.images, report.annotations) == ("labelme", 5, n)
    # Holes need mask shapes (the two rings, the VOC masks with holes); thin or one-pixel
    # parts too; everything else is polygons.
    assert 2 <= report.rle_fallbacks < n
    assert any("mask shapes" in note for note in report.notes)
    assert report.losses == {}

    project2 = new_project(ds.images_dir)  # the same images folder
    imported = import_dataset(project2, out, "labelme", images_dir=ds.images_dir)
    assert (imported.format, imported.annotations_added, imported.images_added) == (
        "labelme", n, 5)
    assert imported.skipped == {}
    assert helpers.project_masks(project2) == helpers.project_masks(project)
    assert {im.path for im in project2.images()} == {im.path for im in project.images()}

    # What labelme itself would draw from the files (re-stated above, not our reader) is
    # every mask too.
    drawn: Counter = Counter()
    shape_types: Counter = Counter()
    for file in sorted(out.rglob("*.json")):
        data = check_labelme_file(file)
        image = (file.parent / data["imagePath"]).resolve()
        name = image.relative_to(ds.images_dir.resolve()).as_posix()
        drawn.update((name, label, helpers.mask_key(m)) for label, m in labelme_instances(data))
        shape_types.update(s["shape_type"] for s in data["shapes"])
    assert drawn == helpers.project_masks(project)
    assert shape_types["mask"] == report.rle_fallbacks
    assert shape_types["polygon"] > n - report.rle_fallbacks  # multi-part: several each


def test_written_files_follow_labelme_rules(source, tmp_path):
    project, ds = source
    out = tmp_path / "lm"
    export_labelme(project, out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    # One file per image, named as the image, in the image's own sub-folder.
    assert files == ["astronaut.json", "camera.json", "chelsea.json", "sub/dir/voc.json",
                     "synthetic.json"]
    for name in files:
        check_labelme_file(out / name)
    voc = json.loads((out / "sub/dir/voc.json").read_text(encoding="utf-8"))
    assert voc["imagePath"] == os.path.relpath(ds.images_dir / "sub/dir/voc.jpg",
                                               out / "sub/dir").replace(os.sep, "/")
    assert json.loads((out / "camera.json").read_text(encoding="utf-8"))["shapes"] == []
    synthetic = json.loads((out / "synthetic.json").read_text(encoding="utf-8"))
    by_label: dict[str, list[dict]] = {}
    for s in synthetic["shapes"]:
        by_label.setdefault(s["label"], []).append(s)
    assert [s["shape_type"] for s in by_label["ring"]] == ["mask"]  # a hole
    blob = by_label["blob"]  # two parts: two polygons, one group
    assert [s["shape_type"] for s in blob] == ["polygon", "polygon"]
    assert blob[0]["group_id"] == blob[1]["group_id"] is not None
    assert [s["shape_type"] for s in by_label["dot"]] == ["mask"]  # no polygon of 1 pixel
    corner = by_label["corner"]  # through pixel centres, corners only
    assert corner[0]["shape_type"] == "polygon" and corner[0]["group_id"] is None
    assert sorted(map(tuple, corner[0]["points"])) == [(0.0, 0.0), (0.0, 3.0), (5.0, 0.0),
                                                        (5.0, 3.0)]
    # Our pixel-corner polygons would grow under labelme's drawing; the written ones do not.
    box = np.zeros((60, 80), bool)
    box[:4, :6] = True
    corners = np.array(masks.exact_polygons(box)[0]).reshape(-1, 2)
    assert labelme_draw({"shape_type": "polygon", "points": corners.tolist()}, 60, 80).sum() > 24
    assert np.array_equal(labelme_draw(corner[0], 60, 80), box)


def test_image_paths_are_relative_from_the_final_folder_and_absolute_only_without_one(
        source, new_project, helpers, tmp_path, monkeypatch):
    project, ds = source
    out = tmp_path / "deep" / "er" / "labelme"
    out.parent.mkdir(parents=True)
    export_labelme(project, out)
    for file in out.rglob("*.json"):
        data = json.loads(file.read_text(encoding="utf-8"))
        assert not data["imagePath"].startswith("/")
        assert ".tmp" not in data["imagePath"]  # not from the temporary folder
        assert (file.parent / data["imagePath"]).is_file()

    # No relative path (another drive on Windows): absolute, counted, still importable.
    def no_relpath(*_args, **_kwargs):
        raise ValueError("path is on mount 'C:', start on mount 'D:'")

    monkeypatch.setattr(labelme_export.os.path, "relpath", no_relpath)
    report = export_labelme(project, out)  # replaces the earlier export whole
    monkeypatch.undo()
    assert report.losses == {"absolute imagePaths": 5}
    assert any("5 imagePaths are absolute" in note for note in report.notes)
    data = json.loads((out / "chelsea.json").read_text(encoding="utf-8"))
    assert Path(data["imagePath"]) == (ds.images_dir / "chelsea.jpg").resolve()
    project2 = new_project(ds.images_dir)
    import_dataset(project2, out, "labelme", images_dir=ds.images_dir)
    assert helpers.project_masks(project2) == helpers.project_masks(project)


def test_images_outside_the_labelme_folder_are_found_in_the_projects_images(
        source, new_project, helpers, tmp_path):
    project, ds = source
    out = tmp_path / "lm"
    export_labelme(project, out, reviewed_only=True)
    assert not (out / "camera.json").exists()  # never reviewed
    project2 = new_project(ds.images_dir)
    before = helpers.project_state(project2)
    with pytest.raises(DatasetFormatError, match="outside the images folder"):
        read_labelme(out)  # the reader alone: the labelme folder itself
    with pytest.raises(DatasetFormatError, match="outside the images folder"):
        import_dataset(project2, out, "labelme", images_dir=out)
    assert helpers.project_state(project2) == before
    # an import looks in the project's images folder unless told another
    report = import_dataset(project2, out, "labelme")
    reviewed = {im.id for im in project.images("reviewed")}
    assert report.annotations_added == sum(i.image_id in reviewed
                                           for i in project.instances(state="accepted"))
    assert helpers.project_masks(project2) == helpers.project_masks(project)


# ---------------------------------------------------------------- files as labelme writes them
def _labelme_folder(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """lm/img/a.png (50 x 40) and lm/ann/a.json as labelme 5 writes it (Windows path,
    embedded image, rectangle, circle, polygons in a group, a point, a line, a mask)."""
    root = tmp_path / "lm"
    (root / "img").mkdir(parents=True)
    (root / "ann").mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    image = root / "img" / "a.png"
    Image.fromarray(rgb).save(image)
    bitmap = np.zeros((6, 8), np.uint8)
    bitmap[1:5, 2:7] = 1
    bitmap[2:3, 3:5] = 0  # a hole
    shapes = [
        {"label": "box", "points": [[14.0, 20.0], [5.0, 6.0]], "shape_type": "rectangle"},
        {"label": "disk", "points": [[30.0, 20.0], [33.0, 24.0]], "shape_type": "circle"},
        {"label": "box", "points": [[20, 30], [25, 30], [25, 35], [20, 35]], "group_id": 1,
         "shape_type": "polygon"},
        {"label": "box", "points": [[2, 30], [6, 30], [6, 34], [2, 34]], "group_id": 1,
         "shape_type": "polygon"},
        {"label": "disk", "points": [[40, 2], [44, 2], [44, 6], [40, 6]], "group_id": 1,
         "shape_type": "polygon"},
        {"label": "tip", "points": [[10.0, 10.0]], "shape_type": "point"},
        {"label": "edge", "points": [[1, 1], [9, 1], [9, 5]], "shape_type": "linestrip"},
        {"label": "_background_", "points": [[0, 0], [3, 0], [3, 3]], "shape_type": "polygon"},
        {"label": "blot", "points": [[40.0, 30.0], [47.0, 35.0]], "shape_type": "mask",
         "mask": _png_b64(bitmap)},
        {"label": "tri", "points": [[10, 25], [16, 25], [13, 28]]},  # labelme 4: no type
    ]
    for s in shapes:
        s.setdefault("group_id", None)
        s.setdefault("description", "")
        s.setdefault("flags", {})
        s.setdefault("mask", None)
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "..\\img\\a.png",
           "imageData": base64.b64encode(image.read_bytes()).decode("ascii"),
           "imageHeight": 40, "imageWidth": 50}
    json_path = root / "ann" / "a.json"
    json_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return root, json_path, bitmap


def test_files_as_labelme_writes_them_import_as_labelme_shows_them(tmp_path, new_project,
                                                                    helpers):
    root, json_path, bitmap = _labelme_folder(tmp_path)
    h, w = 40, 50
    yy, xx = np.mgrid[:h, :w]
    rect = np.zeros((h, w), bool)
    rect[6:21, 5:15] = True  # inclusive corners, given bottom-right first
    group = np.zeros((h, w), bool)
    group[30:36, 20:26] = True
    group[30:35, 2:7] = True
    square = np.zeros((h, w), bool)
    square[2:7, 40:45] = True
    blot = np.zeros((h, w), bool)
    blot[30:36, 40:48] = bitmap.astype(bool)
    tri = labelme_draw({"shape_type": "polygon", "points": [[10, 25], [16, 25], [13, 28]]},
                       h, w)
    circle = labelme_draw({"shape_type": "circle", "points": [[30, 20], [33, 24]]}, h, w)
    d2 = (yy - 20) ** 2 + (xx - 30) ** 2
    assert (d2 <= 25).sum() <= circle.sum() and not (circle & (d2 > 36)).any()  # radius 5

    data = read_labelme(root)
    assert data.images == ["img/a.png"]
    assert data.categories == ["box", "disk", "blot", "tri"]
    assert data.skipped == {"point shapes": 1, "linestrip shapes": 1, "background shapes": 1}
    got = [(i.category, helpers.mask_key(i.rle.decode())) for i in data.instances]
    assert got == [("box", helpers.mask_key(rect)), ("disk", helpers.mask_key(circle)),
                   ("box", helpers.mask_key(group)), ("disk", helpers.mask_key(square)),
                   ("blot", helpers.mask_key(blot)), ("tri", helpers.mask_key(tri))]
    assert "shapes[2, 3] (group_id 1)" in data.instances[2].where

    # One file given alone reads the same; into a project over the images folder.
    project = new_project(root / "img")
    report = import_dataset(project, json_path, "labelme", images_dir=root / "img")
    assert (report.annotations_added, report.images_added) == (6, 1)
    assert report.skipped == data.skipped
    assert helpers.project_masks(project) == Counter(
        ("a.png", c, k) for c, k in got)


def test_mask_shapes_are_placed_and_clipped_as_labelme_does(tmp_path):
    root = tmp_path / "lm"
    root.mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "x.png")
    ones = np.ones((4, 4), np.uint8)
    doc = {"shapes": [
        # fractional corners (moved in labelme): placed at the rounded top-left
        {"label": "a", "points": [[2.4, 1.6], [5.4, 4.6]], "shape_type": "mask",
         "mask": _png_b64(ones)},
        # past the image's corner: clipped
        {"label": "b", "points": [[10, 8], [13, 11]], "shape_type": "mask",
         "mask": _png_b64(ones * 255, "L")},
    ], "imagePath": "x.png", "imageData": None}
    (root / "x.json").write_text(json.dumps(doc), encoding="utf-8")
    a, b = (i.rle.decode() for i in read_labelme(root).instances)
    want_a = np.zeros((10, 12), bool)
    want_a[2:6, 2:6] = True
    want_b = np.zeros((10, 12), bool)
    want_b[8:, 10:] = True
    assert np.array_equal(a, want_a) and np.array_equal(b, want_b)


# ---------------------------------------------------------------- hostile files
def _rgb_png() -> str:
    return _png_b64(np.zeros((3, 3, 3), np.uint8))


def _set_shape(**fields):
    def change(doc, root):
        doc["shapes"][0].update(fields)
    return change


def _set(**fields):
    def change(doc, root):
        doc.update(fields)
    return change


def _text(text):
    def change(doc, root):
        return text
    return change


def _drop(key, *, shape=False):
    def change(doc, root):
        del (doc["shapes"][0] if shape else doc)[key]
    return change


def _second_file_bad(doc, root):
    bad = json.loads(json.dumps(doc))
    bad["shapes"][0]["points"] = [[1, 1], [2, 2]]
    (root / "z_second.json").write_text(json.dumps(bad), encoding="utf-8")


#: case: (change to the good file, what the message says)
BAD = {
    "not JSON": (_text("{\"shapes\": [oops"), r"not a JSON file"),
    "not UTF-8": (_text(b"\xff\xfe{\"shapes\": []}"), r"not a JSON file \(not UTF-8"),
    "top level a list": (_text("[]"), r"top level must be an object"),
    "no shapes": (_drop("shapes"), r"missing key 'shapes'"),
    "no imagePath": (_drop("imagePath"), r"missing key 'imagePath'"),
    "shapes not a list": (_set(shapes={"a": 1}), r"'shapes' must be a list"),
    "shape not an object": (_set(shapes=[7]), r"shapes\[0\]: a shape must be an object"),
    "no label": (_drop("label", shape=True), r"shapes\[0\]: missing key 'label'"),
    "empty label": (_set_shape(label="  "), r"shapes\[0\]: empty label"),
    "label not text": (_set_shape(label=3), r"shapes\[0\]: 'label' must be a string"),
    "points not pairs": (_set_shape(points=[[1, 2], [3], [4, 5]]),
                         r"shapes\[0\]: points\[1\] is \[3\]"),
    "points not numbers": (_set_shape(points=[["1", "2"], [3, 4], [5, 6]]),
                           r"shapes\[0\]: points\[0\]"),
    "points a dict": (_set_shape(points={"x": 1}), r"shapes\[0\]: 'points' must be"),
    "boolean point": (_set_shape(points=[[True, 2], [3, 4], [5, 6]]), r"shapes\[0\]: points\[0\]"),
    "NaN point": (_set_shape(points=[[float("nan"), 2], [3, 4], [5, 6]]),
                  r"shapes\[0\]: points\[0\] is not a finite point"),
    "point far away": (_set_shape(points=[[1e12, 2], [3, 4], [5, 6]]),
                       r"shapes\[0\]: point .* lies far outside the 12x10 image"),
    "polygon of 2 points": (_set_shape(points=[[1, 1], [4, 4]]),
                            r"shapes\[0\]: a polygon needs at least 3 points, got 2"),
    "rectangle of 3 points": (_set_shape(shape_type="rectangle"),
                              r"shapes\[0\]: a rectangle takes 2 points, got 3"),
    "group_id text": (_set_shape(group_id="1"), r"shapes\[0\]: 'group_id' must be an integer"),
    "shape_type a number": (_set_shape(shape_type=4), r"shapes\[0\]: 'shape_type' must be"),
    "mask without bitmap": (_set_shape(shape_type="mask", points=[[1, 1], [3, 3]]),
                            r"shapes\[0\]: a mask shape needs its bitmap"),
    "bitmap not base64": (_set_shape(shape_type="mask", points=[[1, 1], [3, 3]], mask="**"),
                          r"shapes\[0\]: the mask shape's bitmap is not base64"),
    "bitmap not an image": (_set_shape(shape_type="mask", points=[[1, 1], [3, 3]],
                                       mask=base64.b64encode(b"hello").decode()),
                            r"shapes\[0\]: the mask shape's bitmap does not decode"),
    "bitmap not fitting": (_set_shape(shape_type="mask", points=[[1, 1], [5, 5]],
                                      mask=_png_b64(np.ones((3, 3), np.uint8))),
                           r"shapes\[0\]: the mask shape's bitmap is 3x3 but its points "
                           r"give a 5x5 box"),
    "bitmap in colour": (_set_shape(shape_type="mask", points=[[1, 1], [3, 3]],
                                    mask=_rgb_png()),
                         r"shapes\[0\]: the mask shape's bitmap must have one channel"),
    "mask corners swapped": (_set_shape(shape_type="mask", points=[[3, 3], [1, 1]],
                                        mask=_png_b64(np.ones((3, 3), np.uint8))),
                             r"shapes\[0\]: a mask shape's points must be"),
    "imagePath leaves": (_set(imagePath="../../elsewhere/x.png"),
                         r"imagePath '\.\./\.\./elsewhere/x\.png': the image lies outside"),
    "imagePath absolute": (_set(imagePath="/etc/hosts"), r"lies outside the images folder"),
    "image missing": (_set(imagePath="gone.png"), r"image file .*gone\.png does not exist$"),
    "image only embedded": (_set(imagePath="gone.png", imageData=_rgb_png()),
                            r"only embedded \(imageData\)"),
    "image not an image": (lambda d, r: (r / "x.png").write_bytes(b"not a png") and None,
                           r"imagePath 'x\.png'"),
    "size differs": (_set(imageWidth=99), r"gives size 99x10 .* but the image is 12x10"),
    "size not a number": (_set(imageHeight="10"), r"'imageHeight' must be a positive integer"),
    "second file bad": (_second_file_bad, r"z_second\.json: shapes\[0\]: a polygon needs"),
}


@pytest.fixture
def seeded(tmp_path, new_project):
    """A project with one labelled image, and a folder with a good labelme file for x.png."""
    root = tmp_path / "bad"
    root.mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "x.png")
    project = new_project(root)
    image = project.add_image(root / "x.png", 12, 10, file_sha256(root / "x.png"))
    m = np.zeros((10, 12), bool)
    m[2:4, 2:4] = True
    project.add_instance(image.id, project.add_category("old").id, masks.encode(m),
                         source="manual", state="accepted")
    doc = {"version": "5.5.0", "flags": {}, "shapes": [
        {"label": "new", "points": [[1, 1], [6, 1], [6, 5]], "group_id": None,
         "description": "", "shape_type": "polygon", "flags": {}, "mask": None}],
        "imagePath": "x.png", "imageData": None, "imageHeight": 10, "imageWidth": 12}
    return project, root, doc


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_file_is_refused_clearly_and_changes_nothing(case, seeded, helpers):
    project, root, doc = seeded
    change, message = BAD[case]
    text = change(doc, root)
    target = root / "x.json"
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:  # the changed text, or the changed document
        target.write_text(text if isinstance(text, str) else json.dumps(doc), encoding="utf-8")
    before = helpers.project_state(project)
    with pytest.raises(DatasetFormatError) as err:
        import_dataset(project, root, "labelme")
    named = root / "z_second.json" if case == "second file bad" else target
    assert str(named) in str(err.value)
    assert re.search(message, str(err.value)), str(err.value)
    assert helpers.project_state(project) == before


def test_the_unmodified_file_imports(seeded, helpers):
    project, root, doc = seeded
    (root / "x.json").write_text(json.dumps(doc), encoding="utf-8")
    report = import_dataset(project, root, "labelme")
    assert (report.annotations_added, report.images_known) == (1, 1)
    assert {c.name for c in project.categories()} == {"old", "new"}


def test_a_missing_or_empty_source_is_refused(tmp_path):
    with pytest.raises(DatasetFormatError, match="does not exist"):
        read_labelme(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="no labelme .json files"):
        read_labelme(tmp_path / "empty")


def test_images_with_one_name_before_the_extension_get_files_of_their_own(
        tmp_path, new_project, helpers):
    images = tmp_path / "same"
    images.mkdir()
    project = new_project(images)
    cat = project.add_category("thing")
    for i, ext in enumerate(("png", "jpg", "PNG")):
        path = images / f"a.{ext}"
        rgb = np.full((8, 9, 3), 40 * i, np.uint8)
        Image.fromarray(rgb).save(path, "PNG" if ext.lower() == "png" else "JPEG")
        image = project.add_image(path, 9, 8, file_sha256(path))
        m = np.zeros((8, 9), bool)
        m[i:i + 3, 2:6] = True
        project.add_instance(image.id, cat.id, masks.encode(m), source="manual",
                             state="accepted")
    out = tmp_path / "lm"
    report = export_labelme(project, out)
    names = sorted(p.name for p in out.glob("*.json"))
    assert len(names) == 3 and "a.json" in names
    assert all(re.fullmatch(r"a(_[0-9a-f]{8})?\.json", n) for n in names)
    assert any("2 files named with the image's hash" in note for note in report.notes)
    project2 = new_project(images)
    import_dataset(project2, out, "labelme", images_dir=images)
    assert helpers.project_masks(project2) == helpers.project_masks(project)
