"""Click to pick what the model almost found: the predictions under a point, best first.

A model often finds an object at a low score (0.2) that the score slider hides. Rather than
redraw it, a person clicks on the object: every pending prediction of the image whose mask
covers that pixel is offered, the highest score first, hidden or not; clicking again on the
same spot offers the next one (and wraps around); one key accepts the one offered
(`ImageDocument.accept_instances`, an undoable step). Accepted instances are not offered: they
are already the person's.

Pure functions and one small state object on plain records: no Qt, no store, no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from mrcnn.store.records import Instance, InstanceState

#: A click within this many image pixels of the previous one is "the same spot" (cycles).
SAME_SPOT_PX = 4.0

MaskOf = Callable[[Instance], np.ndarray]


def _decoded(instance: Instance) -> np.ndarray:
    return instance.rle.decode()


def predictions_at(instances: Iterable[Instance], x: float, y: float, *,
                   mask_of: MaskOf = _decoded) -> list[Instance]:
    """The pending predictions whose mask covers the pixel under (x, y) (image coordinates,
    pixel corners: pixel (int(x), int(y))), highest score first (ties: lower id first).
    `mask_of` gives an instance's (H, W) bool mask (a document's cached masks, say); it is
    called only for instances whose box holds the point."""
    col, row = int(np.floor(x)), int(np.floor(y))
    found = []
    for inst in instances:
        if inst.state != InstanceState.PENDING:
            continue
        bx, by, bw, bh = inst.bbox
        if not (bx <= col < bx + bw and by <= row < by + bh):
            continue
        mask = mask_of(inst)
        if 0 <= row < mask.shape[0] and 0 <= col < mask.shape[1] and mask[row, col]:
            found.append(inst)
    return sorted(found, key=lambda i: (-(i.score if i.score is not None else 0.0), i.id))


@dataclass
class PickCycle:
    """What a click offers: the candidates under the clicked point and which one is offered.
    A click on the same spot (within SAME_SPOT_PX) offers the next candidate; a click
    elsewhere starts over there."""

    candidates: list[Instance] = field(default_factory=list)
    index: int = 0
    point: tuple[float, float] | None = None

    @property
    def offered(self) -> Instance | None:
        return self.candidates[self.index] if self.candidates else None

    def click(self, instances: Iterable[Instance], x: float, y: float, *,
              mask_of: MaskOf = _decoded) -> Instance | None:
        """A click at (x, y) on an image holding `instances`: the prediction now offered
        (None: nothing the model predicted covers that point)."""
        same_spot = (self.point is not None and self.candidates
                     and np.hypot(x - self.point[0], y - self.point[1]) <= SAME_SPOT_PX)
        if same_spot:
            live = {i.id for i in instances if i.state == InstanceState.PENDING}
            self.candidates = [c for c in self.candidates if c.id in live]
            if self.candidates:
                self.index = (self.index + 1) % len(self.candidates)
                return self.offered
        self.point = (x, y)
        self.candidates = predictions_at(instances, x, y, mask_of=mask_of)
        self.index = 0
        return self.offered

    def describe(self, category_name: Callable[[int], str]) -> str:
        """One line for the status bar: 'person 0.23 · 1 of 3 under this point · Enter
        accepts, click again for the next'."""
        offered = self.offered
        if offered is None:
            return "No prediction covers this point"
        score = f" {offered.score:.2f}" if offered.score is not None else ""
        n = len(self.candidates)
        more = ", click again for the next" if n > 1 else ""
        return (f"{category_name(offered.category_id)}{score} · {self.index + 1} of {n} "
                f"under this point · Enter accepts{more}")

    def clear(self) -> None:
        self.candidates, self.index, self.point = [], 0, None
