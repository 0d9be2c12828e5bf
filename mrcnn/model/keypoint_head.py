"""A Mask R-CNN with a keypoint head beside its mask head: one head for every category that
has a keypoint schema, K = the sum of their keypoint counts, each category trained and read
on its own slots (`mrcnn.keypoints.slot_layout`).

The *layout* is plain data, {category name: (keypoint names...)} in the model's category
order; it is kept in a checkpoint's metadata ("keypoints") and rebuilt wherever one loads
(`mrcnn.model.weights.load_model`), as the anchors and the mask resolution are.

torchvision's RoIHeads runs a keypoint head when `keypoint_roi_pool`, `keypoint_head` and
`keypoint_predictor` are set: in training every target then needs "keypoints" (N, K, 3)
float32 (x, y, v; v = 0 points are ignored by the loss), and every output carries
"keypoints" (N, K, 3) (x, y, 1 in image pixels) and "keypoints_scores" (N, K).

Where torchvision's COCO Keypoint R-CNN weights are in the torch cache
(`COCO_KEYPOINT_FILE`; never downloaded), a head added to an r50/r50v2 model starts from
them for the categories whose names are COCO's person keypoints (matched by name; other
slots fresh)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from mrcnn.keypoints import COCO_PERSON_NAMES, VISIBLE, KeypointSchema, Points, slot_layout
from mrcnn.model.checkpoint import load_state
from mrcnn.model.weight_files import torch_hub_dir

log = logging.getLogger(__name__)

#: {category name: its keypoint names}, in the model's category order.
Layout = dict[str, tuple[str, ...]]

#: torchvision's COCO Keypoint R-CNN (R50-FPN v1) weights, as named in the torch cache.
COCO_KEYPOINT_FILE = "keypointrcnn_resnet50_fpn_coco-fc266e95.pth"
#: Channels of the keypoint head's convolutions (torchvision's: 8 x 512 on the R50 FPN's
#: 256 channels; the r18 preset's slim head: 4 x its FPN width).
HEAD_LAYERS = {"r50": (512,) * 8, "r50v2": (512,) * 8}
_PREDICTOR = "roi_heads.keypoint_predictor."
_HEAD = "roi_heads.keypoint_head."


def layout_for(schemas: Mapping[str, KeypointSchema], categories: Sequence[str]) -> Layout:
    """The layout of a model for `categories` (its class names, in order) from a project's
    keypoint schemas: the categories that have one, in the model's order."""
    return {name: tuple(schemas[name].names) for name in categories if name in schemas}


def check_layout(data: object) -> Layout:
    """A layout from plain data (a checkpoint's metadata); ValueError when it is not one."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a keypoint layout maps category names to keypoint names, not "
                         f"{type(data).__name__}")
    out: Layout = {}
    for name, names in data.items():
        if not isinstance(name, str) or not isinstance(names, (list, tuple)) or not names:
            raise ValueError(f"invalid keypoint layout entry {name!r}: {names!r}")
        KeypointSchema(tuple(names))  # the rules of a schema's names
        out[name] = tuple(names)
    return out


def slots(layout: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
    """(first slot, count) per category of the layout."""
    return slot_layout({c: KeypointSchema(tuple(n)) for c, n in layout.items()})


def total_slots(layout: Mapping[str, Sequence[str]]) -> int:
    """K: how many keypoints the layout's one head predicts."""
    return sum(len(n) for n in layout.values())


def keypoint_layout_of(model: nn.Module) -> Layout | None:
    """The layout of a built model's keypoint head (None: it has none, or is no Mask R-CNN,
    e.g. a stand-in)."""
    inner: nn.Module = getattr(model, "module", model)  # a DDP-wrapped model: its module
    heads: Any = getattr(inner, "roi_heads", None)
    if heads is None or getattr(heads, "keypoint_predictor", None) is None:
        return None
    return dict(getattr(inner, "keypoint_layout", None) or {})


def attach_keypoint_head(model: nn.Module, layout: Mapping[str, Sequence[str]],
                         preset: str) -> None:
    """Give a built Mask R-CNN of `preset` a fresh keypoint head for `layout` (an empty
    layout removes the head)."""
    heads: Any = model.roi_heads
    if not layout:
        heads.keypoint_roi_pool = heads.keypoint_head = heads.keypoint_predictor = None
        setattr(model, "keypoint_layout", {})  # noqa: B010 - a plain attribute, not a module
        return
    backbone: Any = model.backbone
    width = int(backbone.out_channels)
    layers = HEAD_LAYERS.get(preset, (width,) * 4)
    levels = ["0", "1", "2", "3"]
    heads.keypoint_roi_pool = MultiScaleRoIAlign(levels, 14, sampling_ratio=1 if preset == "r18"
                                                 else 2)
    heads.keypoint_head = KeypointRCNNHeads(width, layers)
    heads.keypoint_predictor = KeypointRCNNPredictor(layers[-1], total_slots(layout))
    setattr(model, "keypoint_layout",  # noqa: B010 - a plain attribute, not a module
            {c: tuple(n) for c, n in layout.items()})


def _slot_pairs(old: Mapping[str, Sequence[str]], new: Mapping[str, Sequence[str]]
                ) -> list[tuple[int, int]]:
    """(new slot, old slot) for every (category, keypoint name) in both layouts."""
    old_slots, new_slots = slots(old), slots(new)
    pairs = []
    for cat, names in new.items():
        if cat not in old:
            continue
        before = list(old[cat])
        for i, name in enumerate(names):
            if name in before:
                pairs.append((new_slots[cat][0] + i, old_slots[cat][0] + before.index(name)))
    return pairs


def _copy_predictor_rows(target: nn.Module, source: Mapping[str, torch.Tensor],
                         pairs: Sequence[tuple[int, int]]) -> None:
    """Copy keypoint channels (slots) of a predictor's state `source` into `target`'s:
    (target slot, source slot) pairs. The ConvTranspose2d weight is (in, K, 4, 4)."""
    layer: Any = target.kps_score_lowres
    with torch.no_grad():
        weight, bias = layer.weight, layer.bias
        for new, old in pairs:
            weight[:, new] = source["kps_score_lowres.weight"][:, old]
            bias[new] = source["kps_score_lowres.bias"][old]


def with_keypoint_layout(model: nn.Module, layout: Mapping[str, Sequence[str]],
                         preset: str) -> nn.Module:
    """`model` with a keypoint head for `layout` (the same model, changed in place): kept as
    it is when its layout is that one; else a new head where the old one's convolutions and
    the slots of (category, name) pairs it knew are kept; a head added where there was none
    starts from COCO's keypoint weights when `coco_keypoint_init` finds them. An empty layout
    removes the head."""
    current = keypoint_layout_of(model)
    wanted = {c: tuple(n) for c, n in layout.items()}
    if (current or {}) == wanted:
        return model
    heads: Any = model.roi_heads
    old_head = heads.keypoint_head.state_dict() if current else None
    old_pred = heads.keypoint_predictor.state_dict() if current else None
    attach_keypoint_head(model, wanted, preset)
    if not wanted:
        log.info("keypoint head removed (the project has no keypoint categories)")
        return model
    if old_head is not None and old_pred is not None and current is not None:
        heads.keypoint_head.load_state_dict(old_head)
        _copy_predictor_rows(heads.keypoint_predictor, old_pred, _slot_pairs(current, wanted))
        log.info("keypoint head re-laid for %s", ", ".join(wanted))
    else:
        coco_keypoint_init(model, wanted, preset)
    return model


def coco_keypoint_file() -> str | None:
    """torchvision's COCO Keypoint R-CNN weights when they are in the torch cache."""
    path = torch_hub_dir() / "checkpoints" / COCO_KEYPOINT_FILE
    return str(path) if path.is_file() else None


def coco_keypoint_init(model: nn.Module, layout: Mapping[str, Sequence[str]], preset: str,
                       path: str | None = None) -> list[str]:
    """Start the keypoint head of an r50/r50v2 model from COCO's Keypoint R-CNN weights
    (`path`, None: the torch cache's; nothing is downloaded): its convolutions, and for each
    category whose keypoint names are all COCO person keypoints the channels of those names.
    Returns the categories that took COCO's channels (none without the file)."""
    if preset not in HEAD_LAYERS:
        return []
    people = [c for c, names in layout.items() if set(names) <= set(COCO_PERSON_NAMES)]
    path = path or coco_keypoint_file()
    if not people or path is None:
        return []
    state = load_state(path)
    head = {k[len(_HEAD):]: v for k, v in state.items() if k.startswith(_HEAD)}
    pred = {k[len(_PREDICTOR):]: v for k, v in state.items() if k.startswith(_PREDICTOR)}
    heads: Any = model.roi_heads
    try:
        heads.keypoint_head.load_state_dict(head)
    except RuntimeError as exc:
        log.warning("COCO keypoint weights %s do not fit the %s keypoint head: %s", path,
                    preset, exc)
        return []
    where = slots(layout)
    pairs = [(where[c][0] + i, COCO_PERSON_NAMES.index(name))
             for c in people for i, name in enumerate(layout[c])]
    _copy_predictor_rows(heads.keypoint_predictor, pred, pairs)
    log.info("keypoint head started from COCO's person keypoints for %s", ", ".join(people))
    return people


def detection_points(keypoints: np.ndarray, category: str,
                     layout: Mapping[str, Sequence[str]]) -> Points | None:
    """One detection's points for its category from the head's (K, 3) output (x, y in image
    pixels): the category's own slots, each visible (v = 2); None when the category has no
    keypoints in the layout."""
    if category not in layout:
        return None
    first, count = slots(layout)[category]
    rows = keypoints[first:first + count]
    return tuple((max(0.0, float(x)), max(0.0, float(y)), VISIBLE) for x, y, _v in rows)
