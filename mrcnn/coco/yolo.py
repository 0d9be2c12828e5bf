"""YOLO segmentation (Ultralytics) export and import: a folder with `data.yaml`, `images/`,
`labels/` (one `.txt` per image, one object per line: `class x1 y1 x2 y2 ...`, coordinates
normalised by the image's width and height) and `train.txt` / `val.txt`.

A line holds one polygon without holes, so a mask with several parts becomes one line per
part and a hole is filled; the export report counts both. Ultralytics finds an image's label
by replacing the last `/images/` of its path with `/labels/` and its extension with `.txt`
(`label_name`); export and import both follow that rule.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import yaml

from mrcnn import masks
from mrcnn.coco.dataset import (
    ExportImage,
    ExportReport,
    ImageFiles,
    LabelledInstance,
    LabelledSet,
    check_out_folder,
    export_images,
    place_image,
    write_folder_atomic,
)
from mrcnn.errors import DatasetFormatError
from mrcnn.io.images import is_image_path
from mrcnn.store.project import Project

FORMAT = "yolo-seg"
DATA_YAML = "data.yaml"
#: Class list files other tools write instead of a data.yaml (one name a line).
NAME_FILES = ("classes.txt", "obj.names", "names.txt")
#: How far outside [0, 1] a normalised coordinate may be (rounding by other tools).
EPSILON = 1e-6
DECIMALS = 6
#: A data.yaml longer than this is not one (it is read whole).
MAX_YAML_CHARS = 1 << 20
SPLIT_PARTS = "instances split into parts"
HOLES_LOST = "instances with holes (holes lost)"
UNREVIEWED = "unreviewed images exported (status lost)"
BOXES = "detection boxes (class cx cy w h: no mask)"
NO_LABEL = "images with no label file (not imported)"


def label_name(image: str) -> str:
    """The label file of an image, both relative to the YOLO folder (POSIX), by the
    Ultralytics rule: the last `images/` folder becomes `labels/`, the extension `.txt`."""
    head, sep, tail = ("/" + image).rpartition("/images/")
    if not sep:
        raise ValueError(f"{image!r} is not under an images/ folder")
    return (head + "/labels/" + tail)[1:].rsplit(".", 1)[0] + ".txt"


# ---------------------------------------------------------------- export
@dataclass(frozen=True)
class _Planned:
    image: ExportImage
    name: str  # under images/
    lines: list[str]


def mask_lines(mask: np.ndarray, index: int) -> tuple[list[str], int]:
    """The label lines of one (H, W) mask of class `index`: one per part (8-connected), its
    outline traced along pixel edges and normalised by W and H; and how many holes the
    outlines fill. Each line rasterises back (pycocotools) to exactly its part, holes filled:
    6 decimals move a corner by at most W / 2,000,000 px, and an edge moves only past 0.1 px."""
    height, width = mask.shape
    outer, holes = masks.mask_to_polygons(mask)
    lines = []
    for poly in outer:
        xy = np.asarray(poly).reshape(-1, 2) / (width, height)
        lines.append(" ".join([str(index), *(f"{v:.{DECIMALS}f}"
                                             for v in xy.clip(0.0, 1.0).reshape(-1))]))
    return lines, len(holes)


def _unique_names(images: list[ExportImage]) -> tuple[dict[int, str], list[str]]:
    """Each image's name under images/, renamed where two would share a label file (`a.jpg`
    and `a.png`) or a name on a case-insensitive disk; and the notes saying so."""
    natural = {key for im in images for key in _keys(im.name)}
    taken: set[str] = set()
    names: dict[int, str] = {}
    notes = []
    for im in images:
        base = re.sub(r"[\r\n]", "_", im.name)  # a list file holds one name a line
        name, k = base, 1
        while not taken.isdisjoint(_keys(name)) or (name != im.name and not natural.isdisjoint(
                _keys(name))):
            k += 1
            stem, dot, ext = base.rpartition(".")
            name = f"{stem}~{k}.{ext}" if dot else f"{base}~{k}"
        if name != im.name:
            notes.append(f"{im.name!r} is exported as {name!r}: " + (
                "a list file cannot hold a line break" if base != im.name else
                f"its label file would have been {label_name('images/' + im.name)}, which "
                "another image takes"))
        taken.update(_keys(name))
        names[im.record.id] = name
    return names, notes


def _keys(name: str) -> tuple[str, str]:
    """What two images in one export must not share: the image file, the label file (both
    as a case-insensitive disk sees them)."""
    return "image:" + name.casefold(), "label:" + label_name("images/" + name).casefold()


def _plan(project: Project, reviewed_only: bool, report: ExportReport) -> tuple[
        list[str], list[_Planned]]:
    categories, images = export_images(project, reviewed_only=reviewed_only)
    index = {c.id: i for i, c in enumerate(categories)}
    kept = [im for im in images if im.record.status == "reviewed" or im.instances]
    left_out = len(images) - len(kept)
    names, notes = _unique_names(kept)
    planned = []
    split = holes = unreviewed = 0
    for im in kept:
        lines = []
        for inst in im.instances:
            parts, filled = mask_lines(inst.mask(), index[inst.category.id])
            split += len(parts) > 1
            holes += filled > 0
            lines += parts
        unreviewed += im.record.status != "reviewed"
        planned.append(_Planned(im, names[im.record.id], lines))
    report.images, report.categories = len(planned), len(categories)
    # instances of the project, as every format counts them; the lines are said in a note
    report.annotations = sum(len(p.image.instances) for p in planned)
    report.losses = {SPLIT_PARTS: split, HOLES_LOST: holes, UNREVIEWED: unreviewed}
    written = sum(len(p.lines) for p in planned)
    report.notes.append(f"{report.annotations} instances written as {written} lines (one "
                        "polygon each)")
    if split:
        report.notes.append(f"{split} instances have several parts: each part is its own "
                            "line, so YOLO sees them as separate objects")
    if holes:
        report.notes.append(f"{holes} instances have holes: YOLO polygons cannot hold "
                            "holes, so they are filled")
    if unreviewed:
        report.notes.append(f"{unreviewed} exported images are not reviewed: their label "
                            "files look finished to Ultralytics")
    if left_out:
        report.notes.append(f"{left_out} unreviewed images with no accepted instances were "
                            "left out: an empty label file would tell Ultralytics they hold "
                            "no objects")
    for split_name in ("train", "val"):
        if not any(p.image.record.split == split_name for p in planned):
            report.notes.append(f"the {split_name} split is empty: Ultralytics needs at least "
                                f"one image in {split_name}.txt")
    report.notes += notes
    return [c.name for c in categories], planned


def export_yolo(project: Project, out_dir: str | Path, *, reviewed_only: bool = False
                ) -> ExportReport:
    """Write the project's accepted instances as a YOLO segmentation folder, atomically.

    Written: every reviewed image (with no instances: an empty label file, a true negative)
    and every other image that has accepted instances (unless `reviewed_only`); unreviewed
    images with no instances are left out. Images are hard-linked (else copied) into
    `images/`, under their path in the project."""
    out_dir = Path(os.path.abspath(out_dir))
    check_out_folder(out_dir)
    report = ExportReport(out_dir, masks="polygon", format=FORMAT)
    names, planned = _plan(project, reviewed_only, report)

    def fill(tmp: Path) -> None:
        lists: dict[str, list[str]] = {"train": [], "val": []}
        for p in planned:
            place_image(p.image.local_path(), tmp / "images" / p.name)
            label = tmp / label_name("images/" + p.name)
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(line + "\n" for line in p.lines), encoding="utf-8")
            lists.setdefault(str(p.image.record.split), []).append(f"./images/{p.name}")
        for split_name, entries in lists.items():
            (tmp / f"{split_name}.txt").write_text("".join(e + "\n" for e in entries),
                                                   encoding="utf-8")
        (tmp / DATA_YAML).write_text(data_yaml(out_dir, names, project.folder.name),
                                     encoding="utf-8")

    def verify(tmp: Path) -> None:
        if read_names(tmp / DATA_YAML) != names:
            raise DatasetFormatError(f"{out_dir}: the written data.yaml does not read back "
                                     "with the project's categories; nothing was written")
        for p in planned:
            rel = label_name("images/" + p.name)
            parse_label(_read_text(tmp / rel, out_dir / rel), out_dir / rel, len(names))

    write_folder_atomic(out_dir, fill, verify)
    return report


def data_yaml(out_dir: Path, names: list[str], source: str) -> str:
    """The data.yaml Ultralytics reads. `path` is the folder itself, absolute: Ultralytics
    resolves a relative `path` against its own datasets folder (or the current folder)."""
    header = [
        "# YOLO segmentation data set exported by Mask R-CNN Studio from "
        + " ".join(source.split()),
        "# path: this folder. After moving the folder, change it (or delete the line: recent",
        "# Ultralytics versions then use the folder this file is in).",
    ]
    body = yaml.safe_dump({"path": str(out_dir), "train": "train.txt", "val": "val.txt",
                           "nc": len(names), "names": dict(enumerate(names))},
                          sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "\n".join(header) + "\n" + body


# ---------------------------------------------------------------- labels
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_CLASS = re.compile(r"\+?\d+(\.0*)?")


@dataclass(frozen=True)
class LabelLine:
    number: int  # 1-based
    category: int
    #: the polygon, normalised [x1, y1, x2, y2, ...]; None for a detection box
    polygon: list[float] | None


def parse_label(text: str, where: Path | str, classes: int) -> list[LabelLine]:
    """Every object line of a label file, checked: class index in [0, classes), an odd number
    of values (class + x y pairs, at least 3 points; 5 values are a detection box),
    coordinates in [0, 1]. Blank lines are ignored, as Ultralytics does."""
    parsed = []
    for number, line in enumerate(text.splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        at = f"{where}: line {number}"
        category = _class_index(values[0], at, classes)
        coords = [_coordinate(v, at, i) for i, v in enumerate(values[1:])]
        if len(coords) == 4:
            parsed.append(LabelLine(number, category, None))
            continue
        if not coords:
            raise DatasetFormatError(f"{at}: class index {values[0]} has no coordinates")
        if len(coords) % 2:
            raise DatasetFormatError(f"{at}: {len(coords)} coordinates, an odd number; a "
                                     "polygon is x y pairs (a box is exactly 4 values)")
        if len(coords) < 6:
            points = len(coords) // 2
            raise DatasetFormatError(f"{at}: the polygon has {points} point"
                                     f"{'s' if points > 1 else ''}; at least 3 are needed")
        parsed.append(LabelLine(number, category, coords))
    return parsed


def _class_index(token: str, at: str, classes: int) -> int:
    if token.startswith("-") and _NUMBER.fullmatch(token):
        raise DatasetFormatError(f"{at}: class index {token} is negative")
    if not _CLASS.fullmatch(token):
        what = "not an integer" if _NUMBER.fullmatch(token) else "not a number"
        raise DatasetFormatError(f"{at}: class index {token!r} is {what}")
    index = int(token.split(".")[0])
    if index >= classes:
        known = f"0-{classes - 1}" if classes else "none: the names list is empty"
        raise DatasetFormatError(f"{at}: class index {index} is not in the names "
                                 f"(indices {known})")
    return index


def _coordinate(token: str, at: str, i: int) -> float:
    axis = f"{'xy'[i % 2]} of point {i // 2 + 1}"
    if not _NUMBER.fullmatch(token):
        raise DatasetFormatError(f"{at}: {axis} is {token[:40]!r}, not a number")
    v = float(token)
    if not (-EPSILON <= v <= 1 + EPSILON) or not math.isfinite(v):
        raise DatasetFormatError(f"{at}: {axis} is {token}, outside [0, 1] (coordinates "
                                 "are normalised by the image's width and height)")
    return min(max(v, 0.0), 1.0)


def _read_text(path: Path, where: Path | str) -> str:
    try:
        if not path.is_file():
            raise DatasetFormatError(f"{where}: not a regular file")
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(f"{where}: not a text file (byte {exc.start} is not "
                                 "UTF-8)") from None
    except OSError as exc:
        raise DatasetFormatError(f"{where}: cannot read: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- import
def read_yolo(path: str | Path, *, images_dir: str | Path | None = None) -> LabelledSet:
    """Read and check a YOLO segmentation folder (or its data.yaml / classes.txt) and the
    images it labels, one instance per polygon line. Touches no project.

    Images: every image file under a folder named `images` in it (`images/…`,
    `train/images/…`), its label by the Ultralytics rule; with `images_dir`, every image
    under that folder, its label under `labels/` here as if the images were in `images/`.
    An empty label file says the image holds no objects (it comes back reviewed, a true
    negative, as Ultralytics reads it); an image with no label file is left out (counted).
    Detection boxes (5 values) are skipped and counted, and their images come back in
    review, as they miss an object; a set of boxes only is refused."""
    path = Path(path)
    if not path.exists():
        raise DatasetFormatError(f"{path} does not exist")
    if path.is_dir():
        root, names_file = path, _names_file(path)
    elif path.suffix in (".yaml", ".yml") or path.name in NAME_FILES:
        root, names_file = path.parent, path
    else:
        raise DatasetFormatError(f"{path}: give the YOLO folder, or its data.yaml or "
                                 "classes.txt")
    names = read_names(names_file)
    if images_dir is None:
        files = ImageFiles(root)
        found = [(rel, rel) for rel in _walk(root) if is_image_path(rel)
                 and "images" in PurePosixPath(rel).parts[:-1]]
    else:
        files = ImageFiles(images_dir)
        found = [(rel, "images/" + rel) for rel in _walk(files.images_dir)
                 if is_image_path(rel)]
    if not found:
        raise DatasetFormatError(f"{files.images_dir}: no images found" + (
            " in a folder named images/" if images_dir is None else ""))
    labels: dict[str, str] = {}
    by_label: dict[str, str] = {}
    for name, as_yolo in found:
        rel = label_name(as_yolo)
        if rel in by_label:
            raise DatasetFormatError(
                f"{root / rel}: images {by_label[rel]} and {name} both take this label file "
                "(Ultralytics finds a label by the image's name without its extension); "
                "rename one of them")
        by_label[rel] = name
        labels[name] = rel
    for rel in _walk(root):
        if (rel.endswith(".txt") and "labels" in PurePosixPath(rel).parts[:-1]
                and rel not in by_label and PurePosixPath(rel).name not in NAME_FILES):
            raise DatasetFormatError(f"{root / rel}: label file with no image (expected one "
                                     "of its name under the images folder)")
    instances: list[LabelledInstance] = []
    statuses: dict[str, str] = {}
    labelled = [name for name, rel in labels.items() if os.path.lexists(root / rel)]
    if not labelled:
        raise DatasetFormatError(f"{root}: none of the {len(labels)} images has a label file "
                                 f"(expected {next(iter(labels.values()))} and the like)")
    boxes = 0
    for name in labelled:
        label = root / labels[name]
        lines = parse_label(_read_text(label, label), label, len(names))
        height, width = files.size(name, f"{label}: image {name!r}")
        image_boxes = sum(line.polygon is None for line in lines)
        boxes += image_boxes
        if image_boxes:
            statuses[name] = "in_review"  # an object is missing: a person should look
        elif not lines:
            statuses[name] = "reviewed"  # an empty label file: no objects (a negative)
        for line in lines:
            if line.polygon is None:
                continue
            poly = [v * (width if i % 2 == 0 else height) for i, v in enumerate(line.polygon)]
            rle = masks.encode(masks.polygons_to_mask([poly], height, width))
            instances.append(LabelledInstance(name, names[line.category], rle,
                                              f"{label}: line {line.number}"))
    if boxes and not instances:
        raise DatasetFormatError(f"{root}: every object is a detection box (class cx cy w h); "
                                 "this is a YOLO detection data set, with no masks to import")
    skipped = {BOXES: boxes, NO_LABEL: len(labels) - len(labelled)}
    return LabelledSet(root, FORMAT, files, names, labelled, instances, statuses=statuses,
                       skipped={kind: n for kind, n in skipped.items() if n})


def _walk(folder: Path) -> Iterator[str]:
    """Files under `folder`, relative POSIX paths, sorted; hidden files and folders skipped."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(folder).as_posix()
        for f in sorted(filenames):
            if not f.startswith("."):
                yield f if rel == "." else f"{rel}/{f}"


def _names_file(root: Path) -> Path:
    """The file naming the classes: data.yaml, else the one other .yaml there, else a class
    list (classes.txt, obj.names, names.txt)."""
    if (root / DATA_YAML).is_file():
        return root / DATA_YAML
    yamls = sorted(p for p in root.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if len(yamls) == 1:
        return yamls[0]
    if len(yamls) > 1:
        raise DatasetFormatError(f"{root}: several .yaml files and no data.yaml; give the "
                                 "data set's .yaml file itself")
    for name in NAME_FILES:
        if (root / name).is_file():
            return root / name
    raise DatasetFormatError(f"{root}: no data.yaml (nor {', '.join(NAME_FILES)}) naming the "
                             "classes")


# ---------------------------------------------------------------- data.yaml and class lists
def read_names(path: Path) -> list[str]:
    """The class names, index order, from a data.yaml (`names` as a list or a mapping, or
    `nc` alone) or a class list file (one name a line)."""
    text = _read_text(path, path)
    if path.suffix not in (".yaml", ".yml"):
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise DatasetFormatError(f"{path}: line {number} is empty; each line names "
                                         "one class, in index order")
        return _checked_names(path, {i: line.strip() for i, line in enumerate(lines)},
                              lambda i: f"line {i + 1}")
    if len(text) > MAX_YAML_CHARS:
        raise DatasetFormatError(f"{path}: {len(text)} characters is too long for a data.yaml")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DatasetFormatError(f"{path}: {where}not YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{path}: line 1: expected 'key: value' lines, got "
                                 f"{type(data).__name__}")
    at = _key_line(text, "names")
    nc = data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 0):
        raise DatasetFormatError(f"{path}: line {_key_line(text, 'nc')}: nc is {nc!r}, not a "
                                 "number of classes")
    if data.get("names") is None:
        if nc is None:
            raise DatasetFormatError(f"{path}: neither names nor nc is given")
        return [f"class_{i}" for i in range(nc)]
    value = data["names"]
    if isinstance(value, list):
        found = dict(enumerate(value))
    elif isinstance(value, dict):
        found = {}
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, int):
                raise DatasetFormatError(f"{path}: line {at}: names key {k!r} is not a "
                                         "class index")
            found[k] = v
    else:
        raise DatasetFormatError(f"{path}: line {at}: names must be a list or a mapping "
                                 "of class index to name")
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
               for v in found.values()):
        raise DatasetFormatError(f"{path}: line {at}: a class name is not a plain name")
    names = _checked_names(path, {k: str(v) for k, v in found.items()}, lambda i: f"line {at}")
    if nc is not None and nc != len(names):
        raise DatasetFormatError(f"{path}: line {_key_line(text, 'nc')}: nc is {nc} but names "
                                 f"has {len(names)} classes")
    return names


def _key_line(text: str, key: str) -> int:
    """The line (1-based) where a top-level key starts, for messages (1 if not found)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(f"{key}:") or line.startswith(f'"{key}":'):
            return number
    return 1


def _checked_names(path: Path, found: dict[int, str], where: Callable[[int], str]
                   ) -> list[str]:
    """Names by index 0..n-1, each non-empty and different (a category is found by name)."""
    if sorted(found) != list(range(len(found))):
        missing = sorted(set(range(max(found, default=0) + 1)) - set(found))
        raise DatasetFormatError(f"{path}: {where(0)}: class indices must be 0 to "
                                 f"{len(found) - 1}; {missing[0]} is missing")
    first: dict[str, int] = {}
    for i in range(len(found)):
        name = found[i]
        if not name.strip():
            raise DatasetFormatError(f"{path}: {where(i)}: class {i} has an empty name")
        if name in first:
            raise DatasetFormatError(f"{path}: {where(i)}: classes {first[name]} and {i} "
                                     f"are both named {name!r}")
        first[name] = i
    return [found[i] for i in range(len(found))]
