"""Box → mask from the model itself: the RoI heads of a torchvision Mask R-CNN run on a box a
person drew, over the image's backbone/FPN features kept from predicting it, so a box costs
only the heads (no second backbone run).

    cache = FeatureCache(capacity=4)
    features = image_features(model, image_tensor, choice)     # once per image
    cache.put(image_id, features)
    answer = mask_for_box(model, cache.get(image_id), (x0, y0, x1, y1), choice)

The box classifier gives the category and a score; the box regressor may move the box once
(`refine_box`) before the mask head runs on it, as the model's own detections do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mrcnn.errors import MaskToolError
from mrcnn.model.convert import image_to_tensor
from mrcnn.model.device import DeviceChoice, autocast

#: Images whose features are kept (the current image and a few predicted ahead).
DEFAULT_CAPACITY = 4


@dataclass
class ImageFeatures:
    """One image's backbone/FPN features and the sizes that map boxes onto them.

    features: FPN level name → (1, C, h_l, w_l) float tensor on the model's device.
    resized: (height, width) of the image as the model saw it (after its resize).
    original: (height, width) of the image file."""

    features: OrderedDict[str, torch.Tensor]
    resized: tuple[int, int]
    original: tuple[int, int]

    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in self.features.values())


class FeatureCache:
    """The features of the last `capacity` images, least recently used dropped first.
    Cleared when the model changes (they belong to one model)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = max(0, int(capacity))
        self._items: OrderedDict[Hashable, ImageFeatures] = OrderedDict()

    def put(self, key: Hashable, features: ImageFeatures) -> None:
        if self.capacity == 0:
            return
        self._items[key] = features
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: Hashable) -> ImageFeatures | None:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def nbytes(self) -> int:
        return sum(f.nbytes() for f in self._items.values())


@torch.inference_mode()
def image_features(model: nn.Module, image: np.ndarray | torch.Tensor,
                   choice: DeviceChoice) -> ImageFeatures:
    """Run the model's transform and backbone on one (H, W, 3) uint8 RGB image (or its
    (3, H, W) float tensor in [0, 1])."""
    tensor = image if isinstance(image, torch.Tensor) else image_to_tensor(image)
    tensor = tensor.to(choice.device)
    original = (int(tensor.shape[-2]), int(tensor.shape[-1]))
    m: Any = model  # a torchvision MaskRCNN (its parts are untyped modules)
    images, _ = m.transform([tensor])
    x = images.tensors
    if choice.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(choice):
        features = m.backbone(x)
    h, w = images.image_sizes[0]
    return ImageFeatures(features, (int(h), int(w)), original)


@dataclass(frozen=True)
class BoxMask:
    """The model's answer to a box: the (H, W) bool mask, its model label (1..K), the class
    score, and the box the mask was taken in (xyxy, image pixels)."""

    mask: np.ndarray
    label: int
    score: float
    box: tuple[float, float, float, float]


@torch.inference_mode()
def mask_for_box(model: nn.Module, cached: ImageFeatures,
                 box: tuple[float, float, float, float], choice: DeviceChoice, *,
                 refine_box: bool = True, mask_threshold: float = 0.5) -> BoxMask:
    """The mask the model's heads give for `box` (x0, y0, x1, y1 in pixels of the image
    file) over the cached features. The best foreground class names it; with `refine_box`
    the box regressor of that class moves the box once before the mask is taken (kept only
    when it still overlaps the drawn box by half: a person's box is the stronger hint)."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    from torchvision.ops import box_iou

    x0, y0, x1, y1 = (float(v) for v in box)
    oh, ow = cached.original
    x0, x1 = sorted((max(0.0, min(x0, ow)), max(0.0, min(x1, ow))))
    y0, y1 = sorted((max(0.0, min(y0, oh)), max(0.0, min(y1, oh))))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise MaskToolError(f"the box {box} holds no pixel of the {ow}x{oh} image")
    rh, rw = cached.resized
    sy, sx = rh / oh, rw / ow
    device = next(iter(cached.features.values())).device
    drawn = torch.tensor([[x0 * sx, y0 * sy, x1 * sx, y1 * sy]], dtype=torch.float32,
                         device=device)
    heads: Any = model.roi_heads  # torchvision's RoIHeads (untyped parts)
    sizes = [cached.resized]
    with autocast(choice):
        pooled = heads.box_head(heads.box_roi_pool(cached.features, [drawn], sizes))
        logits, regression = heads.box_predictor(pooled)
    probs = torch.softmax(logits.float(), -1)[0]
    label = int(torch.argmax(probs[1:])) + 1 if probs.numel() > 1 else 0
    score = float(probs[label])
    mask_box = drawn
    if refine_box and label:
        moved = heads.box_coder.decode(regression.float(), [drawn]).reshape(1, -1, 4)[:, label]
        moved[:, 0::2] = moved[:, 0::2].clamp(0, rw)
        moved[:, 1::2] = moved[:, 1::2].clamp(0, rh)
        if float(box_iou(moved, drawn)[0, 0]) >= 0.5:
            mask_box = moved
    with autocast(choice):
        mask_logits = heads.mask_predictor(heads.mask_head(
            heads.mask_roi_pool(cached.features, [mask_box], sizes)))
    probs_mask = torch.sigmoid(mask_logits.float()[:, label:label + 1])
    in_file = mask_box / torch.tensor([sx, sy, sx, sy], device=device)
    pasted = paste_masks_in_image(probs_mask, in_file, (oh, ow))[0, 0]
    mask = (pasted > mask_threshold).cpu().numpy()
    bx0, by0, bx1, by1 = (float(v) for v in in_file[0].tolist())
    return BoxMask(mask, label, score, (bx0, by0, bx1, by1))
