"""Image-guided mask tools on known synthetic images: GrabCut finds a high-contrast object in
its box, the magic wand selects exactly a flat region of one colour."""

from __future__ import annotations

import numpy as np
import pytest

from mrcnn.editing import image_tools
from mrcnn.editing.mask_tools import box_rect
from mrcnn.errors import MaskToolError


def disk(shape, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r


def _disc_photo(shape=(200, 260), seed=0):
    rng = np.random.default_rng(seed)
    truth = disk(shape, 95, 120, 55)
    img = np.where(truth[..., None], [230, 200, 40], [20, 40, 160]).astype(np.int16)
    img += rng.integers(-30, 31, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


def test_grabcut_on_a_high_contrast_disc_reaches_iou_0_9():
    rgb, truth = _disc_photo()
    box = (50, 25, 195, 170)
    got = image_tools.grabcut(rgb, box)
    iou = (got & truth).sum() / (got | truth).sum()
    assert iou >= 0.9, iou
    inside = np.zeros(truth.shape, bool)
    inside[box_rect(box, truth.shape).slices] = True
    assert not (got & ~inside).any()  # nothing outside the box
    assert np.array_equal(image_tools.grabcut(rgb, box), got)  # deterministic


def test_grabcut_refuses_a_box_with_no_background_around_it():
    rgb, _ = _disc_photo((40, 40))
    with pytest.raises(MaskToolError):
        image_tools.grabcut(rgb, (0, 0, 40, 40))
    with pytest.raises(MaskToolError):
        image_tools.grabcut(rgb, (3, 3, 3.2, 20))


def test_magic_wand_selects_a_flat_region_exactly():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3)).astype(np.uint8)
    rgb[rgb.sum(axis=2) < 5] = 9  # no accidental pure green in the noise
    region = np.zeros((60, 80), bool)
    region[10:30, 20:50] = True
    region[30:45, 20:25] = True  # an L shape
    rgb[region] = (0, 255, 0)
    rgb[50:55, 60:70] = (0, 255, 0)  # same colour, not connected: not selected
    got = image_tools.magic_wand(rgb, (30.2, 15.7), tolerance=0)
    assert np.array_equal(got, region)
    base = np.zeros_like(region)
    base[0:12, 0:30] = True
    assert np.array_equal(image_tools.magic_wand_edit(base, rgb, (21, 11), 0), base | region)
    assert np.array_equal(image_tools.magic_wand_edit(base, rgb, (21, 11), 0, subtract=True),
                          base & ~region)


def test_magic_wand_tolerance_and_connectivity():
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[2:5, 2:5] = 100
    rgb[5, 5] = 100  # touches the square diagonally only
    rgb[2:5, 5] = 104  # a near shade next to the square
    assert image_tools.magic_wand(rgb, (3, 3), 0).sum() == 9
    assert image_tools.magic_wand(rgb, (3, 3), 0, connectivity=8).sum() == 10
    # The near shade joins, and through it the diagonal pixel becomes 4-connected.
    assert image_tools.magic_wand(rgb, (3, 3), 4).sum() == 13
    assert image_tools.magic_wand(rgb, (3, 3), 3).sum() == 9
    with pytest.raises(MaskToolError):
        image_tools.magic_wand(rgb, (10, 3), 4)
