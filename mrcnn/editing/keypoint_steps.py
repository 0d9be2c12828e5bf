"""The undoable keypoint steps of one image (`mrcnn.editing.steps.ValueSwap`s): an
instance's points, and a category's keypoint schema (project-wide). The rules of schemas
and points are `mrcnn.keypoints`; the document checks points before it makes a step."""

from __future__ import annotations

from mrcnn.editing.steps import ValueSwap
from mrcnn.editing.target import StepTarget
from mrcnn.keypoints import KeypointSchema, Points


class SetKeypoints(ValueSwap):
    """Give an instance new keypoints (place, move, toggle visibility, remove a point, or
    clear them all): one gesture, one step; undo puts the previous points back."""

    def __init__(self, target: StepTarget, instance_id: int, points: Points | None, *,
                 label: str = "keypoint"):
        super().__init__(target, label)
        self.ref = target.ref(instance_id)
        self.old = target.record(self.ref).keypoints
        self.new = points
        self.what = f"the keypoints of instance {instance_id}"

    def current(self) -> Points | None:
        return self.target.record(self.ref).keypoints

    def put(self, value: Points | None) -> None:
        self.target.set_keypoints(self.ref, value)


class SetCategoryKeypoints(ValueSwap):
    """Give a category a keypoint schema, change it, or remove it (project-wide)."""

    def __init__(self, target: StepTarget, category_id: int, schema: KeypointSchema | None,
                 *, label: str = "keypoint schema"):
        super().__init__(target, label)
        self.category_id = category_id
        self.old = target.category(category_id).keypoints
        self.new = schema
        self.what = f"the keypoint schema of category {category_id}"

    def current(self) -> KeypointSchema | None:
        return self.target.category(self.category_id).keypoints

    def put(self, value: KeypointSchema | None) -> None:
        self.target.set_category_keypoints(self.category_id, value)
