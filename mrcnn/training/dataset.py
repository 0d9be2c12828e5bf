"""Training data from the project store: reviewed images and their accepted instances as
torchvision detection samples, with augmentation (torchvision.transforms.v2)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler
from torchvision import tv_tensors
from torchvision.transforms import v2

from mrcnn.io.images import load_image
from mrcnn.io.remote import RemoteImage
from mrcnn.model.convert import LabelMap, image_to_tensor, instances_to_target
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
    """

    def __init__(self, project: Project, image_ids: Sequence[int], *, labels: LabelMap,
                 transform: v2.Transform | None = None):
        cats = {c.id: c.name for c in project.categories()}
        self.labels = labels
        self.label_of = {cid: labels.label(n) for cid, n in cats.items() if n in labels}
        self.transform = transform
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
        target = instances_to_target(s.instances, self.label_of, height, width)
        image = image_to_tensor(rgb)
        if self.transform is not None:
            image, target = self._augment(image, target)
        target["image_id"] = torch.tensor(s.image_id, dtype=torch.int64)
        return image, target

    def _augment(self, image: torch.Tensor, target: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h, w = image.shape[-2:]
        wrapped = {
            "boxes": tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w)),
            "labels": target["labels"],
            "masks": tv_tensors.Mask(target["masks"]),
        }
        image, out = self.transform(tv_tensors.Image(image), wrapped)
        return (image.as_subclass(torch.Tensor),
                {k: v.as_subclass(torch.Tensor) for k, v in out.items()})


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
