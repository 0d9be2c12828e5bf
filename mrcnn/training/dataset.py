"""Training data from the project store: reviewed images and their accepted instances as
torchvision detection samples, with augmentation (torchvision.transforms.v2).

Images much larger than the training input (longer side over `CROP_FACTOR` times the model's
longest input side and over `CROP_MIN_SIDE` pixels: the rule by which prediction tiles them,
`mrcnn.serving.tiles`) are not
resized whole, which would shrink their small objects away: each sample is a random crop of
the input's shorter side at the image's own resolution, around a randomly chosen instance
(`TrainingCrops`, `crop_window`), with the instances it cuts cropped too (`crop_target`:
tiny remnants dropped by `keep_remnant`'s rule).

A project with keypoint categories trains a keypoint head too (`mrcnn.model.keypoint_head`):
each target then carries "keypoints" (N, K, 3), an instance's points in its category's slots
and zeros (v = 0: not trained) elsewhere and for instances without points
(`KeypointTargets`); crops move the points with the image (those left outside become v = 0),
and the horizontal flip, which the data set then does itself, mirrors x and swaps each
category's left/right slots (`KeypointSchema.flip_indices`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from torchvision import tv_tensors
from torchvision.transforms import v2

from mrcnn.io.images import load_image
from mrcnn.io.remote import RemoteImage
from mrcnn.keypoints import KeypointSchema
from mrcnn.model.convert import LabelMap, image_to_tensor, instances_to_target, xywh_to_xyxy
from mrcnn.store.project import Project
from mrcnn.store.records import Instance


def project_labels(project: Project) -> LabelMap:
    """The model's class list for a project: category names in id order."""
    return LabelMap([c.name for c in project.categories()])


def reviewed_image_ids(project: Project, split: str | None) -> list[int]:
    """Ids of reviewed images in `split` ("train", "val", or None for both), in id order."""
    return [im.id for im in project.images("reviewed") if split is None or im.split == split]


@dataclass(frozen=True)
class Sample:
    """What one image contributes to training, read from the store once (plain data)."""

    image_id: int
    path: str | RemoteImage  # a remote image is read through the local image cache
    height: int
    width: int
    instances: tuple[Instance, ...]


#: Images with a longer side over this many times the model's longest input...
CROP_FACTOR = 2.0
#: ...and over this many pixels are cropped (`mrcnn.serving.tiles.AUTO_MIN_SIDE`).
CROP_MIN_SIDE = 2666
#: A cut instance's part in a crop is kept with at least this share of the instance's area...
MIN_REMNANT_SHARE = 0.25
#: ...or at least this many pixels (32 x 32: a part worth learning in its own right).
MIN_REMNANT_PIXELS = 1024


def trained_in_crops(height: int, width: int, max_size: int,
                     min_side: int = CROP_MIN_SIDE) -> bool:
    """Whether an image is trained on in crops: its longer side is over CROP_FACTOR times
    the model's longest input side `max_size`, and over `min_side` pixels."""
    return max(height, width) > max(CROP_FACTOR * max_size, min_side)


@dataclass(frozen=True)
class TrainingCrops:
    """How images much larger than the training input are trained on: in crops `size`
    pixels square (the input's shorter side, so a crop goes in at its own resolution), for
    images `trained_in_crops` with the model's longest input side `max_size` (and
    `min_side`: tests lower it)."""

    size: int
    max_size: int
    min_side: int = CROP_MIN_SIDE

    def applies(self, height: int, width: int) -> bool:
        return trained_in_crops(height, width, self.max_size, self.min_side)


def keep_remnant(part: int, whole: int) -> bool:
    """Whether the part (pixels) of an instance of `whole` pixels that a crop cuts off is
    trained on: at least MIN_REMNANT_SHARE of it, or at least MIN_REMNANT_PIXELS."""
    return part > 0 and (part >= MIN_REMNANT_SHARE * whole or part >= MIN_REMNANT_PIXELS)


def _start(lo: float, hi: float, extent: int, window: int, u: float) -> int:
    """A window start in [0, extent - window] that keeps [lo, hi] inside the window when it
    fits (else the middle of it), chosen by u in [0, 1)."""
    lo, hi = math.floor(lo), math.ceil(hi)  # the pixels it covers
    if hi - lo > window:
        lo = hi = (lo + hi) // 2
    first = max(0, hi - window)
    last = min(lo, extent - window)
    if first > last:
        first = last = min(max(0, first), extent - window)
    return first + min(int(u * (last - first + 1)), last - first)


def crop_window(height: int, width: int, size: int,
                box: tuple[float, float, float, float] | None, u: float, v: float
                ) -> tuple[int, int, int, int]:
    """A crop of an image (x0, y0, x1, y1): `size` pixels square (less along a shorter
    side), containing `box` (xywh; its middle where it is larger than the crop), placed
    by u, v in [0, 1) among the positions that do (anywhere without a box)."""
    cw, ch = min(size, width), min(size, height)
    x, y, w, h = box if box is not None else (0.0, 0.0, float(width), float(height))
    if box is None:
        x0 = min(int(u * (width - cw + 1)), width - cw)
        y0 = min(int(v * (height - ch + 1)), height - ch)
    else:
        x0 = _start(x, x + w, width, cw, u)
        y0 = _start(y, y + h, height, ch, v)
    return x0, y0, x0 + cw, y0 + ch


@dataclass(frozen=True)
class KeypointTargets:
    """How instances' points become the "keypoints" (N, K, 3) float32 of a target: per model
    label of a keypoint category (first slot, count, flip map of its schema); K `total`."""

    total: int
    by_label: dict[int, tuple[int, int, tuple[int, ...]]]

    @classmethod
    def of(cls, schemas: dict[str, KeypointSchema], layout: dict[str, tuple[str, ...]],
           labels: LabelMap) -> KeypointTargets:
        """For a model whose keypoint head has `layout` (category name → names, see
        `mrcnn.model.keypoint_head`), the project's `schemas` giving the flip maps."""
        by_label, start = {}, 0
        for name, names in layout.items():
            flip = (schemas[name].flip_indices() if name in schemas
                    and schemas[name].size == len(names) else tuple(range(len(names))))
            if name in labels:
                by_label[labels.label(name)] = (start, len(names), flip)
            start += len(names)
        return cls(start, by_label)

    def rows(self, instances: Sequence[Instance], labels: Sequence[int],
             offset: tuple[int, int] = (0, 0),
             window: tuple[int, int] | None = None) -> torch.Tensor:
        """(N, K, 3) float32: each instance's points in its label's slots, moved by -offset
        (x, y); with `window` (width, height), points outside it become v = 0."""
        out = torch.zeros((len(instances), self.total, 3), dtype=torch.float32)
        for i, (inst, label) in enumerate(zip(instances, labels, strict=True)):
            where = self.by_label.get(int(label))
            if where is None or inst.keypoints is None:
                continue
            first, count, _flip = where
            for j, (x, y, v) in enumerate(inst.keypoints[:count]):
                x, y = x - offset[0], y - offset[1]
                if v <= 0 or (window is not None
                              and not (0 <= x < window[0] and 0 <= y < window[1])):
                    continue
                out[i, first + j] = torch.tensor((x, y, float(v)))
        return out

    def flipped(self, keypoints: torch.Tensor, labels: torch.Tensor, width: int
                ) -> torch.Tensor:
        """`keypoints` (N, K, 3) of an image `width` pixels wide mirrored left to right: x
        becomes width - x (pixel centres stay centres), each label's slots swapped by its
        flip map; v = 0 points stay zeros."""
        out = keypoints.clone()
        for i, label in enumerate(labels.tolist()):
            where = self.by_label.get(int(label))
            if where is None:
                continue
            first, count, flip = where
            index = torch.tensor([first + f for f in flip])
            out[i, first:first + count] = keypoints[i, index]
        labelled = out[..., 2] > 0
        out[..., 0] = torch.where(labelled, width - out[..., 0], torch.zeros_like(out[..., 0]))
        return out


def crop_target(instances: Sequence[Instance], label_of: dict[int, int],
                window: tuple[int, int, int, int],
                keypoints: KeypointTargets | None = None) -> dict[str, torch.Tensor]:
    """The detection target of a crop (x0, y0, x1, y1) of an image: the instances it
    shows, masks cropped, boxes those of the cropped masks; a cut instance's part is kept
    by `keep_remnant`'s rule. Only the instances whose boxes meet the crop are decoded.
    With `keypoints`, their points too, moved into the crop (outside it: v = 0)."""
    x0, y0, x1, y1 = window
    boxes, labels, parts, kept = [], [], [], []
    for inst in instances:
        bx0, by0, bx1, by1 = xywh_to_xyxy(inst.bbox)
        if bx1 <= x0 or bx0 >= x1 or by1 <= y0 or by0 >= y1:
            continue
        part = inst.rle.decode()[y0:y1, x0:x1]
        area = int(np.count_nonzero(part))
        if area < inst.area and not keep_remnant(area, inst.area):
            continue  # nothing or a sliver of it in this crop
        rows = np.flatnonzero(part.any(axis=1))
        cols = np.flatnonzero(part.any(axis=0))
        boxes.append((cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
        labels.append(label_of[inst.category_id])
        parts.append(part)
        kept.append(inst)
    masks = np.zeros((len(parts), y1 - y0, x1 - x0), np.uint8)
    for i, part in enumerate(parts):
        masks[i] = part
    target = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
              "labels": torch.tensor(labels, dtype=torch.int64),
              "masks": torch.from_numpy(masks)}
    if keypoints is not None:
        target["keypoints"] = keypoints.rows(kept, labels, (x0, y0), (x1 - x0, y1 - y0))
    return target


def train_transform(*, flip: bool = True) -> v2.Transform:
    """Augmentation applied to image, boxes and masks together. Scale jitter is done by the
    model's own resize (a tuple of `min_size`s, see `mrcnn.training.build.scale_jitter_sizes`),
    which
    costs nothing extra."""
    steps: list[v2.Transform] = []
    if flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))
    return v2.Compose(steps)


class ProjectDataset(Dataset):
    """Reviewed images of a project as (image, target) pairs.

    image: (3, H, W) float32 in [0, 1]. target: boxes (N, 4) float32 xyxy pixels, labels (N,)
    int64 in 1..K (`labels`), masks (N, H, W) uint8, image_id () int64. N may be 0.
    The store is read once, at construction: the dataset holds plain data only, so it can
    be used from DataLoader worker processes.
    With `crops`, an image it applies to gives a random crop (`TrainingCrops`; chosen with
    torch's random numbers, so seeded runs repeat): H and W are then the crop's.
    With `keypoints`, targets carry "keypoints" (N, K, 3) float32 (`KeypointTargets`).
    With `flip`, the data set mirrors a random half of the samples itself (keypoints swap
    their left/right slots, which torchvision's flip does not know): give it instead of a
    flip in `transform`.
    """

    def __init__(self, project: Project, image_ids: Sequence[int], *, labels: LabelMap,
                 transform: v2.Transform | None = None, crops: TrainingCrops | None = None,
                 keypoints: KeypointTargets | None = None, flip: bool = False):
        cats = {c.id: c.name for c in project.categories()}
        self.labels = labels
        self.label_of = {cid: labels.label(n) for cid, n in cats.items() if n in labels}
        self.transform = transform
        self.crops = crops
        self.keypoints = keypoints
        self.flip = flip
        steps = getattr(transform, "transforms", [transform])
        if keypoints is not None and any(isinstance(t, v2.RandomHorizontalFlip) for t in steps):
            raise ValueError("keypoints need the data set's own flip (flip=True), which swaps "
                             "their left/right slots; not a flip in the transform")
        self.samples: list[Sample] = []
        for image_id in image_ids:
            im = project.image(image_id)
            insts = tuple(i for i in project.instances(im.id, state="accepted")
                          if i.category_id in self.label_of)
            source = project.image_source(im)  # read when used: the cache is bounded
            path = source if isinstance(source, RemoteImage) else str(source)
            self.samples.append(Sample(im.id, path, im.height, im.width, insts))

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_instances(self) -> int:
        return sum(len(s.instances) for s in self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.samples[index]
        rgb = load_image(s.path)
        if not rgb.flags.writeable:  # torch warns about tensors over read-only arrays
            rgb = rgb.copy()
        height, width = rgb.shape[:2]
        if self.crops is not None and self.crops.applies(height, width):
            u, v = torch.rand(2).tolist()
            pick = (s.instances[int(torch.randint(len(s.instances), ()))].bbox
                    if s.instances else None)
            window = crop_window(height, width, self.crops.size, pick, u, v)
            target = crop_target(s.instances, self.label_of, window, self.keypoints)
            x0, y0, x1, y1 = window
            rgb = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        else:
            target = instances_to_target(s.instances, self.label_of, height, width)
            if self.keypoints is not None:
                target["keypoints"] = self.keypoints.rows(s.instances,
                                                          target["labels"].tolist())
        image = image_to_tensor(rgb)
        if self.flip and bool(torch.rand(()) < 0.5):
            image, target = self.flipped(image, target)
        if "keypoints" in target:
            target = _without_degenerate(target)  # as the transform's sanitizing would
        if self.transform is not None:
            image, target = self._augment(self.transform, image, target)
        target["image_id"] = torch.tensor(s.image_id, dtype=torch.int64)
        return image, target

    def flipped(self, image: torch.Tensor, target: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The sample mirrored left to right: image, masks, boxes, and keypoints (x mirrored,
        left/right slots swapped)."""
        width = image.shape[-1]
        out = dict(target)
        out["masks"] = target["masks"].flip(-1)
        boxes = target["boxes"].clone()
        boxes[:, 0], boxes[:, 2] = width - target["boxes"][:, 2], width - target["boxes"][:, 0]
        out["boxes"] = boxes
        if "keypoints" in target and self.keypoints is not None:
            out["keypoints"] = self.keypoints.flipped(target["keypoints"], target["labels"],
                                                      width)
        return image.flip(-1), out

    @staticmethod
    def _augment(transform: v2.Transform, image: torch.Tensor, target: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h, w = image.shape[-2:]
        wrapped = {
            "boxes": tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w)),
            "labels": target["labels"],
            "masks": tv_tensors.Mask(target["masks"]),
        }
        image, out = transform(tv_tensors.Image(image), wrapped)
        result = {k: v.as_subclass(torch.Tensor) for k, v in out.items()}
        if "keypoints" in target:
            if len(result["boxes"]) != len(target["boxes"]):  # pragma: no cover - guarded
                raise ValueError("the transform dropped instances: their keypoints would not "
                                 "match (give the flip to the data set, not the transform)")
            result["keypoints"] = target["keypoints"]
        return image.as_subclass(torch.Tensor), result


def _without_degenerate(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The target without instances whose box is under a pixel wide or high (what
    `v2.SanitizeBoundingBoxes(min_size=1)` drops), every per-instance field alike."""
    boxes = target["boxes"]
    keep = ((boxes[:, 2] - boxes[:, 0]) >= 1) & ((boxes[:, 3] - boxes[:, 1]) >= 1)
    if bool(keep.all()):
        return target
    return {k: v[keep] if k in ("boxes", "labels", "masks", "keypoints") else v
            for k, v in target.items()}


def collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """A batch as torchvision detection models take it: a list of images, a list of targets."""
    return [b[0] for b in batch], [b[1] for b in batch]


class InfiniteSampler(Sampler[int]):
    """Endless shuffled passes over `n` items. Pass e is the permutation seeded by
    (seed, e), so training resumed at any sample index sees the same order as unbroken
    training (`start` = number of samples already consumed).

    Distributed training: process `rank` of `world_size` takes every world_size-th item of
    the same global stream (the distributed sampler); `start` counts this process's items."""

    def __init__(self, n: int, *, seed: int = 0, start: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        if n <= 0:
            raise ValueError("InfiniteSampler needs at least one item")
        self.n, self.seed, self.start, self.shuffle = n, seed, start, shuffle
        self.rank, self.world_size = rank, world_size

    def _global(self) -> Iterator[int]:
        epoch, offset = divmod(self.start * self.world_size, self.n)
        while True:
            yield from self._order(epoch)[offset:]
            epoch, offset = epoch + 1, 0

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        if self.world_size == 1:
            yield from self._global()
            return
        for i, item in enumerate(self._global()):
            if i % self.world_size == self.rank:
                yield item
