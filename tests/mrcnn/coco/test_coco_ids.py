"""The ids COCO files written for a project use: those of the file the project was imported
from, so an export (and prediction results) line up with the user's own ground truth."""

from __future__ import annotations

import json
import shutil

from mrcnn.coco.ids import file_category_ids, file_image_ids, numbering
from mrcnn.coco.io import build_coco, export_coco, import_coco


def test_numbering_keeps_source_ids_and_gives_the_others_free_ones():
    # images 1 and 3 came from a file (ids 2 and 50); 2 and 4 came otherwise: 2 would clash
    assert numbering({1: 2, 2: None, 3: 50, 4: None}) == {1: 2, 2: 51, 3: 50, 4: 4}
    # two files used id 7: the image imported first keeps it, the other is numbered as if
    # it had none
    assert numbering({1: 7, 2: 7, 3: None}) == {1: 7, 2: 2, 3: 3}
    assert numbering({1: 7, 7: 7}) == {1: 7, 7: 8}
    assert numbering({}) == {}
    assert numbering({5: None, 6: None}) == {5: 5, 6: 6}  # a project never imported: as before


def test_export_writes_the_ids_of_the_imported_file(make_dataset, new_project, helpers):
    ds = make_dataset("rle")
    original = helpers.renumber_coco(ds.coco)
    ds.write(original)
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)

    out, _ = build_coco(project)
    assert ({im["file_name"]: im["id"] for im in out["images"]}
            == {im["file_name"]: im["id"] for im in original["images"]})
    assert ({c["name"]: c["id"] for c in out["categories"]}
            == {c["name"]: c["id"] for c in original["categories"]})
    # every annotation lands on the same image and category, mask for mask
    file_of = {im["id"]: im["file_name"] for im in out["images"]}
    name_of = {c["id"]: c["name"] for c in out["categories"]}
    got = sorted((file_of[a["image_id"]], name_of[a["category_id"]], a["segmentation"]["counts"])
                 for a in out["annotations"])
    o_file = {im["id"]: im["file_name"] for im in original["images"]}
    o_name = {c["id"]: c["name"] for c in original["categories"]}
    want = sorted((o_file[a["image_id"]], o_name[a["category_id"]], a["segmentation"]["counts"])
                  for a in original["annotations"])
    assert got == want


def test_ids_survive_export_and_import_into_another_project(make_dataset, new_project,
                                                             tmp_path, helpers):
    ds = make_dataset("rle")
    original = helpers.renumber_coco(ds.coco)
    ds.write(original)
    first = new_project(ds.images_dir)
    import_coco(first, ds.json_path)
    exported = export_coco(first, tmp_path / "export.json").path
    shutil.copy(exported, ds.images_dir / "export.json")  # file names relative to the images
    second = new_project(ds.images_dir)
    import_coco(second, ds.images_dir / "export.json")
    by_path = {im.path: file_image_ids(second)[im.id] for im in second.images()}
    assert by_path == {im["file_name"]: im["id"]
                       for im in json.loads(exported.read_text())["images"]}
    assert ({c.name: file_category_ids(second)[c.id] for c in second.categories()}
            == {c["name"]: c["id"] for c in original["categories"]})


def test_images_and_categories_added_otherwise_never_take_an_imported_id(make_dataset,
                                                                         new_project, helpers):
    ds = make_dataset("rle")
    coco = helpers.renumber_coco(ds.coco)
    # the file names its first image 2 and its category "cat" 1: the ids the project gives
    # the image it holds already and the category it has already
    old_first, coco["images"][0]["id"] = coco["images"][0]["id"], 2
    for a in coco["annotations"]:
        if a["image_id"] == old_first:
            a["image_id"] = 2
    cat_id = next(c["id"] for c in coco["categories"] if c["name"] == "cat")
    for c in coco["categories"]:
        c["id"] = 1 if c["id"] == cat_id else c["id"]
    for a in coco["annotations"]:
        a["category_id"] = 1 if a["category_id"] == cat_id else a["category_id"]
    ds.write(coco)
    project = new_project(ds.images_dir)
    extra = ds.images_dir / "extra.png"
    extra.write_bytes(helpers.photo("camera")[0])
    project.add_category("zebra")  # category 1, before the import
    project.add_image(extra, 256, 256, "e" * 64)  # image 1
    other = project.add_image(ds.images_dir / "another.png", 8, 8, "f" * 64)  # image 2
    import_coco(project, ds.json_path)

    images = file_image_ids(project)
    assert len(set(images.values())) == len(images)  # unique
    assert images[1] == 1  # its own id, free
    assert images[other.id] not in {im["id"] for im in coco["images"]}
    cats = file_category_ids(project)
    assert len(set(cats.values())) == len(cats)
    assert cats[1] not in {c["id"] for c in coco["categories"]}  # zebra gave way to "cat"
    out, _ = build_coco(project)
    assert {c["name"]: c["id"] for c in out["categories"]}["zebra"] == cats[1]


def test_a_project_never_imported_exports_its_own_ids(make_dataset, new_project):
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    for im in ds.coco["images"]:
        project.add_image(ds.images_dir / im["file_name"], im["width"], im["height"],
                          f"{im['id']:064x}")
    project.add_category("dog")
    out, _ = build_coco(project)
    assert [im["id"] for im in out["images"]] == [im.id for im in project.images()]
    assert [c["id"] for c in out["categories"]] == [c.id for c in project.categories()]
