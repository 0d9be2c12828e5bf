"""Mask PNGs (format "masks"): exact round trips through real photos' masks, the overlap rule
and its counted loss, 16-bit PNGs past 255 instances and categories, files that plain
Pillow/numpy read as documented, folders other tools write (no masks.json), and hostile
folders refused whole, naming the file."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mrcnn import masks
from mrcnn.coco.formats import export_dataset, import_dataset
from mrcnn.coco.io import import_coco
from mrcnn.coco.mask_png import export_mask_png, read_mask_png
from mrcnn.errors import DatasetFormatError
from mrcnn.io.images import verify_image


@pytest.fixture
def imported(make_dataset, new_project):
    """A project holding the sample photos' annotations (reviewed), and the dataset."""
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    return project, ds


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _statuses(project) -> dict:
    return {im.path: str(im.status) for im in project.images()}


def _add(project, image_path: str, category: str, mask: np.ndarray):
    image = next(im for im in project.images() if im.path == image_path)
    cat = project.category_by_name(category) or project.add_category(category)
    return project.add_instance(image.id, cat.id, masks.encode(mask))


# ---------------------------------------------------------------- round trips
def test_round_trip_is_pixel_exact(imported, new_project, helpers, tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    report = export_dataset(project, out, "masks")
    assert (report.format, report.images, report.annotations, report.categories) == (
        "masks", 4, len(ds.expected), len({c for _f, c, _m in ds.expected}))
    assert report.losses == {} and any("smaller instance" in n for n in report.notes)
    again = new_project(ds.images_dir)
    result = import_dataset(again, out, "masks", images_dir=ds.images_dir)
    assert (result.format, result.images_added, result.annotations_added) == (
        "masks", 4, len(ds.expected))
    assert helpers.project_masks(again) == helpers.project_masks(project)
    assert helpers.project_masks(again) == ds.expected_masks()
    assert [c.name for c in again.categories()] == [c.name for c in project.categories()]
    assert _statuses(again) == _statuses(project)


def test_import_looks_in_the_projects_images_folder_unless_told(imported, new_project,
                                                                helpers, tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    again = new_project(ds.images_dir)
    import_dataset(again, out, "masks")
    assert helpers.project_masks(again) == ds.expected_masks()


def test_overlaps_follow_the_rule_and_the_loss_is_counted(imported, new_project, helpers,
                                                          tmp_path):
    project, ds = imported
    h, w = 256, 256
    ring = next(m for f, c, m in ds.expected if c == "ring")
    blob = next(m for f, c, m in ds.expected if c == "blob")
    square = np.zeros((h, w), bool)
    square[60:80, 100:140] = True  # smaller than the ring: drawn on top of it
    rect = np.zeros((h, w), bool)
    rect[170:240, 10:80] = True  # larger than the blob: the blob stays on top
    _add(project, "astronaut.png", "square", square)
    _add(project, "astronaut.png", "rect", rect)
    first = np.zeros((300, 451), bool)
    first[270:280, 10:20] = True
    second = np.zeros((300, 451), bool)
    second[275:285, 15:25] = True  # same size: the one made first stays on top
    _add(project, "chelsea.jpg", "square", first)
    _add(project, "chelsea.jpg", "square", second)
    lost = int((ring & square).sum() + (rect & blob).sum() + (first & second).sum())
    assert lost > 0

    out = tmp_path / "masks"
    report = export_mask_png(project, out)
    assert report.losses == {"pixels lost to overlaps": lost}
    assert any(str(lost) in n for n in report.notes)

    again = new_project(ds.images_dir)
    import_dataset(again, out, "masks", images_dir=ds.images_dir)
    expected = Counter(ds.expected_masks())
    for f, c, m in ds.expected:
        if c == "ring":
            expected[(f, c, helpers.mask_key(m))] -= 1
            expected[(f, c, helpers.mask_key(m & ~square))] += 1
    expected.update({("astronaut.png", "square", helpers.mask_key(square)): 1,
                     ("astronaut.png", "rect", helpers.mask_key(rect & ~blob)): 1,
                     ("chelsea.jpg", "square", helpers.mask_key(first)): 1,
                     ("chelsea.jpg", "square", helpers.mask_key(second & ~first)): 1})
    assert helpers.project_masks(again) == +expected


def test_an_instance_wholly_under_a_smaller_one_is_counted(imported, tmp_path):
    project, ds = imported
    inner = np.zeros((300, 451), bool)
    inner[100:120, 200:220] = True
    _add(project, "chelsea.jpg", "cat", inner)  # the same pixels, twice, inside the cat
    _add(project, "chelsea.jpg", "cat", inner)
    report = export_mask_png(project, tmp_path / "masks")
    assert report.losses == {"pixels lost to overlaps": 2 * 400,
                             "instances hidden by overlaps": 1}
    manifest = json.loads((tmp_path / "masks" / "masks.json").read_text())
    chelsea = next(e for e in manifest["images"] if e["file_name"] == "chelsea.jpg")
    assert len(chelsea["objects"]) == 2  # the cat and the first square


def test_more_than_255_instances_and_categories_are_16_bit(tmp_path, new_project, helpers):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("many.png", "few.png"):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), np.uint8)).save(images / name)
    project = new_project(images)
    info = verify_image(images / "few.png")
    few = project.add_image(images / "few.png", info.width, info.height, info.sha256)
    info = verify_image(images / "many.png")
    image = project.add_image(images / "many.png", info.width, info.height, info.sha256)
    cats = [project.add_category(f"c{k}") for k in range(260)]
    one = np.zeros((64, 96), bool)
    one[10:20, 10:30] = True
    project.add_instance(few.id, cats[0].id, masks.encode(one))
    index = np.zeros((64, 96), np.int64)
    for n in range(300):
        y, x = divmod(n, 32)
        m = np.zeros((64, 96), bool)
        m[3 * y:3 * y + 2, 3 * x:3 * x + 2] = True
        project.add_instance(image.id, cats[n % 260].id, masks.encode(m))
        index[m] = n + 1
    out = tmp_path / "masks"
    report = export_mask_png(project, out)
    assert report.annotations == 301 and report.losses == {}
    # semantic PNGs are 16-bit throughout (260 categories); instance PNGs where needed
    assert Image.open(out / "semantic" / "few.png").mode == "I;16"
    assert Image.open(out / "instances" / "few.png").mode == "L"
    inst, sem = Image.open(out / "instances" / "many.png"), Image.open(out / "semantic" /
                                                                         "many.png")
    assert inst.mode == sem.mode == "I;16"
    assert np.array_equal(np.asarray(inst), index)
    assert np.array_equal(np.asarray(sem), np.where(index > 0, (index - 1) % 260 + 1, 0))
    again = new_project(images)
    import_dataset(again, out, "masks", images_dir=images)
    assert helpers.project_masks(again) == helpers.project_masks(project)
    assert [c.name for c in again.categories()] == [c.name for c in cats]


def test_reviewed_only_leaves_the_others_out(imported, new_project, helpers, tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    report = export_mask_png(project, out, reviewed_only=True)
    assert report.images == 3  # camera.png has no instances and is not reviewed
    assert not (out / "instances" / "camera.png").exists()
    again = new_project(ds.images_dir)
    import_dataset(again, out, "masks", images_dir=ds.images_dir)
    assert helpers.project_masks(again) == helpers.project_masks(project)


# ---------------------------------------------------------------- what other readers see
def test_pngs_decode_to_the_documented_indices(imported, tmp_path, helpers):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    manifest = json.loads((out / "masks.json").read_text())
    assert manifest["categories"] == {str(k): c.name for k, c in
                                      enumerate(project.categories(), start=1)}
    by_id = {i.id: i for i in project.instances(state="accepted")}
    cat_names = {c.id: c.name for c in project.categories()}
    assert [e["file_name"] for e in manifest["images"]] == [im.path for im in project.images()]
    for entry in manifest["images"]:
        inst = _png(out / entry["instances"])
        sem = _png(out / entry["semantic"])
        assert inst.dtype == sem.dtype == np.uint8  # 8-bit grey
        assert inst.shape == sem.shape == (entry["height"], entry["width"])
        assert set(np.unique(inst)) - {0} == {int(k) for k in entry["objects"]}
        for k, obj in entry["objects"].items():
            truth = by_id[obj["instance_id"]]
            assert obj["category"] == cat_names[truth.category_id]
            assert np.array_equal(inst == int(k), truth.rle.decode())
            index = next(int(i) for i, n in manifest["categories"].items()
                         if n == obj["category"])
            assert (sem[inst == int(k)] == index).all()
        assert ((sem == 0) == (inst == 0)).all()


# ---------------------------------------------------------------- folders without masks.json
def test_without_masks_json_names_come_from_labels_txt(imported, new_project, helpers,
                                                       tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    (out / "masks.json").unlink()
    names = [c.name for c in project.categories()]
    (out / "labels.txt").write_text("\n".join(["__ignore__", "_background_", *names]) + "\n")
    again = new_project(ds.images_dir)
    import_dataset(again, out, "masks", images_dir=ds.images_dir)
    assert helpers.project_masks(again) == ds.expected_masks()
    assert [c.name for c in again.categories()] == names


def test_without_names_categories_are_class_k(imported, tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    (out / "masks.json").unlink()
    data = read_mask_png(out, images_dir=ds.images_dir)
    index = {c.name: f"class_{k}" for k, c in enumerate(project.categories(), start=1)}
    assert data.categories == sorted(index.values())
    assert Counter((i.image, i.category, i.rle.counts) for i in data.instances) == Counter(
        (f, index[c], masks.encode(m).counts) for f, c, m in ds.expected)


def test_semantic_pngs_alone_give_each_connected_part(imported, tmp_path, helpers):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    (out / "masks.json").unlink()
    shutil.rmtree(out / "instances")
    data = read_mask_png(out, images_dir=ds.images_dir)
    expected = Counter()
    for sem_path in (out / "semantic").rglob("*.png"):
        sem = _png(sem_path)
        stem = sem_path.relative_to(out / "semantic").with_suffix("").as_posix()
        image = next(im.path for im in project.images() if im.path.rsplit(".", 1)[0] == stem)
        for k in set(np.unique(sem)) - {0}:
            labels, n = ndimage.label(sem == k, structure=np.ones((3, 3)))
            for part in range(1, n + 1):
                expected[(image, f"class_{k}", helpers.mask_key(labels == part))] += 1
    got = Counter((i.image, i.category, helpers.mask_key(i.rle.decode()))
                  for i in data.instances)
    assert got == expected
    assert sum(expected.values()) > len(ds.expected)  # the two-part blob became two


def test_masks_json_naming_only_semantic_pngs_gives_their_parts(imported, tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    _edit_manifest(out, lambda m: [e.update(instances=None) for e in m["images"]])
    data = read_mask_png(out, images_dir=ds.images_dir)
    assert data.categories == [c.name for c in project.categories()]
    assert Counter(i.category for i in data.instances)["blob"] == 2  # its two parts
    assert len(data.instances) > len(ds.expected)


def test_instance_pngs_alone_are_one_category(imported, tmp_path):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    (out / "masks.json").unlink()
    shutil.rmtree(out / "semantic")
    data = read_mask_png(out, images_dir=ds.images_dir)
    assert data.categories == ["object"]
    assert len(data.instances) == len(ds.expected)


# ---------------------------------------------------------------- hostile folders
def _save(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path)


def _edit_manifest(out: Path, change) -> None:
    manifest = json.loads((out / "masks.json").read_text())
    change(manifest)
    (out / "masks.json").write_text(json.dumps(manifest))


def _set_pixel(path: Path, value: int) -> None:
    arr = _png(path).copy()
    arr[0, 0] = value
    _save(path, arr)


def _no_images_folder(out, images):
    return None, ["--images"]


def _wrong_size(out, images):
    _save(out / "instances" / "astronaut.png", np.zeros((10, 12), np.uint8))
    return images, ["instances/astronaut.png", "12x10", "256x256"]


def _colour_png(out, images):
    _save(out / "instances" / "astronaut.png", np.zeros((256, 256, 3), np.uint8))
    return images, ["instances/astronaut.png", "colour"]


def _index_not_in_manifest(out, images):
    _set_pixel(out / "instances" / "chelsea.png", 77)
    return images, ["instances/chelsea.png", "77", "masks.json"]


def _semantic_index_not_in_manifest(out, images):
    _set_pixel(out / "semantic" / "chelsea.png", 9)
    return images, ["semantic/chelsea.png", "index 9"]


def _manifest_does_not_parse(out, images):
    (out / "masks.json").write_text('{"categories": {')
    return images, ["masks.json", "JSON"]


def _manifest_points_outside(out, images):
    _edit_manifest(out, lambda m: m["images"][1].update(instances="../../evil.png"))
    return images, ["masks.json", "outside"]


def _manifest_unknown_category(out, images):
    _edit_manifest(out, lambda m: m["images"][2]["objects"]["1"].update(category="dog"))
    return images, ["masks.json", "'dog'"]


def _manifest_not_an_object(out, images):
    (out / "masks.json").write_text("[1, 2]")
    return images, ["masks.json", "object"]


def _image_missing(out, images):
    (images / "chelsea.jpg").unlink()
    return images, ["chelsea.jpg"]


def _truncated_png(out, images):
    png = out / "instances" / "chelsea.png"
    png.write_bytes(png.read_bytes()[:60])
    return images, ["instances/chelsea.png"]


def _no_manifest_and_no_image(out, images):
    (out / "masks.json").unlink()
    (images / "astronaut.png").unlink()
    return images, ["instances/astronaut.png", "no image astronaut"]


HOSTILE = [_no_images_folder, _wrong_size, _colour_png, _index_not_in_manifest,
           _semantic_index_not_in_manifest, _manifest_does_not_parse, _manifest_points_outside,
           _manifest_unknown_category, _manifest_not_an_object, _image_missing, _truncated_png,
           _no_manifest_and_no_image]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda f: f.__name__.strip("_"))
def test_hostile_folders_are_refused_naming_the_file(case, imported, tmp_path, helpers):
    project, ds = imported
    out = tmp_path / "masks"
    export_mask_png(project, out)
    images = tmp_path / "images_copy"
    shutil.copytree(ds.images_dir, images)
    images_dir, expected = case(out, images)
    before = helpers.project_state(project)
    with pytest.raises(DatasetFormatError) as err:
        if images_dir is None:  # import_dataset gives the project's images folder
            read_mask_png(out, images_dir=None)
        import_dataset(project, out, "masks", images_dir=images_dir)
    for part in expected:
        assert part in str(err.value), str(err.value)
    assert helpers.project_state(project) == before
