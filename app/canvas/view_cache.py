"""Recently loaded (and prefetched) images, so that going back and forth is instant."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from app.canvas.render import ImageView, InstanceShape, fill_pixels
from mrcnn.masks import Rle

#: Pixels kept for images that are not on screen (a 6000x4000 photo takes ~130 MB).
DEFAULT_BUDGET_BYTES = 700 * 1024 * 1024


@dataclass
class CachedImage:
    """An image's display pyramid and the instance shapes computed so far, with the mask
    each shape was made from (a shape is reused only while the mask is the same)."""

    view: ImageView
    shapes: dict[int, InstanceShape] = field(default_factory=dict)
    masks: dict[int, Rle] = field(default_factory=dict)
    colors: dict[int, str] = field(default_factory=dict)  # the colour each fill was made in

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.view.levels) + sum(
            s.fill.nbytes for s in self.shapes.values())

    def shape_for(self, instance_id: int, rle: Rle, color: str) -> InstanceShape | None:
        """The cached shape for this mask, its fill in `color` (a category changed while
        the image was off screen: the fill is repainted, the outlines kept)."""
        shape = self.shapes.get(instance_id) if self.masks.get(instance_id) == rle else None
        if shape is not None and self.colors.get(instance_id) != color:
            shape = replace(shape, fill=fill_pixels(shape.fill[..., 3] > 0, color))
            self.shapes[instance_id], self.colors[instance_id] = shape, color
        return shape

    def add_shapes(self, shapes: list[InstanceShape], masks: dict[int, Rle],
                   colors: dict[int, str]) -> None:
        for s in shapes:
            if s.id in masks:
                self.shapes[s.id] = s
                self.masks[s.id] = masks[s.id]
                self.colors[s.id] = colors.get(s.id, "")


class ViewCache:
    """Least-recently-used images, by id, within a memory budget (the newest always stays)."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        self._budget = budget_bytes
        self._items: OrderedDict[int, CachedImage] = OrderedDict()

    def get(self, image_id: int) -> CachedImage | None:
        entry = self._items.get(image_id)
        if entry is not None:
            self._items.move_to_end(image_id)
        return entry

    def put(self, entry: CachedImage) -> CachedImage:
        self._items[entry.view.image_id] = entry
        self._items.move_to_end(entry.view.image_id)
        self.trim()
        return entry

    def trim(self, keep: int | None = None) -> None:
        total = sum(e.nbytes for e in self._items.values())
        for image_id in list(self._items):
            if total <= self._budget or len(self._items) <= 1:
                break
            if image_id == keep:
                continue
            total -= self._items.pop(image_id).nbytes

    def discard(self, image_id: int) -> None:
        self._items.pop(image_id, None)

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._items
