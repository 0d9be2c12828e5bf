"""Reading and validating a COCO instance-segmentation file from any tool.

Produces plain records; nothing here touches the project. Every problem is a
CocoFormatError that names the file, the record and the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from mrcnn.coco.keypoints import NumKeypointsTally, annotation_points, category_schema
from mrcnn.errors import CocoFormatError
from mrcnn.keypoints import KeypointSchema, Points
from mrcnn.store.records import IMAGE_STATUSES

#: Files larger than this are refused before reading (parsing needs ~10x the file size in memory).
MAX_COCO_BYTES = 512 * 1024 * 1024
#: Category names other tools use for "no object"; they are not categories of ours.
BACKGROUND_NAMES = {"_background_", "__background__", "background"}


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int | None
    height: int | None
    # Our export's own field: the image's status in the project it came from (None in files
    # from other tools). Lets a reviewed image with no objects (a true negative) come back.
    status: str | None = None


@dataclass(frozen=True)
class CocoAnnotation:
    index: int  # position in the file's "annotations" list, for messages
    id: int
    image_id: int
    category_id: int
    segmentation: object
    keypoints: Points | None = None  # checked against its category's schema


@dataclass(frozen=True)
class CocoFile:
    path: Path
    images: list[CocoImage]
    categories: dict[int, str]  # id -> name, background removed
    annotations: list[CocoAnnotation]
    #: category id -> its keypoint schema (categories with a `keypoints` list only)
    schemas: dict[int, KeypointSchema] = field(default_factory=dict)
    #: what was corrected rather than refused (a wrong `num_keypoints`), for the report
    notes: list[str] = field(default_factory=list)


def read_coco_json(path: str | Path, *, max_bytes: int | None = None) -> dict:
    """Read and parse a COCO JSON file, with clear errors for every way it can be unreadable.

    Files over `max_bytes` (default: MAX_COCO_BYTES, read at call time) are refused unread."""
    path = Path(path)
    if max_bytes is None:
        max_bytes = MAX_COCO_BYTES
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CocoFormatError(f"{path}: file not found") from None
    except OSError as exc:
        raise CocoFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if size > max_bytes:
        raise CocoFormatError(
            f"{path}: file is {_size(size)}, above the {_size(max_bytes)} limit "
            "for one COCO file; split it into smaller files"
        )
    if size == 0:
        raise CocoFormatError(f"{path}: file is empty (0 bytes)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CocoFormatError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CocoFormatError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CocoFormatError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise CocoFormatError(f"{path}: JSON is nested too deeply to be a COCO file") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise CocoFormatError(f"{path}: unreadable JSON number ({str(exc).split(';')[0]})"
                              ) from None
    if not isinstance(data, dict):
        raise CocoFormatError(f"{path}: top level must be a JSON object, got {_kind(data)}")
    return data


def parse_coco(data: dict, path: str | Path) -> CocoFile:
    """Validate a parsed COCO dictionary. Raises CocoFormatError naming the first bad record."""
    path = Path(path)

    def fail(where: str, reason: str) -> CocoFormatError:
        return CocoFormatError(f"{path}: {where}: {reason}")

    for key in ("images", "categories"):
        if key not in data:
            raise fail("top level", f"missing key {key!r}")
    annotations_raw = data.get("annotations", [])
    for key, value in (("images", data["images"]), ("categories", data["categories"]),
                       ("annotations", annotations_raw)):
        if not isinstance(value, list):
            raise fail("top level", f"{key!r} must be a list, got {_kind(value)}")

    categories: dict[int, str] = {}
    schemas: dict[int, KeypointSchema] = {}
    background: set[int] = set()
    names: set[str] = set()
    for i, c in enumerate(data["categories"]):
        where = f"categories[{i}]"
        cid = _int_field(c, "id", where, fail)
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"{where} (id {cid})", "'name' must be a non-empty string")
        if cid in categories or cid in background:
            raise fail(f"{where} (id {cid})", f"duplicate category id {cid}")
        if name.strip() in BACKGROUND_NAMES:
            background.add(cid)
            continue
        if name.strip() in names:
            raise fail(f"{where} (id {cid})", f"duplicate category name {name!r}")
        names.add(name.strip())
        categories[cid] = name.strip()
        schema = category_schema(c, f"{where} (id {cid})", fail)
        if schema is not None:
            schemas[cid] = schema

    images: list[CocoImage] = []
    sizes: dict[int, tuple[int | None, int | None]] = {}
    for i, im in enumerate(data["images"]):
        where = f"images[{i}]"
        iid = _int_field(im, "id", where, fail)
        where = f"{where} (id {iid})"
        if iid in sizes:
            raise fail(where, f"duplicate image id {iid}")
        file_name = im.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            raise fail(where, "missing or empty 'file_name'")
        if "\x00" in file_name:
            raise fail(where, "'file_name' contains a NUL character")
        w = _optional_positive_int(im, "width", where, fail)
        h = _optional_positive_int(im, "height", where, fail)
        status = im.get("status")
        if status is not None and status not in IMAGE_STATUSES:
            raise fail(where, f"'status' must be one of {', '.join(IMAGE_STATUSES)}, "
                              f"got {status!r}")
        sizes[iid] = (w, h)
        images.append(CocoImage(iid, file_name, w, h, status))

    annotations: list[CocoAnnotation] = []
    ann_ids: set[int] = set()
    tally = NumKeypointsTally()
    for i, a in enumerate(annotations_raw):
        where = f"annotations[{i}]"
        aid = _int_field(a, "id", where, fail)
        where = f"{where} (id {aid})"
        if aid in ann_ids:
            raise fail(where, f"duplicate annotation id {aid}")
        ann_ids.add(aid)
        image_id = _int_field(a, "image_id", where, fail)
        if image_id not in sizes:
            raise fail(where, f"image_id {image_id} is not in 'images'")
        category_id = _int_field(a, "category_id", where, fail)
        if category_id in background:
            raise fail(where, f"category_id {category_id} is the background category")
        if category_id not in categories:
            raise fail(where, f"category_id {category_id} is not in 'categories'")
        if "segmentation" not in a:
            raise fail(where, "missing key 'segmentation' (a mask or polygon is required)")
        if "bbox" in a:
            _check_bbox(a["bbox"], where, fail)
        iscrowd = a.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, bool):
            raise fail(where, f"'iscrowd' must be 0 or 1, got {iscrowd!r}")
        points = annotation_points(a, schemas.get(category_id), where, fail, tally)
        annotations.append(CocoAnnotation(i, aid, image_id, category_id, a["segmentation"],
                                          points))
    note = tally.note()
    return CocoFile(path, images, categories, annotations, schemas, [note] if note else [])


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__)


def _int_field(record: object, key: str, where: str, fail) -> int:
    if not isinstance(record, dict):
        raise fail(where, f"must be an object, got {_kind(record)}")
    if key not in record:
        raise fail(where, f"missing key {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise fail(where, f"{key!r} must be an integer, got {value!r}")
    return value


def _optional_positive_int(record: dict, key: str, where: str, fail) -> int | None:
    if record.get(key) is None:
        return None
    value = _int_field(record, key, where, fail)
    if value <= 0:
        raise fail(where, f"{key!r} must be positive, got {value}")
    return value


def _check_bbox(bbox: object, where: str, fail) -> None:
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
        raise fail(where, f"'bbox' must be [x, y, width, height], got {bbox!r}")
    if not all(isinstance(v, int) or math.isfinite(v) for v in bbox):
        raise fail(where, f"'bbox' has a non-finite value: {bbox!r}")
    if bbox[2] < 0 or bbox[3] < 0 or bbox[0] < 0 or bbox[1] < 0:
        raise fail(where, f"'bbox' has a negative value: {bbox!r}")
