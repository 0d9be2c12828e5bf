"""A category added since a model version was trained starts from fresh predictor rows: it
inherits nothing from whichever old category happened to sit at its position."""

from __future__ import annotations

import torch

from mrcnn.model.class_rows import PER_CLASS_ROWS, remap_categories
from mrcnn.model.presets import build_model


def rows(t: torch.Tensor, label: int, per_class: int) -> torch.Tensor:
    return t[label * per_class:(label + 1) * per_class]


def test_a_new_category_gets_fresh_rows_not_the_old_rows_at_its_position():
    torch.manual_seed(0)
    old = build_model(preset="r18", num_classes=4).state_dict()  # a=1, b=2, c=3
    # "new" takes position 2, where b was; a keeps its rows at 1, c moves to 3 (same place)
    torch.manual_seed(7)
    state, kept = remap_categories(old, "r18", ["a", "b", "c"], ["a", "new", "c"])
    torch.manual_seed(7)
    fresh = build_model(preset="r18", num_classes=4).state_dict()  # what remap started from
    assert kept == ["a", "c"]
    for key, n in PER_CLASS_ROWS.items():
        new_rows = rows(state[key], 2, n)
        assert torch.equal(new_rows, rows(fresh[key], 2, n)), key  # freshly initialised
        if key.endswith("weight"):  # (biases may start at zero, so equal by construction)
            for label in range(4):
                assert not torch.equal(new_rows, rows(old[key], label, n)), (key, label)
        assert torch.equal(rows(state[key], 1, n), rows(old[key], 1, n))  # a kept
        assert torch.equal(rows(state[key], 3, n), rows(old[key], 3, n))  # c kept
