"""The data formats a project imports and exports, by name: one table the command line
(`python -m mrcnn export|import --format NAME`) and the window (File ▸ Export, File ▸ Import)
both read.

Each format lives in its own module (labelme's in two: export and import) with two
functions: `export_<x>(project, out, *, reviewed_only)` writes the whole output atomically and
returns an `ExportReport` that states what the format could not hold; `read_<x>(path, *,
images_dir)` checks everything and returns a `LabelledSet`, which
`mrcnn.coco.dataset.commit_import` writes in one transaction.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mrcnn.coco.dataset import (
    IMPORT_STATUSES,
    ExportReport,
    ImportReport,
    accepted_points,
    commit_import,
)
from mrcnn.keypoints import labelled_count
from mrcnn.store.project import Project


@dataclass(frozen=True)
class DataFormat:
    name: str  # on the command line
    title: str  # in the window
    module: str
    export_function: str
    read_function: str
    #: what export writes: one file (COCO) or a folder
    output: Literal["file", "folder"]
    #: what import reads: a file (COCO JSON) or a folder
    source: Literal["file", "folder"]
    describe: str
    #: where import looks for the images when not told: the format's own layout ("own":
    #: beside the COCO file, images/, JPEGImages/), or the project's images folder
    #: ("project": labelme's image paths and mask PNG names point at the images labelled)
    images_default: Literal["own", "project"] = "own"
    #: whether the format holds instances' keypoints (only COCO does)
    keeps_keypoints: bool = False
    #: the module `read_function` lives in, where not `module`
    read_module: str | None = None

    def _function(self, name: str, module: str | None = None):
        return getattr(importlib.import_module(module or self.module), name)

    def export(self, project: Project, out: str | Path, **options) -> ExportReport:
        report = self._function(self.export_function)(project, out, **options)
        if not self.keeps_keypoints:
            note_keypoints_lost(report, project, self.title,
                                reviewed_only=options.get("reviewed_only", False))
        return report

    def read(self, path: str | Path, *, images_dir: str | Path | None = None):
        return self._function(self.read_function, self.read_module)(path, images_dir=images_dir)


FORMATS: dict[str, DataFormat] = {f.name: f for f in (
    DataFormat("coco", "COCO JSON", "mrcnn.coco.io", "export_coco", "read_coco", "file", "file",
               "one JSON file; masks as RLE, or as polygons where a polygon holds them "
               "exactly; keypoints with their categories' names and skeletons",
               keeps_keypoints=True),
    DataFormat("yolo-seg", "YOLO segmentation", "mrcnn.coco.yolo", "export_yolo", "read_yolo",
               "folder", "folder",
               "a folder with data.yaml, images/ and labels/ (one .txt per image: class "
               "index and normalised polygon); keypoints are not kept"),
    DataFormat("masks", "Mask PNGs", "mrcnn.coco.mask_png", "export_mask_png",
               "read_mask_png", "folder", "folder",
               "a folder with a semantic (category index) and an instance PNG per image, "
               "and masks.json naming the indices; on import the images are the project's "
               "unless another images folder is given; keypoints are not kept", "project"),
    DataFormat("labelme", "labelme JSON", "mrcnn.coco.labelme_export", "export_labelme",
               "read_labelme", "folder", "folder",
               "a folder with one labelme .json per image (polygons; mask shapes where a "
               "polygon would lose pixels); on import, image paths must lie in the project's "
               "images folder unless another images folder is given; keypoints are not "
               "kept", "project", read_module="mrcnn.coco.labelme_import"),
    DataFormat("voc", "Pascal VOC", "mrcnn.coco.voc", "export_voc", "read_voc", "folder",
               "folder",
               "a VOC folder: JPEGImages/, SegmentationObject/, SegmentationClass/, "
               "Annotations/ and ImageSets/Segmentation/; keypoints are not kept"),
)}


#: ExportReport.losses' key for the instances whose keypoints a format could not hold
KEYPOINTS_LOST = "instances' keypoints"


def note_keypoints_lost(report: ExportReport, project: Project, title: str, *,
                        reviewed_only: bool = False) -> None:
    """Say in an export's report how many exported instances carried keypoints a format
    without keypoints left out (nothing when none did)."""
    images = project.images("reviewed" if reviewed_only else None)
    lost = sum(1 for p in accepted_points(project, {im.id for im in images}).values()
               if labelled_count(p))
    if lost:
        report.losses[KEYPOINTS_LOST] = lost
        report.notes.append(f"{lost} instances carry keypoints, which {title} cannot hold: "
                            "they are not in this export (COCO JSON keeps them)")


def data_format(name: str) -> DataFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; one of {', '.join(FORMATS)}") from None


def images_folder(fmt: str, images_dir: str | Path | None, project: Project
                  ) -> str | Path | None:
    """The folder (or URL) import resolves image names in: the one the user gave, else the
    project's own images for a project over a URL and for the formats whose names point at
    the images labelled (`DataFormat.images_default`), else the format's own place."""
    if images_dir is None and (project.is_remote
                               or data_format(fmt).images_default == "project"):
        return project.images_location
    return images_dir


def export_dataset(project: Project, out: str | Path, fmt: str = "coco", *,
                   reviewed_only: bool = False, mask_format: str = "rle") -> ExportReport:
    """Export the project's accepted instances in format `fmt` (see FORMATS). With
    `reviewed_only`, the report's notes say what images not yet reviewed held (left out)."""
    options: dict = {"reviewed_only": reviewed_only}
    if fmt == "coco":
        options["mask_format"] = mask_format
    report = data_format(fmt).export(project, out, **options)
    if reviewed_only:
        images, instances = project.accepted_not_reviewed()
        if instances:
            report.notes.append(
                f"left out {instances} accepted instance{'s' if instances != 1 else ''} on "
                f"{images} image{'s' if images != 1 else ''} not yet reviewed (reviewed "
                "images only)")
    return report


def import_dataset(project: Project, path: str | Path, fmt: str = "coco", *,
                   images_dir: str | Path | None = None, status: str = "reviewed"
                   ) -> ImportReport:
    """Import labelled data in format `fmt`, all or nothing: everything is read and checked
    first, then written in one transaction."""
    if status not in IMPORT_STATUSES:
        raise ValueError(f"status must be one of {IMPORT_STATUSES}, got {status!r}")
    images_dir = images_folder(fmt, images_dir, project)
    return commit_import(project, data_format(fmt).read(path, images_dir=images_dir),
                         status=status)
