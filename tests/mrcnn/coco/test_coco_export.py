"""COCO export: exact round trips, files that pycocotools and torchvision accept, atomic writes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as cocomask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy import ndimage

from mrcnn import masks
from mrcnn.coco import io as coco_io
from mrcnn.coco.io import build_coco, export_coco, import_coco
from mrcnn.errors import CocoFormatError
from mrcnn.store.project import Project

MODES = ("rle", "polygon")


def _has_hole(mask: np.ndarray) -> bool:
    return bool((ndimage.binary_fill_holes(mask) != mask).any())


def _load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.fixture
def imported(make_dataset, new_project):
    """A project holding the sample photos' annotations (reviewed), and the dataset."""
    ds = make_dataset("rle")
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    return project, ds


# ---------------------------------------------------------------- round trip (property)
def _mask_strategy(h: int, w: int):
    box = st.tuples(st.integers(0, h - 1), st.integers(0, w - 1),
                    st.integers(1, h), st.integers(1, w))

    @st.composite
    def shapes(draw) -> np.ndarray:
        """Union of boxes with boxes cut out: several parts and holes."""
        m = np.zeros((h, w), bool)
        for y, x, bh, bw in draw(st.lists(box, min_size=1, max_size=4)):
            m[y:y + bh, x:x + bw] = True
        for y, x, bh, bw in draw(st.lists(box, max_size=3)):
            m[y:y + max(1, bh // 3), x:x + max(1, bw // 3)] = False
        return m

    noise = st.binary(min_size=(h * w + 7) // 8, max_size=(h * w + 7) // 8).map(
        lambda b: np.unpackbits(np.frombuffer(b, np.uint8))[: h * w].reshape(h, w).astype(bool))
    return st.one_of(shapes(), noise).map(_nonempty)


def _nonempty(m: np.ndarray) -> np.ndarray:
    if not m.any():
        m[m.shape[0] // 2, m.shape[1] // 2] = True
    return m


@st.composite
def _datasets(draw):
    """1-3 images of random sizes, each with 1-4 masks of random categories."""
    images = []
    for _ in range(draw(st.integers(1, 3))):
        h, w = draw(st.integers(3, 40)), draw(st.integers(3, 40))
        anns = [(draw(st.sampled_from(["cat", "dog", "bird"])), draw(_mask_strategy(h, w)),
                 draw(st.sampled_from(["rle", "uncompressed"])))
                for _ in range(draw(st.integers(1, 4)))]
        images.append((h, w, anns))
    return images


def _write_dataset(folder: Path, images, helpers) -> tuple[Path, Counter, int]:
    """Write the images (PNG, some in a sub-folder) and a COCO file over them.

    Returns (json path, expected masks, repeats): an instance repeated on one image (same
    category, same pixels) is one instance, held once in the expected masks; repeats counts
    the extra copies, which import reports as duplicates."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(images))
    coco = {"images": [], "annotations": [], "categories": []}
    cats: dict[str, int] = {}
    written = Counter()
    for i, (h, w, anns) in enumerate(images, start=1):
        name = f"d{i % 2}/img{i}.png"
        (folder / name).parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(folder / name)
        coco["images"].append({"id": i, "file_name": name, "width": w, "height": h})
        for cat, m, encoding in anns:
            cats.setdefault(cat, len(cats) + 1)
            seg = helpers.compressed_rle(m) if encoding == "rle" else helpers.uncompressed_rle(m)
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i,
                                        "category_id": cats[cat], "segmentation": seg,
                                        "iscrowd": int(encoding != "rle")})
            written[(name, cat, helpers.mask_key(m))] += 1
    coco["categories"] = [{"id": v, "name": k} for k, v in cats.items()]
    (folder / "in.json").write_text(json.dumps(coco))
    return folder / "in.json", Counter(set(written)), sum(written.values()) - len(written)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(images=_datasets())
def test_import_export_import_is_pixel_identical(images, tmp_path_factory, helpers):
    """Random masks (holes, several parts, noise) on random image sizes survive
    import -> export (RLE and polygon) -> import into a fresh project, pixel for pixel."""
    base = tmp_path_factory.mktemp("roundtrip")
    json_path, expected, repeats = _write_dataset(base / "images", images, helpers)
    with Project.create(base / "a", base / "images") as a:
        first = import_coco(a, json_path)
        assert first.duplicates_skipped == repeats
        assert helpers.project_masks(a) == expected
        reports = {mode: export_coco(a, base / f"{mode}.json", mask_format=mode)
                   for mode in MODES}
    for mode, report in reports.items():
        out = json.loads((base / f"{mode}.json").read_text())
        segs = [ann["segmentation"] for ann in out["annotations"]]
        rle_written = sum(isinstance(s, dict) for s in segs)
        if mode == "polygon":
            # Every mask a polygon cannot hold (any hole) falls back to RLE, and is counted.
            assert report.rle_fallbacks == rle_written
            for ann, seg in zip(out["annotations"], segs, strict=True):
                im = out["images"][ann["image_id"] - 1]
                if _has_hole(helpers.rasterize(seg, im["height"], im["width"])):
                    assert isinstance(seg, dict)
        else:
            assert (report.rle_fallbacks, rle_written) == (0, len(segs))
        with Project.create(base / f"b-{mode}", base / "images") as b:
            import_coco(b, base / f"{mode}.json", images_dir=out["info"]["images_root"])
            assert helpers.project_masks(b) == expected, mode


@pytest.mark.parametrize("mode", MODES)
def test_sample_photos_round_trip_and_polygons_are_used_where_exact(mode, imported, helpers,
                                                                    new_project, tmp_path):
    project, ds = imported
    report = export_coco(project, tmp_path / "out.json", mask_format=mode)
    out = json.loads((tmp_path / "out.json").read_text())
    by_cat = {c["id"]: c["name"] for c in out["categories"]}
    kinds = {by_cat[a["category_id"]]: type(a["segmentation"]) for a in out["annotations"]
             if by_cat[a["category_id"]] in ("ring", "cat")}
    if mode == "polygon":
        assert kinds == {"ring": dict, "cat": list}  # the ring has a hole; the box has none
        assert report.rle_fallbacks == sum(isinstance(a["segmentation"], dict)
                                           for a in out["annotations"]) >= 1
    else:
        assert kinds == {"ring": dict, "cat": dict} and report.rle_fallbacks == 0
    again = new_project(ds.images_dir)
    import_coco(again, tmp_path / "out.json", images_dir=ds.images_dir)
    assert helpers.project_masks(again) == ds.expected_masks()


# ---------------------------------------------------------------- other tools accept the file
@pytest.mark.parametrize("mode", MODES)
def test_export_scores_ap_1_against_itself_in_cocoeval(mode, imported, tmp_path):
    project, _ = imported
    export_coco(project, tmp_path / "out.json", mask_format=mode)
    gt = _load(tmp_path / "out.json")
    assert len(gt.getAnnIds()) == project.summary()["instances"]["accepted"] > 20
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": gt.annToRLE(a), "score": 1.0} for a in gt.dataset["annotations"]]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets)
        for iou_type in ("bbox", "segm"):
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ev.stats[0] == pytest.approx(1.0), iou_type  # AP@[.5:.95]
            assert ev.stats[1] == pytest.approx(1.0), iou_type  # AP@.5
            assert ev.stats[8] == pytest.approx(1.0), iou_type  # AR@100


@pytest.mark.parametrize("mode", MODES)
def test_export_loads_in_torchvision_with_every_mask(mode, imported, tmp_path):
    import torch
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

    project, _ = imported
    export_coco(project, tmp_path / "out.json", mask_format=mode)
    with contextlib.redirect_stdout(io.StringIO()):
        ds = wrap_dataset_for_transforms_v2(
            CocoDetection(str(project.images_root), str(tmp_path / "out.json")),
            target_keys=("boxes", "labels", "masks"))
    assert len(ds) == len(project.images())
    seen = 0
    for idx, image_id in enumerate(ds.ids):
        img, target = ds[idx]
        insts = project.instances(image_id, state="accepted")
        if not insts:
            assert "masks" not in target
            continue
        h, w = project.image(image_id).height, project.image(image_id).width
        assert tuple(img.size) == (w, h)
        assert target["masks"].shape == (len(insts), h, w)
        for m, inst in zip(target["masks"], insts, strict=True):
            assert np.array_equal(m.numpy().astype(bool), inst.rle.decode())
        assert target["labels"].tolist() == [i.category_id for i in insts]
        x, y, bw, bh = (torch.tensor([i.bbox for i in insts], dtype=torch.float32)).unbind(1)
        assert torch.equal(target["boxes"].as_subclass(torch.Tensor),
                           torch.stack([x, y, x + bw, y + bh], 1))
        seen += len(insts)
    assert seen == project.summary()["instances"]["accepted"]


# ---------------------------------------------------------------- what the file says
def test_ids_start_at_1_no_background_iscrowd_0_and_box_area_from_the_mask(
        make_dataset, new_project, tmp_path, helpers):
    ds = make_dataset("labelme")  # category 0 is `_background_`
    cvat = make_dataset("cvat", photos=("astronaut",))  # iscrowd 1
    project = new_project(ds.images_dir)
    import_coco(project, ds.json_path)
    import_coco(project, cvat.json_path)
    for mode in MODES:
        report = export_coco(project, tmp_path / f"{mode}.json", mask_format=mode)
        coco = _load(tmp_path / f"{mode}.json")
        d = coco.dataset
        assert [im["id"] for im in d["images"]] == list(range(1, len(d["images"]) + 1))
        assert [c["id"] for c in d["categories"]] == list(range(1, len(d["categories"]) + 1))
        assert [a["id"] for a in d["annotations"]] == list(range(1, len(d["annotations"]) + 1))
        names = [c["name"] for c in d["categories"]]
        assert "_background_" not in names and len(names) == len(set(names))
        assert (report.images, report.annotations, report.categories) == (
            len(d["images"]), len(d["annotations"]), len(d["categories"]))
        for a in d["annotations"]:
            assert a["iscrowd"] == 0
            rle = coco.annToRLE(a)
            assert a["area"] == int(cocomask.area(rle))
            assert a["bbox"] == cocomask.toBbox(rle).tolist()
            assert a["source"] == "manual" and "score" not in a
        # Every file name resolves against the exported images root.
        root = Path(d["info"]["images_root"])
        assert all((root / im["file_name"]).is_file() for im in d["images"])


def test_ids_are_stable_across_exports_and_pending_predictions_stay_out(imported, tmp_path):
    project, _ = imported
    first, _ = build_coco(project)
    v1 = project.add_model_version("models/v1.pt", "r18", activate=True)
    img = project.images()[0]
    m = np.zeros((img.height, img.width), bool)
    m[:5, :5] = True
    accepted = project.add_instance(img.id, 1, masks.encode(m), source="model",
                                    model_version_id=v1.id, score=0.875)
    project.add_instance(img.id, 1, masks.encode(~m), source="model", model_version_id=v1.id,
                         score=0.5, state="pending")
    second, _ = build_coco(project)
    assert second["images"] == first["images"]
    assert second["categories"] == first["categories"]
    assert second["annotations"][:-1] == first["annotations"]
    extra = second["annotations"][-1]
    assert (extra["id"], extra["source"], extra["score"], extra["model_version"]) == (
        accepted.id, "model", 0.875, "v1")


def test_reviewed_only_exports_only_reviewed_images(imported, tmp_path):
    project, _ = imported
    reviewed = project.images("reviewed")
    project.set_image_status(reviewed[0].id, "in_review")
    report = export_coco(project, tmp_path / "r.json", reviewed_only=True)
    d = json.loads((tmp_path / "r.json").read_text())
    keep = {im.id for im in reviewed[1:]}
    assert {im["id"] for im in d["images"]} == keep
    assert {a["image_id"] for a in d["annotations"]} == keep
    assert report.annotations == len([i for i in project.instances(state="accepted")
                                      if i.image_id in keep])
    everything = export_coco(project, tmp_path / "all.json")
    assert everything.images == 4 and everything.annotations > report.annotations


def test_an_export_of_reviewed_images_only_says_what_it_left_out(imported, tmp_path):
    """A user who drew instances but reviewed no image exported 'nothing' with no word why."""
    from mrcnn.coco.formats import export_dataset

    project, _ = imported
    reviewed = project.images("reviewed")
    assert export_dataset(project, tmp_path / "a.json", reviewed_only=True).notes == []
    for im in reviewed[:2]:
        project.set_image_status(im.id, "in_review")
    left = sum(len(project.instances(im.id, state="accepted")) for im in reviewed[:2])
    report = export_dataset(project, tmp_path / "r.json", reviewed_only=True)
    assert report.notes == [f"left out {left} accepted instances on 2 images not yet "
                            "reviewed (reviewed images only)"]
    assert export_dataset(project, tmp_path / "all.json").notes == []  # nothing left out


# ---------------------------------------------------------------- atomic writes
class _LossyCOCO(COCO):
    """Reloads the written file but loses an annotation, as a broken writer would."""

    def __init__(self, path):
        super().__init__(path)
        self.dataset["annotations"].pop(0)
        self.createIndex()


def _crashing_coco(path):
    raise AssertionError("annotation file format not supported")


@pytest.mark.parametrize("fake", [_LossyCOCO, _crashing_coco], ids=["lossy", "unreadable"])
def test_failed_verification_keeps_the_previous_file(fake, imported, tmp_path, monkeypatch):
    project, _ = imported
    out = tmp_path / "exports" / "out.json"
    out.parent.mkdir()
    export_coco(project, out)
    previous = out.read_bytes()
    project.add_category("new-category")  # the next export would differ
    monkeypatch.setattr(coco_io, "COCO", fake)
    with pytest.raises(CocoFormatError, match=r"out\.json.*previous file was kept"):
        export_coco(project, out)
    assert out.read_bytes() == previous
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.json"]  # no temp file left


def test_export_file_permissions_are_those_of_any_new_file_or_the_replaced_one(imported,
                                                                                tmp_path):
    """Not tempfile's private 0600: others on the machine (a training server, a web viewer)
    must be able to read an export as they can read any file this user makes."""
    project, _ = imported
    umask = os.umask(0o022)
    try:
        export_coco(project, tmp_path / "new.json")
        (tmp_path / "plain.txt").write_text("x")
        assert _mode(tmp_path / "new.json") == _mode(tmp_path / "plain.txt") == 0o644
        os.chmod(tmp_path / "new.json", 0o640)
        export_coco(project, tmp_path / "new.json", mask_format="polygon")
        assert _mode(tmp_path / "new.json") == 0o640
    finally:
        os.umask(umask)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_export_refuses_a_folder_or_a_missing_folder(imported, tmp_path):
    project, _ = imported
    with pytest.raises(CocoFormatError, match="is a folder"):
        export_coco(project, tmp_path)
    with pytest.raises(CocoFormatError, match="does not exist"):
        export_coco(project, tmp_path / "nope" / "out.json")
    with pytest.raises(ValueError, match="mask format"):
        export_coco(project, tmp_path / "out.json", mask_format="bitmap")
    assert not (tmp_path / "out.json").exists()


def test_our_export_imported_again_gives_the_same_statuses(tmp_path):
    """A reviewed image with no objects is a true negative: our export, imported into a new
    project over the same images, keeps it reviewed (and every other status as it was)."""
    from mrcnn.store.scan import scan_folder

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("empty_reviewed", "reviewed", "in_review", "new"):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
            images / f"{name}.png")
    with Project.create(tmp_path / "a", images) as a:
        scan_folder(a)
        cat = a.add_category("thing").id
        ids = {Path(im.path).stem: im.id for im in a.images()}
        mask = np.zeros((40, 50), bool)
        mask[5:20, 10:30] = True
        for name in ("reviewed", "in_review"):
            a.add_instance(ids[name], cat, masks.encode(mask))
        a.set_image_status(ids["empty_reviewed"], "reviewed")
        a.set_image_status(ids["reviewed"], "reviewed")
        a.set_image_status(ids["in_review"], "in_review")
        before = {Path(im.path).stem: im.status for im in a.images()}
        export_coco(a, tmp_path / "out.json")
    with Project.create(tmp_path / "b", images) as b:
        import_coco(b, tmp_path / "out.json", images_dir=images)
        after = {Path(im.path).stem: im.status for im in b.images()}
        assert after == before == {"empty_reviewed": "reviewed", "reviewed": "reviewed",
                                   "in_review": "in_review", "new": "new"}


def test_a_bad_status_in_an_image_record_is_refused_by_name(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8,
                        "status": "done"}], "annotations": [], "categories": []}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with Project.create(tmp_path / "p", images) as p:
        with pytest.raises(CocoFormatError, match=r"images\[0\].*'status'.*'done'"):
            import_coco(p, tmp_path / "bad.json", images_dir=images)
        assert p.images() == []
