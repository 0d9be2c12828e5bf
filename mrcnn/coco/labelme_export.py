"""labelme JSON export: one .json per image, pointing at the image where it lies.

What labelme means by its files and how it draws their shapes (which decides the polygons
written here): `mrcnn.coco.labelme_import`.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

from mrcnn.coco.dataset import ExportImage, ExportReport, export_images, write_folder_atomic
from mrcnn.coco.labelme_import import check_extent, decode_bitmap, draw_shape, parse_document
from mrcnn.io.remote import RemoteImage
from mrcnn.store.project import Project

#: The labelme version our files say they were written for (the shape keys of labelme 5.5).
LABELME_VERSION = "5.5.0"


# ---------------------------------------------------------------- polygons labelme draws back
def _merge_runs(chain: np.ndarray) -> np.ndarray:
    """A closed chain of pixel centres with the points inside straight runs dropped."""
    steps = np.roll(chain, -1, axis=0) - chain
    turns = (steps != np.roll(steps, 1, axis=0)).any(axis=1)
    return chain[turns] if turns.sum() >= 3 else chain


def labelme_polygons(mask: np.ndarray) -> list[np.ndarray] | None:
    """Polygons through pixel centres, one per part, that labelme draws back into exactly
    `mask` ((N, 2) integer x, y arrays), or None when none do (holes, thin parts)."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return None
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    crop = np.pad(mask[y0:y1 + 1, x0:x1 + 1].astype(bool), 1)
    contours, hierarchy = cv2.findContours(crop.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
    if any(info[3] != -1 for info in hierarchy[0]):
        return None  # a hole: labelme's polygons cannot leave one out
    polygons = [_merge_runs(c.reshape(-1, 2)) for c in contours]
    if any(len(p) < 3 for p in polygons):
        return None
    drawn = np.zeros(crop.shape, bool)
    for p in polygons:  # integer points: drawing on the crop equals drawing on the image
        drawn |= draw_shape("polygon", [(float(x), float(y)) for x, y in p], *crop.shape)
    if not np.array_equal(drawn, crop):
        return None
    return [p + np.array([x0 - 1, y0 - 1]) for p in polygons]


def mask_bitmap(mask: np.ndarray) -> tuple[list[list[float]], str]:
    """A non-empty mask as a labelme mask shape: the box's inclusive corners and the
    box's bitmap as a base64 PNG of 0/1 (what labelme itself writes)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    buf = io.BytesIO()
    Image.fromarray(mask[y0:y1 + 1, x0:x1 + 1].astype(np.uint8)).save(buf, "PNG")
    return ([[float(x0), float(y0)], [float(x1), float(y1)]],
            base64.b64encode(buf.getvalue()).decode("ascii"))


# ---------------------------------------------------------------- export
def _shape(label: str, points: list[list[float]], shape_type: str, group_id: int | None,
           mask: str | None = None) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": mask}


@dataclass
class _Tally:
    instances: int = 0
    mask_shapes: int = 0
    empty: int = 0
    absolute_paths: int = 0
    renamed: int = 0


def image_shapes(image: ExportImage, tally: _Tally) -> list[dict]:
    """An image's accepted instances as labelme shapes: polygons where labelme draws them
    back pixel for pixel (several sharing the instance's id as `group_id` for several parts),
    else one mask shape."""
    shapes = []
    for inst in image.instances:
        mask = inst.mask()
        if not mask.any():
            tally.empty += 1
            continue
        tally.instances += 1
        polygons = labelme_polygons(mask)
        if polygons is None:
            tally.mask_shapes += 1
            points, bitmap = mask_bitmap(mask)
            shapes.append(_shape(inst.category.name, points, "mask", None, bitmap))
            continue
        group_id = inst.id if len(polygons) > 1 else None
        shapes += [_shape(inst.category.name, [[float(x), float(y)] for x, y in p], "polygon",
                          group_id) for p in polygons]
    return shapes


def json_names(images: list[ExportImage]) -> list[str]:
    """Each image's labelme file inside the export: its name with `.json` for the extension
    (labelme's own rule), made unique (ignoring case) by the start of the image's hash."""
    used: set[str] = set()
    names = []
    for image in images:
        path = PurePosixPath(image.name)
        name = str(path.with_name(path.stem + ".json"))
        n = 0
        while name.casefold() in used:
            n += 1
            tail = f"_{image.record.sha256[:8]}" + (f"_{n}" if n > 1 else "")
            name = str(path.with_name(f"{path.stem}{tail}.json"))
        used.add(name.casefold())
        names.append(name)
    return names


def image_path_from(json_dir: Path, image: Path | RemoteImage) -> tuple[str, bool]:
    """labelme's `imagePath`: the image relative to the folder its JSON file will lie in
    (forward slashes), and False; where no relative path exists (another drive, an image
    under a URL), the absolute path or the URL and True."""
    if isinstance(image, RemoteImage):
        return image.url, True
    image = Path(os.path.abspath(image))
    image = image.parent.resolve() / image.name  # links in the folders followed, as the OS will
    try:
        return Path(os.path.relpath(image, json_dir)).as_posix(), False
    except ValueError:
        return image.as_posix(), True


def export_labelme(project: Project, out_dir: str | Path, *, reviewed_only: bool = False
                   ) -> ExportReport:
    """Write one labelme JSON file per image (all images, or the reviewed ones) into the
    folder `out_dir`, atomically; images stay where they are.

    Each file: `imagePath` relative from the file to the image (absolute only where no
    relative path exists, counted), `imageData` null, the image's size, and per accepted
    instance polygon shapes through pixel centres where labelme draws them back exactly,
    else one `mask` shape (holes, thin parts). Files lie under the images' own sub-folders,
    named as the image with `.json`."""
    out_dir = Path(out_dir)
    categories, images = export_images(project, reviewed_only=reviewed_only)
    names = json_names(images)
    # The folder is filled under a temporary name beside `out_dir`, then renamed: paths
    # are computed from where the files will finally lie.
    final = Path(os.path.abspath(out_dir))
    final = final.parent.resolve() / final.name
    tally = _Tally()
    tally.renamed = sum(PurePosixPath(n).stem != PurePosixPath(im.name).stem
                        for n, im in zip(names, images, strict=True))

    def fill(tmp: Path) -> None:
        for image, name in zip(images, names, strict=True):
            image_path, absolute = image_path_from((final / name).parent, image.source)
            tally.absolute_paths += absolute
            doc: dict[str, object] = {
                "version": LABELME_VERSION,
                "flags": {},
                "shapes": image_shapes(image, tally),
                "imagePath": image_path,
                "imageData": None,
                "imageHeight": image.record.height,
                "imageWidth": image.record.width,
            }
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")

    def verify(tmp: Path) -> None:
        for image, name in zip(images, names, strict=True):
            doc = parse_document(tmp / name)
            h, w = image.record.height, image.record.width
            for s in doc.shapes:
                check_extent(doc, s, h, w)
                if s.shape_type == "mask":
                    decode_bitmap(doc, s)

    write_folder_atomic(out_dir, fill, verify)
    report = ExportReport(out_dir, len(images), tally.instances, len(categories),
                          masks="polygon", rle_fallbacks=tally.mask_shapes, format="labelme")
    if tally.mask_shapes:
        report.notes.append(f"{tally.mask_shapes} instances written as labelme mask shapes "
                            "(holes, or parts a polygon would change by a pixel)")
    if tally.absolute_paths:
        report.losses["absolute imagePaths"] = tally.absolute_paths
        report.notes.append(f"{tally.absolute_paths} imagePaths are absolute: no relative "
                            f"path leads from {out_dir} to those images (another drive)")
    if tally.empty:
        report.losses["empty instances"] = tally.empty
    if tally.renamed:
        report.notes.append(f"{tally.renamed} files named with the image's hash: another "
                            "image in the same folder has the same name before its extension")
    return report
