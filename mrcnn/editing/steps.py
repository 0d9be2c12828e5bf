"""The undoable annotation steps of one image, as `mrcnn.editing.history.Command`s.

`MaskEdit`, `AddInstance`, `DeleteInstances`, `SetState`, `SetImageStatus`, `SetSplit`,
`ChangeCategory`, `ValueSwap` (the keypoint steps in `mrcnn.editing.keypoint_steps`),
`CompositeCommand`, `AddCategory`, `RenameCategory` and `MergeCategories` act on a
`mrcnn.editing.target.StepTarget` (the one an `ImageDocument` owns and hands them), which runs
each do/undo/redo in one store transaction. They keep only what changed: a mask edit keeps the
bit-packed crop of the changed rectangle, before and after; a deletion keeps the deleted
instances' RLE. No Qt here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from mrcnn.editing import mask_tools
from mrcnn.editing.codec import encode
from mrcnn.editing.history import Command
from mrcnn.editing.mask_tools import Rect
from mrcnn.editing.target import InstanceRef, StepTarget
from mrcnn.errors import EditError, StaleEditError
from mrcnn.store.records import Category, ImageStatus, Instance, InstanceState, Source, Split


def _pack(crop: np.ndarray) -> np.ndarray:
    return np.packbits(crop, axis=None)


def _unpack(bits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).view(bool)


class DocCommand(Command):
    """A step on one image's `StepTarget`; do/undo/redo each run in one store transaction."""

    def __init__(self, target: StepTarget, label: str):
        self.target = target
        self.label = label

    @property
    def noop(self) -> bool:
        """True when doing it would change nothing (it is then not recorded)."""
        return False

    def do(self) -> None:
        with self.target.writing():
            self._do()

    def undo(self) -> None:
        with self.target.writing():
            self._undo()

    def redo(self) -> None:
        with self.target.writing():
            self._redo()

    def _do(self) -> None:
        raise NotImplementedError

    def _undo(self) -> None:
        raise NotImplementedError

    def _redo(self) -> None:
        self._do()


class MaskEdit(DocCommand):
    """Replace an instance's mask (brush, eraser, polygon, wand, fill holes, specks...).

    Keeps the changed rectangle only, before and after, bit-packed. A mask edited to nothing
    deletes the instance (undo restores it, same id and provenance)."""

    def __init__(self, target: StepTarget, instance_id: int, new_mask: np.ndarray, *,
                 rect: Rect | None = None, label: str = "edit mask"):
        super().__init__(target, label)
        self.ref = target.ref(instance_id)
        old = target.mask(self.ref)
        new = np.asarray(new_mask)
        if new.shape != old.shape:
            raise EditError(f"mask shape {new.shape} does not match the image {old.shape}")
        new = new.astype(bool, copy=False)
        if rect is None:
            self.rect = mask_tools.changed_rect(old, new)
        else:
            area = rect.clip(old.shape)
            inner = mask_tools.changed_rect(old[area.slices], new[area.slices])
            self.rect = inner if inner.empty else inner.offset(area.x0, area.y0)
        self._crop_shape = (self.rect.height, self.rect.width)
        self._old = _pack(old[self.rect.slices])
        self._new = _pack(new[self.rect.slices])
        self.empties = not self.rect.empty and not new.any()
        self._removed: Instance | None = None

    @property
    def noop(self) -> bool:
        return self.rect.empty

    @property
    def nbytes(self) -> int:
        extra = len(self._removed.rle.counts) if self._removed else 0
        return self._old.nbytes + self._new.nbytes + extra

    def _swap(self, expect: np.ndarray, put: np.ndarray) -> None:
        current = self.target.mask(self.ref)
        if not np.array_equal(current[self.rect.slices], _unpack(expect, self._crop_shape)):
            raise StaleEditError(f"instance {self.ref.id} was changed outside this history")
        self.target.write_crop(self.ref, self.rect, _unpack(put, self._crop_shape))

    def _do(self) -> None:
        if self.empties:
            current = self.target.mask(self.ref)
            if not np.array_equal(current[self.rect.slices],
                                  _unpack(self._old, self._crop_shape)):
                raise StaleEditError(f"instance {self.ref.id} was changed outside this history")
            self._removed = self.target.remove(self.ref)
        else:
            self._swap(self._old, self._new)

    def _undo(self) -> None:
        if self.empties:
            if self._removed is None:
                raise StaleEditError("nothing recorded to restore")
            self.target.insert(self._removed, self.ref)
        else:
            self._swap(self._new, self._old)


class AddInstance(DocCommand):
    """Add an instance from a mask (polygon, GrabCut, wand, a split-off part)."""

    def __init__(self, target: StepTarget, mask: np.ndarray, category_id: int, *,
                 source: str = "manual", model_version_id: int | None = None,
                 score: float | None = None, state: str = "accepted",
                 label: str = "add instance"):
        super().__init__(target, label)
        mask = np.asarray(mask)
        if mask.shape != target.shape:
            raise EditError(f"mask shape {mask.shape} does not match the image {target.shape}")
        rle = encode(mask)
        if rle.area <= 0:
            raise EditError("an instance mask must cover at least one pixel")
        target.category(category_id)  # exists
        self._record = Instance(0, target.image_id, category_id, rle, rle.bbox, rle.area,
                                Source(source), model_version_id, score, InstanceState(state))
        self.ref: InstanceRef | None = None

    @property
    def instance_id(self) -> int | None:
        return self.ref.id if self.ref else None

    @property
    def nbytes(self) -> int:
        return len(self._record.rle.counts)

    def _do(self) -> None:
        self.ref = self.target.insert(self._record, self.ref)

    def _undo(self) -> None:
        if self.ref is None:
            raise StaleEditError("this instance was never added")
        self._record = self.target.remove(self.ref)


class DeleteInstances(DocCommand):
    """Delete instances (or reject predictions); undo restores them, same ids, provenance,
    category, state and mask."""

    def __init__(self, target: StepTarget, instance_ids: Iterable[int], *,
                 label: str = "delete"):
        super().__init__(target, label)
        self.refs = [target.ref(i) for i in sorted(set(instance_ids))]
        self._records: list[Instance] = []

    @property
    def noop(self) -> bool:
        return not self.refs

    @property
    def nbytes(self) -> int:
        return sum(len(r.rle.counts) + 128 for r in self._records)

    def _do(self) -> None:
        self._records = [self.target.remove(ref) for ref in self.refs]

    def _undo(self) -> None:
        for ref, record in zip(self.refs, self._records, strict=True):
            self.target.insert(record, ref)


class SetState(DocCommand):
    """Accept predictions (state `accepted`) or put instances back to `pending`."""

    def __init__(self, target: StepTarget, instance_ids: Iterable[int], state: str, *,
                 label: str | None = None):
        super().__init__(target, label or ("accept" if state == "accepted" else "set pending"))
        self.state = state
        refs = [target.ref(i) for i in sorted(set(instance_ids))]
        self._old = {ref: target.record(ref).state for ref in refs}
        self.refs = [ref for ref in refs if self._old[ref] != state]

    @property
    def noop(self) -> bool:
        return not self.refs

    def _move(self, expect: Callable[[InstanceRef], str], put: Callable[[InstanceRef], str]
              ) -> None:
        for ref in self.refs:
            if self.target.record(ref).state != expect(ref):
                raise StaleEditError(f"instance {ref.id} changed state outside this history")
            self.target.set_state(ref, put(ref))

    def _do(self) -> None:
        self._move(lambda ref: self._old[ref], lambda ref: self.state)

    def _undo(self) -> None:
        self._move(lambda ref: self.state, lambda ref: self._old[ref])


class SetImageStatus(DocCommand):
    """Move the image to another status: marking it reviewed (it becomes training data) or
    not reviewed is a step like any edit, so a slip is undone with Undo."""

    def __init__(self, target: StepTarget, status: ImageStatus, *, label: str):
        super().__init__(target, label)
        self.old = target.image_status()
        self.new = ImageStatus(status)

    @property
    def noop(self) -> bool:
        return self.old == self.new

    def _move(self, expect: ImageStatus, put: ImageStatus) -> None:
        if self.target.image_status() != expect:
            raise StaleEditError("the image's status changed outside this history")
        self.target.set_image_status(put)

    def _do(self) -> None:
        self._move(self.old, self.new)

    def _undo(self) -> None:
        self._move(self.new, self.old)


class SetSplit(DocCommand):
    """Move the image to the training or the validation split (e.g. to give validation
    enough images); undoable like any edit. Its status and instances stay as they are."""

    def __init__(self, target: StepTarget, split: Split | str, *, label: str | None = None):
        new = Split(split)
        super().__init__(target, label or ("move to validation" if new == Split.VAL
                                           else "move to training"))
        self.old = target.image_split()
        self.new = new

    @property
    def noop(self) -> bool:
        return self.old == self.new

    def _move(self, expect: Split, put: Split) -> None:
        if self.target.image_split() != expect:
            raise StaleEditError("the image's split changed outside this history")
        self.target.set_image_split(put)

    def _do(self) -> None:
        self._move(self.old, self.new)

    def _undo(self) -> None:
        self._move(self.new, self.old)


class ChangeCategory(DocCommand):
    """Give instances another category."""

    def __init__(self, target: StepTarget, instance_ids: Iterable[int], category_id: int, *,
                 label: str = "change category"):
        super().__init__(target, label)
        target.category(category_id)  # exists
        self.category_id = category_id
        refs = [target.ref(i) for i in sorted(set(instance_ids))]
        self._old = {ref: target.record(ref).category_id for ref in refs}
        self.refs = [ref for ref in refs if self._old[ref] != category_id]

    @property
    def noop(self) -> bool:
        return not self.refs

    def _move(self, expect: Callable[[InstanceRef], int], put: Callable[[InstanceRef], int]
              ) -> None:
        for ref in self.refs:
            if self.target.record(ref).category_id != expect(ref):
                raise StaleEditError(f"instance {ref.id} changed category outside this history")
            self.target.set_category(ref, put(ref))

    def _do(self) -> None:
        self._move(lambda ref: self._old[ref], lambda ref: self.category_id)

    def _undo(self) -> None:
        self._move(lambda ref: self.category_id, lambda ref: self._old[ref])


class ValueSwap(DocCommand):
    """A step that replaces one stored value (`old` → `new`) and back, refusing when the
    stored value is no longer the one it expects. Subclasses say how to read and write it."""

    old: object
    new: object
    what = "this value"

    @property
    def noop(self) -> bool:
        return self.old == self.new

    def current(self) -> object:
        raise NotImplementedError

    def put(self, value) -> None:
        raise NotImplementedError

    def _move(self, expect, put) -> None:
        if self.current() != expect:
            raise StaleEditError(f"{self.what} was changed outside this history")
        self.put(put)

    def _do(self) -> None:
        self._move(self.old, self.new)

    def _undo(self) -> None:
        self._move(self.new, self.old)


class CompositeCommand(DocCommand):
    """Several commands as one step (split, merge): done in order, undone in reverse, all in
    one transaction."""

    def __init__(self, target: StepTarget, children: list[DocCommand], *, label: str):
        super().__init__(target, label)
        self.children = [c for c in children if not c.noop]

    @property
    def noop(self) -> bool:
        return not self.children

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.children)

    # each child's own do/undo/redo joins this step's transaction (`StepTarget.writing`)
    def _do(self) -> None:
        for c in self.children:
            c.do()

    def _undo(self) -> None:
        for c in reversed(self.children):
            c.undo()

    def _redo(self) -> None:
        for c in self.children:
            c.redo()


class AddCategory(DocCommand):
    """Add a category to the project (undo removes it again)."""

    def __init__(self, target: StepTarget, name: str, color: str | None = None, *,
                 label: str = "new category"):
        super().__init__(target, label)
        self.name = name.strip()
        if not self.name:
            raise EditError("a category needs a non-empty name")
        if target.category_by_name(self.name):
            raise EditError(f"a category named {self.name!r} already exists")
        self.color = color
        self.category: Category | None = None

    def _do(self) -> None:
        self.category = self.target.add_category(self.name, self.color)

    def _undo(self) -> None:
        if self.category is None:
            raise StaleEditError("this category was never added")
        self.target.delete_category(self.category.id)

    def _redo(self) -> None:
        if self.category is None:
            raise StaleEditError("this category was never added")
        self.target.restore_category(self.category)


class RenameCategory(DocCommand):
    """Rename a category, project-wide."""

    def __init__(self, target: StepTarget, category_id: int, name: str, *,
                 label: str = "rename category"):
        super().__init__(target, label)
        self.category_id = category_id
        self.old = target.category(category_id).name
        self.new = name.strip()
        if not self.new:
            raise EditError("a category needs a non-empty name")

    @property
    def noop(self) -> bool:
        return self.old == self.new

    def _rename(self, expect: str, put: str) -> None:
        if self.target.category(self.category_id).name != expect:
            raise StaleEditError(f"category {self.category_id} was renamed outside this history")
        self.target.rename_category(self.category_id, put)

    def _do(self) -> None:
        self._rename(self.old, self.new)

    def _undo(self) -> None:
        self._rename(self.new, self.old)


class MergeCategories(DocCommand):
    """Merge one category into another, project-wide: every instance of `source` (all images)
    gets `target`, and `source` is removed. Undo brings `source` back (same id, name, colour)
    and gives it back to the instances that were moved and still have `target`."""

    def __init__(self, target: StepTarget, source_id: int, target_id: int, *,
                 label: str = "merge categories"):
        super().__init__(target, label)
        if source_id == target_id:
            raise EditError("cannot merge a category into itself")
        self.source_category = target.category(source_id)
        self.target_category = target.category(target_id)
        self.moved: list[int] = []

    @property
    def nbytes(self) -> int:
        return 8 * len(self.moved)

    def _do(self) -> None:
        source = self.source_category
        if self.target.category_by_name(source.name) != source:
            raise StaleEditError(f"category {source.name!r} changed outside this history")
        self.moved = self.target.merge_categories(source.id, self.target_category.id)

    def _undo(self) -> None:
        self.target.restore_category(self.source_category)
        # instances deleted since (by another image's history) have no category any more
        back = [iid for iid in self.moved
                if self.target.category_of(iid) == self.target_category.id]
        self.target.set_categories(back, self.source_category.id)


class DeleteCategory(DocCommand):
    """Delete a category, project-wide. Its instances (all images) move to `move_to`, or are
    deleted with it when `move_to` is None. Undo brings the category back (same id, name,
    colour) and its instances: the moved ones that still have `move_to` get it back, the
    deleted ones are restored (mask, provenance, state)."""

    def __init__(self, target: StepTarget, category_id: int, move_to: int | None, *,
                 label: str = "delete category"):
        super().__init__(target, label)
        if move_to == category_id:
            raise EditError("cannot move a category's instances to the category itself")
        self.category = target.category(category_id)
        self.move_to = target.category(move_to) if move_to is not None else None
        self.moved: list[int] = []
        self.deleted: list[Instance] = []

    @property
    def nbytes(self) -> int:
        return 8 * len(self.moved) + sum(len(i.rle.counts) + 128 for i in self.deleted)

    def _do(self) -> None:
        category = self.category
        if self.target.category_by_name(category.name) != category:
            raise StaleEditError(f"category {category.name!r} changed outside this history")
        if self.move_to is not None:
            self.moved = self.target.merge_categories(category.id, self.move_to.id)
        else:
            self.deleted = self.target.delete_category_and_instances(category.id)

    def _undo(self) -> None:
        self.target.restore_category(self.category)
        if self.move_to is not None:
            back = [iid for iid in self.moved
                    if self.target.category_of(iid) == self.move_to.id]
            self.target.set_categories(back, self.category.id)
        else:
            self.target.restore_instances(self.deleted)
