"""COCO import: files from other tools work, bad files are refused clearly and change nothing."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mrcnn.coco import io as coco_io
from mrcnn.coco import validate as coco_validate
from mrcnn.coco.io import import_coco
from mrcnn.coco.validate import parse_coco, read_coco_json
from mrcnn.errors import CocoFormatError
from mrcnn.store.project import Project

STYLES = ("rle", "cvat", "cvat-compressed", "polygon", "labelme")


def _statuses(project) -> dict[str, str]:
    return {im.path: im.status for im in project.images()}


# ---------------------------------------------------------------- files from other tools
@pytest.mark.parametrize("style", STYLES)
def test_import_gives_exactly_the_masks_of_the_file(style, make_dataset, new_project, helpers):
    ds = make_dataset(style)
    project = new_project(ds.images_dir)
    report = import_coco(project, ds.json_path)

    assert helpers.project_masks(project) == ds.expected_masks()
    n = len(ds.expected)
    assert (report.annotations_added, report.images_added, report.images_marked) == (n, 4, 3)
    assert report.categories_added == len({c for _, c, _ in ds.expected})
    # No background category, whatever the tool called it.
    names = [c.name for c in project.categories()]
    assert "_background_" not in names and sorted(names) == sorted({c for _, c, _ in ds.expected})
    # Annotated images are someone's finished work; the unannotated one is still new.
    statuses = _statuses(project)
    annotated = {f for f, _, _ in ds.expected}
    assert statuses == {f: "reviewed" if f in annotated else "new" for f in statuses}
    # Stored bbox and area are those of the mask itself.
    for inst in project.instances():
        m = inst.rle.decode()
        assert inst.area == m.sum()
        assert list(inst.bbox) == helpers.bbox_of(m)
        assert (inst.source, inst.state) == ("manual", "accepted")


def test_labelme_file_names_in_sub_folders_and_with_backslashes(make_dataset, new_project,
                                                              helpers):
    ds = make_dataset("labelme")
    coco = ds.copy()
    assert coco["images"][0]["file_name"] == "JPEGImages/voc.jpg"
    coco["images"][0]["file_name"] = "JPEGImages\\voc.jpg"  # written on Windows
    project = new_project(ds.images_dir)
    import_coco(project, ds.write(coco))
    assert helpers.project_masks(project) == ds.expected_masks()
    assert "JPEGImages/voc.jpg" in _statuses(project)


def test_images_are_found_beside_the_json_or_in_the_given_folder(make_dataset, new_project,
                                                                 helpers, tmp_path):
    ds = make_dataset("rle")
    elsewhere = tmp_path / "exports" / "coco.json"
    elsewhere.parent.mkdir()
    ds.write(path=elsewhere)
    project = new_project(ds.images_dir)
    before = helpers.project_state(project)
    with pytest.raises(CocoFormatError, match=r"images\[0\] \(id 1\).*file not found"):
        import_coco(project, elsewhere)  # default: the JSON's own folder
    assert helpers.project_state(project) == before
    import_coco(project, elsewhere, images_dir=ds.images_dir)
    assert helpers.project_masks(project) == ds.expected_masks()


def test_images_outside_the_project_images_folder_are_kept_by_absolute_path(
        make_dataset, new_project, helpers, tmp_path):
    ds = make_dataset("rle")
    (tmp_path / "other").mkdir()
    project = new_project(tmp_path / "other")
    import_coco(project, ds.json_path)
    paths = [im.path for im in project.images()]
    assert all(Path(p).is_absolute() for p in paths)
    assert all(project.image_path(im).is_file() for im in project.images())
    assert sum(helpers.project_masks(project).values()) == len(ds.expected)


def test_symbolically_linked_images_import_and_export_under_their_own_names(
        make_dataset, new_project, helpers, tmp_path):
    """Datasets managed by git-annex or DVC are folders of links into a shared store."""
    ds = make_dataset("rle")
    annex = tmp_path / "annex"
    annex.mkdir()
    for im in ds.coco["images"]:
        link = ds.images_dir / im["file_name"]
        target = annex / f"SHA256-{im['id']}"
        link.rename(target)
        link.symlink_to(target)
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    assert helpers.project_masks(project) == ds.expected_masks()
    out, _ = coco_io.build_coco(project)
    assert sorted(im["file_name"] for im in out["images"]) == sorted(
        im["file_name"] for im in ds.coco["images"])


def test_status_in_review_is_given_but_never_downgrades_reviewed_work(make_dataset,
                                                                      new_project):
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    report = import_coco(project, ds.json_path, status="in_review")
    assert report.status == "in_review"
    assert sorted(_statuses(project).values()) == ["in_review"] * 3 + ["new"]
    chelsea = project.image_by_key("chelsea.jpg")
    project.set_image_status(chelsea.id, "reviewed")
    import_coco(project, ds.json_path, status="in_review")
    assert project.image(chelsea.id).status == "reviewed"
    with pytest.raises(ValueError, match="status"):
        import_coco(project, ds.json_path, status="new")


def test_reimport_adds_no_duplicates_even_in_another_mask_encoding(make_dataset, new_project,
                                                                   helpers):
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    state = helpers.project_state(project)
    again = import_coco(project, ds.json_path)
    assert (again.annotations_added, again.duplicates_skipped) == (0, len(ds.expected))
    assert (again.images_added, again.images_known, again.categories_added) == (0, 4, 0)
    assert helpers.project_state(project) == state
    cvat = make_dataset("cvat", name="cvat", write=False)  # same masks, uncompressed RLE
    import_coco(project, ds.write(cvat.coco, ds.images_dir / "cvat.json"))
    assert helpers.project_state(project)[3] == state[3]


def test_an_annotation_equal_to_a_pending_prediction_is_still_imported(make_dataset,
                                                                       new_project, helpers):
    """Pending predictions are replaced at the next prediction run; a human annotation that
    happens to match one pixel for pixel must not be dropped as its duplicate."""
    from mrcnn import masks

    ds = make_dataset("rle", photos=("chelsea",))
    project = new_project(ds.images_dir)
    img = project.add_image(ds.file("chelsea"), 451, 300, "7" * 64)
    cat = project.add_category("cat")
    _, _, truth = ds.expected[0]
    project.replace_predictions(img.id, "m1", [(cat.id, masks.encode(truth), 0.9)])
    report = import_coco(project, ds.json_path)
    assert (report.annotations_added, report.duplicates_skipped) == (1, 0)
    assert helpers.project_masks(project) == ds.expected_masks()
    project.replace_predictions(img.id, "m2", [])  # the next model's run
    assert helpers.project_masks(project) == ds.expected_masks()


def test_rle_with_zero_length_runs_is_the_same_instance_as_its_canonical_form(
        make_dataset, new_project, helpers):
    ds = make_dataset("cvat", photos=("chelsea",))
    padded = ds.copy()
    counts = padded["annotations"][0]["segmentation"]["counts"]
    padded["annotations"][0]["segmentation"]["counts"] = [counts[0], 0, 0, *counts[1:]]
    project = new_project(ds.images_dir)
    import_coco(project, ds.write(padded, ds.images_dir / "padded.json"))
    assert helpers.project_masks(project) == ds.expected_masks()  # same pixels
    again = import_coco(project, ds.json_path)  # the same mask, written canonically
    assert (again.annotations_added, again.duplicates_skipped) == (0, 1)


def test_images_already_scanned_are_reused_not_added_twice(make_dataset, tmp_path, helpers,
                                                           open_projects):
    from mrcnn.store.scan import scan_folder

    ds = make_dataset("polygon")
    project = Project.create(tmp_path / "scanned", ds.images_dir)
    open_projects.append(project)
    assert scan_folder(project).added == 4
    report = import_coco(project, ds.json_path)
    assert (report.images_added, report.images_known) == (0, 4)
    assert len(project.images()) == 4
    assert helpers.project_masks(project) == ds.expected_masks()


def test_labels_made_on_a_copy_of_the_images_land_on_the_projects_own(
        make_dataset, tmp_path, helpers, open_projects):
    """The project is over one folder; the file was labelled on a copy of those images in
    another folder. Its labels go onto the project's images (the same files), not onto
    second copies that would count twice in training and show as new images."""
    import shutil

    from mrcnn.store.scan import scan_folder

    ds = make_dataset("polygon")
    mine = tmp_path / "mine"
    shutil.copytree(ds.images_dir, mine)
    project = Project.create(tmp_path / "project", mine)
    open_projects.append(project)
    assert scan_folder(project).added == 4
    report = import_coco(project, ds.json_path, images_dir=ds.images_dir)
    assert (report.images_added, report.images_known, report.images_same_content) == (0, 0, 4)
    assert len(project.images()) == 4
    assert helpers.project_masks(project) == ds.expected_masks()  # on the project's paths
    assert any("4 image(s) are already in the project under another path" in n
               for n in report.notes)


def test_empty_masks_are_skipped_and_reported(make_dataset, new_project, helpers):
    ds = make_dataset("cvat", photos=("chelsea",))
    coco = ds.copy()
    h, w = coco["images"][0]["height"], coco["images"][0]["width"]
    coco["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "iscrowd": 1,
                                "segmentation": {"size": [h, w], "counts": [h * w]}})
    project = new_project(ds.images_dir)
    report = import_coco(project, ds.write(coco))
    assert (report.annotations_added, report.empty_skipped) == (1, 1)
    assert helpers.project_masks(project) == ds.expected_masks()


def test_a_failure_while_writing_rolls_back_the_whole_import(make_dataset, new_project, helpers,
                                                             monkeypatch):
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, make_dataset("rle", photos=("chelsea",)).json_path)
    before = helpers.project_state(project)
    calls = Counter()
    real = Project.add_instance

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Project, "add_instance", failing)
    with pytest.raises(OSError, match="disk full"):
        import_coco(project, ds.json_path)
    assert calls["n"] == 5
    assert helpers.project_state(project) == before


# ---------------------------------------------------------------- bad files
def _missing(key, index=None, field=None):
    def mutate(ds, coco):
        if field is None:
            del coco[key]
        else:
            del coco[key][index][field]
        return coco, None
    return mutate


def _set(key, index, field, value):
    def mutate(ds, coco):
        coco[key][index][field] = value(ds, coco) if callable(value) else value
        return coco, None
    return mutate


def _duplicate(key):
    def mutate(ds, coco):
        coco[key][1]["id"] = coco[key][0]["id"]
        return coco, None
    return mutate


def _rle_size_mismatch(ds, coco):
    seg = coco["annotations"][0]["segmentation"]
    seg["size"] = [seg["size"][0] + 1, seg["size"][1]]
    return coco, None


def _rle_counts_wrong_sum(compressed):
    def mutate(ds, coco):
        from pycocotools import mask as cocomask

        ann = coco["annotations"][0]
        h, w = ann["segmentation"]["size"]
        if compressed:  # a real RLE of a mask one column narrower, claiming the full size
            m = np.zeros((h, w - 1), np.uint8, order="F")
            m[2:5, 2:5] = 1
            counts = cocomask.encode(m)["counts"].decode("ascii")
        else:  # CVAT-style counts with the last run 7 pixels too long
            m = cocomask.decode({"size": [h, w], "counts": ann["segmentation"]["counts"]})
            flat = m.flatten(order="F").astype(np.int8)
            counts = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]).tolist()
            counts = [0] * int(flat[0]) + counts[:-1] + [counts[-1] + 7]
        ann["segmentation"] = {"size": [h, w], "counts": counts}
        return coco, None
    return mutate


def _escape(ds, coco):
    outside = ds.images_dir.parent / "x.jpg"
    outside.write_bytes((ds.images_dir / coco["images"][1]["file_name"]).read_bytes())
    coco["images"][1]["file_name"] = "../x.jpg"
    return coco, None


def _absolute(ds, coco):
    coco["images"][1]["file_name"] = str(ds.images_dir / coco["images"][1]["file_name"])
    return coco, None


def _image_bytes(make_bytes):
    def mutate(ds, coco):
        path = ds.images_dir / coco["images"][0]["file_name"]
        path.write_bytes(make_bytes(path.read_bytes()))
        return coco, None
    return mutate


def _raw(data: bytes, match: str):
    def mutate(ds, coco):
        path = ds.images_dir / "bad.json"
        path.write_bytes(data)
        return path, match
    return mutate


def _too_large(ds, coco):
    coco_validate_limit = len(json.dumps(coco)) - 1
    return coco, coco_validate_limit


BAD = {
    # id: (mutation, regex the message must match; the file name is always checked too)
    "corrupt-json": (_raw(b'{"images": [{"id": 1, "file_name": "a.jpg"},', ""),
                     r"invalid JSON at line 1, column \d+"),
    "top-level-list": (_raw(b"[]", ""), "top level must be a JSON object"),
    "missing-images": (_missing("images"), r"top level: missing key 'images'"),
    "missing-categories": (_missing("categories"), r"top level: missing key 'categories'"),
    "image-missing-file_name": (_missing("images", 1, "file_name"),
                                r"images\[1\] \(id 2\): missing or empty 'file_name'"),
    "annotation-missing-id": (_missing("annotations", 2, "id"),
                              r"annotations\[2\]: missing key 'id'"),
    "annotation-missing-image_id": (_missing("annotations", 2, "image_id"),
                                    r"annotations\[2\] \(id 3\): missing key 'image_id'"),
    "annotation-missing-segmentation": (_missing("annotations", 2, "segmentation"),
                                        r"annotations\[2\] \(id 3\): missing key 'segmentation'"),
    "unknown-image": (_set("annotations", 3, "image_id", 99),
                      r"annotations\[3\] \(id 4\): image_id 99 is not in 'images'"),
    "unknown-category": (_set("annotations", 3, "category_id", 77),
                         r"annotations\[3\] \(id 4\): category_id 77 is not in 'categories'"),
    "rle-size-mismatch": (_rle_size_mismatch,
                          r"annotations\[0\] \(id 1\): bad segmentation: RLE size \[376, 500\] "
                          r"does not match image size \[375, 500\]"),
    "rle-counts-sum-compressed": (_rle_counts_wrong_sum(True),
                                  r"annotations\[0\] \(id 1\).*counts sum to \d+, not "
                                  r"height\*width = 187500"),
    "rle-counts-sum-uncompressed": (_rle_counts_wrong_sum(False),
                                    r"annotations\[0\] \(id 1\).*counts sum to 187507"),
    "polygon-2-points": (_set("annotations", 1, "segmentation", [[10, 10, 20, 20]]),
                         r"annotations\[1\] \(id 2\).*polygon has 2 points; at least 3"),
    "polygon-odd": (_set("annotations", 1, "segmentation", [[10, 10, 20, 20, 30, 5, 1]]),
                    r"annotations\[1\] \(id 2\).*odd number of coordinates"),
    "polygon-far-outside": (_set("annotations", 1, "segmentation", [[0, 0, 1e6, 0, 0, 9]]),
                            r"annotations\[1\] \(id 2\).*polygon point \(1e\+06, 0\) lies far "
                            r"outside the 500x375 image"),
    "negative-bbox": (_set("annotations", 4, "bbox", [-3, 4, 10, 10]),
                      r"annotations\[4\] \(id 5\): 'bbox' has a negative value"),
    "negative-bbox-size": (_set("annotations", 4, "bbox", [3, 4, -10, 10]),
                           r"annotations\[4\] \(id 5\): 'bbox' has a negative value"),
    "nan-bbox": (_set("annotations", 4, "bbox", [float("nan"), 4, 10, 10]),
                 r"annotations\[4\] \(id 5\): 'bbox' has a non-finite value"),
    "iscrowd-2": (_set("annotations", 4, "iscrowd", 2),
                  r"annotations\[4\] \(id 5\): 'iscrowd' must be 0 or 1"),
    "duplicate-image-id": (_duplicate("images"), r"images\[1\] \(id 1\): duplicate image id 1"),
    "duplicate-annotation-id": (_duplicate("annotations"),
                                r"annotations\[1\] \(id 1\): duplicate annotation id 1"),
    "duplicate-category-id": (_duplicate("categories"),
                              r"categories\[1\] \(id 1\): duplicate category id 1"),
    "string-image-id": (_set("images", 2, "id", "3"),
                        r"images\[2\]: 'id' must be an integer, got '3'"),
    "image-size-mismatch": (_set("images", 0, "width", 501),
                            r"images\[0\] \(id 1\): COCO gives size 501x375 but voc.jpg is "
                            r"500x375"),
    "file-name-escapes": (_escape, r"images\[1\] \(id 2\): file_name '\.\./x\.jpg' points "
                          r"outside the images folder"),
    "file-name-escapes-via-sub-folder": (
        _set("images", 1, "file_name", "sub/dir/../../../x.jpg"),
        r"images\[1\] \(id 2\): file_name 'sub/dir/\.\./\.\./\.\./x\.jpg' points outside"),
    "file-name-absolute": (_absolute, r"images\[1\] \(id 2\): file_name '/.*' is an absolute "
                           r"path"),
    "missing-image-file": (_set("images", 2, "file_name", "gone.jpg"),
                           r"images\[2\] \(id 3\): cannot read image .*gone\.jpg: file not found"),
    "truncated-jpeg": (_image_bytes(lambda b: b[: len(b) // 2]),
                       r"images\[0\] \(id 1\): cannot read image .*voc\.jpg: .*truncated"),
    "text-named-jpg": (_image_bytes(lambda b: b"just some notes, not a photo\n" * 20),
                       r"images\[0\] \(id 1\): cannot read image .*voc\.jpg: not a recognised "
                       r"image"),
    "zero-byte-image": (_image_bytes(lambda b: b""),
                        r"images\[0\] \(id 1\): cannot read image .*voc\.jpg: file is empty"),
    "non-utf8": (_raw(b'{"images": [], "categories": [{"id": 1, "name": "caf\xe9"}]}', ""),
                 r"not UTF-8 text \(byte 0xe9 at offset \d+\)"),
    "empty-file": (_raw(b"", ""), r"file is empty \(0 bytes\)"),
    "deeply-nested": (_raw(b"[" * 100_000, ""), "nested too deeply"),
    "deeply-nested-closed": (_raw(b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ""),
                             "nested too deeply"),
    "over-size-limit": (_too_large, r"file is [\d.]+ KiB, above the [\d.]+ KiB limit"),
}


@pytest.fixture
def seeded(make_dataset, new_project):
    """A project that already holds one imported file, and a dataset not yet imported."""
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    first = make_dataset("rle", photos=("chelsea",))
    import_coco(project, first.json_path, images_dir=first.images_dir)
    return project, ds


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_file_is_refused_clearly_and_changes_nothing(case, seeded, helpers, monkeypatch):
    project, ds = seeded
    mutate, pattern = BAD[case]
    before = helpers.project_state(project)
    result, extra = mutate(ds, ds.copy())
    if isinstance(result, Path):
        path = result
    else:
        path = ds.write(result, ds.images_dir / "bad.json")
    if case == "over-size-limit":
        monkeypatch.setattr(coco_validate, "MAX_COCO_BYTES", extra)
    with pytest.raises(CocoFormatError) as info:
        import_coco(project, path)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert str(path) in message
    assert "\n" not in message
    assert helpers.project_state(project) == before


def test_the_unmodified_file_is_valid(seeded, helpers):
    """The bad-file cases above all start from this file, which imports fine."""
    project, ds = seeded
    import_coco(project, ds.json_path)
    assert helpers.project_masks(project) >= ds.expected_masks()


def test_read_coco_json_max_bytes_and_missing_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"images": [], "categories": []}')
    assert read_coco_json(path) == {"images": [], "categories": []}
    with pytest.raises(CocoFormatError, match=r"file is 32 bytes, above the 10 bytes limit"):
        read_coco_json(path, max_bytes=10)
    with pytest.raises(CocoFormatError, match=r"no\.json: file not found"):
        read_coco_json(tmp_path / "no.json")
    with pytest.raises(CocoFormatError, match="cannot read"):
        read_coco_json(tmp_path)  # a folder


def test_annotation_on_the_background_category_is_refused(make_dataset, new_project, helpers):
    ds = make_dataset("labelme")
    coco = ds.copy()
    coco["annotations"][0]["category_id"] = 0
    project = new_project(ds.images_dir)
    with pytest.raises(CocoFormatError,
                       match=r"annotations\[0\] \(id 1\): category_id 0 is the background"):
        import_coco(project, ds.write(coco))
    assert project.summary()["instances"]["total"] == 0 and project.images() == []


def test_parse_coco_accepts_a_file_without_annotations():
    coco = parse_coco({"images": [{"id": 1, "file_name": "a.jpg"}],
                       "categories": [{"id": 3, "name": " dog "}]}, "x.json")
    assert coco.annotations == [] and coco.categories == {3: "dog"}
