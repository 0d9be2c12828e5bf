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
    report.annotations = sum(len(p.lines) for p in planned)
    report.losses = {SPLIT_PARTS: split, HOLES_LOST: holes, UNREVIEWED: unreviewed}
    instances = sum(len(p.image.instances) for p in planned)
    report.notes.append(f"{instances} instances written as {report.annotations} lines (one "
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
            place_image(p.image.path, tmp / "images" / p.name)
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
    lines = [
        f"# YOLO segmentation data set exported by Mask R-CNN Studio from {_yaml_str(source)}",
        "# path: this folder. After moving the folder, change it (or delete the line: recent",
        "# Ultralytics versions then use the folder this file is in).",
        f"path: {_yaml_str(str(out_dir))}",
        "train: train.txt",
        "val: val.txt",
        f"nc: {len(names)}",
        "names:" if names else "names: {}",
    ]
    lines += [f"  {i}: {_yaml_str(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def _yaml_str(s: str) -> str:
    """A YAML double-quoted scalar: printable characters as they are, the rest escaped."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif (0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF and o not in (0x2028, 0x2029)
              or 0xE000 <= o <= 0xFFFD and o != 0xFEFF or 0x10000 <= o <= 0x10FFFF):
            out.append(ch)
        else:
            out.append(f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}" if o <= 0xFFFF
                       else f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


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
    """The class names, index order, from a data.yaml (`names` as a list or a mapping,
    block or inline; or `nc` alone) or a class list file (one name a line)."""
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
    keys = _YamlSubset(text, path).top_level()
    nc = keys.get("nc")
    if nc is not None and not (isinstance(nc[0], str) and nc[0].isdigit()):
        raise DatasetFormatError(f"{path}: line {nc[1]}: nc is {nc[0]!r}, not a number of "
                                 "classes")
    if "names" not in keys:
        if nc is None:
            raise DatasetFormatError(f"{path}: neither names nor nc is given")
        return [f"class_{i}" for i in range(int(str(nc[0])))]
    value, at = keys["names"]
    if isinstance(value, list):
        found = dict(enumerate(value))
    elif isinstance(value, dict):
        found = {}
        for k, v in value.items():
            if not k.isdigit():
                raise DatasetFormatError(f"{path}: line {at}: names key {k!r} is not a "
                                         "class index")
            found[int(k)] = v
    else:
        raise DatasetFormatError(f"{path}: line {at}: names must be a list or a mapping "
                                 "of class index to name")
    if not all(isinstance(v, str) for v in found.values()):
        raise DatasetFormatError(f"{path}: line {at}: a class name is a list or mapping")
    names = _checked_names(path, {k: str(v) for k, v in found.items()}, lambda i: f"line {at}")
    if nc is not None and int(str(nc[0])) != len(names):
        raise DatasetFormatError(f"{path}: line {nc[1]}: nc is {nc[0]} but names has "
                                 f"{len(names)} classes")
    return names


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


_Value = str | list | dict
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
            "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
            "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}


class _YamlSubset:
    """The YAML a data.yaml uses: top-level `key: value` lines, scalars (plain, 'single' and
    "double" quoted), block lists and mappings under a key, inline [a, b] and {0: a}
    (over several lines too). Other keys' blocks (download scripts) are skipped unread."""

    def __init__(self, text: str, path: Path):
        self.path = path
        self.lines = [_strip_comment(line) for line in text.splitlines()]

    def error(self, line: int, message: str) -> DatasetFormatError:
        return DatasetFormatError(f"{self.path}: line {line}: {message} (not readable as a "
                                  "data.yaml)")

    def top_level(self) -> dict[str, tuple[_Value, int]]:
        keys: dict[str, tuple[_Value, int]] = {}
        i = 0
        while i < len(self.lines):
            line, number = self.lines[i], i + 1
            i += 1
            if not line.strip() or line.strip() in ("---", "..."):
                continue
            if line[0] in " \t":
                raise self.error(number, "unexpected indentation")
            key, rest = self._key(line.rstrip(), number)
            block = []
            while i < len(self.lines) and (not self.lines[i].strip()
                                           or self.lines[i][0] in " \t"
                                           or not rest and _is_item(self.lines[i])):
                if self.lines[i].strip():
                    block.append((i + 1, self.lines[i]))
                i += 1
            if key not in ("names", "nc"):
                continue  # path, train, val, download, ...: not needed to import
            if key in keys:
                raise self.error(number, f"{key} is given twice")
            if rest[:1] in ("[", "{"):
                text = " ".join([rest, *(b for _n, b in block)])
                value, end = _Flow(text, lambda m, n=number: self.error(n, m)).value(0)
                if text[end:].strip():
                    raise self.error(number, f"unexpected {text[end:].strip()[:20]!r} after "
                                     f"the {key} list")
                keys[key] = (value, number)
            elif rest:
                if block:
                    raise self.error(block[0][0], f"unexpected indented line under {key}")
                keys[key] = (self._scalar(rest, number), number)
            else:
                keys[key] = (self._block(block, number), number)
        return keys

    def _key(self, line: str, number: int) -> tuple[str, str]:
        if line[0] in "\"'":
            key, end = _quoted(line, 0, lambda m: self.error(number, m))
        else:
            end = line.find(":")
            while end != -1 and end + 1 < len(line) and line[end + 1] not in " \t":
                end = line.find(":", end + 1)
            if end == -1:
                raise self.error(number, "expected 'key: value'")
            key = line[:end].strip()
        if line[end:end + 1] != ":":
            raise self.error(number, "expected ':' after the key")
        return key, line[end + 1:].strip()

    def _scalar(self, text: str, number: int) -> str:
        if text[0] in "\"'":
            value, end = _quoted(text, 0, lambda m: self.error(number, m))
            if text[end:].strip():
                raise self.error(number, f"unexpected {text[end:].strip()[:20]!r} after a "
                                 "quoted string")
            return value
        if text[0] in "|>&*!%@`":
            raise self.error(number, f"{text[:20]!r}: this YAML is not supported here")
        return text

    def _block(self, block: list[tuple[int, str]], number: int) -> _Value:
        if not block:
            return ""
        if all(_is_item(b.strip()) for _n, b in block):
            return [self._scalar(b.strip()[1:].strip(), n) for n, b in block]
        mapping: dict[str, str] = {}
        for n, b in block:
            key, rest = self._key(b.strip(), n)
            if key in mapping:
                raise self.error(n, f"{key} is given twice")
            if not rest:
                raise self.error(n, f"{key} has no value")
            mapping[key] = self._scalar(rest, n)
        return mapping


def _is_item(line: str) -> bool:
    """A block list item (`- name`); YAML allows it at the indentation of its key."""
    return line == "-" or line.startswith("- ")


def _strip_comment(line: str) -> str:
    """The line without its comment: '#' at the start or after a blank, outside quotes."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


def _quoted(text: str, start: int, error) -> tuple[str, int]:
    """A quoted scalar starting at text[start]: (value, index after the closing quote)."""
    quote = text[start]
    out = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            if quote == "'" and text[i + 1:i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if ch == "\\" and quote == '"':
            code = text[i + 1:i + 2]
            width = {"x": 2, "u": 4, "U": 8}.get(code)
            if width:
                digits = text[i + 2:i + 2 + width]
                if len(digits) != width or not all(c in "0123456789abcdefABCDEF"
                                                   for c in digits):
                    raise error(f"bad escape \\{code}{digits}")
                out.append(chr(int(digits, 16)) if int(digits, 16) <= 0x10FFFF else "")
                i += 2 + width
                continue
            if code not in _ESCAPES:
                raise error(f"unknown escape \\{code}")
            out.append(_ESCAPES[code])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise error(f"the string opened by {quote} is not closed")


class _Flow:
    """An inline [list] or {mapping} of scalars."""

    def __init__(self, text: str, error):
        self.text = text
        self.error = error

    def _skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t":
            i += 1
        return i

    def value(self, i: int) -> tuple[_Value, int]:
        i = self._skip(i)
        if i >= len(self.text):
            raise self.error("the list is not closed")
        opening = self.text[i]
        if opening not in "[{":
            raise self.error(f"expected [ or {{, found {opening!r}")
        closing = "]" if opening == "[" else "}"
        items: list[str] = []
        mapping: dict[str, str] = {}
        i = self._skip(i + 1)
        while True:
            if i >= len(self.text):
                raise self.error(f"the {opening}...{closing} is not closed")
            if self.text[i] == closing:
                return (items if opening == "[" else mapping), i + 1
            item, i = self._scalar(i, ":," + closing if opening == "{" else "," + closing)
            if opening == "{":
                if self.text[i:i + 1] != ":":
                    raise self.error(f"expected ':' after {item!r}")
                value, i = self._scalar(self._skip(i + 1), "," + closing)
                if item in mapping:
                    raise self.error(f"{item} is given twice")
                mapping[item] = value
            else:
                items.append(item)
            i = self._skip(i)
            if i >= len(self.text):
                raise self.error(f"the {opening}...{closing} is not closed")
            if self.text[i] == ",":
                i = self._skip(i + 1)
            elif self.text[i] != closing:
                raise self.error(f"expected ',' or {closing!r} in the {opening}...{closing}")

    def _scalar(self, i: int, stops: str) -> tuple[str, int]:
        if i < len(self.text) and self.text[i] in "\"'":
            value, end = _quoted(self.text, i, self.error)
            return value, self._skip(end)
        if i < len(self.text) and self.text[i] in "[{":
            raise self.error("nested lists are not class names")
        end = i
        while end < len(self.text) and self.text[end] not in stops:
            end += 1
        value = self.text[i:end].strip()
        if not value:
            raise self.error("an empty item")
        return value, end
