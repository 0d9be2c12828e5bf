"""labelme JSON: reading and checking labelme's files, and labelme's rasterisation (the
pixels it gives each shape). Export is `mrcnn.coco.labelme_export`.

What labelme means by its files, learnt from its loader and its rasteriser (`LabelFile.load`,
`utils.shape_to_mask`, `shapes_to_label`):

- A file is {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight",
  "imageWidth"}. `imagePath` is relative to the JSON file's folder; `imageData` is the image's
  bytes in base64, or null (then labelme reads `imagePath`).
- A shape is {"label", "points", "group_id", "description", "shape_type", "flags", "mask"}.
  Shapes sharing a label and a non-null `group_id` are one object.
- Polygons, rectangles and circles are drawn with Pillow's ImageDraw, outline included, on
  pixel *centres*: the point (x, y) is the pixel in column x, row y. Our polygons
  (`mrcnn.masks`) run along pixel *corners*; Pillow grows those by a pixel on the right and
  at the bottom, and shifting them by half a pixel does not help (Pillow rounds the
  coordinates back). What labelme draws back into a hole-free mask is the chain of its
  boundary pixels' centres (8-connected, straight runs merged): export checks each such
  polygon against the same rasterisation and writes a `mask` shape where a pixel would change.
- A `mask` shape holds a bitmap of its box (a base64 PNG; non-zero is inside); its two points
  are the box's top-left and bottom-right pixels, both inclusive.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from mrcnn import masks
from mrcnn.coco.dataset import ImageFiles, LabelledInstance, LabelledSet
from mrcnn.coco.validate import BACKGROUND_NAMES
from mrcnn.errors import DatasetFormatError

#: Shape types that cover an area, and how many points each takes (None: three or more).
AREA_SHAPES: dict[str, int | None] = {
    "polygon": None, "rectangle": 2, "circle": 2, "oriented_rectangle": 4, "mask": 2}
#: labelme files larger than this are refused before reading (embedded images make them big).
MAX_LABELME_BYTES = 256 * 1024 * 1024

Point = tuple[float, float]


# ---------------------------------------------------------------- labelme's rasterisation
def draw_shape(shape_type: str, points: list[Point], height: int, width: int) -> np.ndarray:
    """The pixels labelme gives a polygon, rectangle, circle or oriented rectangle on a
    (height, width) image: Pillow's ImageDraw with the outline included, as
    `labelme.utils.shape_to_mask` draws them."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if shape_type == "circle":
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=1, fill=1)
    elif shape_type == "rectangle":
        (x0, y0), (x1, y1) = points
        draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), outline=1, fill=1)
    else:
        draw.polygon(points, outline=1, fill=1)
    return np.asarray(canvas).astype(bool)


def place_bitmap(bitmap: np.ndarray, top_left: Point, height: int, width: int) -> np.ndarray:
    """A mask shape's bitmap placed on the image at its top-left point (rounded), clipped to
    the image, as labelme's `shapes_to_label` places it."""
    out = np.zeros((height, width), bool)
    x0, y0 = (int(v) for v in np.round(np.asarray(top_left, dtype=np.float64)))
    bh, bw = bitmap.shape
    ys, ye = max(y0, 0), min(y0 + bh, height)
    xs, xe = max(x0, 0), min(x0 + bw, width)
    if ys < ye and xs < xe:
        out[ys:ye, xs:xe] = bitmap[ys - y0:ye - y0, xs - x0:xe - x0]
    return out


# ---------------------------------------------------------------- import: checking
@dataclass(frozen=True)
class Shape:
    """One area shape of a labelme file, checked."""

    index: int
    label: str
    shape_type: str
    points: list[Point]
    group_id: int | None
    bitmap: str | None  # a mask shape's base64 PNG, decoded by `decode_bitmap`


@dataclass
class Document:
    """One labelme file, its structure checked (not yet its image)."""

    path: Path
    image_path: str
    has_image_data: bool
    height: int | None
    width: int | None
    shapes: list[Shape]
    skipped: Counter = field(default_factory=Counter)


def _fail(path: Path, where: str, message: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}: {where}{': ' if where else ''}{message}")


def read_json(path: Path):
    """A labelme file's JSON, refused (naming the file) when it is not JSON."""
    try:
        size = path.stat().st_size
        if size > MAX_LABELME_BYTES:
            raise _fail(path, "", f"file is {size / 2**20:.0f} MiB; labelme files over "
                        f"{MAX_LABELME_BYTES // 2**20} MiB are refused")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise _fail(path, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _fail(path, "", "not a JSON file (not UTF-8 text)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, "", f"not a JSON file ({exc.msg} at line {exc.lineno}, column "
                    f"{exc.colno})") from None
    except RecursionError:
        raise _fail(path, "", "not a labelme file (JSON nested too deeply)") from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _points(path: Path, where: str, value) -> list[Point]:
    if not isinstance(value, list) or not value:
        raise _fail(path, where, "'points' must be a non-empty list of [x, y] pairs")
    points = []
    for j, p in enumerate(value):
        if not (isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p)):
            raise _fail(path, where, f"points[{j}] is {_short(p)}; each point must be a "
                        "pair of numbers [x, y]")
        try:
            x, y = float(p[0]), float(p[1])
        except OverflowError:
            x = y = math.inf
        if not (math.isfinite(x) and math.isfinite(y)):
            raise _fail(path, where, f"points[{j}] is not a finite point")
        points.append((x, y))
    return points


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_shape(path: Path, i: int, s, doc: Document) -> None:
    where = f"shapes[{i}]"
    if not isinstance(s, dict):
        raise _fail(path, where, "a shape must be an object")
    for key in ("label", "points"):
        if key not in s:
            raise _fail(path, where, f"missing key {key!r}")
    label = s["label"]
    if not isinstance(label, str):
        raise _fail(path, where, f"'label' must be a string, got {_short(label)}")
    if not label.strip():
        raise _fail(path, where, "empty label")
    points = _points(path, where, s["points"])
    shape_type = s.get("shape_type")
    if shape_type is None:
        shape_type = "polygon"  # labelme 5 reads a shape without a type as a polygon
    if not isinstance(shape_type, str):
        raise _fail(path, where, f"'shape_type' must be a string, got {_short(shape_type)}")
    group_id = s.get("group_id")
    if group_id is not None and not (isinstance(group_id, int) and not isinstance(group_id,
                                                                                   bool)):
        raise _fail(path, where, f"'group_id' must be an integer or null, got "
                    f"{_short(group_id)}")
    bitmap = s.get("mask")
    if bitmap is not None and not isinstance(bitmap, str):
        raise _fail(path, where, "'mask' must be a base64 PNG or null")
    if label.strip() in BACKGROUND_NAMES:
        doc.skipped["background shapes"] += 1
        return
    if shape_type not in AREA_SHAPES:
        doc.skipped[f"{shape_type[:40]} shapes"] += 1  # points, lines: no area
        return
    wanted = AREA_SHAPES[shape_type]
    if wanted is None and len(points) < 3:
        raise _fail(path, where, f"a polygon needs at least 3 points, got {len(points)}")
    if wanted is not None and len(points) != wanted:
        raise _fail(path, where, f"a {shape_type} takes {wanted} points, got {len(points)}")
    if shape_type == "mask":
        if bitmap is None:
            raise _fail(path, where, "a mask shape needs its bitmap ('mask' is null)")
        (x0, y0), (x1, y1) = points
        if x1 < x0 or y1 < y0:
            raise _fail(path, where, "a mask shape's points must be its box's top-left and "
                        "bottom-right corners")
    doc.shapes.append(Shape(i, label.strip(), shape_type, points, group_id,
                            bitmap if shape_type == "mask" else None))


def parse_document(path: Path) -> Document:
    """A labelme file's keys, types and shapes checked; every problem a DatasetFormatError
    naming the file and the shape."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise _fail(path, "", "not a labelme file (the top level must be an object)")
    for key in ("shapes", "imagePath"):
        if key not in data:
            raise _fail(path, "", f"missing key {key!r} (not a labelme file?)")
    if not isinstance(data["shapes"], list):
        raise _fail(path, "", "'shapes' must be a list")
    image_path = data["imagePath"]
    if not isinstance(image_path, str) or not image_path.strip():
        raise _fail(path, "", "'imagePath' must name the image file")
    image_data = data.get("imageData")
    if image_data is not None and not isinstance(image_data, str):
        raise _fail(path, "", "'imageData' must be base64 text or null")
    size = []
    for key in ("imageHeight", "imageWidth"):
        v = data.get(key)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            raise _fail(path, "", f"{key!r} must be a positive integer, got {_short(v)}")
        size.append(v)
    doc = Document(path, image_path, bool(image_data), size[0], size[1], [])
    for i, s in enumerate(data["shapes"]):
        _parse_shape(path, i, s, doc)
    return doc


def check_extent(doc: Document, s: Shape, height: int, width: int) -> None:
    """Refuse points far outside the image (drawing them would take memory and time for
    nothing): within one image size of its edges is allowed, and clipped as labelme does."""
    margin = max(height, width)
    for x, y in s.points:
        if not (-margin <= x <= width + margin and -margin <= y <= height + margin):
            raise _fail(doc.path, f"shapes[{s.index}]", f"point ({x:g}, {y:g}) lies far "
                        f"outside the {width}x{height} image")


def decode_bitmap(doc: Document, s: Shape) -> np.ndarray:
    """A mask shape's bitmap (non-zero = inside), refused when it does not decode, has more
    than one channel or does not fit the box its points give."""
    where = f"shapes[{s.index}]"
    try:
        data = base64.b64decode(s.bitmap or "", validate=True)
    except (binascii.Error, ValueError):
        raise _fail(doc.path, where, "the mask shape's bitmap is not base64") from None
    (x0, y0), (x1, y1) = s.points
    try:
        with Image.open(io.BytesIO(data)) as im:
            bw, bh = im.size
            if abs((x1 - x0 + 1) - bw) >= 1 or abs((y1 - y0 + 1) - bh) >= 1:
                raise _fail(doc.path, where, f"the mask shape's bitmap is {bw}x{bh} but its "
                            f"points give a {x1 - x0 + 1:g}x{y1 - y0 + 1:g} box")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError):
        raise _fail(doc.path, where, "the mask shape's bitmap does not decode as a PNG"
                    ) from None
    if arr.ndim != 2:
        raise _fail(doc.path, where, f"the mask shape's bitmap must have one channel, got "
                    f"{arr.shape[2] if arr.ndim == 3 else arr.ndim}")
    return arr.astype(bool)


def _image_name(doc: Document, root: Path, files: ImageFiles) -> str:
    """The document's image as a name inside the images folder, read and its size checked."""
    where = f"imagePath {doc.image_path!r}"
    raw = doc.image_path.replace("\\", "/")  # written on Windows
    candidate = Path(raw) if Path(raw).is_absolute() else doc.path.parent.resolve() / raw
    candidate = Path(os.path.normpath(candidate))
    if not candidate.is_relative_to(root) or candidate == root:
        raise _fail(doc.path, where, f"the image lies outside the images folder {root}; "
                    "give the folder that holds the images (images_dir)")
    if not candidate.is_file():
        if doc.has_image_data:
            raise _fail(doc.path, where, f"image file {candidate} does not exist; the image "
                        "is only embedded (imageData), and import reads images from files: "
                        "save it as that file first")
        raise _fail(doc.path, where, f"image file {candidate} does not exist")
    name = candidate.relative_to(root).as_posix()
    h, w = files.size(name, f"{doc.path}: {where}")
    if (doc.height is not None and doc.height != h) or (doc.width is not None
                                                         and doc.width != w):
        raise _fail(doc.path, where, f"the file gives size {doc.width}x{doc.height} "
                    f"(imageWidth x imageHeight) but the image is {w}x{h}")
    return name


def labelme_files(path: Path) -> list[Path]:
    """One .json file, or every .json file under a folder (sorted)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetFormatError(f"{path} does not exist; give a folder of labelme .json "
                                 "files or one such file")
    found = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".json" and p.is_file())
    if not found:
        raise DatasetFormatError(f"{path}: no labelme .json files in this folder")
    return found


# ---------------------------------------------------------------- import
def shape_mask(doc: Document, s: Shape, height: int, width: int) -> np.ndarray:
    if s.shape_type == "mask":
        return place_bitmap(decode_bitmap(doc, s), s.points[0], height, width)
    return draw_shape(s.shape_type, s.points, height, width)


def read_labelme(path: str | Path, *, images_dir: str | Path | None = None) -> LabelledSet:
    """Read and check a folder of labelme JSON files (searched recursively) or one file, and
    the images they name; touches no project.

    Rules:
    - `imagePath` is relative to its JSON file's folder (or absolute) and must lead into the
      images folder: `images_dir` when given, else the labelme folder (a file's own folder);
      images elsewhere are refused, naming the file. `imageHeight`/`imageWidth`, when given,
      must match the image file.
    - `imageData` is never written anywhere: it is ignored when the image file exists, and a
      file whose image exists only as imageData is refused, naming it.
    - polygon, rectangle, circle, oriented_rectangle and mask shapes become masks drawn as
      labelme draws them; point, points, line, linestrip and unknown shapes (no area) and
      `_background_` shapes are skipped and counted by type.
    - Shapes sharing a label and a non-null `group_id` are one instance (their union); every
      other shape is an instance of its own. Overlaps stay as drawn.
    """
    source = Path(path)
    files_found = labelme_files(source)
    folder = source.parent if source.is_file() else source
    images_root = Path(images_dir) if images_dir is not None else folder
    files = ImageFiles(images_root, DatasetFormatError, field="imagePath")
    root = images_root.resolve()
    # Everything is checked before anything is drawn.
    docs: list[tuple[Document, str]] = []
    for file in files_found:
        doc = parse_document(file)
        name = _image_name(doc, root, files)
        h, w = files.size(name, str(file))
        for s in doc.shapes:
            check_extent(doc, s, h, w)
            if s.shape_type == "mask":
                decode_bitmap(doc, s)
        docs.append((doc, name))
    categories: dict[str, None] = {}
    images: dict[str, None] = {}
    instances: list[LabelledInstance] = []
    skipped: Counter = Counter()
    for doc, name in docs:
        images.setdefault(name)
        skipped.update(doc.skipped)
        h, w = files.size(name, str(doc.path))
        groups: dict[tuple[str, int | None, int], tuple[np.ndarray, list[int]]] = {}
        for s in doc.shapes:
            key = (s.label, s.group_id, -1) if s.group_id is not None else (s.label, None,
                                                                           s.index)
            mask = shape_mask(doc, s, h, w)
            if key in groups:
                groups[key][0][...] |= mask
                groups[key][1].append(s.index)
            else:
                groups[key] = (mask, [s.index])
        for (label, group_id, _), (mask, indices) in groups.items():
            categories.setdefault(label)
            where = f"{doc.path}: shapes[{', '.join(map(str, indices))}]" + (
                f" (group_id {group_id})" if group_id is not None else "")
            instances.append(LabelledInstance(name, label, masks.encode(mask), where))
    return LabelledSet(source, "labelme", files, list(categories), list(images), instances,
                       skipped=dict(skipped))
