"""Row layouts of the project database and their conversion to records (used by the store
only)."""

from __future__ import annotations

import json

from mrcnn.errors import ProjectError
from mrcnn.keypoints import KeypointSchema, points_from_json
from mrcnn.masks import Rle
from mrcnn.store.records import (
    Category,
    ImageRecord,
    ImageStatus,
    Instance,
    InstanceState,
    ModelVersion,
    Source,
    Split,
)

IMAGE_COLS = "id, path, width, height, sha256, status, split"
INSTANCE_COLS = ("id, image_id, category_id, height, width, counts, bbox_x, bbox_y, bbox_w, "
                  "bbox_h, area, source, model_version_id, score, state, keypoints")
CATEGORY_COLS = "id, name, color, keypoints"
VERSION_COLS = "id, name, path, preset, parent_id, created_at, active, metadata"


# The database holds the vocabularies as text; records carry them typed (dict look-ups:
# rows are read by the thousand).
_STATUS = {s.value: s for s in ImageStatus}
_SPLIT = {s.value: s for s in Split}
_SOURCE = {s.value: s for s in Source}
_STATE = {s.value: s for s in InstanceState}


def image_from_row(r: tuple) -> ImageRecord:
    return ImageRecord(r[0], r[1], r[2], r[3], r[4], _STATUS[r[5]], _SPLIT[r[6]])


def instance_from_row(r: tuple) -> Instance:
    return Instance(r[0], r[1], r[2], Rle(r[3], r[4], r[5]), (r[6], r[7], r[8], r[9]), r[10],
                    _SOURCE[r[11]], r[12], r[13], _STATE[r[14]], points_from_json(r[15]))


def category_from_row(r: tuple) -> Category:
    return Category(r[0], r[1], r[2], None if r[3] is None else KeypointSchema.from_json(r[3]))


def version_from_row(r: tuple) -> ModelVersion:
    return ModelVersion(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), json.loads(r[7]))


def check_value(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ProjectError(f"invalid {what} {value!r}; expected one of {', '.join(allowed)}")
