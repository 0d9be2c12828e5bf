"""What an undoable step may do to the project: the `StepTarget` interface.

A step (`mrcnn.editing.steps`) never talks to the `Project` or to the `ImageDocument` directly.
The document owns one `StepTarget` per image (`mrcnn.editing.image_target.ImageTarget`) and
hands it to the steps it runs; every operation below changes the project WITHOUT recording
an undo step, which is why only steps get to call them. Each change is noted, so the document
can tell its observers what a do/undo/redo changed. No Qt, no torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from mrcnn.editing.mask_tools import Rect
from mrcnn.keypoints import KeypointSchema, Points
from mrcnn.store.records import Category, ImageStatus, Instance, Split


class InstanceRef:
    """A step's handle on one instance. Its id stays the same across delete and restore,
    unless an insert elsewhere took that id meanwhile; then the restored instance gets a new
    id and every step holding this handle follows it."""

    __slots__ = ("id",)

    def __init__(self, instance_id: int):
        self.id = instance_id

    def __repr__(self) -> str:
        return f"InstanceRef({self.id})"


class StepTarget(Protocol):
    """The operations a step may perform on one image's annotations (and on the project's
    categories), through the document that runs it.

    Reads raise `EditError` for a bad argument given by a caller and `StaleEditError` when
    the project no longer matches what a recorded step expects. Changes must happen inside
    `writing()`.
    """

    @property
    def image_id(self) -> int:
        """The image whose instances the steps edit."""
        ...

    @property
    def shape(self) -> tuple[int, int]:
        """The image's (height, width): every mask's shape."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """One store transaction around a do, undo or redo; nested uses join the outer one.
        On failure the project, the handles and the decoded masks all roll back."""
        ...

    # ---------------------------------------------------------------- the image's status
    def image_status(self) -> ImageStatus:
        """The image's status now (new, predicted, in review, reviewed)."""
        ...

    def set_image_status(self, status: ImageStatus) -> None:
        """Move the image to another status (the rules are in `mrcnn.store.status`)."""
        ...

    # ---------------------------------------------------------------- the image's split
    def image_split(self) -> Split:
        """The data set the image feeds when reviewed (train or val)."""
        ...

    def set_image_split(self, split: Split) -> None:
        """Move the image to another split."""
        ...

    # ---------------------------------------------------------------- instances of the image
    def ref(self, instance_id: int) -> InstanceRef:
        """The handle on an instance of this image (`EditError` when there is none)."""
        ...

    def record(self, ref: InstanceRef) -> Instance:
        """The instance as stored now (`StaleEditError` when it is gone)."""
        ...

    def mask(self, ref: InstanceRef) -> np.ndarray:
        """The instance's (H, W) bool mask, read-only (the target's cached copy)."""
        ...

    def write_crop(self, ref: InstanceRef, rect: Rect, crop: np.ndarray) -> None:
        """Store the instance's mask with the (h, w) bool `crop` put at `rect`."""
        ...

    def insert(self, record: Instance, ref: InstanceRef | None) -> InstanceRef:
        """Add `record` as a new instance (`ref` None), or restore a removed one under its
        handle (same id unless that id was taken since; the handle then follows)."""
        ...

    def remove(self, ref: InstanceRef) -> Instance:
        """Delete the instance; returns it as it was (what `insert` restores)."""
        ...

    def set_state(self, ref: InstanceRef, state: str) -> None:
        """Give the instance another review state (`accepted` or `pending`)."""
        ...

    def set_category(self, ref: InstanceRef, category_id: int) -> None:
        """Give the instance another category."""
        ...

    def set_keypoints(self, ref: InstanceRef, points: Points | None) -> None:
        """Give the instance these keypoints (None: none), checked against its category's
        schema."""
        ...

    def set_category_keypoints(self, category_id: int, schema: KeypointSchema | None) -> None:
        """Give a category a keypoint schema, or none (refused where points would be lost)."""
        ...

    # ---------------------------------------------------------------- project categories
    def category(self, category_id: int) -> Category:
        """The category with that id (`EditError` when there is none)."""
        ...

    def category_by_name(self, name: str) -> Category | None:
        """The category with that name, if any."""
        ...

    def add_category(self, name: str, color: str | None) -> Category:
        """Add a category to the project."""
        ...

    def delete_category(self, category_id: int) -> None:
        """Remove a category no instance has."""
        ...

    def restore_category(self, category: Category) -> None:
        """Bring a removed category back (same id, name and colour)."""
        ...

    def rename_category(self, category_id: int, name: str) -> None:
        """Rename a category, project-wide."""
        ...

    def merge_categories(self, source_id: int, target_id: int) -> list[int]:
        """Give every instance of `source_id` (all images) `target_id` and remove
        `source_id`; returns the ids of the instances moved."""
        ...

    def category_of(self, instance_id: int) -> int | None:
        """The category of any image's instance; None when it no longer exists."""
        ...

    def set_categories(self, instance_ids: Iterable[int], category_id: int) -> None:
        """Give instances of any image another category."""
        ...

    def delete_category_and_instances(self, category_id: int) -> list[Instance]:
        """Remove a category and every instance of it (all images); returns those instances
        as they were (what `restore_instances` puts back)."""
        ...

    def restore_instances(self, records: Iterable[Instance]) -> None:
        """Put back removed instances of any image (same ids unless taken since)."""
        ...
