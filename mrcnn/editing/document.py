"""Annotation edits as undoable commands on one image, and the document that owns them.

`ImageDocument(project, image_id)` is what a GUI (or a script) edits an image through. Every
edit is a command (see `mrcnn.editing.steps`) pushed on the document's one undo stack; the
steps act on the project only through the `StepTarget` (`mrcnn.editing.target`) the document
owns and hands them. `do`, `undo` and `redo` each write through the `Project` in ONE
transaction, committed before they return, so an acknowledged edit survives a crash. Steps
keep only what changed (a mask edit keeps the bit-packed crop of the changed rectangle, before
and after), and the history is bounded by bytes (`budget_bytes`, oldest steps forgotten
first), not by a step count.

The document announces every change to plain callbacks (`subscribe`); it never imports Qt.

A brush gesture, as a GUI would drive it::

    work, dirty = doc.mask(iid).copy(), Rect(0, 0, 0, 0)      # mouse press
    rect = mask_tools.paint_stroke(work, [prev, pos], radius)  # each move: the new segment,
    pixels = mask_tools.colorize_region(work, rect, bgra)     # ... repaint only `rect`
    dirty = dirty.union(rect)
    doc.edit_mask(iid, work, rect=dirty, label="brush")        # release: one durable step

Project-wide commands (category rename/merge/new) go on the stack of the image they were made
from. When the project changes behind the history's back (e.g. new predictions replace pending
instances the history refers to), the undo/redo that no longer fits raises `HistoryError`,
rolls back, and clears the history (a "reset" change is announced).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mrcnn.editing import mask_tools
from mrcnn.editing.history import DEFAULT_BUDGET_BYTES, History
from mrcnn.editing.image_target import Effect, ImageTarget
from mrcnn.editing.keypoint_steps import SetCategoryKeypoints, SetKeypoints
from mrcnn.editing.mask_tools import Rect
from mrcnn.editing.steps import (
    AddCategory,
    AddInstance,
    ChangeCategory,
    CompositeCommand,
    DeleteCategory,
    DeleteInstances,
    DocCommand,
    MaskEdit,
    MergeCategories,
    RenameCategory,
    SetImageStatus,
    SetSplit,
    SetState,
)
from mrcnn.editing.target import InstanceRef, StepTarget
from mrcnn.errors import EditError, HistoryError, ProjectError, StaleEditError
from mrcnn.keypoints import KeypointError, KeypointSchema, Points, check_points
from mrcnn.masks import Rle
from mrcnn.store.project import Project
from mrcnn.store.records import Category, ImageStatus, Instance, Split
from mrcnn.store.status import after_editing, after_unreviewing

log = logging.getLogger(__name__)

#: Decoded masks the document keeps for quick edits (the most recently used are kept).
DEFAULT_CACHE_BYTES = 128 * 1024 * 1024

__all__ = [
    "AddCategory", "AddInstance", "ChangeCategory", "CompositeCommand", "DeleteInstances",
    "DocumentChange", "EditError", "HistoryError", "ImageDocument", "InstanceRef", "MaskEdit",
    "MergeCategories", "RenameCategory", "SetSplit", "SetState",
]


@dataclass(frozen=True)
class DocumentChange:
    """What one do/undo/redo (or a history reset) changed, for observers."""

    action: str  # "do" | "undo" | "redo" | "reset"
    label: str
    added: frozenset[int] = frozenset()  # instance ids now present that were not
    removed: frozenset[int] = frozenset()  # instance ids no longer present
    changed: frozenset[int] = frozenset()  # mask, category or state changed
    categories_changed: bool = False  # the project's category list changed
    can_undo: bool = False
    can_redo: bool = False
    status: ImageStatus | None = None  # the image's status, when this changed it
    split: Split | None = None  # the image's split, when this changed it


class ImageDocument:
    """One image's annotations as an editable document with deep undo/redo.

    Not thread-safe: use it from one thread (the GUI's). Every edit method returns once its
    change is committed to the project; it returns None (and records nothing) when the edit
    would change nothing.
    """

    def __init__(self, project: Project, image_id: int, *,
                 budget_bytes: int = DEFAULT_BUDGET_BYTES,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.project = project
        image = project.image(image_id)
        self.image_id = image.id
        self.shape: tuple[int, int] = (image.height, image.width)
        self.history = History(budget_bytes)
        self._observers: list[Callable[[DocumentChange], None]] = []
        # what the steps act on: handed to them only, so undo cannot be bypassed from here
        self._target = ImageTarget(project, image.id, self.shape, cache_bytes=cache_bytes)

    # ---------------------------------------------------------------- reading
    def instances(self, state: str | None = None) -> list[Instance]:
        return self.project.instances(self.image_id, state)

    def instance(self, instance_id: int) -> Instance:
        """One instance of this image (`EditError` when there is none)."""
        return self._target.instance(instance_id)

    def mask(self, instance_id: int) -> np.ndarray:
        """The instance's (H, W) bool mask, read-only and C-ordered. It is the document's own
        copy: the next edit of this instance updates it in place, so copy it to keep it (or to
        paint on)."""
        return self._target.mask(self._target.ref(instance_id))

    def cached_mask(self, instance_id: int, rle: Rle) -> np.ndarray | None:
        """The instance's mask if the document holds it decoded for exactly `rle` (no store
        read, no decoding), else None: to show a just-edited mask at once. Read-only."""
        return self._target.cached_mask(instance_id, rle)

    def drop_cache(self) -> None:
        """Forget the decoded masks (the history stays), e.g. when another image is shown."""
        self._target.drop_cache()

    # ---------------------------------------------------------------- observers
    def subscribe(self, callback: Callable[[DocumentChange], None]) -> Callable[[], None]:
        """Call `callback(change)` after every change; returns a function that unsubscribes."""
        self._observers.append(callback)

        def unsubscribe() -> None:
            if callback in self._observers:
                self._observers.remove(callback)

        return unsubscribe

    def _notify(self, action: str, label: str, effect: Effect) -> DocumentChange:
        touched = effect.added | effect.removed
        change = DocumentChange(
            action, label, frozenset(effect.added - effect.removed),
            frozenset(effect.removed - effect.added), frozenset(effect.changed - touched),
            effect.categories, self.can_undo, self.can_redo,
            self._target.image_status() if effect.status else None,
            self._target.image_split() if effect.split else None)
        for callback in list(self._observers):
            try:
                callback(change)
            except Exception:
                log.exception("document observer %r failed", callback)
        return change

    # ---------------------------------------------------------------- history
    @property
    def can_undo(self) -> bool:
        return self.history.undo_count > 0

    @property
    def can_redo(self) -> bool:
        return self.history.redo_count > 0

    @property
    def undo_label(self) -> str | None:
        step = self.history.next_undo()
        return step.label if step else None

    @property
    def redo_label(self) -> str | None:
        step = self.history.next_redo()
        return step.label if step else None

    def execute(self, make: Callable[[StepTarget], DocCommand]) -> DocumentChange | None:
        """Do a step and record it; None (nothing recorded) when it changes nothing.
        `make(target)` builds the step (e.g. `lambda t: MaskEdit(self._target, iid, mask)`) on the
        `StepTarget` this document hands its steps."""
        return self._run(make(self._target))

    def _run(self, command: DocCommand) -> DocumentChange | None:
        if command.target is not self._target:
            raise EditError("this command belongs to another document")
        if command.noop:
            return None
        with self._target.writing():  # the step and the status it implies: one transaction
            command.do()
            if not isinstance(command, SetImageStatus):
                self._after_edit()
        self.history.push(command)
        return self._notify("do", command.label, self._target.last_effect)

    def _after_edit(self) -> None:
        """An edit by a person moves the image along the lifecycle (`store.status`)."""
        effect = self._target.current_effect
        if effect.added or effect.removed or effect.changed:
            status = self._target.image_status()
            if after_editing(status) != status:
                self._target.set_image_status(after_editing(status))

    def undo(self) -> DocumentChange | None:
        """Undo the newest step (None when there is none left)."""
        step = self.history.next_undo()
        if step is None:
            return None
        self._replay(step.undo)
        self.history.undone()
        return self._notify("undo", step.label, self._target.last_effect)

    def redo(self) -> DocumentChange | None:
        """Redo the newest undone step (None when there is none)."""
        step = self.history.next_redo()
        if step is None:
            return None
        self._replay(step.redo)
        self.history.redone()
        return self._notify("redo", step.label, self._target.last_effect)

    def _replay(self, run: Callable[[], None]) -> None:
        try:
            run()
        except (StaleEditError, ProjectError) as exc:
            self.clear_history()
            raise HistoryError(f"undo history no longer matches the project ({exc}); it was "
                               "cleared and nothing was changed") from exc

    def clear_history(self) -> None:
        """Forget every step (e.g. after the image's instances changed outside the document)."""
        self.history.clear()
        self._target.forget()
        self._notify("reset", "", Effect())

    # ---------------------------------------------------------------- edits
    def edit_mask(self, instance_id: int, new_mask: np.ndarray, *, rect: Rect | None = None,
                  label: str = "edit mask") -> MaskEdit | None:
        """Give an instance a new mask. `rect`, when given, promises that nothing changed
        outside it (faster for a big image). An empty mask deletes the instance. A pending
        prediction that is corrected becomes accepted in the same step (it is human work
        now: new predictions must not replace it)."""
        cmd = MaskEdit(self._target, instance_id, new_mask, rect=rect, label=label)
        return cmd if self._run(self._accepting(cmd, [instance_id], cmd.empties)) else None

    def _accepting(self, cmd: DocCommand, instance_ids: list[int], gone: bool) -> DocCommand:
        """`cmd`, plus accepting those of `instance_ids` that are pending predictions."""
        if gone or cmd.noop:
            return cmd
        accept = SetState(self._target, instance_ids, "accepted")
        if accept.noop:
            return cmd
        return CompositeCommand(self._target, [cmd, accept], label=cmd.label)

    def apply(self, instance_id: int, tool: Callable[..., np.ndarray], *args,
              label: str | None = None, **kwargs) -> MaskEdit | None:
        """Edit a mask with a `mask_tools` function: `tool(mask, *args, **kwargs)`."""
        new = tool(self.mask(instance_id), *args, **kwargs)
        name = label or getattr(tool, "__name__", "edit mask").replace("_", " ")
        return self.edit_mask(instance_id, new, label=name)

    def add_instance(self, mask: np.ndarray, category_id: int, *,
                     label: str = "add instance", **provenance) -> int:
        """Add an instance (manual and accepted unless `provenance` says otherwise)."""
        cmd = AddInstance(self._target, mask, category_id, label=label, **provenance)
        self._run(cmd)
        return _added_id(cmd)

    def delete_instances(self, instance_ids: Iterable[int], *, label: str = "delete"
                         ) -> DeleteInstances | None:
        cmd = DeleteInstances(self._target, instance_ids, label=label)
        return cmd if self._run(cmd) else None

    def reject_predictions(self, instance_ids: Iterable[int]) -> DeleteInstances | None:
        """Delete pending predictions (accepted instances are refused)."""
        ids = list(instance_ids)
        for iid in ids:
            if self.instance(iid).state != "pending":
                raise EditError(f"instance {iid} is not a pending prediction")
        return self.delete_instances(ids, label="reject")

    # ---------------------------------------------------------------- review
    @property
    def status(self) -> ImageStatus:
        return self._target.image_status()

    def mark_reviewed(self) -> SetImageStatus | None:
        """The image is finished: it becomes training (or validation) data. Undoable."""
        cmd = SetImageStatus(self._target, ImageStatus.REVIEWED, label="mark reviewed")
        return cmd if self._run(cmd) else None

    def mark_not_reviewed(self) -> SetImageStatus | None:
        """Take a reviewed image out of the training data (back to review). Undoable."""
        cmd = SetImageStatus(self._target, after_unreviewing(self.status),
                             label="mark not reviewed")
        return cmd if self._run(cmd) else None

    @property
    def split(self) -> Split:
        return self._target.image_split()

    def move_to_split(self, split: Split | str) -> SetSplit | None:
        """Move the image to the training or the validation split. Undoable; None when it
        is there already."""
        cmd = SetSplit(self._target, split)
        return cmd if self._run(cmd) else None

    def accept_instances(self, instance_ids: Iterable[int]) -> SetState | None:
        cmd = SetState(self._target, instance_ids, "accepted", label="accept")
        return cmd if self._run(cmd) else None

    def set_category(self, instance_ids: Iterable[int], category_id: int
                     ) -> ChangeCategory | None:
        """Give instances another category; pending predictions among them become accepted
        (a corrected prediction is human work)."""
        ids = list(instance_ids)
        cmd = ChangeCategory(self._target, ids, category_id)
        return cmd if self._run(self._accepting(cmd, ids, False)) else None

    def set_keypoints(self, instance_id: int, points: Points | None, *,
                      label: str = "keypoint") -> SetKeypoints | None:
        """Give an instance new keypoints (one gesture of the keypoint tool: place, move,
        toggle, remove), checked against its category's schema; a pending prediction whose
        points are corrected becomes accepted in the same step. None when nothing changed."""
        record = self.instance(instance_id)
        if points is not None:
            schema = self._target.category(record.category_id).keypoints
            if schema is None:
                raise EditError("this instance's category has no keypoints; give it a "
                                "keypoint schema first (Categories ▸ Keypoints…)")
            try:
                points = check_points(list(points), schema, f"instance {instance_id}")
            except KeypointError as exc:
                raise EditError(str(exc)) from None
        cmd = SetKeypoints(self._target, instance_id, points, label=label)
        return cmd if self._run(self._accepting(cmd, [instance_id], False)) else None

    def set_category_keypoints(self, category_id: int, schema: KeypointSchema | None
                               ) -> SetCategoryKeypoints | None:
        """Give a category a keypoint schema (or remove it): one undoable step."""
        cmd = SetCategoryKeypoints(self._target, category_id, schema)
        return cmd if self._run(cmd) else None

    def split_instance(self, instance_id: int, *, connectivity: int = 8) -> list[int]:
        """Split an instance into its connected parts: it keeps the largest part (and its id),
        every other part becomes a new instance with its category, provenance and state.
        Returns the ids, the original first."""
        rec = self.instance(instance_id)
        parts = mask_tools.split_components(self.mask(instance_id), connectivity=connectivity)
        if len(parts) < 2:
            return [instance_id]
        keep = MaskEdit(self._target, instance_id, parts[0], label="split")
        adds = [AddInstance(self._target, part, rec.category_id, source=rec.source,
                            model_version_id=rec.model_version_id, score=rec.score,
                            state=rec.state, label="split") for part in parts[1:]]
        self._run(CompositeCommand(self._target, [keep, *adds], label="split"))
        return [instance_id, *(_added_id(a) for a in adds)]

    def merge_instances(self, instance_ids: Iterable[int]) -> int:
        """Merge instances into the largest of them (by area; of equal ones, the first given):
        it keeps its id, category and provenance, and gets the union of the masks; the others
        are deleted. Returns the kept id."""
        ids = list(dict.fromkeys(instance_ids))
        if len(ids) < 2:
            raise EditError("merging needs at least two instances")
        kept = max(ids, key=lambda i: self.instance(i).area)  # max keeps the first of ties
        union = mask_tools.merge_masks(self.mask(i) for i in ids)
        keep = MaskEdit(self._target, kept, union, label="merge")
        gone = DeleteInstances(self._target, [i for i in ids if i != kept], label="merge")
        self._run(CompositeCommand(self._target, [keep, gone], label="merge"))
        return kept

    def add_category(self, name: str, color: str | None = None) -> Category:
        """A new project category (undoable); an existing one of that name is returned as is."""
        existing = self.project.category_by_name(name.strip())
        if existing:
            return existing
        cmd = AddCategory(self._target, name, color)
        self._run(cmd)
        if cmd.category is None:  # set by the step's do, which `_run` has just run
            raise EditError(f"category {name!r} was not added")
        return cmd.category

    def rename_category(self, category_id: int, name: str) -> RenameCategory | None:
        cmd = RenameCategory(self._target, category_id, name)
        return cmd if self._run(cmd) else None

    def merge_categories(self, source_id: int, target_id: int) -> MergeCategories | None:
        cmd = MergeCategories(self._target, source_id, target_id)
        return cmd if self._run(cmd) else None

    def delete_category(self, category_id: int, move_to: int | None = None
                        ) -> DeleteCategory | None:
        """Delete a category in the whole project: its instances (all images) go to
        `move_to`, or are deleted when it is None. One undoable step."""
        cmd = DeleteCategory(self._target, category_id, move_to)
        return cmd if self._run(cmd) else None


def _added_id(step: AddInstance) -> int:
    """The id of the instance a step that has been done added."""
    if step.ref is None:  # set by the step's do
        raise EditError(f"{step.label}: the step was not done, so it added no instance")
    return step.ref.id
