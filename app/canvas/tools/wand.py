"""Magic wand: click a pixel; the connected pixels of about its colour (each channel within
the tolerance) become a new instance, or, with Shift held, are added to the selected
instance, with Alt (or Ctrl) subtracted from it."""

from __future__ import annotations

import cv2
import numpy as np

from app.canvas.tools.base import CanvasTool, edit_mode, is_left
from mrcnn.editing import image_tools


class MagicWandTool(CanvasTool):
    name = "wand"

    def __init__(self, host):
        super().__init__(host)
        self._rgb: tuple[int, np.ndarray] | None = None  # (image id, RGB pixels)

    def _pixels(self) -> np.ndarray | None:
        image_id = self.canvas.image_id
        if self._rgb is not None and self._rgb[0] == image_id:
            return self._rgb[1]
        bgra = self.canvas.image_pixels()
        if bgra is None:
            return None
        rgb = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
        self._rgb = (image_id, rgb)
        return rgb

    def mouse_press(self, event) -> bool:
        if not is_left(event):
            return False
        doc = self.host.document()
        rgb = self._pixels() if doc is not None else None
        if rgb is None:
            return True
        seed = self.point(event)
        h, w = doc.shape
        if not (0 <= seed[0] < w and 0 <= seed[1] < h):
            return True
        tolerance = self.host.options.wand_tolerance
        mode = edit_mode(event.modifiers())
        if mode == "new":
            category = self.host.new_category_id(ask=True)
            if category is None:
                return True
            region = image_tools.magic_wand(rgb, seed, tolerance)
            new = self.host.commit("Magic wand", lambda d: d.add_instance(
                region, category, label="magic wand"))
            self.host.select_new(new)
            return True
        target = self.host.selected_one("add to" if mode == "add" else "subtract from")
        if target is not None:
            self.host.commit("Magic wand", lambda d: d.apply(
                target, image_tools.magic_wand_edit, rgb, seed, tolerance,
                subtract=mode == "cut", label=f"magic wand {mode}"))
        return True

    def mouse_release(self, event) -> bool:
        return is_left(event)

    def cancel(self) -> None:
        self._rgb = None
