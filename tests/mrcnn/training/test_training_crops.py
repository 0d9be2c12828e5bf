"""Training on images much larger than the input: a sample is a random crop at the image's
own resolution around an instance, the instances it cuts are cropped with it and tiny
remnants dropped; images of normal size are trained on whole, as before."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mrcnn import masks
from mrcnn.serving.tiles import AUTO_FACTOR, AUTO_MIN_SIDE, tile_size_for
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder
from mrcnn.testing.mosaic import draw_mosaic
from mrcnn.testing.synthetic import SHAPES
from mrcnn.training.anchors import boxes_at_input_size
from mrcnn.training.dataset import (
    CROP_FACTOR,
    CROP_MIN_SIDE,
    MIN_REMNANT_PIXELS,
    ProjectDataset,
    TrainingCrops,
    crop_target,
    crop_window,
    keep_remnant,
    project_labels,
    trained_in_crops,
)

H, W = 400, 700
#: 700 > 2 x 96: cropped (the 2666 px floor lowered for a small test image); 80 px: whole
CROPS = TrainingCrops(size=64, max_size=96, min_side=0)


@settings(max_examples=300, deadline=None)
@given(height=st.integers(1, 3000), width=st.integers(1, 3000), size=st.integers(32, 1024),
       data=st.data(), u=st.floats(0, 0.999), v=st.floats(0, 0.999))
def test_a_crop_lies_in_the_image_and_holds_the_chosen_instance(height, width, size, data,
                                                                u, v):
    x = data.draw(st.integers(0, width - 1), label="x")  # a mask's box: whole pixels
    y = data.draw(st.integers(0, height - 1), label="y")
    w = data.draw(st.integers(1, width - x), label="w")
    h = data.draw(st.integers(1, height - y), label="h")
    x0, y0, x1, y1 = crop_window(height, width, size, (float(x), float(y), float(w),
                                                       float(h)), u, v)
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert (x1 - x0, y1 - y0) == (min(size, width), min(size, height))
    for lo, hi, start, end in ((x, x + w, x0, x1), (y, y + h, y0, y1)):
        if hi - lo <= end - start:
            assert start <= lo and hi <= end  # the whole box
        else:
            assert start <= (lo + hi) // 2 <= end  # its middle


def test_the_crop_rule_is_the_tiling_rule():
    size = {"input_short": 256, "input_long": 426}
    for h, w in ((2000, 2666), (2000, 2667), (1000, 900), (900, 853), (6000, 4000)):
        assert trained_in_crops(h, w, 426) == (tile_size_for("auto", h, w, **size) is not None)
    assert (CROP_FACTOR, CROP_MIN_SIDE) == (AUTO_FACTOR, AUTO_MIN_SIDE)
    assert TrainingCrops(256, 426).applies(3000, 2000)
    assert not TrainingCrops(256, 426).applies(2000, 1500)  # a photo: whole, as before


def test_the_remnant_rule():
    assert keep_remnant(25, 100) and not keep_remnant(24, 100) and not keep_remnant(0, 100)
    assert keep_remnant(MIN_REMNANT_PIXELS, 100_000)  # a part worth learning on its own
    assert not keep_remnant(MIN_REMNANT_PIXELS - 1, 100_000)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One 400 x 700 image of many small shapes and two large ones, one 80 px image."""
    folder = tmp_path_factory.mktemp("crops")
    rgb, objects = draw_mosaic(np.random.default_rng(0), H, W, small=80, large=2,
                               large_radius=(50.0, 80.0))
    (folder / "images").mkdir()
    Image.fromarray(rgb).save(folder / "images" / "big.png")
    small = np.zeros((80, 80), bool)
    small[20:50, 10:40] = True
    Image.fromarray(np.full((80, 80, 3), 90, np.uint8)).save(folder / "images" / "small.png")
    with Project.create(folder / "project", folder / "images") as p:
        scan_folder(p)
        cats = {name: p.add_category(name).id for name in SHAPES}
        for im in p.images():
            if im.width == W:
                for obj in objects:
                    p.add_instance(im.id, cats[obj.name], masks.encode(obj.full(H, W)))
            else:
                p.add_instance(im.id, cats["square"], masks.encode(small))
            p.set_image_status(im.id, "reviewed")
        ids = {im.width: im.id for im in p.images()}
    return folder / "project", ids


def test_crops_keep_instances_inside_and_drop_tiny_remnants(project):
    folder, ids = project
    with Project.open(folder, read_only=True) as p:
        ds = ProjectDataset(p, [ids[W]], labels=project_labels(p), crops=CROPS)
        label_of = ds.label_of
    instances = ds.samples[0].instances
    kept = dropped = 0
    windows = [(0, 0, 64, 64), (636, 336, 700, 400)] + [
        crop_window(H, W, 64, inst.bbox, 0.3, 0.8) for inst in instances[::4]]
    for window in windows:
        x0, y0, x1, y1 = window
        target = crop_target(instances, label_of, window)
        got = sorted(m.numpy().astype(bool).tobytes() for m in target["masks"])
        want = []
        for inst in instances:
            part = inst.rle.decode()[y0:y1, x0:x1]
            area = int(part.sum())
            if area == inst.area or keep_remnant(area, inst.area):
                want.append(part.tobytes())
            elif area:
                dropped += 1  # a tiny remnant
        assert got == sorted(want)
        kept += len(want)
        for box, mask in zip(target["boxes"], target["masks"], strict=True):
            ys, xs = np.nonzero(mask.numpy())
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert kept > 20 and dropped > 0


def test_a_large_image_gives_random_crops_at_its_own_resolution(project):
    folder, ids = project
    with Project.open(folder, read_only=True) as p:
        ds = ProjectDataset(p, [ids[W], ids[80]], labels=project_labels(p), crops=CROPS)
        plain = ProjectDataset(p, [ids[W]], labels=project_labels(p))
    torch.manual_seed(0)
    seen = set()
    for _ in range(6):
        image, target = ds[0]
        assert image.shape == (3, 64, 64) and target["masks"].shape[1:] == (64, 64)
        assert len(target["labels"]) >= 1  # the chosen instance, at least
        seen.add(image.numpy().tobytes())
    assert len(seen) > 1  # random crops
    image, target = ds[1]  # a normal image: whole, as before
    assert image.shape == (3, 80, 80) and target["masks"].shape == (1, 80, 80)
    image, target = plain[0]  # without crops: the whole image
    assert image.shape == (3, H, W) and len(target["labels"]) == len(ds.samples[0].instances)
    # anchors are fitted to the boxes as a crop shows them: at scale 1 (an image over the
    # 2666 px floor: the same instances, on a 3000 x 4000 image)
    large = dataclasses.replace(ds.samples[0], height=3000, width=4000)
    boxes = boxes_at_input_size([large], size=64, max_size=96)
    first = ds.samples[0].instances[0].bbox
    assert boxes[0].tolist() == pytest.approx([first[0], first[1], first[0] + first[2],
                                               first[1] + first[3]])
