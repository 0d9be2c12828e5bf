"""What the canvas draws: the image (a level-of-detail pyramid) and one item per instance.

Each instance is drawn from a small image cropped to its bbox (never a full-size layer per
instance) plus an outline path in image coordinates; pending predictions are fainter and
have a dashed outline, so they never look like accepted work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QTransform,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.canvas.render import OUTLINE_LEVELS, InstanceShape, fill_pixels
from app.controllers.project import InstanceRow

IMAGE_Z = -1e13  # below every instance (instances use -area: small ones on top)


def qimage_view(arr: np.ndarray, fmt: QImage.Format) -> QImage:
    """A QImage over a contiguous (h, w, 4) uint8 array, without copying (keep `arr` alive)."""
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, arr.strides[0], fmt)


class ImageItem(QGraphicsItem):
    """The photo. Paints the smallest pyramid level that still has at least one image pixel
    per screen pixel, and only the exposed part of it."""

    def __init__(self, levels: list[np.ndarray]):
        super().__init__()
        self._arrays = levels  # keeps the pixels the QImages point at alive
        self._images = [qimage_view(a, QImage.Format.Format_RGB32) for a in levels]
        h, w = levels[0].shape[:2]
        self._rect = QRectF(0, 0, w, h)
        self.setZValue(IMAGE_Z)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def boundingRect(self) -> QRectF:
        return self._rect

    def level_for(self, lod: float) -> int:
        if lod <= 0:
            return len(self._images) - 1
        k = int(math.floor(math.log2(1.0 / lod))) if lod < 1 else 0
        return max(0, min(len(self._images) - 1, k))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        k = self.level_for(lod)
        image = self._images[k]
        exposed = option.exposedRect.intersected(self._rect)
        if exposed.isEmpty():
            return
        sx = image.width() / self._rect.width()
        sy = image.height() / self._rect.height()
        source = QRectF(exposed.x() * sx, exposed.y() * sy, exposed.width() * sx,
                        exposed.height() * sy)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 1.5)
        painter.drawImage(exposed, image, source)


@dataclass
class CanvasStyle:
    """Shared look of the instance items, changed by the window's controls."""

    fill_opacity: float = 0.45
    pending_factor: float = 0.55  # pending fills are this much fainter
    outline_width: float = 2.0


def polygon_from_array(points: np.ndarray) -> QPolygonF:
    """(N, 2) float array → QPolygonF, through QDataStream (10x faster than QPointFs)."""
    data = np.array([len(points)], ">u4").tobytes() + points.astype(">f8").tobytes()
    buffer = QByteArray(data)  # must outlive the stream reading it
    stream = QDataStream(buffer, QIODevice.OpenModeFlag.ReadOnly)
    polygon = QPolygonF()
    stream >> polygon
    if stream.status() != QDataStream.Status.Ok or polygon.size() != len(points):
        raise ValueError(f"cannot convert a polygon of {len(points)} points")
    del stream
    return polygon


def outline_path(polygons: list[np.ndarray]) -> QPainterPath:
    """Closed polygons (parts and holes) → one path; odd-even fill leaves holes empty."""
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.OddEvenFill)
    for points in polygons:
        path.addPolygon(polygon_from_array(points))
        path.closeSubpath()
    return path


#: The widest outline an item draws, in screen pixels (selection halo around a hovered
#: outline), plus antialiasing: what its bounds must hold around the mask at any zoom.
OUTLINE_EXTENT = 8.0


class InstanceItem(QGraphicsItem):
    """One instance: translucent fill in its category colour, outline, hover and selection.

    Each item keeps its look as a pixmap at screen resolution (Qt's device-coordinate cache):
    a crowded image is stroked and hatched once per zoom level, and later repaints (hover,
    selection, a key's status line, other items arriving) only copy pixels. Its bounds hold
    the screen-pixel outline at the view scale the canvas gives with `set_view_scale`."""

    def __init__(self, row: InstanceRow, shape: InstanceShape, style: CanvasStyle,
                 view_scale: float = 1.0):
        super().__init__()
        self.row = row
        self.shape_data = shape
        self._style = style
        self._fill = shape.fill
        self._image = qimage_view(self._fill, QImage.Format.Format_ARGB32_Premultiplied)
        self._paths: dict[int, QPainterPath] = {}  # outline level → path, made when needed
        self._bounds = QRectF()
        self._set_bounds(view_scale)
        self._hover = False
        self.setZValue(-float(row.instance.area))
        self.setAcceptHoverEvents(True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._update_tooltip()

    def _set_bounds(self, view_scale: float) -> None:
        h, w = self.shape_data.fill.shape[:2]
        m = 1 + OUTLINE_EXTENT / max(view_scale, 1e-3)
        self._bounds = QRectF(self.shape_data.x - m, self.shape_data.y - m, w + 2 * m, h + 2 * m)

    def set_view_scale(self, view_scale: float) -> None:
        """The view's zoom changed: keep room for the outline's screen pixels."""
        self.prepareGeometryChange()
        self._set_bounds(view_scale)

    @property
    def instance_id(self) -> int:
        return self.row.id

    def set_row(self, row: InstanceRow) -> None:
        """New record for the same mask (state, category or score changed)."""
        if row.color != self.row.color:
            self._fill = fill_pixels(self._fill[..., 3] > 0, row.color)
            self._image = qimage_view(self._fill, QImage.Format.Format_ARGB32_Premultiplied)
        self.row = row
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        r = self.row
        score = f" · score {r.instance.score:.2f}" if r.instance.score is not None else ""
        state = "pending prediction" if r.pending else "accepted"
        self.setToolTip(f"{r.category} · {state} · {r.source}{score}")

    def boundingRect(self) -> QRectF:
        return self._bounds

    def path(self, scale: float = 1.0) -> QPainterPath:
        """The outline for a view scale (exact pixel edges when zoomed in far)."""
        level = next(i for i, (min_scale, _eps) in enumerate(OUTLINE_LEVELS)
                     if scale >= min_scale)
        path = self._paths.get(level)
        if path is None:
            path = self._paths[level] = outline_path(self.shape_data.outlines[level])
        return path

    def shape(self) -> QPainterPath:
        return self.path(1.0)  # hit testing: within a pixel of the exact outline

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()

    @property
    def hovered(self) -> bool:
        return self._hover

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        style = self._style
        pending = self.row.pending
        selected = self.isSelected()
        opacity = style.fill_opacity * (style.pending_factor if pending else 1.0)
        if self._hover or selected:
            opacity = min(1.0, opacity + 0.25)
        scale = painter.worldTransform().m11() or 1.0
        path = self.path(scale)
        painter.setOpacity(opacity)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QPointF(self.shape_data.x, self.shape_data.y), self._image)
        painter.setOpacity(1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        width = style.outline_width + (1.5 if self._hover or selected else 0)
        if selected:
            halo = QPen(QColor(255, 255, 255), width + 3)
            halo.setCosmetic(True)
            halo.setJoinStyle(Qt.PenJoinStyle.BevelJoin)
            painter.strokePath(path, halo)
        pen = QPen(QColor(self.row.color), width)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.BevelJoin)
        if pending:
            self._paint_hatch(painter, path, scale)
            pen.setStyle(Qt.PenStyle.CustomDashLine)
            pen.setDashPattern([3, 2])
            under = QPen(QColor(0, 0, 0, 170), width)
            under.setCosmetic(True)
            painter.strokePath(path, under)
        painter.strokePath(path, pen)

    def _paint_hatch(self, painter: QPainter, path: QPainterPath, scale: float) -> None:
        """Diagonal hatching, spaced in screen pixels whatever the zoom: marks a prediction
        that nobody accepted yet."""
        brush = QBrush(QColor(self.row.color), Qt.BrushStyle.BDiagPattern)
        brush.setTransform(QTransform.fromScale(1.5 / scale, 1.5 / scale))
        painter.setOpacity(min(1.0, 0.35 + self._style.fill_opacity))
        painter.fillPath(path, brush)
        painter.setOpacity(1.0)
