"""YOLO segmentation (Ultralytics) export and import: the files Ultralytics reads, what a round
trip keeps and loses, and hostile folders refused naming the file and line."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from mrcnn import masks
from mrcnn.coco import yolo
from mrcnn.coco.dataset import EXPORT_MARKER
from mrcnn.coco.formats import export_dataset, import_dataset
from mrcnn.coco.io import import_coco
from mrcnn.errors import DatasetFormatError

#: Ultralytics' image suffixes (ultralytics/data/utils.py, IMG_FORMATS).
IMG_FORMATS = {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
EIGHT = np.ones((3, 3), bool)


@pytest.fixture
def imported(make_dataset, new_project):
    """A project holding the sample photos' annotations (reviewed; camera.png has none and
    stays new), and the dataset."""
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    return project, ds


def _parts(mask: np.ndarray) -> list[np.ndarray]:
    """What one YOLO line per part holds: each 8-connected part, its holes filled."""
    labels, n = ndimage.label(mask, structure=EIGHT)
    return [ndimage.binary_fill_holes(labels == i) for i in range(1, n + 1)]


def _has_hole(mask: np.ndarray) -> bool:
    return bool((ndimage.binary_fill_holes(mask) != mask).any())


# ---------------------------------------------------------------- what Ultralytics reads
def ultralytics_view(data_yaml: Path) -> tuple[dict[int, str], dict[str, dict]]:
    """The data set as Ultralytics' documented rules read it: data.yaml (path, train, val,
    names, nc), list files whose './' entries are relative to the list file, each image's
    label found by replacing the last /images/ with /labels/ and the extension with .txt,
    one object a line: an integer class in names, then x y pairs normalised to [0, 1].

    Returns (names, {split: {image path: [(class, points (n, 2))]}})."""
    # PyYAML, as Ultralytics loads the file
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    root = Path(data["path"])
    assert root.is_absolute() and root == data_yaml.parent
    names = data["names"]
    assert isinstance(names, dict) and list(names) == list(range(len(names)))
    assert data["nc"] == len(names)
    splits: dict[str, dict] = {}
    for split in ("train", "val"):
        list_file = root / data[split]
        parent = str(list_file.parent) + os.sep
        images = {}
        for entry in list_file.read_text(encoding="utf-8").strip().splitlines():
            image = entry.replace("./", parent) if entry.startswith("./") else entry
            assert Path(image).suffix[1:].lower() in IMG_FORMATS and Path(image).is_file()
            sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
            label = Path(sb.join(image.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")
            objects = []
            for line in label.read_text(encoding="utf-8").strip().splitlines():
                row = line.split()
                assert row[0].isdigit() and int(row[0]) in names, line
                xy = np.array(row[1:], dtype=float).reshape(-1, 2)
                assert len(xy) >= 3 and (xy >= 0).all() and (xy <= 1).all(), line
                objects.append((int(row[0]), xy))
            images[image] = objects
        splits[split] = images
    return names, splits


def test_export_writes_what_ultralytics_reads(imported, tmp_path):
    project, ds = imported
    out = tmp_path / "yolo"
    report = yolo.export_yolo(project, out)

    names, splits = ultralytics_view(out / "data.yaml")
    assert list(names.values()) == [c.name for c in project.categories()]
    records = {im.path: im for im in project.images()}
    seen = {}
    for split, images in splits.items():
        for image, objects in images.items():
            name = Path(image).relative_to(out / "images").as_posix()
            assert records[name].split == split
            assert os.path.samefile(image, project.image_path(records[name]))  # hard link
            seen[name] = objects
    # camera.png is new and has no instances: an empty label would call it a negative
    assert set(seen) == {"sub/dir/voc.jpg", "astronaut.png", "chelsea.jpg"}
    assert any("1 unreviewed images with no accepted instances were left out" in n
               for n in report.notes)
    # one line per part of every instance, scaled back to pixels it is the traced outline
    expected = Counter()
    for file_name, category, mask in ds.expected:
        for part in _parts(mask):
            expected[(file_name, category, int(part.sum()))] += 1
    lines = Counter()
    for name, objects in seen.items():
        h, w = (records[name].height, records[name].width)
        for index, xy in objects:
            area = masks.polygons_to_mask([(xy * [w, h]).reshape(-1).tolist()], h, w).sum()
            lines[(name, names[index], int(area))] += 1
    assert lines == expected
    assert sum(expected.values()) == 55
    assert report.annotations == len(ds.expected) == 22  # instances, as every format counts
    assert "22 instances written as 55 lines (one polygon each)" in report.notes
    assert (report.format, report.images, report.categories) == ("yolo-seg", 3, 7)
    multi = sum(len(_parts(m)) > 1 for _f, _c, m in ds.expected)
    holes = sum(_has_hole(m) for _f, _c, m in ds.expected)
    assert report.losses == {yolo.SPLIT_PARTS: multi, yolo.HOLES_LOST: holes,
                             yolo.UNREVIEWED: 0}
    assert (multi, holes) == (13, 8)
    assert any(f"{multi} instances have several parts" in n for n in report.notes)
    assert any(f"{holes} instances have holes" in n for n in report.notes)
    assert (out / EXPORT_MARKER).is_file()
    cat = [c.name for c in project.categories()].index("cat")  # the mask is [40:260, 120:380]
    assert (out / "labels" / "chelsea.txt").read_text() == (
        f"{cat} 0.266075 0.133333 0.266075 0.866667 0.842572 0.866667 0.842572 0.133333\n")


def test_reviewed_images_without_instances_are_negatives_and_a_new_export_replaces_the_old(
        imported, tmp_path):
    project, _ds = imported
    out = tmp_path / "yolo"
    yolo.export_yolo(project, out)
    camera = next(im for im in project.images() if im.path == "camera.png")
    project.set_image_status(camera.id, "reviewed")
    report = yolo.export_yolo(project, out)
    assert (out / "labels" / "camera.txt").read_text() == ""  # a true negative
    assert report.images == 4 and not any("left out" in n for n in report.notes)
    _names, splits = ultralytics_view(out / "data.yaml")
    assert str(out / "images" / "camera.png") in splits[camera.split]

    voc = next(im for im in project.images() if im.path == "sub/dir/voc.jpg")
    project.set_image_status(voc.id, "in_review")
    report = yolo.export_yolo(project, out, reviewed_only=True)
    assert report.images == 3 and not (out / "images" / "sub").exists()
    report = export_dataset(project, out, "yolo-seg")  # through the formats table
    assert report.images == 4 and report.losses[yolo.UNREVIEWED] == 1
    assert any("1 exported images are not reviewed" in n for n in report.notes)


def test_a_failed_export_leaves_the_earlier_one(imported, tmp_path):
    project, ds = imported
    out = tmp_path / "yolo"
    yolo.export_yolo(project, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    ds.file("chelsea").unlink()
    with pytest.raises(DatasetFormatError, match="chelsea.jpg"):
        yolo.export_yolo(project, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".yolo")]  # no debris
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(DatasetFormatError, match="not empty"):
        yolo.export_yolo(project, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------- round trip
def test_round_trip_keeps_single_part_masks_exactly_and_states_what_it_loses(
        imported, new_project, helpers, tmp_path):
    """In: 22 instances on 3 images. Out: 55 lines (13 instances have several parts, 8 have
    holes). Back: 55 instances, every one exactly its part's traced outline filled
    (pixel-corner polygons rasterise exactly in pycocotools, and 6 decimals move a corner by
    at most 0.0025 px on these images, far below the 0.1 px that would move a pixel)."""
    project, ds = imported
    out = tmp_path / "yolo"
    export = yolo.export_yolo(project, out)
    project2 = new_project(out / "images")
    report = import_dataset(project2, out, "yolo-seg")

    expected = Counter((f, c, helpers.mask_key(part)) for f, c, m in ds.expected
                       for part in _parts(m))
    assert helpers.project_masks(project2) == expected
    assert report.format == "yolo-seg"
    assert (report.annotations_added, export.annotations) == (55, 22)
    assert (report.images_added, report.categories_added) == (3, 7)
    single = [(f, c, m) for f, c, m in ds.expected
              if len(_parts(m)) == 1 and not _has_hole(m)]
    back = helpers.project_masks(project2)
    exact = sum(back[(f, c, helpers.mask_key(m))] > 0 for f, c, m in single)
    assert (len(ds.expected), len(single), exact) == (22, 5, 5)
    assert {im.path: im.status for im in project2.images()} == {
        "sub/dir/voc.jpg": "reviewed", "astronaut.png": "reviewed", "chelsea.jpg": "reviewed"}

    # the ring and the two blobs of the synthetic astronaut masks
    _data, _ext, anns = helpers.photo("astronaut")
    ring, blobs = (m for _c, m in anns)
    on_astronaut = Counter((c, k) for f, c, k in back.elements() if f == "astronaut.png")
    assert on_astronaut == Counter([
        ("ring", helpers.mask_key(ndimage.binary_fill_holes(ring))),
        *(("blob", helpers.mask_key(part)) for part in _parts(blobs))])
    assert sum(on_astronaut.values()) == 3

    again = import_dataset(project2, out, "yolo-seg")  # nothing twice
    assert (again.annotations_added, again.duplicates_skipped) == (0, 55)


def test_import_with_images_dir_finds_the_original_images(imported, new_project, helpers,
                                                         tmp_path):
    project, ds = imported
    out = tmp_path / "yolo"
    yolo.export_yolo(project, out)
    fresh = new_project(ds.images_dir)
    report = import_dataset(fresh, out, "yolo-seg", images_dir=ds.images_dir)
    # camera.png is in the folder but has no label file: left out, and said so
    assert report.images_added == 3 and report.annotations_added == 55
    assert report.skipped == {yolo.NO_LABEL: 1}
    assert "camera.png" not in {im.path for im in fresh.images()}
    assert sum(helpers.project_masks(fresh).values()) == 55


def test_names_that_share_a_label_file_are_renamed_and_come_back(new_project, helpers,
                                                                 tmp_path):
    """a.jpg and a.png would both take labels/a.txt; images/b.png (a folder named images
    inside the images root) takes images/labels/b.txt by the Ultralytics rule."""
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "a.png", "images/b.png", "a~2.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), np.uint8)).save(root / name)
    project = new_project(root)
    cat = project.add_category("thing")
    for k, name in enumerate(("a.jpg", "a.png", "images/b.png", "a~2.png")):
        im = project.add_image(root / name, 30, 20, f"{k:064d}")
        m = np.zeros((20, 30), bool)
        m[2 + k:10 + k, 3 + 2 * k:12 + 3 * k] = True
        project.add_instance(im.id, cat.id, masks.encode(m), source="manual", state="accepted")
        project.set_image_status(im.id, "reviewed")
    out = tmp_path / "yolo"
    report = yolo.export_yolo(project, out)
    assert sorted(p.relative_to(out / "images").as_posix()
                  for p in (out / "images").rglob("*.*g")) == [
        "a.jpg", "a~2.png", "a~3.png", "images/b.png"]
    assert (out / "images" / "labels" / "b.txt").is_file()
    assert any("'a.png' is exported as 'a~3.png': its label file would have been "
               "labels/a.txt" in n for n in report.notes)
    _names, splits = ultralytics_view(out / "data.yaml")
    assert sum(len(images) for images in splits.values()) == 4
    project2 = new_project(out / "images")
    import_dataset(project2, out, "yolo-seg")
    renamed = {"a.png": "a~3.png"}
    assert helpers.project_masks(project2) == Counter(
        {(renamed.get(p, p), c, k): n for (p, c, k), n in helpers.project_masks(project).items()})


@st.composite
def _masks(draw) -> np.ndarray:
    """Noise (many parts, holes, pixels touching at a corner) or a few boxes, on images up to
    4999 px wide so that 6 decimals are put to the test."""
    h = draw(st.integers(1, 24))
    w = draw(st.sampled_from([1, 3, 17, 375, 451, 4999]))
    if draw(st.booleans()):
        seed = draw(st.integers(0, 2**32 - 1))
        m = np.random.default_rng(seed).random((h, w)) < draw(st.floats(0.05, 0.8))
    else:
        m = np.zeros((h, w), bool)
        for _ in range(draw(st.integers(1, 4))):
            y, x = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            m[y:y + draw(st.integers(1, h)), x:x + draw(st.integers(1, 40))] = True
    return m


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_masks())
def test_each_line_rasterises_to_exactly_its_part_with_holes_filled(mask):
    lines, holes = yolo.mask_lines(mask, 3)
    h, w = mask.shape
    parsed = yolo.parse_label("".join(line + "\n" for line in lines), "mask.txt", 4)
    back = sorted(masks.polygons_to_mask(
        [(np.reshape(line.polygon, (-1, 2)) * (w, h)).reshape(-1).tolist()], h, w).tobytes()
        for line in parsed)
    assert back == sorted(part.tobytes() for part in _parts(mask))
    assert all(line.category == 3 for line in parsed)
    assert (holes > 0) == _has_hole(mask)


# ---------------------------------------------------------------- data.yaml and class lists
TRICKY = ['a "quoted" name', "colon: here # not a comment", "émoji 🐱", "null", "123",
          "back\\slash", "tab\there", "it's", "[not, a, list]", "new\nline", "\u2028sep",
          "-dash", "  spaced  "]


def test_data_yaml_names_read_the_same_in_yaml_and_here(tmp_path):
    out = tmp_path / "x y"
    out.mkdir()
    text = yolo.data_yaml(out, TRICKY, 'project "p"')
    (out / "data.yaml").write_text(text, encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["names"] == dict(enumerate(TRICKY)) and data["nc"] == len(TRICKY)
    assert data["path"] == str(out) and (data["train"], data["val"]) == ("train.txt", "val.txt")
    assert yolo.read_names(out / "data.yaml") == TRICKY


@pytest.mark.parametrize("text", [
    "names: [cat, 'dog house', \"bird\"]\n",
    "names:\n  - cat\n  - 'dog house'\n  - bird  # a comment\n",
    "path: ../datasets/x  # dataset root\ntrain: images/train\nval: images/val\ntest:\n\n"
    "# Classes\nnames:\n  0: cat\n  1: dog house\n  2: \"bird\"\n",
    "nc: 3\nnames: {0: cat, 1: 'dog house', 2: bird}\n",
    "nc: 3\nnames: ['cat', 'dog house',  # the first two\n        'bird']  # and one more\n",
    "names:\n  0: cat\n  1: dog house\n  2: bird\ndownload: |\n  from x import y\n"
    "  names: [not, these]\n  url = 'https://a#b'\n",
    "\ufeff---\nnames:\n- cat\n- dog house\n- bird\n",
])
def test_data_yaml_in_the_forms_ultralytics_users_write(tmp_path, text):
    path = tmp_path / "data.yaml"
    path.write_text(text, encoding="utf-8")
    assert yolo.read_names(path) == ["cat", "dog house", "bird"]
    names = yaml.safe_load(text.replace("\ufeff", ""))["names"]
    assert list(names.values() if isinstance(names, dict) else names) == [
        "cat", "dog house", "bird"]


def test_class_list_files_and_nc_alone(tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog house\n\n", encoding="utf-8")
    assert yolo.read_names(tmp_path / "classes.txt") == ["cat", "dog house"]
    (tmp_path / "data.yaml").write_text("nc: 2\n", encoding="utf-8")
    assert yolo.read_names(tmp_path / "data.yaml") == ["class_0", "class_1"]


# ---------------------------------------------------------------- hand-made folders
def _folder(tmp_path: Path, labels: dict[str, str], *, yaml: str = "names: [cat, dog]\n",
            images: tuple[str, ...] = ("a.png",)) -> Path:
    root = tmp_path / "set"
    for name in images:
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 20), (90, 120, 30)).save(root / "images" / name)
    for name, text in labels.items():
        (root / "labels" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "labels" / name).write_text(text, encoding="utf-8")
    if yaml is not None:
        (root / "data.yaml").write_text(yaml, encoding="utf-8")
    return root


GOOD = "0 0.1 0.1 0.5 0.1 0.5 0.9\n"


def test_a_folder_from_another_tool(tmp_path, new_project, helpers):
    """Roboflow-style layout (train/images, valid/images), class indices from names, a blank
    line and a trailing space; a 20x40 image so x and y scale differently."""
    root = tmp_path / "set"
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir()
        Image.new("RGB", (40, 20)).save(root / split / "images" / f"{split}.jpg")
    (root / "train" / "labels" / "train.txt").write_text(
        "1 0 0 0.5 0 0.5 0.5 0 0.5 \n\n0 0.5 0.5 1 0.5 1 1 0.5 1\n")
    (root / "valid" / "labels" / "valid.txt").write_text("")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\n"
                                    "names: ['cat', 'dog']\n")
    project = new_project(root)
    report = import_dataset(project, root, "yolo-seg")
    assert report.annotations_added == 2 and report.categories_added == 2
    top_left = np.zeros((20, 40), bool)
    top_left[:10, :20] = True
    assert helpers.project_masks(project) == Counter({
        ("train/images/train.jpg", "dog", helpers.mask_key(top_left)): 1,
        ("train/images/train.jpg", "cat", helpers.mask_key(top_left[::-1, ::-1])): 1})
    # the empty label file is a negative: reviewed with no objects
    assert {im.path: im.status for im in project.images()} == {
        "train/images/train.jpg": "reviewed", "valid/images/valid.jpg": "reviewed"}


def test_a_class_list_instead_of_data_yaml_and_the_yaml_file_given_itself(tmp_path,
                                                                          new_project):
    """labelImg and Label Studio write classes.txt; a data set's .yaml may be named anything
    and be given itself."""
    root = _folder(tmp_path, {"a.txt": GOOD.replace("0 ", "1 ", 1)}, yaml=None)
    (root / "classes.txt").write_text("cat\ndog\n")
    project = new_project(root / "images")
    import_dataset(project, root, "yolo-seg")
    names = {c.id: c.name for c in project.categories()}
    assert list(names.values()) == ["cat", "dog"]
    assert [names[i.category_id] for i in project.instances()] == ["dog"]
    (root / "classes.txt").unlink()
    (root / "coco8-seg.yaml").write_text("names:\n  0: cat\n  1: dog\n")
    other = new_project(root / "images")
    assert import_dataset(other, root / "coco8-seg.yaml", "yolo-seg").annotations_added == 1
    assert import_dataset(new_project(root / "images"), root, "yolo-seg").categories_added == 2


def test_detection_boxes_are_skipped_and_their_image_needs_review(tmp_path, new_project):
    root = _folder(tmp_path, {"a.txt": GOOD + "1 0.5 0.5 0.2 0.2\n"})
    project = new_project(root / "images")
    report = import_dataset(project, root, "yolo-seg")
    assert report.annotations_added == 1
    assert report.skipped == {yolo.BOXES: 1}
    assert [im.status for im in project.images()] == ["in_review"]

    boxes_only = _folder(tmp_path / "b", {"a.txt": "1 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(DatasetFormatError, match="detection data set"):
        import_dataset(new_project(boxes_only / "images"), boxes_only, "yolo-seg")


HOSTILE = [
    # (case, labels, data.yaml, images, what the error says)
    ("odd coordinates", {"a.txt": GOOD + "0 0.1 0.1 0.2 0.2 0.3 0.3 0.4\n"}, None, None,
     r"labels/a\.txt: line 2: 7 coordinates, an odd number"),
    ("too few points", {"a.txt": GOOD + "0 0.5 0.5\n"}, None, None,
     r"labels/a\.txt: line 2: the polygon has 1 point; at least 3"),
    ("class only", {"a.txt": "\n1\n"}, None, None, r"labels/a\.txt: line 2: .*no coordinates"),
    ("not a number", {"a.txt": GOOD + "0 0.1 0.1 0.2 abc 0.3 0.3\n"}, None, None,
     r"labels/a\.txt: line 2: y of point 2 is 'abc', not a number"),
    ("nan", {"a.txt": "0 0.1 nan 0.2 0.2 0.3 0.3\n"}, None, None,
     r"labels/a\.txt: line 1: y of point 1 is 'nan', not a number"),
    ("above one", {"a.txt": GOOD + GOOD + "1 0.1 0.1 1.5 0.1 0.5 0.9\n"}, None, None,
     r"labels/a\.txt: line 3: x of point 2 is 1\.5, outside \[0, 1\]"),
    ("pixels, not normalised", {"a.txt": "0 4 2 20 2 20 18\n"}, None, None,
     r"labels/a\.txt: line 1: x of point 1 is 4, outside \[0, 1\]"),
    ("negative coordinate", {"a.txt": "0 0.1 -0.01 0.2 0.2 0.3 0.3\n"}, None, None,
     r"labels/a\.txt: line 1: y of point 1 is -0\.01, outside"),
    ("unknown class", {"a.txt": GOOD + "2 0.1 0.1 0.5 0.1 0.5 0.9\n"}, None, None,
     r"labels/a\.txt: line 2: class index 2 is not in the names \(indices 0-1\)"),
    ("negative class", {"a.txt": "-1 0.1 0.1 0.5 0.1 0.5 0.9\n"}, None, None,
     r"labels/a\.txt: line 1: class index -1 is negative"),
    ("fractional class", {"a.txt": "0.5 0.1 0.1 0.5 0.1 0.5 0.9\n"}, None, None,
     r"labels/a\.txt: line 1: class index '0\.5' is not an integer"),
    ("label with no image", {"a.txt": GOOD, "ghost.txt": GOOD}, None, None,
     r"labels/ghost\.txt: label file with no image"),
    ("two images, one label", {"a.txt": GOOD}, None, ("a.png", "a.jpg"),
     r"labels/a\.txt: images images/a\.jpg and images/a\.png both take this label file"),
    ("not text", {"a.txt": GOOD}, None, None, r"labels/a\.txt: not a text file"),
    ("a device, not a file", {"a.txt": GOOD}, None, None, r"labels/a\.txt: not a regular file"),
    ("unclosed list", {"a.txt": GOOD}, "nc: 2\nnames: [cat,\n  dog\n", None,
     r"data\.yaml: line 4: not YAML \(expected ',' or '\]'"),
    ("nc disagrees", {"a.txt": GOOD}, "nc: 3\nnames: [cat, dog]\n", None,
     r"data\.yaml: line 1: nc is 3 but names has 2 classes"),
    ("index missing", {"a.txt": GOOD}, "names:\n  0: cat\n  2: dog\n", None,
     r"data\.yaml: line 1: class indices must be 0 to 1; 1 is missing"),
    ("same name twice", {"a.txt": GOOD}, "names: [cat, cat]\n", None,
     r"data\.yaml: line 1: classes 0 and 1 are both named 'cat'"),
    ("not yaml", {"a.txt": GOOD}, "names [cat, dog]\n", None,
     r"data\.yaml: line 1: expected 'key: value'"),
    ("no class names", {"a.txt": GOOD}, "", None, r"data\.yaml: neither names nor nc"),
    ("no names file", {"a.txt": GOOD}, None, None, r"no data\.yaml"),
    ("no label files", {}, None, None, r"none of the 1 images has a label file"),
    ("no images", {"a.txt": GOOD}, None, None, r"no images found in a folder named images"),
]


@pytest.mark.parametrize("case, labels, data_yaml, images, error", HOSTILE,
                         ids=[c[0] for c in HOSTILE])
def test_hostile_folders_are_refused_naming_the_file_and_line(
        tmp_path, new_project, helpers, case, labels, data_yaml, images, error):
    root = _folder(tmp_path, labels, yaml=data_yaml if data_yaml is not None else
                   "names: [cat, dog]\n", images=images or ("a.png",))
    if case == "not text":
        (root / "labels" / "a.txt").write_bytes(b"0 0.1\xff")
    if case == "a device, not a file":  # a link to /dev/zero would never end
        (root / "labels" / "a.txt").unlink()
        (root / "labels" / "a.txt").symlink_to("/dev/zero")
    if case == "no names file":
        (root / "data.yaml").unlink()
    if case == "no images":
        (root / "images" / "a.png").unlink()
    project = new_project(root / "images")
    before = helpers.project_state(project)
    with pytest.raises(DatasetFormatError, match=error) as caught:
        import_dataset(project, root, "yolo-seg")
    assert str(root) in str(caught.value)
    assert helpers.project_state(project) == before


def test_a_tiny_overshoot_is_rounding_and_is_clamped(tmp_path, new_project):
    root = _folder(tmp_path, {"a.txt": "0 -0.0000004 0 1.0000009 0 1 1 0 1\n"})
    project = new_project(root / "images")
    import_dataset(project, root, "yolo-seg")
    (inst,) = project.instances()
    assert inst.area == 40 * 20
