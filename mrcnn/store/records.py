"""Plain records read from the project store. No behaviour, no Qt."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from mrcnn.keypoints import KeypointSchema, Points
from mrcnn.masks import Rle

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10
    from enum import Enum

    class StrEnum(str, Enum):
        """A str whose values are a closed set (what enum.StrEnum is from Python 3.11)."""

        def __str__(self) -> str:
            return str(self.value)

        __format__ = str.__format__  # type: ignore[assignment]


class ImageStatus(StrEnum):
    """Where an image is in the loop (a field of the *image*; see InstanceState for the
    instance's). The transitions live in `mrcnn.store.status`."""

    NEW = "new"  # never predicted
    PREDICTED = "predicted"  # the model proposed instances
    IN_REVIEW = "in_review"  # a person is correcting it
    REVIEWED = "reviewed"  # finished: training or validation data


class Split(StrEnum):
    """Which data set a reviewed image feeds: decided from its content hash when it is added,
    then stable unless a person moves it (Image ▸ Move to Validation / Training)."""

    TRAIN = "train"
    VAL = "val"


class Source(StrEnum):
    """Who made an instance."""

    MANUAL = "manual"
    MODEL = "model"


class InstanceState(StrEnum):
    """Whether a person stands behind an instance (a field of the *instance*)."""

    ACCEPTED = "accepted"  # made or approved by a person: exported and trained on
    PENDING = "pending"  # a model's proposal: never exported, never overwrites accepted work


IMAGE_STATUSES: tuple[ImageStatus, ...] = tuple(ImageStatus)
SPLITS: tuple[Split, ...] = tuple(Split)
SOURCES: tuple[Source, ...] = tuple(Source)
STATES: tuple[InstanceState, ...] = tuple(InstanceState)


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str  # relative to the project's images root where possible, else absolute
    width: int
    height: int
    sha256: str
    status: ImageStatus
    split: Split


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    color: str  # "#rrggbb"
    keypoints: KeypointSchema | None = None  # the category's keypoint schema, if it has one


@dataclass(frozen=True)
class Instance:
    id: int
    image_id: int
    category_id: int
    rle: Rle
    bbox: tuple[float, float, float, float]  # x, y, w, h (COCO)
    area: int
    source: Source
    model_version_id: int | None
    score: float | None
    state: InstanceState
    keypoints: Points | None = None  # (x, y, v) per name of its category's schema


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str  # "v1", "v2", ...
    path: str  # checkpoint, relative to the project folder
    preset: str
    parent_id: int | None
    created_at: float
    active: bool
    metadata: dict = field(default_factory=dict)
