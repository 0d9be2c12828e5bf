"""The data set at a glance: images per status and split, accepted instances per category
and split, pending predictions per category, instance sizes, instances per reviewed image.
The Dataset dock (app/panels/overview.py) draws it; `python -m mrcnn info` prints it.

Counted by SQL over the stored areas (never by decoding a mask): three small queries, whatever
the number of instances. The totals (images per status, instances per state, per category)
are `Project.summary`'s; this is their breakdown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mrcnn.store.project import Project
from mrcnn.store.records import IMAGE_STATUSES, SPLITS, InstanceState

#: COCO's object sizes, by mask area in pixels: small < 32², medium < 96², large the rest.
SMALL_AREA = 32 ** 2
LARGE_AREA = 96 ** 2
#: The size histogram's bin edges, as the square root of the area (pixels: the side of a
#: square of that area). 32 and 96 are edges, so the bins add up to COCO's sizes.
SIDE_EDGES = (8, 16, 32, 64, 96, 128, 256)
#: Each bin's label ("<8", "8–16", ..., "≥256").
SIZE_BINS = (f"<{SIDE_EDGES[0]}",
             *(f"{a}–{b}" for a, b in zip(SIDE_EDGES, SIDE_EDGES[1:], strict=False)),
             f"≥{SIDE_EDGES[-1]}")
_SMALL_BINS = SIDE_EDGES.index(32) + 1  # bins below 32 px
_LARGE_FROM = SIDE_EDGES.index(96) + 1  # first bin from 96 px


def size_class(area: float) -> str:
    """"small" (< 32² pixels), "medium" (< 96²) or "large", as COCO splits objects."""
    if area < SMALL_AREA:
        return "small"
    return "medium" if area < LARGE_AREA else "large"


@dataclass(frozen=True)
class CategoryCounts:
    """One category's instances."""

    id: int
    name: str
    color: str  # "#rrggbb"
    train: int  # accepted instances on training-split images (any status)
    val: int  # accepted instances on validation-split images
    pending: int  # a model's predictions not yet accepted or rejected


@dataclass(frozen=True)
class SizeCounts:
    """The accepted instances of one split by size."""

    small: int
    medium: int
    large: int
    histogram: tuple[int, ...]  # one count per SIZE_BINS bin


@dataclass(frozen=True)
class PerImage:
    """Accepted instances per reviewed image (the training and validation data); min, median
    and max are None without reviewed images."""

    images: int  # reviewed images
    negatives: int  # reviewed images without any instance (true negatives)
    min: int | None
    median: float | None
    max: int | None


@dataclass(frozen=True)
class Overview:
    images: dict[str, dict[str, int]]  # status → split → images (every status and split)
    categories: tuple[CategoryCounts, ...]  # in id order
    sizes: dict[str, SizeCounts]  # split → its accepted instances by size
    per_image: PerImage

    def to_dict(self) -> dict:
        """Plain data for JSON (`info --json` puts it under "overview")."""
        return {**dataclasses.asdict(self), "size_bins": list(SIZE_BINS)}


def dataset_overview(project: Project) -> Overview:
    """The overview of a project (read-only; a project open read-only will do)."""
    images = {str(st): {str(sp): 0 for sp in SPLITS} for st in IMAGE_STATUSES}
    for (status, split), n in project.image_counts().items():
        images[status][split] = n

    per_cat: dict[int, dict[str, int]] = {}
    hist = {str(sp): [0] * len(SIZE_BINS) for sp in SPLITS}
    edges = [side * side for side in SIDE_EDGES]
    for category_id, split, state, size_bin, n in project.instance_counts(edges):
        counts = per_cat.setdefault(category_id, {"train": 0, "val": 0, "pending": 0})
        if state == InstanceState.PENDING:
            counts["pending"] += n
        else:
            counts[split] += n
            hist[split][size_bin] += n
    categories = tuple(
        CategoryCounts(c.id, c.name, c.color, **per_cat.get(c.id, {"train": 0, "val": 0,
                                                                  "pending": 0}))
        for c in project.categories())
    sizes = {split: SizeCounts(sum(h[:_SMALL_BINS]), sum(h[_SMALL_BINS:_LARGE_FROM]),
                               sum(h[_LARGE_FROM:]), tuple(h))
             for split, h in hist.items()}
    return Overview(images, categories, sizes, _per_image(project.reviewed_images_by_instances()))


def _per_image(images_by_count: dict[int, int]) -> PerImage:
    total = sum(images_by_count.values())
    if not total:
        return PerImage(0, 0, None, None, None)
    ordered = sorted(images_by_count.items())

    def nth(k: int) -> int:  # the k-th smallest count (from 0)
        for n, images in ordered:
            if k < images:
                return n
            k -= images
        raise IndexError(k)

    median = (nth((total - 1) // 2) + nth(total // 2)) / 2
    return PerImage(total, images_by_count.get(0, 0), ordered[0][0], median, ordered[-1][0])
