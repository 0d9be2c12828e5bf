"""The data set overview (`mrcnn.store.overview`): exact counts on a small project whose every
number is known, and the totals agree with `Project.summary`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mrcnn import masks
from mrcnn.store.overview import (
    SIZE_BINS,
    CategoryCounts,
    PerImage,
    SizeCounts,
    dataset_overview,
    size_class,
)
from mrcnn.store.project import Project

H, W = 200, 300


def _square(side: int, at: int = 0) -> masks.Rle:
    """A side x side square: area side² (sqrt(area) = side)."""
    m = np.zeros((H, W), bool)
    m[at:at + side, at:at + side] = True
    return masks.encode(m)


@pytest.fixture
def project(tmp_path):
    """Six images:
    t1 train reviewed: dog 10², dog 40², cat 100²        (small, medium, large)
    t2 train reviewed: nothing                           (a true negative)
    t3 train in_review: cat 5² accepted, dog 20² pending
    v1 val   reviewed: cat 32², cat 96², dog 31²         (the edges: medium, large, small)
    v2 val   predicted: cat 50² pending, cat 60² pending
    n1 train new
    """
    p = Project.create(tmp_path / "project", tmp_path)
    dog, cat, bird = p.add_category("dog"), p.add_category("cat"), p.add_category("bird")
    ids = {}
    for k, (name, split, status) in enumerate((
            ("t1", "train", "reviewed"), ("t2", "train", "reviewed"),
            ("t3", "train", "in_review"), ("v1", "val", "reviewed"),
            ("v2", "val", "predicted"), ("n1", "train", "new"))):
        im = p.add_image(tmp_path / f"{name}.png", W, H, f"{k:064x}", status=status)
        if im.split != split:
            p.set_image_split(im.id, split)
        ids[name] = im.id
    for name, category, side, state in (
            ("t1", dog, 10, "accepted"), ("t1", dog, 40, "accepted"), ("t1", cat, 100, "accepted"),
            ("t3", cat, 5, "accepted"), ("t3", dog, 20, "pending"),
            ("v1", cat, 32, "accepted"), ("v1", cat, 96, "accepted"), ("v1", dog, 31, "accepted"),
            ("v2", cat, 50, "pending"), ("v2", cat, 60, "pending")):
        source = "model" if state == "pending" else "manual"
        p.add_instance(ids[name], category.id, _square(side), source=source, state=state,
                       score=0.9 if state == "pending" else None)
    assert bird.id == 3
    yield p
    p.close()


def test_the_overview_counts_each_number_exactly(project):
    o = dataset_overview(project)
    assert o.images == {"new": {"train": 1, "val": 0}, "predicted": {"train": 0, "val": 1},
                        "in_review": {"train": 1, "val": 0}, "reviewed": {"train": 2, "val": 1}}
    assert o.categories == (CategoryCounts(1, "dog", project.categories()[0].color, 2, 1, 1),
                            CategoryCounts(2, "cat", project.categories()[1].color, 2, 2, 2),
                            CategoryCounts(3, "bird", project.categories()[2].color, 0, 0, 0))
    # bins: <8, 8–16, 16–32, 32–64, 64–96, 96–128, 128–256, ≥256 (sqrt of the area)
    assert o.sizes["train"] == SizeCounts(small=2, medium=1, large=1,
                                          histogram=(1, 1, 0, 1, 0, 1, 0, 0))
    assert o.sizes["val"] == SizeCounts(small=1, medium=1, large=1,
                                        histogram=(0, 0, 1, 1, 0, 1, 0, 0))
    # reviewed images t1 (3 instances), t2 (0), v1 (3)
    assert o.per_image == PerImage(images=3, negatives=1, min=0, median=3.0, max=3)
    assert len(SIZE_BINS) == len(o.sizes["train"].histogram) and SIZE_BINS[3] == "32–64"


def test_the_size_buckets_are_cocos_and_the_same_as_the_size_class_of_each_area(project):
    o = dataset_overview(project)
    by_class = {"small": 0, "medium": 0, "large": 0}
    for inst in project.instances(state="accepted"):
        by_class[size_class(inst.area)] += 1
    together = {k: getattr(o.sizes["train"], k) + getattr(o.sizes["val"], k) for k in by_class}
    assert together == by_class == {"small": 3, "medium": 2, "large": 2}


def test_the_breakdown_adds_up_to_the_summary_totals(project):
    o, s = dataset_overview(project), project.summary()
    for status, per_split in o.images.items():
        assert sum(per_split.values()) == s["images"][status]
    for split in ("train", "val"):
        assert sum(per_split[split] for per_split in o.images.values()) == s["splits"][split]
    assert [c.train + c.val for c in o.categories] == [c["instances"] for c in s["categories"]]
    assert sum(c.pending for c in o.categories) == s["instances"]["pending"]


def test_an_empty_project_and_a_read_only_one(tmp_path, project):
    (tmp_path / "nothing").mkdir()
    with Project.create(tmp_path / "empty", tmp_path / "nothing") as empty:
        o = dataset_overview(empty)
    assert o.categories == () and o.per_image == PerImage(0, 0, None, None, None)
    assert all(v == 0 for per_split in o.images.values() for v in per_split.values())
    assert o.sizes["val"] == SizeCounts(0, 0, 0, (0,) * len(SIZE_BINS))
    before = dataset_overview(project)
    with Project.open(project.folder, read_only=True) as ro:
        assert dataset_overview(ro) == before


def test_it_follows_edits_and_is_plain_json(project):
    dog_pending = next(i for i in project.instances(state="pending") if i.category_id == 1)
    project.accept_instances([dog_pending.id])  # on t3, a training image: 20² is small
    o = dataset_overview(project)
    assert (o.categories[0].train, o.categories[0].pending) == (3, 0)
    assert o.sizes["train"].small == 3
    d = json.loads(json.dumps(o.to_dict()))
    assert d["categories"][0] == {"id": 1, "name": "dog", "color": o.categories[0].color,
                                  "train": 3, "val": 1, "pending": 0}
    assert d["sizes"]["val"] == {"small": 1, "medium": 1, "large": 1,
                                 "histogram": [0, 0, 1, 1, 0, 1, 0, 0]}
    assert d["size_bins"] == list(SIZE_BINS) and d["per_image"]["negatives"] == 1
