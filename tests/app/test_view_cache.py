"""The view cache gives back an image's instance shapes as they must look now: a category
changed while the image was off screen repaints the fill (the bug: back on the image, the
mask kept its old colour under the new outline)."""

from __future__ import annotations

import numpy as np

from app.canvas.render import ImageView, InstanceShape, fill_pixels, hex_to_rgb
from app.canvas.view_cache import CachedImage
from mrcnn.masks import encode


def test_a_cached_shape_comes_back_in_its_categorys_current_colour():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:6] = True
    rle = encode(mask)
    shape = InstanceShape(7, 0, 0, fill_pixels(mask, "#ff0000"), ([],))
    view = ImageView(7, 8, 6, [np.zeros((6, 8, 4), np.uint8)], [], [])
    entry = CachedImage(view)
    entry.add_shapes([shape], {7: rle}, {7: "#ff0000"})
    assert entry.shape_for(7, rle, "#ff0000") is shape  # unchanged: reused as is

    recoloured = entry.shape_for(7, rle, "#0000ff")
    b, g, r, a = (recoloured.fill[..., i] for i in range(4))  # BGRA
    assert (r[mask] == 0).all() and (b[mask] == hex_to_rgb("#0000ff")[2]).all()
    assert (a[mask] > 0).all() and (a[~mask] == 0).all()  # same pixels
    assert recoloured.outlines is shape.outlines
    assert entry.shape_for(7, rle, "#0000ff") is recoloured  # remembered

    other = mask.copy()
    other[0, 0] = True
    assert entry.shape_for(7, encode(other), "#0000ff") is None  # another mask: recompute
