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
from pathlib import Path

from pycocotools.coco import COCO

from mrcnn import masks
from mrcnn.coco.dataset import (
    IMPORT_STATUSES,
    ExportReport,
    ImageFiles,
    ImportReport,
    LabelledInstance,
    LabelledSet,
    accepted_points,
    commit_import,
)
from mrcnn.coco.ids import file_category_ids, file_image_ids
from mrcnn.coco.keypoints import check_inside, coco_annotation_fields, coco_category_fields
from mrcnn.coco.validate import CocoFile, parse_coco, read_coco_json
from mrcnn.errors import CocoFormatError
from mrcnn.io.atomic import write_atomic
from mrcnn.store.project import Project

MASK_FORMATS = ("rle", "polygon")


def read_coco(json_path: str | Path, *, images_dir: str | Path | None = None) -> LabelledSet:
    """Read and check a COCO file and the images it names (default folder: the JSON file's
    own), every mask decoded at its image's size. Touches no project."""
    json_path = Path(json_path)
    coco: CocoFile = parse_coco(read_coco_json(json_path), json_path)
    files = ImageFiles(images_dir if images_dir is not None else json_path.parent,
                       CocoFormatError, field="file_name")
    names: dict[int, str] = {}
    for i, im in enumerate(coco.images):
        where = f"{json_path}: images[{i}] (id {im.id})"
        path, info = files.read(im.file_name, where)
        if im.width is not None and im.height is not None and (im.width, im.height) != (
                info.width, info.height):
            raise CocoFormatError(
                f"{where}: COCO gives size {im.width}x{im.height} but {path.name} is "
                f"{info.width}x{info.height}")
        names[im.id] = im.file_name
    instances = []
    for a in coco.annotations:
        where = f"{json_path}: annotations[{a.index}] (id {a.id})"
        h, w = files.size(names[a.image_id], where)
        try:
            rle = masks.from_coco_segmentation(a.segmentation, h, w)
        except ValueError as exc:
            raise CocoFormatError(f"{where}: bad segmentation: {exc}") from None
        if a.keypoints is not None:
            check_inside(a.keypoints, coco.schemas[a.category_id], h, w, where)
        instances.append(LabelledInstance(names[a.image_id], coco.categories[a.category_id],
                                          rle, where, a.keypoints))
    image_ids: dict[str, int] = {}
    for im in coco.images:
        image_ids.setdefault(im.file_name, im.id)
    return LabelledSet(
        json_path, "coco", files, list(coco.categories.values()), list(image_ids), instances,
        statuses={im.file_name: im.status for im in coco.images if im.status is not None},
        category_ids={name: cid for cid, name in coco.categories.items()},
        image_ids=image_ids,
        schemas={coco.categories[cid]: schema for cid, schema in coco.schemas.items()},
        notes=list(coco.notes))


def import_coco(project: Project, json_path: str | Path, *, images_dir: str | Path | None = None,
                status: str = "reviewed") -> ImportReport:
    """Import a COCO file into the project, all or nothing.

    Images are resolved against `images_dir` (default: the JSON file's folder). Images that
    arrive with annotations get `status` ("reviewed" by default: someone's finished work).
    The file's ids are kept where the project has none yet (`mrcnn.coco.ids`: what exports
    and prediction results then call them).
    """
    if status not in IMPORT_STATUSES:
        raise ValueError(f"status must be one of {IMPORT_STATUSES}, got {status!r}")
    return commit_import(project, read_coco(json_path, images_dir=images_dir), status=status)


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
    categories = project.categories()
    schemas = {c.id: c.keypoints for c in categories}
    points = accepted_points(project)
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
        # keypoints where the category has a schema; bbox and area stay the mask's
        ann.update(coco_annotation_fields(schemas[cat_id], points.get(iid)))
        if source == "model":
            ann["score"] = score
            ann["model_version"] = versions.get(version_id)
        annotations.append(ann)
    coco = {
        "info": {
            "description": f"Exported by Mask R-CNN Studio from {project.folder.name}",
            "date_created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "images_root": project.images_location,
        },
        "licenses": [],
        "images": [
            {"id": image_ids[im.id], "file_name": im.path, "width": im.width, "height": im.height,
             "status": str(im.status)}
            for im in images
        ],
        "categories": [
            {"id": cat_ids[c.id], "name": c.name, "supercategory": "", "color": c.color,
             **coco_category_fields(c.keypoints)}
            for c in categories
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
