"""The class-specific rows of a Mask R-CNN's predictors, and moving them between category
lists (COCO's → a project's, an older version's → the project's current ones)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mrcnn.model.presets import build_model

#: state dict keys whose leading dimension holds `rows` rows per class (background = 0)
PER_CLASS_ROWS = {
    "roi_heads.box_predictor.cls_score.weight": 1,
    "roi_heads.box_predictor.cls_score.bias": 1,
    "roi_heads.box_predictor.bbox_pred.weight": 4,
    "roi_heads.box_predictor.bbox_pred.bias": 4,
    "roi_heads.mask_predictor.mask_fcn_logits.weight": 1,
    "roi_heads.mask_predictor.mask_fcn_logits.bias": 1,
}


def copy_class_rows(state: dict, fresh: Mapping[str, torch.Tensor],
                     pairs: list[tuple[int, int]]) -> None:
    """Replace state's class-specific predictor rows by `fresh`'s, except the (new label,
    old label) pairs, which take the old rows of `state`."""
    for key, rows in PER_CLASS_ROWS.items():
        target = fresh[key].clone()
        source = state[key]
        for ours, theirs in pairs:
            target[ours * rows:(ours + 1) * rows] = source[theirs * rows:(theirs + 1) * rows]
        state[key] = target


def remap_categories(state: Mapping[str, torch.Tensor], preset: str, trained: Sequence[str],
                     wanted: Sequence[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A model version's state dict re-laid for another category list (to train on a project
    whose categories changed since): a category the model knows keeps its rows, by name,
    whatever its position; new ones start fresh; dropped ones go.

    Returns (state dict for `build_model(preset=preset, num_classes=len(wanted) + 1)` at the
    state's own mask resolution (the per-class mask logits are 1x1 convs at 28 and 56 alike),
    the names that kept their rows)."""
    state = dict(state)
    fresh = build_model(preset=preset, num_classes=len(wanted) + 1).state_dict()
    old = {name: i + 1 for i, name in enumerate(trained)}
    pairs = [(0, 0)] + [(i + 1, old[n]) for i, n in enumerate(wanted) if n in old]
    copy_class_rows(state, fresh, pairs)
    return state, [n for n in wanted if n in old]
