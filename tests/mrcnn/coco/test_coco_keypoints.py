"""COCO keypoints in and out: exports pycocotools scores as perfect, round trips keep every
triplet, files from other tools import, and bad keypoints are refused naming the record with
nothing imported."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn import masks
from mrcnn.coco.formats import KEYPOINTS_LOST, export_dataset
from mrcnn.coco.io import build_coco, export_coco, import_coco
from mrcnn.errors import CocoFormatError
from mrcnn.keypoints import COCO_PERSON, KeypointSchema, oks_sigmas

W, H = 160, 120
TRIANGLE = KeypointSchema(("tip", "left_base", "right_base"), ((0, 1), (1, 2), (2, 0)))


def _load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.fixture
def images_dir(tmp_path) -> Path:
    """Two small noise photos, a.png and b.png (W x H)."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _box(x0: int, y0: int, x1: int, y1: int) -> masks.Rle:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return masks.encode(m)


def _add_images(project, images_dir: Path) -> list[int]:
    ids = []
    for name in ("a.png", "b.png"):
        path = images_dir / name
        ids.append(project.add_image(path, W, H, hashlib.sha256(path.read_bytes()).hexdigest(),
                                     status="reviewed").id)
    return ids


def _points(schema: KeypointSchema, x0: float, y0: float, seed: int, *, hidden=(),
            occluded=()) -> list[tuple[float, float, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(schema.size):
        if i in hidden:
            out.append((0.0, 0.0, 0))
        else:
            out.append((round(x0 + float(rng.uniform(0, 40)), 2),
                        round(y0 + float(rng.uniform(0, 50)), 2), 1 if i in occluded else 2))
    return out


@pytest.fixture
def labelled(new_project, images_dir):
    """Factory: a project with one category `schema` gives (and a plain one), three instances
    of it with points (some hidden, some occluded, one point outside its mask's box) and one
    without, and a plain instance."""

    def make(schema: KeypointSchema, name: str = "person"):
        project = new_project(images_dir)
        a, b = _add_images(project, images_dir)
        cat = project.add_category(name)
        project.set_category_keypoints(cat.id, schema)
        plain = project.add_category("ball")
        given = {}
        for image_id, box, seed, kw in (
                (a, (10, 10, 60, 70), 1, {"hidden": (1,)}),
                (a, (80, 20, 130, 100), 2, {"occluded": (0, 2)}),
                (b, (30, 30, 90, 110), 3, {})):
            points = _points(schema, box[0], box[1], seed, **kw)
            inst = project.add_instance(image_id, cat.id, _box(*box), keypoints=points)
            given[inst.id] = points
        # a point well outside the mask's box (still inside the image)
        last = max(given)
        moved = list(given[last])
        moved[-1] = (150.5, 5.25, 2)
        project.set_instance_keypoints(last, moved)
        given[last] = moved
        bare = project.add_instance(b, cat.id, _box(100, 10, 140, 40)).id
        ball = project.add_instance(b, plain.id, _box(5, 80, 25, 100)).id
        return project, given, bare, ball

    return make


def _flat(points) -> list[float]:
    return [c for x, y, v in points for c in ((0, 0, 0) if v == 0 else (x, y, v))]


# ---------------------------------------------------------------- export
@pytest.mark.parametrize("schema", [COCO_PERSON, TRIANGLE], ids=["coco-person", "triangle"])
def test_export_scores_perfectly_in_pycocotools(schema, labelled, tmp_path):
    project, given, _bare, _ball = labelled(schema)
    out = tmp_path / "kp.json"
    export_coco(project, out)
    gt = _load(out)
    person = next(c for c in gt.dataset["categories"] if c["name"] == "person")
    assert person["keypoints"] == list(schema.names)
    assert person["skeleton"] == schema.coco_skeleton()
    results = [{"image_id": a["image_id"], "category_id": a["category_id"],
                "keypoints": a["keypoints"], "score": 1.0}
               for a in gt.dataset["annotations"] if a["category_id"] == person["id"]]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.catIds = [person["id"]]
        ev.params.kpt_oks_sigmas = np.array(oks_sigmas(schema.names))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_export_writes_triplets_counts_and_the_masks_box(labelled):
    project, given, bare, ball = labelled(TRIANGLE)
    coco, _ = build_coco(project)
    by_id = {a["id"]: a for a in coco["annotations"]}
    for iid, points in given.items():
        a = by_id[iid]
        assert a["keypoints"] == _flat(points)
        assert a["num_keypoints"] == sum(v > 0 for _, _, v in points)
        inst = project.instance(iid)
        assert a["bbox"] == list(inst.bbox) and a["area"] == inst.area  # the mask's, always
    # the moved point lies outside its mask's box, the box did not grow
    last = by_id[max(given)]
    x, y, w, h = last["bbox"]
    assert not (x <= 150.5 <= x + w and y <= 5.25 <= y + h)
    # hidden points are 0, 0, 0 (never the coordinates they were given)
    assert by_id[min(given)]["keypoints"][3:6] == [0, 0, 0]
    assert (by_id[bare]["keypoints"], by_id[bare]["num_keypoints"]) == ([0] * 9, 0)
    assert "keypoints" not in by_id[ball] and "num_keypoints" not in by_id[ball]
    ball_cat = next(c for c in coco["categories"] if c["name"] == "ball")
    assert "keypoints" not in ball_cat and "skeleton" not in ball_cat


# ---------------------------------------------------------------- round trip
def test_round_trip_keeps_every_triplet(labelled, new_project, images_dir, tmp_path):
    project, given, _bare, _ball = labelled(COCO_PERSON)
    first = tmp_path / "first.json"
    export_coco(project, first)
    other = new_project(images_dir)
    report = import_coco(other, first, images_dir=images_dir)
    assert report.annotations_added == 5 and report.notes == []
    assert other.category_by_name("person").keypoints == COCO_PERSON
    assert other.category_by_name("ball").keypoints is None
    second = tmp_path / "second.json"
    export_coco(other, second)
    a, b = (json.loads(p.read_text()) for p in (first, second))

    def triplets(coco):
        return sorted((a["image_id"], a["bbox"], a["area"], a.get("keypoints"),
                       a.get("num_keypoints")) for a in coco["annotations"])

    assert triplets(a) == triplets(b)
    assert [c.get("keypoints") for c in a["categories"]] == [
        c.get("keypoints") for c in b["categories"]]
    assert [c.get("skeleton") for c in a["categories"]] == [
        c.get("skeleton") for c in b["categories"]]
    for ann in b["annotations"]:
        if "keypoints" in ann:
            assert ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3])
    # an instance without points comes back without points (all zeros in the file)
    assert sum(i.keypoints is None for i in other.instances()) == 2


def _keypoint_file(images_dir: Path) -> dict:
    """A file as other tools write it: polygons, iscrowd 0, num_keypoints, a plain category."""
    poly = [[10, 10, 60, 10, 60, 70, 10, 70]]
    return {
        "info": {"description": "CVAT"}, "licenses": [],
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                   {"id": 2, "file_name": "b.png", "width": W, "height": H}],
        "categories": [
            {"id": 1, "name": "triangle", "supercategory": "",
             "keypoints": ["tip", "left_base", "right_base"], "skeleton": [[1, 2], [2, 3]]},
            {"id": 2, "name": "ball", "supercategory": ""}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": poly, "area": 2500,
             "bbox": [10, 10, 50, 60], "iscrowd": 0, "attributes": {"occluded": False},
             "keypoints": [20, 15, 2, 12.5, 60, 1, 0, 0, 0], "num_keypoints": 2},
            {"id": 2, "image_id": 2, "category_id": 1,
             "segmentation": [[30, 30, 90, 30, 90, 100, 30, 100]], "area": 4200,
             "bbox": [30, 30, 60, 70], "iscrowd": 0,
             "keypoints": [40, 40, 2, 35, 95, 2, 85, 95, 2], "num_keypoints": 3},
            {"id": 3, "image_id": 2, "category_id": 2,
             "segmentation": [[5, 80, 25, 80, 25, 100, 5, 100]], "area": 400,
             "bbox": [5, 80, 20, 20], "iscrowd": 0},
        ],
    }


def test_v0_points_are_stored_as_zeros_and_num_keypoints_is_recomputed(
        new_project, images_dir, tmp_path):
    coco = _keypoint_file(images_dir)
    coco["annotations"][0]["keypoints"][6:9] = [33, 44, 0]  # not labelled, but placed
    coco["annotations"][1]["num_keypoints"] = 17  # another tool's mistake
    path = images_dir / "kp.json"
    path.write_text(json.dumps(coco))
    project = new_project(images_dir)
    report = import_coco(project, path)
    assert report.annotations_added == 3
    assert any("num_keypoints" in n and "recomputed" in n and "(id 2)" in n
               for n in report.notes), report.notes
    out = tmp_path / "out.json"
    export_coco(project, out)
    back = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    kp = sorted((a["keypoints"], a["num_keypoints"]) for a in back.values() if "keypoints" in a)
    assert kp == sorted([([20, 15, 2, 12.5, 60, 1, 0, 0, 0], 2),
                         ([40, 40, 2, 35, 95, 2, 85, 95, 2], 3)])


def test_cvat_style_person_keypoints_file_imports(new_project, images_dir):
    coco = _keypoint_file(images_dir)
    coco["categories"][0] = {"id": 1, "name": "person", "supercategory": "",
                             "keypoints": list(COCO_PERSON.names),
                             "skeleton": [list(p) for p in COCO_PERSON.coco_skeleton()]}
    flat = [v for i in range(17) for v in ((15 + 2 * i, 12 + 3 * i, 2) if i % 4 else (0, 0, 0))]
    for a in coco["annotations"][:2]:
        a["keypoints"], a["num_keypoints"] = flat, sum(v > 0 for v in flat[2::3])
    path = images_dir / "person_keypoints_default.json"
    path.write_text(json.dumps(coco))
    project = new_project(images_dir)
    report = import_coco(project, path)
    assert (report.annotations_added, report.categories_added, report.notes) == (3, 2, [])
    person = project.category_by_name("person")
    assert person.keypoints == COCO_PERSON
    stored = [i.keypoints for i in project.instances() if i.category_id == person.id]
    assert len(stored) == 2 and all(
        [c for p in s for c in p] == [float(v) if k % 3 < 2 else v for k, v in enumerate(flat)]
        for s in stored)


def test_existing_category_without_schema_gets_the_files(new_project, images_dir):
    project = new_project(images_dir)
    project.add_category("triangle")
    path = images_dir / "kp.json"
    path.write_text(json.dumps(_keypoint_file(images_dir)))
    report = import_coco(project, path)
    assert project.category_by_name("triangle").keypoints.names == (
        "tip", "left_base", "right_base")
    assert any("triangle" in n for n in report.notes)


def test_reimport_gives_keypoints_to_the_same_objects_already_there(new_project, images_dir):
    """Exported without keypoints, labelled with points elsewhere, imported back: the points
    reach the instances (same mask), nothing is duplicated."""
    coco = _keypoint_file(images_dir)
    bare = copy.deepcopy(coco)
    for c in bare["categories"]:
        c.pop("keypoints", None), c.pop("skeleton", None)
    for a in bare["annotations"]:
        a.pop("keypoints", None), a.pop("num_keypoints", None)
    (images_dir / "bare.json").write_text(json.dumps(bare))
    (images_dir / "kp.json").write_text(json.dumps(coco))
    project = new_project(images_dir)
    import_coco(project, images_dir / "bare.json")
    report = import_coco(project, images_dir / "kp.json")
    assert (report.annotations_added, report.duplicates_skipped) == (0, 3)
    assert sum(i.keypoints is not None for i in project.instances()) == 2
    assert any("received the file's keypoints" in n for n in report.notes)


# ---------------------------------------------------------------- other formats
@pytest.mark.parametrize("fmt", ["yolo-seg", "masks", "labelme", "voc"])
def test_formats_without_keypoints_export_and_say_so(fmt, labelled, tmp_path):
    project, given, _bare, _ball = labelled(TRIANGLE)
    report = export_dataset(project, tmp_path / "out", fmt)
    assert report.losses[KEYPOINTS_LOST] == len(given)
    assert any("keypoints" in n for n in report.notes)
    coco_report = export_dataset(project, tmp_path / "out.json", "coco")
    assert KEYPOINTS_LOST not in coco_report.losses


# ---------------------------------------------------------------- hostile inputs
def _set(*path_and_value):
    *path, key, value = path_and_value

    def change(coco):
        target = coco
        for p in path:
            target = target[p]
        target[key] = value
    return change


def _conflict(project):
    cat = project.add_category("triangle")
    project.set_category_keypoints(cat.id, KeypointSchema(("a", "b", "c", "d")))


KP = ("annotations", 0, "keypoints")
HOSTILE = {
    "too-few-numbers": (_set(*KP, [20, 15, 2, 12, 60, 1, 0, 0]),
                        r"annotations\[0\] \(id 1\): keypoints: 8 numbers where 3 keypoints "
                        r"need 9"),
    "triplets-of-another-schema": (_set(*KP, [1, 1, 2] * 17),
                                   r"annotations\[0\] \(id 1\).*51 numbers where 3"),
    "visibility-3": (_set(*KP, [20, 15, 3, 12, 60, 1, 0, 0, 0]),
                     r"annotations\[0\] \(id 1\).*'tip' has visibility 3"),
    "visibility-negative": (_set(*KP, [20, 15, 2, 12, 60, -1, 0, 0, 0]),
                            r"annotations\[0\] \(id 1\).*'left_base' has visibility -1"),
    "visibility-fraction": (_set(*KP, [20, 15, 1.5, 12, 60, 1, 0, 0, 0]),
                            r"annotations\[0\] \(id 1\).*visibility 1\.5"),
    "nan-coordinate": (_set(*KP, [float("nan"), 15, 2, 12, 60, 1, 0, 0, 0]),
                       r"annotations\[0\] \(id 1\): keypoint 'tip' has a non-finite"),
    "infinite-coordinate": (_set(*KP, [20, 15, 2, 12, float("inf"), 1, 0, 0, 0]),
                            r"annotations\[0\] \(id 1\): keypoint 'left_base' has a non-finite"),
    "huge-integer": (_set(*KP, [20, 15, 2, 10**400, 60, 1, 0, 0, 0]),
                     r"annotations\[0\] \(id 1\): keypoint 'left_base'.*401-digit"),
    "string-value": (_set(*KP, [20, "15", 2, 12, 60, 1, 0, 0, 0]),
                     r"annotations\[0\] \(id 1\): 'keypoints' value 1 is '15'"),
    "keypoints-not-a-list": (_set(*KP, {"x": 1}),
                             r"annotations\[0\] \(id 1\): 'keypoints' must be a flat list"),
    "outside-right": (_set(*KP, [W + 0.5, 15, 2, 12, 60, 1, 0, 0, 0]),
                      r"annotations\[0\] \(id 1\): keypoint 'tip' \(160\.5, 15\) lies outside "
                      r"the 160x120 image"),
    "outside-below-occluded": (_set(*KP, [20, 15, 2, 12, H + 3, 1, 0, 0, 0]),
                               r"annotations\[0\] \(id 1\): keypoint 'left_base' \(12, 123\) "
                               r"lies outside the 160x120 image"),
    "negative": (_set(*KP, [-1, 15, 2, 12, 60, 1, 0, 0, 0]),
                 r"annotations\[0\] \(id 1\).*'tip' lies outside the image"),
    "skeleton-zero-based": (_set("categories", 0, "skeleton", [[0, 1], [1, 2]]),
                            r"categories\[0\] \(id 1\): 'skeleton' pair \[0, 1\] must join "
                            r"keypoints numbered 1\.\.3"),
    "skeleton-beyond": (_set("categories", 0, "skeleton", [[1, 2], [2, 4]]),
                        r"categories\[0\] \(id 1\): 'skeleton' pair \[2, 4\] must join"),
    "skeleton-not-pairs": (_set("categories", 0, "skeleton", [[1, 2, 3]]),
                           r"categories\[0\] \(id 1\): 'skeleton' pair \[1, 2, 3\] must be two"),
    "skeleton-self": (_set("categories", 0, "skeleton", [[2, 2]]),
                      r"categories\[0\] \(id 1\): 'skeleton' pair \[2, 2\] joins a keypoint "
                      r"to itself"),
    "names-repeated": (_set("categories", 0, "keypoints", ["tip", "base", "base"]),
                       r"categories\[0\] \(id 1\): 'keypoints' names must be unique: 'base'"),
    "names-not-strings": (_set("categories", 0, "keypoints", ["tip", 2, "base"]),
                          r"categories\[0\] \(id 1\): 'keypoints' names must be non-empty "
                          r"strings, got 2"),
    "names-not-a-list": (_set("categories", 0, "keypoints", "tip,base"),
                         r"categories\[0\] \(id 1\): 'keypoints' must be a list of names"),
    "skeleton-without-names": (_set("categories", 1, "skeleton", [[1, 2]]),
                               r"categories\[1\] \(id 2\): 'skeleton' given without"),
    "keypoints-on-plain-category": (_set("annotations", 2, "keypoints", [1, 1, 2]),
                                    r"annotations\[2\] \(id 3\): has 'keypoints' but its "
                                    r"category has no 'keypoints' list"),
    "project-has-another-schema": (_conflict,
                                   r"category id 1: category 'triangle' already has another "
                                   r"keypoint schema in the project: the project's has 4 "
                                   r"keypoints \(a, b, c, d\), the file's 3"),
}


@pytest.fixture
def seeded(new_project, images_dir, helpers):
    """A project already holding keypoints (another category), and a good file not yet in."""
    project = new_project(images_dir)
    a = _add_images(project, images_dir)[0]
    star = project.add_category("star")
    project.set_category_keypoints(star.id, KeypointSchema(("centre",)))
    project.add_instance(a, star.id, _box(100, 5, 120, 25), keypoints=[(110, 15, 2)])
    return project, _keypoint_file(images_dir)


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_keypoints_are_refused_naming_the_record(case, seeded, images_dir, helpers):
    project, coco = seeded
    change, pattern = HOSTILE[case]
    if change is _conflict:
        change(project)
    else:
        change(coco)
    before = helpers.project_state(project)
    path = images_dir / "bad.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(CocoFormatError) as info:
        import_coco(project, path)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert str(path) in message and "\n" not in message
    assert helpers.project_state(project) == before


def test_the_unmodified_keypoint_file_is_valid(seeded, images_dir):
    """The hostile cases above all start from this file, which imports fine."""
    project, coco = seeded
    path = images_dir / "good.json"
    path.write_text(json.dumps(coco))
    report = import_coco(project, path)
    assert report.annotations_added == 3 and report.notes == []
    assert sum(i.keypoints is not None for i in project.instances()) == 3
