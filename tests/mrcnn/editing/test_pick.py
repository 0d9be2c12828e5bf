"""Click to pick: the predictions under a point are offered best first, hidden ones too, and a
second click on the same spot offers the next."""

from __future__ import annotations

import numpy as np

from mrcnn import masks
from mrcnn.editing.pick import PickCycle, predictions_at
from mrcnn.store.records import Instance

SHAPE = (60, 80)


def inst(iid: int, box: tuple[int, int, int, int], score: float | None,
         state: str = "pending", category: int = 1) -> Instance:
    x0, y0, x1, y1 = box
    m = np.zeros(SHAPE, bool)
    m[y0:y1, x0:x1] = True
    rle = masks.encode(m)
    return Instance(iid, 1, category, rle, rle.bbox, rle.area,
                    "model" if state == "pending" else "manual", 1, score, state)


def scene() -> list[Instance]:
    return [
        inst(1, (10, 10, 30, 30), 0.9),  # a shown prediction
        inst(2, (5, 5, 25, 25), 0.2),  # hidden by a 0.5 slider, overlapping the first
        inst(3, (12, 12, 20, 20), None, state="accepted"),  # the person's own: never offered
        inst(4, (50, 40, 70, 55), 0.07),
    ]


def test_the_predictions_covering_a_point_best_first_hidden_ones_included():
    assert [i.id for i in predictions_at(scene(), 15.5, 15.5)] == [1, 2]
    assert [i.id for i in predictions_at(scene(), 6.0, 6.0)] == [2]
    assert [i.id for i in predictions_at(scene(), 60.2, 45.9)] == [4]
    assert predictions_at(scene(), 40.0, 5.0) == []  # nothing there
    assert predictions_at(scene(), -3.0, 200.0) == []  # outside the image


def test_the_mask_decides_not_the_box():
    ring = np.zeros(SHAPE, bool)
    ring[10:40, 10:40] = True
    ring[15:35, 15:35] = False  # a hole in the middle of its box
    rle = masks.encode(ring)
    donut = Instance(9, 1, 1, rle, rle.bbox, rle.area, "model", 1, 0.4, "pending")
    assert predictions_at([donut], 25, 25) == []
    assert predictions_at([donut], 11, 11) == [donut]


def test_clicking_the_same_spot_cycles_and_elsewhere_starts_over():
    cycle = PickCycle()
    names = {1: "bottle"}.__getitem__
    assert cycle.click(scene(), 15, 15).id == 1
    assert cycle.describe(names) == ("bottle 0.90 · 1 of 2 under this point · Enter accepts, "
                                     "click again for the next")
    assert cycle.click(scene(), 16, 17).id == 2  # within a few pixels: the next one
    assert cycle.describe(names).startswith("bottle 0.20 · 2 of 2")
    assert cycle.click(scene(), 15, 15).id == 1  # wraps around
    assert cycle.click(scene(), 60, 45).id == 4  # another spot
    assert cycle.click(scene(), 40, 5) is None
    assert cycle.describe(names) == "No prediction covers this point"


def test_a_prediction_accepted_meanwhile_leaves_the_cycle():
    cycle = PickCycle()
    instances = scene()
    assert cycle.click(instances, 15, 15).id == 1
    instances[0] = inst(1, (10, 10, 30, 30), 0.9, state="accepted")  # Enter accepted it
    assert cycle.click(instances, 15, 15).id == 2
    assert cycle.click(instances, 15, 15).id == 2  # the only one left
