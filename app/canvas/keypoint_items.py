"""Keypoints on the canvas: per instance that has them, its points and the skeleton between
them, in one item above the masks. Left-side names are drawn in one colour and right-side
names in another (`KeypointSchema.side`), the others in the category's (bones: a side's
bones in its colour, the others white); an occluded point
is a ring, a visible one a filled dot; a pending prediction's skeleton is dashed. Display
only: the tool (`app/canvas/tools/keypoint.py`) changes points through the document."""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QStyleOptionGraphicsItem

from app.canvas.tools.overlay import OVERLAY_Z
from app.controllers.project import InstanceRow
from mrcnn.keypoints import NOT_LABELLED, OCCLUDED, KeypointSchema

LEFT_COLOR, RIGHT_COLOR = "#2f9bff", "#ff8a1f"
BONE_COLOR = "#f4f4f4"  # a bone joining the sides, or the middle (a side's bone: its colour)
POINT_RADIUS = 4.5  # screen pixels
#: Where keypoints may lie beyond the image edge and still be drawn whole (image pixels).
MARGIN = 32.0


def point_color(schema: KeypointSchema, index: int, category_color: str) -> str:
    side = schema.side(index)
    return LEFT_COLOR if side == "left" else RIGHT_COLOR if side == "right" else category_color


class KeypointItem(QGraphicsItem):
    """One instance's keypoints and skeleton (below the tools' overlays, above masks)."""

    def __init__(self, row: InstanceRow, image_size: tuple[int, int]):
        super().__init__()
        w, h = image_size
        self._bounds = QRectF(-MARGIN, -MARGIN, w + 2 * MARGIN, h + 2 * MARGIN)
        self.row = row
        self.active: int | None = None  # the point the tool last touched (drawn larger)
        self.setZValue(OVERLAY_Z - 1)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_row(self, row: InstanceRow) -> None:
        self.row = row
        self.update()

    def set_active(self, index: int | None) -> None:
        if index != self.active:
            self.active = index
            self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        schema, points = self.row.schema, self.row.instance.keypoints
        if schema is None or not points:
            return
        scale = painter.worldTransform().m11() or 1.0
        pending = self.row.pending
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for a, b in schema.skeleton:
            pa, pb = points[a], points[b]
            if pa[2] == NOT_LABELLED or pb[2] == NOT_LABELLED:
                continue
            line = QLineF(pa[0], pa[1], pb[0], pb[1])
            under = QPen(QColor(0, 0, 0, 160), 4)
            under.setCosmetic(True)
            painter.setPen(under)
            painter.drawLine(line)
            sides = {schema.side(a), schema.side(b)}
            bone = (point_color(schema, a, BONE_COLOR) if len(sides) == 1 else BONE_COLOR)
            pen = QPen(QColor(bone), 2)
            pen.setCosmetic(True)
            if pending or OCCLUDED in (pa[2], pb[2]):
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawLine(line)
        for i, (x, y, v) in enumerate(points):
            if v == NOT_LABELLED:
                continue
            r = (POINT_RADIUS + (2 if i == self.active else 0)) / scale
            color = QColor(point_color(schema, i, self.row.color))
            ring = QPen(QColor(0, 0, 0, 200) if v != OCCLUDED else color,
                        1.5 if v != OCCLUDED else 2.5)
            ring.setCosmetic(True)
            painter.setPen(ring)
            painter.setBrush(color if v != OCCLUDED else Qt.BrushStyle.NoBrush)
            painter.setOpacity(0.6 if pending else 1.0)
            painter.drawEllipse(QPointF(x, y), r, r)
            painter.setOpacity(1.0)
        painter.setBrush(Qt.BrushStyle.NoBrush)


class KeypointLayer:
    """The keypoint items of the shown image, kept in step with its instance rows."""

    def __init__(self, scene: QGraphicsScene):
        self._scene = scene
        self.items: dict[int, KeypointItem] = {}

    def sync(self, rows: list[InstanceRow], image_size: tuple[int, int] | None,
             shows) -> None:
        """Items for the rows with points (shown where `shows(row)`), none for the others."""
        wanted = {r.id: r for r in rows if r.schema is not None and r.instance.keypoints}
        for iid in [i for i in self.items if i not in wanted or image_size is None]:
            self._scene.removeItem(self.items.pop(iid))
        if image_size is None:
            return
        for iid, row in wanted.items():
            item = self.items.get(iid)
            if item is None:
                item = self.items[iid] = KeypointItem(row, image_size)
                self._scene.addItem(item)
            elif item.row != row:
                item.set_row(row)
            item.setVisible(shows(row))

    def forget(self) -> None:
        """The scene was cleared (its items with it)."""
        self.items.clear()

    def set_active(self, instance_id: int | None, index: int | None) -> None:
        for iid, item in self.items.items():
            item.set_active(index if iid == instance_id else None)
