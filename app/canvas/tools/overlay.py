"""Scene items the tools draw with: a live mask preview repainted tile by tile, the brush
outline, and cosmetic pens. Display only; no mask logic here."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.canvas.items import qimage_view
from app.canvas.render import hex_to_rgb
from mrcnn.editing import mask_tools
from mrcnn.editing.mask_tools import Rect

#: Above every instance item (their z is minus their area).
OVERLAY_Z = 10.0
TILE = 256


def cosmetic_pen(color: QColor | str, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color), width, style)
    pen.setCosmetic(True)
    return pen


class MaskPreviewItem(QGraphicsItem):
    """The mask being painted, shown in its colour. It holds pixels only where something
    was shown (256x256 tiles, made when first touched), so a big image costs nothing up
    front, and `show_region` re-colours and repaints exactly the rectangle it is given. Its
    bounds are the whole image from the start: bounds that grew would repaint all of them."""

    def __init__(self, shape: tuple[int, int], color: str, opacity: float):
        super().__init__()
        self._h, self._w = shape
        r, g, b = hex_to_rgb(color)
        self._color = (b, g, r, 255)  # premultiplied BGRA, opaque; the item is translucent
        self._tiles: dict[tuple[int, int], tuple[np.ndarray, QImage]] = {}
        self._bounds = QRectF(0, 0, self._w, self._h)
        self.setZValue(OVERLAY_Z)
        self.setOpacity(opacity)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def show_region(self, mask: np.ndarray, rect: Rect) -> None:
        """Show `mask` inside `rect` (image pixels) and repaint only that rectangle."""
        rect = rect.clip(mask.shape)
        if rect.empty:
            return
        pixels = mask_tools.colorize_region(mask, rect, self._color)
        for ty in range(rect.y0 // TILE, (rect.y1 - 1) // TILE + 1):
            for tx in range(rect.x0 // TILE, (rect.x1 - 1) // TILE + 1):
                tile = self._tile(tx, ty)
                part = rect.intersect(Rect(tx * TILE, ty * TILE, tx * TILE + tile.shape[1],
                                           ty * TILE + tile.shape[0]))
                tile[part.offset(-tx * TILE, -ty * TILE).slices] = \
                    pixels[part.offset(-rect.x0, -rect.y0).slices]
        self.update(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    def _tile(self, tx: int, ty: int) -> np.ndarray:
        hit = self._tiles.get((tx, ty))
        if hit is None:
            h = min(TILE, self._h - ty * TILE)
            w = min(TILE, self._w - tx * TILE)
            arr = np.zeros((h, w, 4), np.uint8)
            hit = self._tiles[(tx, ty)] = (arr, qimage_view(
                arr, QImage.Format.Format_ARGB32_Premultiplied))
        return hit[0]

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        exposed = option.exposedRect
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        for (tx, ty), (arr, image) in self._tiles.items():
            where = QRectF(tx * TILE, ty * TILE, arr.shape[1], arr.shape[0])
            if where.intersects(exposed):
                painter.drawImage(QPointF(where.x(), where.y()), image)


class MaskPreview:
    """One whole mask shown over the image as a tool's proposal (Pick's offer, Click → Mask's
    answer), replaced by the next and dropped on demand."""

    def __init__(self, scene, opacity: float):
        self._scene = scene
        self._opacity = opacity
        self._item: MaskPreviewItem | None = None

    def show(self, mask: np.ndarray, color: str) -> None:
        self.drop()
        self._item = MaskPreviewItem(mask.shape, color, self._opacity)
        self._scene.addItem(self._item)
        self._item.show_region(mask, Rect.of_mask(mask))

    def drop(self) -> None:
        if self._item is not None:
            self._scene.removeItem(self._item)
            self._item = None


class BrushOutlineItem(QGraphicsItem):
    """The brush's footprint under the pointer: a circle of the brush radius (image pixels),
    drawn white over a dark halo so it shows on any image."""

    def __init__(self, erase: bool = False):
        super().__init__()
        self._radius = 1.0
        self._pad = 2.0  # image pixels covering the cosmetic pens' width
        self._erase = erase
        self.setZValue(OVERLAY_Z + 1)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def place(self, center: tuple[float, float], radius: float, screen_px: float) -> None:
        bounds_change = radius != self._radius or 3 * screen_px != self._pad
        if bounds_change:
            self.prepareGeometryChange()
            self._radius = radius
            self._pad = 3 * screen_px
        self.setPos(center[0], center[1])

    @property
    def radius(self) -> float:
        return self._radius

    def boundingRect(self) -> QRectF:
        r = self._radius + self._pad
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        r = self._radius
        circle = QRectF(-r, -r, 2 * r, 2 * r)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(cosmetic_pen(QColor(0, 0, 0, 200), 3))
        painter.drawEllipse(circle)
        white = cosmetic_pen("#ffffff", 1, Qt.PenStyle.DashLine if self._erase
                             else Qt.PenStyle.SolidLine)
        painter.setPen(white)
        painter.drawEllipse(circle)
