"""A highlighted mask over the image: what the Errors panel points at (a missed instance, a
false positive, a poor fit's two masks, a label suspect). Display only: the canvas places it
(`CanvasView.highlight`) and drops it with the image; clicks go through it to the instances.

Two looks: "truth" (an accepted instance: a bright fill and a thick solid outline) and
"predicted" (a prediction: a thick dashed outline, no fill), so one beside the other reads at
a glance."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.canvas.items import outline_path, qimage_view
from app.canvas.render import InstanceShape, rle_shape
from mrcnn.masks import Rle

#: Above the instance items (their z is minus their area), below a tool's overlays.
HIGHLIGHT_Z = 9.0
#: The looks: outline colour, fill opacity (0: none), dashed.
LOOKS = {"truth": ("#ffd400", 0.45, False), "predicted": ("#00e5ff", 0.0, True)}
OUTLINE_PX = 3.0  # screen pixels
EXTENT_PX = OUTLINE_PX + 4.0  # the halo and antialiasing around it


def highlight_shape(rle: Rle, look: str) -> InstanceShape | None:
    """The shape to draw for a mask (None when it is empty)."""
    color = LOOKS[look][0]
    return rle_shape(0, rle, rle.bbox, color)


class HighlightItem(QGraphicsItem):
    """One highlighted mask. `look` is "truth" or "predicted" (see LOOKS)."""

    def __init__(self, shape: InstanceShape, look: str, view_scale: float = 1.0):
        super().__init__()
        self.look = look
        self.shape_data = shape
        self._color, self._fill_opacity, self._dashed = LOOKS[look]
        self._fill: np.ndarray = shape.fill
        self._image = qimage_view(self._fill, QImage.Format.Format_ARGB32_Premultiplied)
        self._path: QPainterPath = outline_path(shape.outlines[0])
        self._bounds = QRectF()
        self.set_view_scale(view_scale)
        self.setZValue(HIGHLIGHT_Z)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)

    @property
    def mask_rect(self) -> QRectF:
        """The mask's bounding box in image pixels."""
        h, w = self.shape_data.fill.shape[:2]
        return QRectF(self.shape_data.x, self.shape_data.y, w, h)

    def set_view_scale(self, view_scale: float) -> None:
        """Room for the screen-pixel outline at this zoom."""
        self.prepareGeometryChange()
        m = 1 + EXTENT_PX / max(view_scale, 1e-3)
        self._bounds = self.mask_rect.adjusted(-m, -m, m, m)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self._fill_opacity:
            painter.setOpacity(self._fill_opacity)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(QPointF(self.shape_data.x, self.shape_data.y), self._image)
            painter.setOpacity(1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        halo = QPen(QColor(0, 0, 0, 200), OUTLINE_PX + 2)
        halo.setCosmetic(True)
        halo.setJoinStyle(Qt.PenJoinStyle.BevelJoin)
        painter.strokePath(self._path, halo)
        pen = QPen(QColor(self._color), OUTLINE_PX)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.BevelJoin)
        if self._dashed:
            pen.setStyle(Qt.PenStyle.CustomDashLine)
            pen.setDashPattern([3, 2])
        painter.strokePath(self._path, pen)
