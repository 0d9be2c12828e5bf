"""`ImageTarget`: the `StepTarget` an `ImageDocument` owns and hands to the steps it runs.

It writes through the `Project`, one transaction per do/undo/redo, and keeps what makes
edits fast and safe: the handles steps hold on instances (`InstanceRef`), the decoded masks
of recently edited instances, and what the running step changed (`Effect`, for the
document's observers). On a failed transaction all three roll back with the project. No Qt,
no torch here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from mrcnn.editing.codec import decode, encode_transposed
from mrcnn.editing.mask_tools import Rect
from mrcnn.editing.target import InstanceRef
from mrcnn.errors import EditError, ProjectError, StaleEditError
from mrcnn.keypoints import KeypointSchema, Points
from mrcnn.masks import Rle
from mrcnn.store.project import Project
from mrcnn.store.records import Category, ImageStatus, Instance, Split

log = logging.getLogger(__name__)


@dataclass
class Effect:
    """What a step changed while it ran."""

    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)
    categories: bool = False
    status: bool = False  # the image's status changed
    split: bool = False  # the image's split changed


class ImageTarget:
    """One image's `StepTarget` (see `mrcnn.editing.target` for what each operation does).

    The document reads through it too (`instance`, `mask`, `cached_mask`), and after each
    do/undo/redo takes `last_effect` to tell its observers.
    """

    def __init__(self, project: Project, image_id: int, shape: tuple[int, int], *,
                 cache_bytes: int):
        self.project = project
        self._image_id = image_id
        self._shape = shape
        self._refs: dict[int, InstanceRef] = {}
        self._cache: OrderedDict[int, tuple[str, np.ndarray]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._effect: Effect | None = None
        self._journal: list[tuple[InstanceRef, int]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._scratch: np.ndarray | None = None  # (W, H) uint8, for RLE encoding
        #: What the last committed do/undo/redo changed.
        self.last_effect = Effect()

    @property
    def image_id(self) -> int:
        return self._image_id

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    # ---------------------------------------------------------------- for the document
    def cached_mask(self, instance_id: int, rle: Rle) -> np.ndarray | None:
        """The decoded mask if it is held for exactly `rle`, else None. Read-only."""
        hit = self._cache.get(instance_id)
        return hit[1] if hit is not None and hit[0] == rle.counts else None

    def drop_cache(self) -> None:
        """Forget the decoded masks."""
        self._cache.clear()

    def forget(self) -> None:
        """Forget the handles and the decoded masks (the history they served is gone)."""
        self._refs.clear()
        self._cache.clear()

    # ---------------------------------------------------------------- transaction
    @contextmanager
    def writing(self) -> Iterator[None]:
        if self._effect is not None:  # a child of a composite: join the outer write
            yield
            return
        self._effect = Effect()
        self._journal = []
        self._after_commit = []
        refs = dict(self._refs)
        try:
            with self.project.transaction():
                yield
        except BaseException:
            for ref, old_id in reversed(self._journal):
                ref.id = old_id
            self._refs = refs
            self._cache.clear()
            raise
        else:
            self.last_effect = self._effect
            for action in self._after_commit:
                action()
        finally:
            self._effect = None
            self._journal = []
            self._after_commit = []

    @property
    def current_effect(self) -> Effect:
        """What the write in progress has changed so far."""
        return self._effect_now()

    def _effect_now(self) -> Effect:
        if self._effect is None:
            raise EditError("store changes must happen inside a step")
        return self._effect

    # ---------------------------------------------------------------- the image's status
    def image_status(self) -> ImageStatus:
        return self.project.image(self._image_id).status

    def set_image_status(self, status: ImageStatus) -> None:
        self.project.set_image_status(self._image_id, status)
        self._effect_now().status = True

    # ---------------------------------------------------------------- the image's split
    def image_split(self) -> Split:
        return Split(self.project.image(self._image_id).split)

    def set_image_split(self, split: Split) -> None:
        self.project.set_image_split(self._image_id, split)
        self._effect_now().split = True

    # ---------------------------------------------------------------- instances of the image
    def instance(self, instance_id: int) -> Instance:
        """One instance of this image (`EditError` when there is none)."""
        try:
            inst = self.project.instance(instance_id)
        except ProjectError as exc:
            raise EditError(str(exc)) from None
        if inst.image_id != self._image_id:
            raise EditError(f"instance {instance_id} belongs to another image")
        return inst

    def ref(self, instance_id: int) -> InstanceRef:
        self.instance(instance_id)  # exists, and in this image
        ref = self._refs.get(instance_id)
        if ref is None:
            ref = self._refs[instance_id] = InstanceRef(instance_id)
        return ref

    def record(self, ref: InstanceRef) -> Instance:
        try:
            inst = self.project.instance(ref.id)
        except ProjectError:
            raise StaleEditError(f"instance {ref.id} no longer exists") from None
        if inst.image_id != self._image_id:
            raise StaleEditError(f"instance {ref.id} now belongs to another image")
        return inst

    def mask(self, ref: InstanceRef) -> np.ndarray:
        counts = self.record(ref).rle.counts
        hit = self._cache.get(ref.id)
        if hit is not None and hit[0] == counts:
            self._cache.move_to_end(ref.id)
            return hit[1]
        mask = decode(Rle(self._shape[0], self._shape[1], counts))
        self._remember(ref.id, counts, mask)
        return mask

    def _remember(self, instance_id: int, counts: str, mask: np.ndarray) -> None:
        mask.flags.writeable = False
        self._cache[instance_id] = (counts, mask)
        self._cache.move_to_end(instance_id)
        total = sum(m.nbytes for _c, m in self._cache.values())
        while total > self._cache_bytes and len(self._cache) > 1:
            _id, (_c, m) = self._cache.popitem(last=False)
            total -= m.nbytes

    def write_crop(self, ref: InstanceRef, rect: Rect, crop: np.ndarray) -> None:
        """The cached mask is patched in place once the transaction commits (no
        24-megapixel copy per step)."""
        current = self.mask(ref)
        h, w = self._shape
        if self._scratch is None or self._scratch.shape != (w, h):
            self._scratch = np.empty((w, h), np.uint8)
        transposed = cv2.transpose(current.view(np.uint8), dst=self._scratch)
        transposed[rect.x0:rect.x1, rect.y0:rect.y1] = crop.T
        rle = encode_transposed(transposed)
        self.project.set_instance_mask(ref.id, rle)
        self._effect_now().changed.add(ref.id)

        def patch() -> None:
            current.flags.writeable = True
            current[rect.slices] = crop
            self._remember(ref.id, rle.counts, current)

        self._after_commit.append(patch)

    def insert(self, record: Instance, ref: InstanceRef | None) -> InstanceRef:
        effect = self._effect_now()
        if ref is None:
            new = self.project.add_instance(
                self._image_id, record.category_id, record.rle, source=record.source,
                model_version_id=record.model_version_id, score=record.score,
                state=record.state, keypoints=record.keypoints)
            ref = InstanceRef(new.id)
        else:
            new_id = self.project.restore_instance(replace(record, id=ref.id))
            if new_id != ref.id:
                log.info("instance %d was restored as %d (its id was taken)", ref.id, new_id)
                self._journal.append((ref, ref.id))
                ref.id = new_id
        self._refs[ref.id] = ref
        effect.added.add(ref.id)
        return ref

    def remove(self, ref: InstanceRef) -> Instance:
        record = self.record(ref)
        self.project.delete_instances([ref.id])
        self._refs.pop(ref.id, None)
        self._cache.pop(ref.id, None)
        self._effect_now().removed.add(ref.id)
        return record

    def set_state(self, ref: InstanceRef, state: str) -> None:
        self.project.set_instances_state([ref.id], state)
        self._effect_now().changed.add(ref.id)

    def set_category(self, ref: InstanceRef, category_id: int) -> None:
        self.project.set_instance_category(ref.id, category_id)
        self._effect_now().changed.add(ref.id)

    def set_keypoints(self, ref: InstanceRef, points: Points | None) -> None:
        self.project.set_instance_keypoints(ref.id, points)
        self._effect_now().changed.add(ref.id)

    def set_category_keypoints(self, category_id: int, schema: KeypointSchema | None) -> None:
        self.project.set_category_keypoints(category_id, schema)
        self._effect_now().categories = True

    # ---------------------------------------------------------------- project categories
    def category(self, category_id: int) -> Category:
        for c in self.project.categories():
            if c.id == category_id:
                return c
        raise EditError(f"no category with id {category_id}")

    def category_by_name(self, name: str) -> Category | None:
        return self.project.category_by_name(name)

    def add_category(self, name: str, color: str | None) -> Category:
        category = self.project.add_category(name, color)
        self._effect_now().categories = True
        return category

    def delete_category(self, category_id: int) -> None:
        self.project.delete_category(category_id)
        self._effect_now().categories = True

    def restore_category(self, category: Category) -> None:
        self.project.restore_category(category)
        self._effect_now().categories = True

    def rename_category(self, category_id: int, name: str) -> None:
        self.project.rename_category(category_id, name)
        self._effect_now().categories = True

    def merge_categories(self, source_id: int, target_id: int) -> list[int]:
        moved = self.project.merge_categories(source_id, target_id)
        self._note_changed(moved).categories = True
        return moved

    def category_of(self, instance_id: int) -> int | None:
        try:
            return self.project.instance(instance_id).category_id
        except ProjectError:
            return None

    def set_categories(self, instance_ids: Iterable[int], category_id: int) -> None:
        ids = list(instance_ids)
        self.project.set_instances_category(ids, category_id)
        self._note_changed(ids)

    def _note_changed(self, instance_ids: list[int]) -> Effect:
        """Note those of `instance_ids` that are in this image as changed."""
        effect = self._effect_now()
        mine = {i.id for i in self.project.instances(self._image_id)}
        effect.changed.update(i for i in instance_ids if i in mine)
        return effect

    def delete_category_and_instances(self, category_id: int) -> list[Instance]:
        gone = self.project.delete_category_and_instances(category_id)
        effect = self._effect_now()
        effect.categories = True
        for inst in gone:
            if inst.image_id == self._image_id:
                self._cache.pop(inst.id, None)
                effect.removed.add(inst.id)
        return gone

    def restore_instances(self, records: Iterable[Instance]) -> None:
        """Instances of this image keep their handles (which follow a changed id)."""
        effect = self._effect_now()
        for record in records:
            new_id = self.project.restore_instance(record)
            if record.image_id != self._image_id:
                continue
            ref = self._refs.get(record.id)
            if ref is not None and new_id != record.id:
                log.info("instance %d was restored as %d (its id was taken)", record.id, new_id)
                self._journal.append((ref, ref.id))
                del self._refs[record.id]
                ref.id = new_id
                self._refs[new_id] = ref
            effect.added.add(new_id)
