"""COCO import and export (and prediction results files): the one boundary between COCO
files and the project store.

COCO conventions (1-based ids, xywh boxes, RLE or polygons) live in files; the store keeps
masks as compressed RLE with bbox and area derived from them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pycocotools.coco import COCO

from mrcnn import masks
from mrcnn.coco.ids import file_category_ids, file_image_ids
from mrcnn.coco.validate import CocoFile, parse_coco, read_coco_json
from mrcnn.errors import CocoFormatError, ImageReadError
from mrcnn.io.atomic import write_atomic
from mrcnn.io.images import ImageInfo, verify_image
from mrcnn.store.project import Project
from mrcnn.store.status import after_import

IMPORT_STATUSES = ("reviewed", "in_review")
MASK_FORMATS = ("rle", "polygon")


@dataclass
class ImportReport:
    images_added: int = 0
    images_known: int = 0
    categories_added: int = 0
    annotations_added: int = 0
    duplicates_skipped: int = 0
    empty_skipped: int = 0
    images_marked: int = 0
    status: str = "reviewed"


@dataclass
class ExportReport:
    path: Path
    images: int = 0
    annotations: int = 0
    categories: int = 0
    masks: str = "rle"
    rle_fallbacks: int = 0  # instances written as RLE because a polygon would lose pixels
    notes: list[str] = field(default_factory=list)


def _resolve_image(images_dir: Path, file_name: str, where: str) -> Path:
    """The image file for a COCO file_name, refused if it lies outside `images_dir`."""
    name = file_name.replace("\\", "/")
    if Path(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise CocoFormatError(f"{where}: file_name {file_name!r} is an absolute path; "
                              "it must be relative to the images folder")
    root = images_dir.resolve()
    # Judged on the name itself: a symbolic link the user placed in the folder is fine.
    candidate = Path(os.path.normpath(root / name))
    if not candidate.is_relative_to(root) or candidate == root:
        raise CocoFormatError(f"{where}: file_name {file_name!r} points outside the images "
                              f"folder {root}")
    return candidate


def import_coco(project: Project, json_path: str | Path, *, images_dir: str | Path | None = None,
                status: str = "reviewed") -> ImportReport:
    """Import a COCO file into the project, all or nothing.

    Images are resolved against `images_dir` (default: the JSON file's folder). Images that
    arrive with annotations get `status` ("reviewed" by default: someone's finished work).
    """
    if status not in IMPORT_STATUSES:
        raise ValueError(f"status must be one of {IMPORT_STATUSES}, got {status!r}")
    json_path = Path(json_path)
    coco: CocoFile = parse_coco(read_coco_json(json_path), json_path)
    images_dir = Path(images_dir) if images_dir is not None else json_path.parent
    if not images_dir.is_dir():
        raise CocoFormatError(f"images folder {images_dir} does not exist")

    # 1. Everything is checked and converted before the project is touched.
    files: dict[int, tuple[Path, ImageInfo]] = {}
    for i, im in enumerate(coco.images):
        where = f"{json_path}: images[{i}] (id {im.id})"
        path = _resolve_image(images_dir, im.file_name, where)
        try:
            info = verify_image(path)
        except ImageReadError as exc:
            raise CocoFormatError(f"{where}: {exc}") from None
        if im.width is not None and im.height is not None and (im.width, im.height) != (
                info.width, info.height):
            raise CocoFormatError(
                f"{where}: COCO gives size {im.width}x{im.height} but {path.name} is "
                f"{info.width}x{info.height}")
        files[im.id] = (path, info)

    given_status = {im.id: im.status for im in coco.images if im.status is not None}
    rles: list[tuple[int, int, masks.Rle]] = []  # (coco image id, coco category id, mask)
    report = ImportReport(status=status)
    for a in coco.annotations:
        info = files[a.image_id][1]
        try:
            rle = masks.from_coco_segmentation(a.segmentation, info.height, info.width)
        except ValueError as exc:
            raise CocoFormatError(
                f"{json_path}: annotations[{a.index}] (id {a.id}): bad segmentation: {exc}"
            ) from None
        if rle.area == 0:
            report.empty_skipped += 1
            continue
        rles.append((a.image_id, a.category_id, rle))

    # 2. One transaction: a failure anywhere leaves the project as it was.
    # The file's ids are kept where the project has none yet (`mrcnn.coco.ids`: what
    # exports and prediction results then call them).
    with project.transaction():
        cat_sources = project.category_coco_ids()
        cat_ids: dict[int, int] = {}
        for cid, name in coco.categories.items():
            existing = project.category_by_name(name)
            cat_ids[cid] = existing.id if existing else project.add_category(name).id
            report.categories_added += existing is None
            if cat_sources.get(cat_ids[cid]) is None:
                project.set_category_coco_id(cat_ids[cid], cid)
        image_sources = project.image_coco_ids()
        image_ids: dict[int, int] = {}
        for iid, (path, info) in files.items():
            known = project.image_by_key(project.image_key(path))
            if known:
                report.images_known += 1
                image_ids[iid] = known.id
            else:
                report.images_added += 1
                image_ids[iid] = project.add_image(path, info.width, info.height, info.sha256).id
            if image_sources.get(image_ids[iid]) is None:
                project.set_image_coco_id(image_ids[iid], iid)
        seen = {
            (inst.image_id, inst.category_id, inst.rle.counts)
            for image_id in {image_ids[i] for i, _, _ in rles}
            for inst in project.instances(image_id, state="accepted")  # not predictions
        }
        annotated: set[int] = set()
        for coco_image, coco_cat, rle in rles:
            key = (image_ids[coco_image], cat_ids[coco_cat], rle.counts)
            if key in seen:
                report.duplicates_skipped += 1
                continue
            seen.add(key)
            project.add_instance(key[0], key[1], rle, source="manual", state="accepted")
            annotated.add(key[0])  # only images that received something change status
            report.annotations_added += 1
        marks = {image_id: status for image_id in annotated}
        for iid, recorded in given_status.items():
            # our own export says what the image was: a reviewed image with no objects is
            # a true negative, and an image in review stays in review
            if recorded == "reviewed" or image_ids[iid] in marks:
                marks[image_ids[iid]] = after_import(recorded)
        for image_id, mark in marks.items():
            if not (mark == "in_review" and project.image(image_id).status == "reviewed"):
                project.set_image_status(image_id, mark)
        report.images_marked = len(marks)
    return report


def build_coco(project: Project, *, mask_format: str = "rle",
               reviewed_only: bool = False) -> tuple[dict, int]:
    """The project's accepted instances as a COCO dictionary, images and categories numbered
    by `mrcnn.coco.ids` (the ids of the file they were imported from, where there was one).

    Returns (coco, rle_fallbacks): with mask_format="polygon", instances that a polygon cannot
    hold exactly (holes, ...) are written as RLE and counted.
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask format must be one of {MASK_FORMATS}, got {mask_format!r}")
    images = project.images("reviewed" if reviewed_only else None)
    image_ids, cat_ids = file_image_ids(project), file_category_ids(project)
    versions = {v.id: v.name for v in project.model_versions()}
    wanted = {im.id for im in images}
    annotations = []
    fallbacks = 0
    for (iid, image_id, cat_id, h, w, counts, bx, by, bw, bh, area, source, version_id,
         score) in project.instance_rows("accepted"):
        if image_id not in wanted:
            continue
        seg = None
        if mask_format == "polygon":
            seg = masks.exact_polygons(masks.decode(masks.Rle(h, w, counts)))
            fallbacks += seg is None
        ann = {
            "id": iid,
            "image_id": image_ids[image_id],
            "category_id": cat_ids[cat_id],
            "segmentation": seg if seg is not None else {"size": [h, w], "counts": counts},
            "area": area,
            "bbox": [bx, by, bw, bh],
            "iscrowd": 0,
            "source": source,
        }
        if source == "model":
            ann["score"] = score
            ann["model_version"] = versions.get(version_id)
        annotations.append(ann)
    coco = {
        "info": {
            "description": f"Exported by Mask R-CNN Studio from {project.folder.name}",
            "date_created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "images_root": str(project.images_root),
        },
        "licenses": [],
        "images": [
            {"id": image_ids[im.id], "file_name": im.path, "width": im.width, "height": im.height,
             "status": str(im.status)}
            for im in images
        ],
        "categories": [
            {"id": cat_ids[c.id], "name": c.name, "supercategory": "", "color": c.color}
            for c in project.categories()
        ],
        "annotations": annotations,
    }
    return coco, fallbacks


def check_out_path(out_path: Path) -> None:
    """Refuse a file name that cannot be written (a folder, a folder that does not exist or
    that this user may not write in) before any work is done for it."""
    if out_path.is_dir():
        raise CocoFormatError(f"{out_path} is a folder; give a file name ending in .json")
    folder = out_path.parent
    if not folder.is_dir():
        raise CocoFormatError(f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CocoFormatError(f"cannot write {out_path}: folder {folder} is not writable")


def write_results(out_path: str | Path, results: list[dict]) -> None:
    """Write detections in the COCO results format (a list of {image_id, category_id,
    segmentation, bbox, score}; `mrcnn.model.convert.coco_results`) atomically: the file
    appears whole or not at all, and an earlier file stays until then."""
    out_path = Path(out_path)
    check_out_path(out_path)
    data = json.dumps(results, separators=(",", ":")).encode("utf-8")
    try:
        write_atomic(out_path, data)
    except OSError as exc:
        raise CocoFormatError(f"cannot write {out_path}: {exc.strerror or exc}; nothing was "
                              "written") from None


def export_coco(project: Project, out_path: str | Path, *, mask_format: str = "rle",
                reviewed_only: bool = False) -> ExportReport:
    """Write the project as a COCO file atomically, verified by reloading it with pycocotools
    before it replaces any earlier file at `out_path`."""
    out_path = Path(out_path)
    check_out_path(out_path)
    coco, fallbacks = build_coco(project, mask_format=mask_format, reviewed_only=reviewed_only)
    data = json.dumps(coco, separators=(",", ":")).encode("utf-8")

    def verify(tmp: Path) -> None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                loaded = COCO(str(tmp))
        except Exception as exc:  # pycocotools asserts, or fails in json/numpy
            raise CocoFormatError(
                f"{out_path}: written file does not load in pycocotools "
                f"({type(exc).__name__}: {exc}); the previous file was kept") from None
        if (len(loaded.getImgIds()), len(loaded.getAnnIds()), len(loaded.getCatIds())) != (
                len(coco["images"]), len(coco["annotations"]), len(coco["categories"])):
            raise CocoFormatError(f"{out_path}: written file does not reload with the same "
                                  "counts; the previous file was kept")

    write_atomic(out_path, data, verify=verify)
    report = ExportReport(out_path, len(coco["images"]), len(coco["annotations"]),
                          len(coco["categories"]), mask_format, fallbacks)
    return report
