"""The one place where store conventions (COCO: category ids, xywh boxes, RLE masks) become
torch conventions (contiguous labels with 0 = background, xyxy boxes, mask tensors) and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from mrcnn import masks
from mrcnn.keypoints import Points, points_to_coco
from mrcnn.store.records import Instance

if TYPE_CHECKING:
    from mrcnn.model.predictor import Prediction


class LabelMap:
    """Model label i (1..K) <-> category name; the model's class list is a list of names."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self._label = {n: i + 1 for i, n in enumerate(self.names)}

    @property
    def num_classes(self) -> int:
        """Categories + background, as torchvision's builders want it."""
        return len(self.names) + 1

    def label(self, name: str) -> int:
        return self._label[name]

    def name(self, label: int) -> str:
        return self.names[label - 1]

    def __contains__(self, name: str) -> bool:
        return name in self._label


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB → (3, H, W) float32 in [0, 1]."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:
        image = image.copy()
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)


def xywh_to_xyxy(bbox: Sequence[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def instances_to_target(instances: Sequence[Instance], label_of: dict[int, int],
                        height: int, width: int) -> dict[str, torch.Tensor]:
    """Store instances → a torchvision detection target.

    label_of maps store category id → model label. Returns boxes (N, 4) float32 xyxy,
    labels (N,) int64, masks (N, H, W) uint8.
    """
    n = len(instances)
    boxes = torch.zeros((n, 4), dtype=torch.float32)
    labels = torch.zeros((n,), dtype=torch.int64)
    mask_arr = np.zeros((n, height, width), dtype=np.uint8)
    for i, inst in enumerate(instances):
        boxes[i] = torch.tensor(xywh_to_xyxy(inst.bbox))
        labels[i] = label_of[inst.category_id]
        mask_arr[i] = inst.rle.decode()
    return {"boxes": boxes, "labels": labels, "masks": torch.from_numpy(mask_arr)}


def rle_of(mask: np.ndarray) -> masks.Rle:
    return masks.encode(mask)


def coco_results(prediction: Prediction, image_id: int,
                 category_of: Mapping[int, int] | None = None, *,
                 rles: Sequence[masks.Rle] | None = None,
                 keypoints: Sequence[Points | None] | None = None) -> list[dict]:
    """One image's detections as COCO results entries (what `COCO.loadRes` and detectron2's
    evaluators read): {image_id, category_id, bbox (xywh), score, segmentation (compressed
    RLE, counts as str)}. `category_of` maps model label → category id in the file (labels
    it lacks are left out); None keeps the model labels. `rles`: the masks already encoded
    (else each is encoded here). `keypoints`: each detection's points (a keypoint head's),
    written as COCO's flat x, y, v triplets where not None."""
    results = []
    for i, (box, label, score) in enumerate(zip(prediction.boxes, prediction.labels,
                                                prediction.scores, strict=True)):
        category = int(label) if category_of is None else category_of.get(int(label))
        if category is None:
            continue
        rle = rles[i] if rles is not None else masks.encode(prediction.masks[i])
        entry = {
            "image_id": int(image_id), "category_id": category,
            "bbox": xyxy_to_xywh(box), "score": float(score),
            "segmentation": rle.to_coco(),
        }
        points = keypoints[i] if keypoints is not None else None
        if points is not None:
            entry["keypoints"] = points_to_coco(points)
        results.append(entry)
    return results
