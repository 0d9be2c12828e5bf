"""Mask PNGs (format "masks"): per image a semantic PNG (category index per pixel) and an
instance PNG (instance index per pixel), plus `masks.json` naming the indices.

Layout of an export folder::

    masks.json                      categories (index → name), per image: file_name (as
                                    the project names it under its images root), size,
                                    status, split, both PNGs and objects (instance index →
                                    {category, instance_id})
    semantic/<name stem path>.png   0 = background, k = the k-th category in project order;
                                    8-bit grey ("L"), 16-bit ("I;16") above 255 categories
    instances/<name stem path>.png  0 = background, 1..N the image's instances in the order
                                    they were made; 8-bit, 16-bit where the image has
                                    more than 255 instances

`<name stem path>` is the image's name without its extension (`sub/dir/img.jpg` →
`sub/dir/img`), made unique by `_2`, `_3`, ... where two images share it. Overlaps follow
`mrcnn.coco.png_masks.OVERLAP_RULE` (the smaller instance on top); the pixels lost are counted
in the report.

Import reads such a folder against an images folder (mask PNGs do not hold their images).
Without masks.json: every non-zero value of an instance PNG is one instance, its category the
most frequent non-zero value of the semantic PNG under it (category `object` where there is
no semantic PNG or only background under it); a semantic PNG alone gives one instance per
8-connected part of each category. Categories are named by `labels.txt` or
`class_names.txt` in the folder (line k names index k; line 0 is the background), else
`class_<k>`. The image of `instances/a/b.png` is `a/b.<image extension>`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from mrcnn.coco.dataset import (
    ExportReport,
    ImageFiles,
    LabelledInstance,
    LabelledSet,
    export_images,
    write_folder_atomic,
)
from mrcnn.coco.png_masks import (
    OVERLAP_RULE,
    check_written,
    components,
    find_image,
    index_masks,
    majority,
    paint,
    read_index_png,
    read_names,
    report_overlaps,
    unique_stems,
    write_index_png,
)
from mrcnn.errors import DatasetFormatError
from mrcnn.masks import encode
from mrcnn.store.project import Project
from mrcnn.store.records import IMAGE_STATUSES

MANIFEST = "masks.json"
MANIFEST_FORMAT = "mrcnn-mask-png"
NAME_FILES = ("labels.txt", "class_names.txt")
#: the category of an instance no semantic PNG names (import without masks.json)
UNNAMED = "object"
MAX_MANIFEST_BYTES = 256 * 1024 * 1024


# ---------------------------------------------------------------- export
def export_mask_png(project: Project, out_dir: str | Path, *, reviewed_only: bool = False
                    ) -> ExportReport:
    """Write the project's accepted instances as mask PNGs and masks.json (module docstring)
    into `out_dir`, atomically; every PNG is read back before the folder appears."""
    out_dir = Path(out_dir)
    categories, images = export_images(project, reviewed_only=reviewed_only)
    cat_index = {c.id: k for k, c in enumerate(categories, start=1)}
    stems = unique_stems([im.name for im in images])
    report = ExportReport(out_dir, len(images), 0, len(categories), masks="png",
                          format="masks")
    written: dict[str, int] = {}

    def fill(tmp: Path) -> None:
        entries = []
        lost = hidden = wide = 0
        for im, stem in zip(images, stems, strict=True):
            h, w = im.record.height, im.record.width
            for inst in im.instances:
                if (inst.rle.height, inst.rle.width) != (h, w):
                    raise DatasetFormatError(
                        f"image {im.name}: instance {inst.id}'s mask is {inst.rle.width}x"
                        f"{inst.rle.height} but the image is {w}x{h}; nothing was exported")
            painted = paint([i.mask() for i in im.instances], [i.id for i in im.instances],
                            h, w)
            cat_lut = np.array([0] + [cat_index[im.instances[i].category.id]
                                      for i in painted.shown], np.int64)
            sem_rel, inst_rel = f"semantic/{stem}.png", f"instances/{stem}.png"
            written[inst_rel] = write_index_png(tmp / inst_rel, painted.index)
            written[sem_rel] = write_index_png(tmp / sem_rel, cat_lut[painted.index],
                                               wide=len(categories) > 255)
            wide += len(painted.shown) > 255
            lost += painted.lost_pixels
            hidden += len(painted.hidden)
            report.annotations += len(painted.shown)
            entries.append({
                "file_name": im.name, "width": w, "height": h,
                "status": str(im.record.status), "split": str(im.record.split),
                "semantic": sem_rel, "instances": inst_rel,
                "objects": {str(k): {"category": im.instances[i].category.name,
                                     "instance_id": im.instances[i].id}
                            for k, i in enumerate(painted.shown, start=1)},
            })
        manifest = {
            "format": MANIFEST_FORMAT, "version": 1,
            "description": f"Exported by Mask R-CNN Studio from {project.folder.name}",
            "images_root": project.images_location,
            "background": 0,
            "overlap_rule": OVERLAP_RULE,
            "categories": {str(cat_index[c.id]): c.name for c in categories},
            "images": entries,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False),
                                    encoding="utf-8")
        report.notes.append(f"overlaps: {OVERLAP_RULE}")
        report_overlaps(report, lost, hidden, hidden_where="the PNGs")
        if wide:
            report.notes.append(f"{wide} instance PNGs are 16-bit (more than 255 instances)")
        if len(categories) > 255:
            report.notes.append("semantic PNGs are 16-bit (more than 255 categories)")
        outside = sum(im.name.startswith("outside/") for im in images)
        if outside:
            report.notes.append(f"{outside} images lie outside the images root; masks.json "
                                "names them outside/<hash>_<name>")

    write_folder_atomic(out_dir, fill, lambda tmp: check_written(tmp, written))
    return report


# ---------------------------------------------------------------- import
def read_mask_png(path: str | Path, *, images_dir: str | Path | None = None) -> LabelledSet:
    """Read and check a folder of mask PNGs (module docstring) against the images folder
    `images_dir`, which is required: the PNGs do not hold their images (`import_dataset`
    gives the project's own images folder where the user names none). Touches no
    project."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: mask PNGs are read from a folder (with instances/, "
                                 f"semantic/ and {MANIFEST})")
    if images_dir is None:
        raise DatasetFormatError(f"{root}: mask PNGs do not hold their images; give the "
                                 "images folder they belong to (--images FOLDER)")
    files = ImageFiles(images_dir, DatasetFormatError, field="file_name")
    manifest = root / MANIFEST
    if manifest.exists():
        return _read_with_manifest(root, manifest, files)
    return _read_plain(root, files)


def _load_manifest(manifest: Path) -> dict:
    try:
        if not manifest.is_file():
            raise DatasetFormatError(f"{manifest}: is not a file")
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            raise DatasetFormatError(f"{manifest}: file is too large")
        data = json.loads(manifest.read_bytes())
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{manifest}: not valid JSON (line {exc.lineno}, column "
                                 f"{exc.colno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetFormatError(f"{manifest}: cannot read it ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{manifest}: expected a JSON object")
    return data


def _index_key(key: object, where: str) -> int:
    if not isinstance(key, str) or not re.fullmatch(r"[1-9][0-9]{0,5}", key):
        raise DatasetFormatError(f"{where}: index {key!r} must be a whole number from 1 "
                                 "(0 is the background)")
    return int(key)


def _inside(root: Path, rel: object, where: str) -> Path:
    """A mask PNG path from masks.json: relative, a .png, inside the folder."""
    if not isinstance(rel, str) or not rel.lower().endswith(".png"):
        raise DatasetFormatError(f"{where}: expected the path of a .png file in the folder, "
                                 f"got {rel!r}")
    name = rel.replace("\\", "/")
    base = root.resolve()
    candidate = Path(os.path.normpath(base / name))
    if (PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":")
            or not candidate.is_relative_to(base)):
        raise DatasetFormatError(f"{where}: {rel!r} points outside the folder {root}")
    return candidate


def _read_with_manifest(root: Path, manifest: Path, files: ImageFiles) -> LabelledSet:
    data = _load_manifest(manifest)
    raw_cats = data.get("categories")
    if not isinstance(raw_cats, dict):
        raise DatasetFormatError(f"{manifest}: 'categories' must map index → category name")
    names: dict[int, str] = {}
    for key, name in raw_cats.items():
        k = _index_key(key, f"{manifest}: categories")
        if not isinstance(name, str) or not name.strip():
            raise DatasetFormatError(f"{manifest}: categories[{key!r}] must be a non-empty "
                                     "name")
        if k in names:
            raise DatasetFormatError(f"{manifest}: category index {k} appears twice")
        if name in names.values():
            raise DatasetFormatError(f"{manifest}: category {name!r} appears twice")
        names[k] = name
    raw_images = data.get("images")
    if not isinstance(raw_images, list):
        raise DatasetFormatError(f"{manifest}: 'images' must be a list")
    out = LabelledSet(root, "masks", files, [names[k] for k in sorted(names)], [], [])
    for n, entry in enumerate(raw_images):
        where = f"{manifest}: images[{n}]"
        if not isinstance(entry, dict):
            raise DatasetFormatError(f"{where}: expected an object")
        file_name = entry.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise DatasetFormatError(f"{where}: 'file_name' must be the image's name")
        where = f"{where} ({file_name})"
        if file_name in out.images:
            raise DatasetFormatError(f"{where}: the image is listed twice")
        size = files.size(file_name, where)
        for key, extent in (("width", size[1]), ("height", size[0])):
            given = entry.get(key)
            if given is not None and given != extent:
                raise DatasetFormatError(
                    f"{where}: masks.json gives size {entry.get('width')}x"
                    f"{entry.get('height')} but the image is {size[1]}x{size[0]}")
        status = entry.get("status")
        if status is not None:
            if status not in IMAGE_STATUSES:
                raise DatasetFormatError(f"{where}: 'status' must be one of "
                                         f"{', '.join(IMAGE_STATUSES)}, got {status!r}")
            out.statuses[file_name] = status
        out.images.append(file_name)
        inst_rel, sem_rel = entry.get("instances"), entry.get("semantic")
        if inst_rel is None and sem_rel is None:
            raise DatasetFormatError(f"{where}: names neither an 'instances' nor a 'semantic' "
                                     "PNG")
        if sem_rel is not None:
            sem_path = _inside(root, sem_rel, f"{where}: 'semantic'")
            semantic = read_index_png(sem_path, str(sem_path), size=size,
                                   image=file_name)
            unknown = sorted(set(np.unique(semantic).tolist()) - set(names) - {0})
            if unknown:
                raise DatasetFormatError(f"{sem_path}: category index {unknown[0]} is not in "
                                         f"{MANIFEST}'s categories")
            if inst_rel is None:
                out.instances += _semantic_parts(semantic, names.__getitem__, file_name,
                                                 str(sem_path))
                continue
        objects = entry.get("objects", {})
        if not isinstance(objects, dict):
            raise DatasetFormatError(f"{where}: 'objects' must map instance index → "
                                     "{category, instance_id}")
        categories: dict[int, str] = {}
        for key, obj in objects.items():
            k = _index_key(key, f"{where}: objects")
            cat = obj.get("category") if isinstance(obj, dict) else None
            if cat not in names.values():
                raise DatasetFormatError(f"{where}: objects[{key!r}] names category {cat!r}, "
                                         f"which is not in {MANIFEST}'s categories")
            categories[k] = str(cat)
        inst_path = _inside(root, inst_rel, f"{where}: 'instances'")
        index = read_index_png(inst_path, str(inst_path), size=size,
                               image=file_name)
        for value, rle in index_masks(index).items():
            if value not in categories:
                raise DatasetFormatError(f"{inst_path}: instance index {value} is not in "
                                         f"{MANIFEST}'s objects for {file_name}")
            out.instances.append(LabelledInstance(file_name, categories[value], rle,
                                                  f"{inst_path}: instance {value}"))
    return out


def _semantic_parts(semantic: np.ndarray, name: Callable[[int], str], image: str,
                    where: str) -> list[LabelledInstance]:
    """One instance per 8-connected part of each category in a semantic PNG."""
    found = []
    for k in sorted(set(np.unique(semantic).tolist()) - {0}):
        for n, part in enumerate(components(semantic == k), start=1):
            found.append(LabelledInstance(image, name(k), encode(part),
                                          f"{where}: category {k}, part {n}"))
    return found


def _pngs(folder: Path) -> dict[str, Path]:
    """The PNGs under a folder by their stem path (`a/b` for `a/b.png`)."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).with_suffix("").as_posix(): p
            for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".png"}


def _read_plain(root: Path, files: ImageFiles) -> LabelledSet:
    instance_pngs, semantic_pngs = _pngs(root / "instances"), _pngs(root / "semantic")
    if not instance_pngs and not semantic_pngs:
        raise DatasetFormatError(f"{root}: found neither {MANIFEST} nor PNGs under "
                                 "instances/ or semantic/")
    declared: list[str] | None = None
    names_file = next((root / n for n in NAME_FILES if (root / n).exists()), None)
    if names_file is not None:
        declared = read_names(names_file)

    def name(k: int, where: str) -> str:
        if declared is None:
            return f"class_{k}"
        if k >= len(declared):
            raise DatasetFormatError(f"{where}: category index {k} is not named in "
                                     f"{names_file} ({len(declared) - 1} classes)")
        return declared[k]

    out = LabelledSet(root, "masks", files, [], [], [])
    used: set[str] = set()
    for stem in sorted(set(instance_pngs) | set(semantic_pngs)):
        first = instance_pngs.get(stem) or semantic_pngs[stem]
        file_name = find_image(files.images_dir, stem, str(first))
        size = files.size(file_name, str(first))
        out.images.append(file_name)
        semantic = None
        if stem in semantic_pngs:
            where = str(semantic_pngs[stem])
            semantic = read_index_png(semantic_pngs[stem], where, size=size,
                                   image=file_name)
            for k in sorted(set(np.unique(semantic).tolist()) - {0}):
                name(k, where)  # every index named
        if stem not in instance_pngs and semantic is not None:
            where = str(semantic_pngs[stem])
            parts = _semantic_parts(semantic, functools.partial(name, where=where),
                                    file_name, where)
            used.update(p.category for p in parts)
            out.instances += parts
            continue
        where = str(instance_pngs[stem])
        index = read_index_png(instance_pngs[stem], where, size=size,
                               image=file_name)
        for value, rle in index_masks(index).items():
            k = majority(semantic[index == value]) if semantic is not None else None
            category = UNNAMED if k is None else name(k, where)
            used.add(category)
            out.instances.append(LabelledInstance(file_name, category, rle,
                                                  f"{where}: instance {value}"))
    if declared is not None:
        out.categories = declared[1:] + ([UNNAMED] if UNNAMED in used and
                                         UNNAMED not in declared else [])
    else:
        out.categories = sorted((c for c in used if c != UNNAMED),
                                key=lambda c: int(c.split("_")[1]))
        out.categories += [UNNAMED] if UNNAMED in used else []
    return out
