"""The undoable annotation steps of one image, as `mrcnn.editing.history.Command`s.

`MaskEdit`, `AddInstance`, `DeleteInstances`, `SetState`, `ChangeCategory`,
`CompositeCommand`, `AddCategory`, `RenameCategory` and `MergeCategories` act on an
`mrcnn.editing.document.ImageDocument`, which runs each do/undo/redo in one store transaction. They
keep
only what changed: a mask edit keeps the bit-packed crop of the changed rectangle, before and
after; a deletion keeps the deleted instances' RLE. Also here: the fast RLE codec the steps
and the document share. No Qt here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
from pycocotools import mask as cocomask

from mrcnn.editing import mask_tools
from mrcnn.editing.history import Command, EditError, StaleEditError
from mrcnn.editing.mask_tools import Rect
from mrcnn.errors import ProjectError
from mrcnn.masks import Rle
from mrcnn.store.records import Category, Instance

if TYPE_CHECKING:
    from mrcnn.editing.document import ImageDocument


class InstanceRef:
    """A command's handle on one instance. Its id stays the same across delete and restore,
    unless an insert elsewhere took that id meanwhile; then the restored instance gets a new
    id and every step holding this handle follows it."""

    __slots__ = ("id",)

    def __init__(self, instance_id: int):
        self.id = instance_id

    def __repr__(self) -> str:
        return f"InstanceRef({self.id})"


@dataclass
class Effect:
    """What a step changed while it ran (collected by the document)."""

    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)
    categories: bool = False


def encode(mask: np.ndarray) -> Rle:
    """`mrcnn.masks.encode`, the same RLE, several times faster on big masks: OpenCV makes
    the column-major copy pycocotools needs (numpy's is ~85 ms for 6000x4000)."""
    if mask.ndim != 2:
        raise EditError(f"a mask must be 2-D, got shape {mask.shape}")
    m = np.ascontiguousarray(mask.astype(bool, copy=False)).view(np.uint8)
    r = cocomask.encode(cv2.transpose(m).T)
    return Rle(int(mask.shape[0]), int(mask.shape[1]), r["counts"].decode("ascii"))


def decode(rle: Rle) -> np.ndarray:
    """`mrcnn.masks.decode` as a C-ordered (H, W) bool array (OpenCV transposes)."""
    raw = cocomask.decode(rle._py())  # column-major uint8
    return cv2.transpose(raw.T).view(bool)


def encode_transposed(transposed: np.ndarray) -> Rle:
    """The RLE of a mask given as its (W, H) C-ordered uint8 transpose (no copy needed)."""
    r = cocomask.encode(transposed.T)
    return Rle(int(transposed.shape[1]), int(transposed.shape[0]), r["counts"].decode("ascii"))


def _pack(crop: np.ndarray) -> np.ndarray:
    return np.packbits(crop, axis=None)


def _unpack(bits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).view(bool)


class DocCommand(Command):
    """A command on one ImageDocument; do/undo/redo each run in one store transaction."""

    def __init__(self, doc: ImageDocument, label: str):
        self.doc = doc
        self.label = label

    @property
    def noop(self) -> bool:
        """True when doing it would change nothing (it is then not recorded)."""
        return False

    def do(self) -> None:
        with self.doc._writing():
            self._do()

    def undo(self) -> None:
        with self.doc._writing():
            self._undo()

    def redo(self) -> None:
        with self.doc._writing():
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

    def __init__(self, doc: ImageDocument, instance_id: int, new_mask: np.ndarray, *,
                 rect: Rect | None = None, label: str = "edit mask"):
        super().__init__(doc, label)
        self.ref = doc._ref(instance_id)
        old = doc._mask_of(self.ref)
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
        current = self.doc._mask_of(self.ref)
        if not np.array_equal(current[self.rect.slices], _unpack(expect, self._crop_shape)):
            raise StaleEditError(f"instance {self.ref.id} was changed outside this history")
        self.doc._write_crop(self.ref, self.rect, _unpack(put, self._crop_shape))

    def _do(self) -> None:
        if self.empties:
            current = self.doc._mask_of(self.ref)
            if not np.array_equal(current[self.rect.slices],
                                  _unpack(self._old, self._crop_shape)):
                raise StaleEditError(f"instance {self.ref.id} was changed outside this history")
            self._removed = self.doc._remove(self.ref)
        else:
            self._swap(self._old, self._new)

    def _undo(self) -> None:
        if self.empties:
            if self._removed is None:
                raise StaleEditError("nothing recorded to restore")
            self.doc._insert(self._removed, self.ref)
        else:
            self._swap(self._new, self._old)


class AddInstance(DocCommand):
    """Add an instance from a mask (polygon, GrabCut, wand, a split-off part)."""

    def __init__(self, doc: ImageDocument, mask: np.ndarray, category_id: int, *,
                 source: str = "manual", model_version_id: int | None = None,
                 score: float | None = None, state: str = "accepted",
                 label: str = "add instance"):
        super().__init__(doc, label)
        mask = np.asarray(mask)
        if mask.shape != doc.shape:
            raise EditError(f"mask shape {mask.shape} does not match the image {doc.shape}")
        rle = encode(mask)
        if rle.area <= 0:
            raise EditError("an instance mask must cover at least one pixel")
        doc._require_category(category_id)
        self._record = Instance(0, doc.image_id, category_id, rle, rle.bbox, rle.area, source,
                                model_version_id, score, state)
        self.ref: InstanceRef | None = None

    @property
    def instance_id(self) -> int | None:
        return self.ref.id if self.ref else None

    @property
    def nbytes(self) -> int:
        return len(self._record.rle.counts)

    def _do(self) -> None:
        self.ref = self.doc._insert(self._record, self.ref)

    def _undo(self) -> None:
        if self.ref is None:
            raise StaleEditError("this instance was never added")
        self._record = self.doc._remove(self.ref)


class DeleteInstances(DocCommand):
    """Delete instances (or reject predictions); undo restores them, same ids, provenance,
    category, state and mask."""

    def __init__(self, doc: ImageDocument, instance_ids: Iterable[int], *,
                 label: str = "delete"):
        super().__init__(doc, label)
        self.refs = [doc._ref(i) for i in sorted(set(instance_ids))]
        self._records: list[Instance] = []

    @property
    def noop(self) -> bool:
        return not self.refs

    @property
    def nbytes(self) -> int:
        return sum(len(r.rle.counts) + 128 for r in self._records)

    def _do(self) -> None:
        self._records = [self.doc._remove(ref) for ref in self.refs]

    def _undo(self) -> None:
        for ref, record in zip(self.refs, self._records, strict=True):
            self.doc._insert(record, ref)


class SetState(DocCommand):
    """Accept predictions (state `accepted`) or put instances back to `pending`."""

    def __init__(self, doc: ImageDocument, instance_ids: Iterable[int], state: str, *,
                 label: str | None = None):
        super().__init__(doc, label or ("accept" if state == "accepted" else "set pending"))
        self.state = state
        refs = [doc._ref(i) for i in sorted(set(instance_ids))]
        self._old = {ref: doc._record(ref).state for ref in refs}
        self.refs = [ref for ref in refs if self._old[ref] != state]

    @property
    def noop(self) -> bool:
        return not self.refs

    def _move(self, expect: Callable[[InstanceRef], str], put: Callable[[InstanceRef], str]
              ) -> None:
        for ref in self.refs:
            if self.doc._record(ref).state != expect(ref):
                raise StaleEditError(f"instance {ref.id} changed state outside this history")
            self.doc._set_state(ref, put(ref))

    def _do(self) -> None:
        self._move(lambda ref: self._old[ref], lambda ref: self.state)

    def _undo(self) -> None:
        self._move(lambda ref: self.state, lambda ref: self._old[ref])


class ChangeCategory(DocCommand):
    """Give instances another category."""

    def __init__(self, doc: ImageDocument, instance_ids: Iterable[int], category_id: int, *,
                 label: str = "change category"):
        super().__init__(doc, label)
        doc._require_category(category_id)
        self.category_id = category_id
        refs = [doc._ref(i) for i in sorted(set(instance_ids))]
        self._old = {ref: doc._record(ref).category_id for ref in refs}
        self.refs = [ref for ref in refs if self._old[ref] != category_id]

    @property
    def noop(self) -> bool:
        return not self.refs

    def _move(self, expect: Callable[[InstanceRef], int], put: Callable[[InstanceRef], int]
              ) -> None:
        for ref in self.refs:
            if self.doc._record(ref).category_id != expect(ref):
                raise StaleEditError(f"instance {ref.id} changed category outside this history")
            self.doc._set_category(ref, put(ref))

    def _do(self) -> None:
        self._move(lambda ref: self._old[ref], lambda ref: self.category_id)

    def _undo(self) -> None:
        self._move(lambda ref: self.category_id, lambda ref: self._old[ref])


class CompositeCommand(DocCommand):
    """Several commands as one step (split, merge): done in order, undone in reverse, all in
    one transaction."""

    def __init__(self, doc: ImageDocument, children: list[DocCommand], *, label: str):
        super().__init__(doc, label)
        self.children = [c for c in children if not c.noop]

    @property
    def noop(self) -> bool:
        return not self.children

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.children)

    def _do(self) -> None:
        for c in self.children:
            c._do()

    def _undo(self) -> None:
        for c in reversed(self.children):
            c._undo()

    def _redo(self) -> None:
        for c in self.children:
            c._redo()


class AddCategory(DocCommand):
    """Add a category to the project (undo removes it again)."""

    def __init__(self, doc: ImageDocument, name: str, color: str | None = None, *,
                 label: str = "new category"):
        super().__init__(doc, label)
        self.name = name.strip()
        if not self.name:
            raise EditError("a category needs a non-empty name")
        if doc.project.category_by_name(self.name):
            raise EditError(f"a category named {self.name!r} already exists")
        self.color = color
        self.category: Category | None = None

    def _do(self) -> None:
        self.category = self.doc.project.add_category(self.name, self.color)
        self.doc._effect_now().categories = True

    def _undo(self) -> None:
        if self.category is None:
            raise StaleEditError("this category was never added")
        self.doc.project.delete_category(self.category.id)
        self.doc._effect_now().categories = True

    def _redo(self) -> None:
        if self.category is None:
            raise StaleEditError("this category was never added")
        self.doc.project.restore_category(self.category)
        self.doc._effect_now().categories = True


class RenameCategory(DocCommand):
    """Rename a category, project-wide."""

    def __init__(self, doc: ImageDocument, category_id: int, name: str, *,
                 label: str = "rename category"):
        super().__init__(doc, label)
        self.category_id = category_id
        self.old = doc._category(category_id).name
        self.new = name.strip()
        if not self.new:
            raise EditError("a category needs a non-empty name")

    @property
    def noop(self) -> bool:
        return self.old == self.new

    def _rename(self, expect: str, put: str) -> None:
        if self.doc._category(self.category_id).name != expect:
            raise StaleEditError(f"category {self.category_id} was renamed outside this history")
        self.doc.project.rename_category(self.category_id, put)
        self.doc._effect_now().categories = True

    def _do(self) -> None:
        self._rename(self.old, self.new)

    def _undo(self) -> None:
        self._rename(self.new, self.old)


class MergeCategories(DocCommand):
    """Merge one category into another, project-wide: every instance of `source` (all images)
    gets `target`, and `source` is removed. Undo brings `source` back (same id, name, colour)
    and gives it back to the instances that were moved and still have `target`."""

    def __init__(self, doc: ImageDocument, source_id: int, target_id: int, *,
                 label: str = "merge categories"):
        super().__init__(doc, label)
        if source_id == target_id:
            raise EditError("cannot merge a category into itself")
        self.source = doc._category(source_id)
        self.target = doc._category(target_id)
        self.moved: list[int] = []

    @property
    def nbytes(self) -> int:
        return 8 * len(self.moved)

    def _do(self) -> None:
        project = self.doc.project
        if project.category_by_name(self.source.name) != self.source:
            raise StaleEditError(f"category {self.source.name!r} changed outside this history")
        self.moved = project.merge_categories(self.source.id, self.target.id)
        self._announce()

    def _undo(self) -> None:
        project = self.doc.project
        project.restore_category(self.source)
        back = []
        for iid in self.moved:
            try:
                inst = project.instance(iid)
            except ProjectError:
                continue  # deleted since, by another image's history
            if inst.category_id == self.target.id:
                back.append(iid)
        project.set_instances_category(back, self.source.id)
        self._announce()

    def _announce(self) -> None:
        effect = self.doc._effect_now()
        effect.categories = True
        mine = {i.id for i in self.doc.instances()}
        effect.changed.update(i for i in self.moved if i in mine)
