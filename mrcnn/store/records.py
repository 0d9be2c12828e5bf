"""Plain records read from the project store. No behaviour, no Qt."""

from __future__ import annotations

from dataclasses import dataclass, field

from mrcnn.masks import Rle

IMAGE_STATUSES = ("new", "predicted", "in_review", "reviewed")
SPLITS = ("train", "val")
SOURCES = ("manual", "model")
STATES = ("accepted", "pending")


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str  # relative to the project's images root where possible, else absolute
    width: int
    height: int
    sha256: str
    status: str
    split: str


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    color: str  # "#rrggbb"


@dataclass(frozen=True)
class Instance:
    id: int
    image_id: int
    category_id: int
    rle: Rle
    bbox: tuple[float, float, float, float]  # x, y, w, h (COCO)
    area: int
    source: str  # "manual" | "model"
    model_version_id: int | None
    score: float | None
    state: str  # "accepted" | "pending"


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
