"""Pascal VOC segmentation folders (format "voc"), laid out as the VOC devkit's::

    JPEGImages/<flat>.<ext>           the image, its own format and extension kept
    SegmentationObject/<flat>.png     palette PNG, value k = the k-th <object> of the XML
    SegmentationClass/<flat>.png      palette PNG, value = class index in class_names.txt
    Annotations/<flat>.xml            folder, filename, path (the image's name in the
                                      project), size, segmented, status, and per object
                                      name, pose, truncated, difficult, bndbox
    ImageSets/Segmentation/train.txt, val.txt, trainval.txt   the project's split
    class_names.txt                   _background_, then the categories (as labelme writes)

`<flat>` is the image's name in the project without its extension, its folders joined by
`__` (`sub/dir/img.jpg` → `sub__dir__img`), made unique by `_2`, `_3`, ...; VOC tools find an
image by that stem, whatever its extension. The PNGs use the devkit's colour map
(`png_masks.voc_colormap`). Overlaps follow `png_masks.OVERLAP_RULE` (smaller instance on
top); a <bndbox> is the extent of its object's pixels in SegmentationObject, in VOC's 1-based
inclusive pixel coordinates. Value 255 is VOC's "void": export draws no void borders, and an
image holds at most 254 instances (the rest are left out and counted); more than 254
categories cannot be written.

Import takes every PNG in SegmentationObject/ (ImageSets are not consulted) with its image
from JPEGImages/ (or `images_dir`); 255 is void, never an instance. Categories come from the
XML's k-th object; without the XML, from the most frequent class of SegmentationClass under
the instance, named by class_names.txt or, where there is none, by the 20 VOC classes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from mrcnn.coco.dataset import (
    ExportReport,
    ImageFiles,
    LabelledInstance,
    LabelledSet,
    export_images,
    place_image,
    write_folder_atomic,
)
from mrcnn.coco.png_masks import (
    OVERLAP_RULE,
    check_written,
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
from mrcnn.store.project import Project
from mrcnn.store.records import IMAGE_STATUSES

FLAT_SEPARATOR = "__"
VOID = 255
MAX_INSTANCES = 254  # 1..254; 255 is void
MAX_CATEGORIES = 254
BACKGROUND = "_background_"
#: The names of VOC's 20 classes, index = line: what a folder without class_names.txt means.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor")
MAX_XML_BYTES = 64 * 1024 * 1024
_SINGLE_BAND = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F"}


# ---------------------------------------------------------------- export
def _depth(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return 1 if im.mode in _SINGLE_BAND else 3
    except (OSError, ValueError):
        return 3


def _annotation_xml(folder: str, filename: str, name: str, status: str, w: int, h: int,
                    depth: int, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    root = ET.Element("annotation")

    def add(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
        el = ET.SubElement(parent, tag)
        if text is not None:
            el.text = str(text)
        return el

    add(root, "folder", folder)
    add(root, "filename", filename)
    add(root, "path", name)  # the image's name in the project it came from
    add(add(root, "source"), "database", "Mask R-CNN Studio")
    size = add(root, "size")
    add(size, "width", w)
    add(size, "height", h)
    add(size, "depth", depth)
    add(root, "segmented", 1)
    add(root, "status", status)
    for category, (xmin, ymin, xmax, ymax) in objects:
        obj = add(root, "object")
        add(obj, "name", category)
        add(obj, "pose", "Unspecified")
        add(obj, "truncated", 0)
        add(obj, "difficult", 0)
        box = add(obj, "bndbox")
        for tag, v in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            add(box, tag, v)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _bndbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(xmin, ymin, xmax, ymax) of a mask's pixels, 1-based and inclusive (VOC)."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1


def export_voc(project: Project, out_dir: str | Path, *, reviewed_only: bool = False
               ) -> ExportReport:
    """Write the project's accepted instances as a Pascal VOC segmentation folder (module
    docstring) into `out_dir`, atomically; every PNG is read back before it appears."""
    out_dir = Path(out_dir)
    categories, images = export_images(project, reviewed_only=reviewed_only)
    if len(categories) > MAX_CATEGORIES:
        raise DatasetFormatError(
            f"{out_dir}: VOC's class PNGs hold {MAX_CATEGORIES} categories (255 is void) and "
            f"this project has {len(categories)}; export mask PNGs instead (nothing was "
            "written)")
    cat_index = {c.id: k for k, c in enumerate(categories, start=1)}
    flats = unique_stems([im.name for im in images], flat_separator=FLAT_SEPARATOR)
    report = ExportReport(out_dir, len(images), 0, len(categories), masks="png", format="voc")
    written: dict[str, int] = {}

    def fill(tmp: Path) -> None:
        lost = hidden = beyond = 0
        splits: dict[str, list[str]] = {"train": [], "val": []}
        for im, flat in zip(images, flats, strict=True):
            h, w = im.record.height, im.record.width
            for inst in im.instances:
                if (inst.rle.height, inst.rle.width) != (h, w):
                    raise DatasetFormatError(
                        f"image {im.name}: instance {inst.id}'s mask is {inst.rle.width}x"
                        f"{inst.rle.height} but the image is {w}x{h}; nothing was exported")
            instances = [i for i in im.instances if i.rle.area > 0]
            beyond += max(0, len(instances) - MAX_INSTANCES)
            instances = instances[:MAX_INSTANCES]
            painted = paint([i.mask() for i in instances], [i.id for i in instances], h, w)
            lost += painted.lost_pixels
            hidden += len(painted.hidden)
            cat_lut = np.array([0] + [cat_index[instances[i].category.id]
                                      for i in painted.shown], np.int64)
            filename = flat + PurePosixPath(im.name).suffix
            local = im.local_path()
            place_image(local, tmp / "JPEGImages" / filename)
            obj_rel = f"SegmentationObject/{flat}.png"
            cls_rel = f"SegmentationClass/{flat}.png"
            written[obj_rel] = write_index_png(tmp / obj_rel, painted.index, palette=True)
            written[cls_rel] = write_index_png(tmp / cls_rel, cat_lut[painted.index],
                                               palette=True)
            objects = [(instances[i].category.name, _bndbox(painted.index == k))
                       for k, i in enumerate(painted.shown, start=1)]
            xml = _annotation_xml(out_dir.name, filename, im.name, str(im.record.status), w,
                                  h, _depth(local), objects)
            (tmp / "Annotations").mkdir(exist_ok=True)
            (tmp / "Annotations" / f"{flat}.xml").write_text(xml, encoding="utf-8")
            splits.setdefault(str(im.record.split), []).append(flat)
            report.annotations += len(objects)
        sets = tmp / "ImageSets" / "Segmentation"
        sets.mkdir(parents=True)
        for split in ("train", "val"):
            (sets / f"{split}.txt").write_text("".join(f"{s}\n" for s in splits[split]),
                                               encoding="utf-8")
        (sets / "trainval.txt").write_text("".join(f"{s}\n" for s in flats), encoding="utf-8")
        (tmp / "class_names.txt").write_text(
            "".join(f"{n}\n" for n in [BACKGROUND, *(c.name for c in categories)]),
            encoding="utf-8")
        report.notes.append("JPEGImages/ keeps each image's own format and extension (a PNG "
                            "stays .png): VOC tools find an image by its name stem")
        report.notes.append(f"file names are flattened: folders joined by "
                            f"'{FLAT_SEPARATOR}' (sub/dir/img.jpg → sub__dir__img); the "
                            "project's name is kept in each XML's <path>")
        report.notes.append(f"overlaps: {OVERLAP_RULE}; no void (255) borders are drawn")
        report_overlaps(report, lost, hidden, hidden_where="the export")
        if beyond:
            report.losses[f"instances beyond {MAX_INSTANCES} on one image"] = beyond
            report.notes.append(f"{beyond} instances were left out: a VOC object PNG holds "
                                f"{MAX_INSTANCES} per image (255 is void)")

    write_folder_atomic(out_dir, fill, lambda tmp: check_written(tmp, written))
    return report


# ---------------------------------------------------------------- import
@dataclass
class VocAnnotation:
    """What one Annotations/*.xml says that import uses."""

    filename: str | None
    path: str | None
    size: tuple[int, int] | None  # (height, width)
    objects: list[str]  # the k-th <object>'s name is instance value k
    status: str | None


def _int(el: ET.Element | None, where: str, tag: str) -> int | None:
    if el is None or el.text is None or not el.text.strip():
        return None
    try:
        return int(float(el.text.strip()))
    except ValueError:
        raise DatasetFormatError(f"{where}: <{tag}> must be a number, got "
                                 f"{el.text.strip()!r}") from None


def read_annotation(path: Path) -> VocAnnotation:
    """Parse a VOC annotation XML. Refused, naming the file: one that does not parse, is not
    an <annotation>, or declares a DTD or entities (never expanded)."""
    where = str(path)
    try:
        if path.stat().st_size > MAX_XML_BYTES:
            raise DatasetFormatError(f"{where}: file is too large")
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetFormatError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise DatasetFormatError(f"{where}: not UTF-8 or ASCII XML")
    if re.search(rb"<!\s*(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise DatasetFormatError(f"{where}: declares a DTD or entities, which are refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DatasetFormatError(f"{where}: the XML does not parse ({exc})") from None
    if root.tag != "annotation":
        raise DatasetFormatError(f"{where}: expected an <annotation>, got <{root.tag}>")
    objects = []
    for k, obj in enumerate(root.findall("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DatasetFormatError(f"{where}: <object> {k} has no <name>")
        objects.append(name)
    size_el = root.find("size")
    size = None
    if size_el is not None:
        w = _int(size_el.find("width"), where, "width")
        h = _int(size_el.find("height"), where, "height")
        if w is not None and h is not None and (w, h) != (0, 0):
            size = (h, w)
    status = (root.findtext("status") or "").strip() or None
    if status is not None and status not in IMAGE_STATUSES:
        raise DatasetFormatError(f"{where}: <status> must be one of "
                                 f"{', '.join(IMAGE_STATUSES)}, got {status!r}")
    filename = (root.findtext("filename") or "").strip() or None
    return VocAnnotation(filename, (root.findtext("path") or "").strip() or None, size,
                         objects, status)


def read_voc(path: str | Path, *, images_dir: str | Path | None = None) -> LabelledSet:
    """Read and check a Pascal VOC segmentation folder (module docstring); images from
    JPEGImages/ unless `images_dir` is given. Touches no project."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: a VOC data set is a folder (JPEGImages/, "
                                 "SegmentationObject/, Annotations/, ...)")
    obj_dir = root / "SegmentationObject"
    pngs = sorted(p for p in obj_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png"
                  ) if obj_dir.is_dir() else []
    if not pngs:
        raise DatasetFormatError(f"{root}: no instance masks in {obj_dir} (a VOC segmentation "
                                 "folder has one PNG per image there)")
    files = ImageFiles(root / "JPEGImages" if images_dir is None else images_dir,
                       DatasetFormatError, field="filename")
    names_file = root / "class_names.txt"
    declared = read_names(names_file) if names_file.exists() else None
    out = LabelledSet(root, "voc", files, [], [], [])
    used: list[str] = []
    for png in pngs:
        stem = png.stem
        xml_path = root / "Annotations" / f"{stem}.xml"
        ann = read_annotation(xml_path) if xml_path.exists() else None
        where = str(png) + (f" (image {ann.path})" if ann is not None and ann.path else "")
        file_name = find_image(files.images_dir, stem, where,
                               prefer=ann.filename if ann is not None else None)
        size = files.size(file_name, where)
        if ann is not None and ann.size is not None and ann.size != size:
            raise DatasetFormatError(f"{xml_path}: gives size {ann.size[1]}x{ann.size[0]} but "
                                     f"the image {file_name} is {size[1]}x{size[0]}")
        index = read_index_png(png, str(png), size=size,
                               image=file_name)
        cls_png = root / "SegmentationClass" / png.name
        classes = None
        if cls_png.exists():
            classes = read_index_png(cls_png, str(cls_png), size=size,
                                   image=file_name)
        out.images.append(file_name)
        if ann is not None and ann.status is not None:
            out.statuses[file_name] = ann.status
        for value, rle in index_masks(index, skip=(0, VOID)).items():
            at = f"{png}: instance {value}"
            if ann is not None:
                if value > len(ann.objects):
                    raise DatasetFormatError(
                        f"{png}: has instance value {value} but {xml_path} lists only "
                        f"{len(ann.objects)} <object>s (object k is value k)")
                category = ann.objects[value - 1]
                if declared is not None and category not in declared[1:]:
                    raise DatasetFormatError(f"{xml_path}: object {value} is named "
                                             f"{category!r}, which is not in {names_file}")
            else:
                if classes is None:
                    raise DatasetFormatError(
                        f"{png}: neither {xml_path} nor {cls_png} exists to name its "
                        "objects' categories")
                k = majority(classes[index == value], skip=(0, VOID))
                if k is None:
                    raise DatasetFormatError(f"{cls_png}: no class under instance {value} of "
                                             f"{png.name} (only background or void)")
                names = declared if declared is not None else VOC_CLASSES
                if k >= len(names):
                    raise DatasetFormatError(
                        f"{cls_png}: class index {k} is not named in "
                        f"{names_file if declared is not None else 'the 20 VOC classes'}")
                category = names[k]
            if category not in used:
                used.append(category)
            out.instances.append(LabelledInstance(file_name, category, rle, at))
    out.categories = declared[1:] if declared is not None else used
    return out
