"""One row of the image list: the data roles a row carries and how it is drawn (thumbnail,
file name, a coloured status mark, a "val" mark for validation images and, in the review
order, the image's uncertainty)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from app.controllers.project import STATUS_LABELS
from app.panels.thumbnails import ThumbnailCache
from app.text import uncertainty_text

ID_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2
PATH_ROLE = Qt.ItemDataRole.UserRole + 3
SPLIT_ROLE = Qt.ItemDataRole.UserRole + 4
#: where the image is read from: a Path, or a RemoteImage (mrcnn.io.remote)
SOURCE_ROLE = Qt.ItemDataRole.UserRole + 5
UNCERTAINTY_ROLE = Qt.ItemDataRole.UserRole + 6  # float, or None: not shown / not predicted

STATUS_COLORS = {"new": "#8a8f98", "predicted": "#5b8def", "in_review": "#e0a030",
                 "reviewed": "#3fb27f"}
#: The mark a validation image carries in the list (training images carry none).
VAL_MARK = "val"
VAL_COLOR = "#9b6ad6"
#: Before an image's uncertainty in the list (in the review order "Most uncertain first").
UNCERTAINTY_MARK = "uncertainty"
ROW_HEIGHT = 58
THUMB = 48


class ImageDelegate(QStyledItemDelegate):
    """Thumbnail, file name, a coloured status mark and, for validation images, a "val"
    mark."""

    def __init__(self, thumbnails: ThumbnailCache, parent=None):
        super().__init__(parent)
        self._thumbs = thumbnails

    def sizeHint(self, option, index) -> QSize:
        return QSize(200, ROW_HEIGHT)

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        painter.save()
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter,
                                option.widget)
        rect: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        thumb_rect = QRect(rect.x() + 6, rect.y() + (rect.height() - THUMB) // 2, THUMB, THUMB)
        image_id = index.data(ID_ROLE)
        pixmap = self._thumbs.get(image_id, index.data(SOURCE_ROLE))
        painter.fillRect(thumb_rect, QColor(60, 62, 66))
        if pixmap is not None:
            scaled = pixmap.size().scaled(thumb_rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(thumb_rect.center())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, pixmap)
        elif self._thumbs.failed(image_id):
            painter.setPen(QColor("#e05050"))
            painter.drawText(thumb_rect, Qt.AlignmentFlag.AlignCenter, "!")
        text_x = thumb_rect.right() + 10
        text_rect = QRect(text_x, rect.y() + 8, rect.right() - text_x - 6, 20)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(option.palette.color(role))
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        name = painter.fontMetrics().elidedText(index.data(Qt.ItemDataRole.DisplayRole),
                                                Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         name)
        status = index.data(STATUS_ROLE)
        painter.setFont(option.font)
        label = STATUS_LABELS.get(status, status)
        color = QColor(STATUS_COLORS.get(status, "#999999"))
        pill_w = painter.fontMetrics().horizontalAdvance(label) + 16
        pill = QRect(text_x, rect.y() + 31, pill_w, 18)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(pill, 9, 9)
        painter.setPen(QColor("white"))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, label)
        if index.data(SPLIT_ROLE) == "val":
            mark_w = painter.fontMetrics().horizontalAdvance(VAL_MARK) + 12
            mark = QRect(pill.right() + 6, pill.y(), mark_w, pill.height())
            painter.setPen(QColor(VAL_COLOR))
            # an outline on the list's background; filled, with white text, on the selection's
            # (purple text on the selection's blue could not be read)
            painter.setBrush(QColor(VAL_COLOR).darker(125) if selected
                             else Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(mark.adjusted(0, 0, -1, -1), 9, 9)
            if selected:
                painter.setPen(QColor("white"))
            painter.drawText(mark, Qt.AlignmentFlag.AlignCenter, VAL_MARK)
        u = index.data(UNCERTAINTY_ROLE)
        if u is not None:  # the review order's reason, at the row's right
            painter.setPen(option.palette.color(QPalette.ColorRole.HighlightedText if selected
                                                else QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRect(pill.x(), pill.y(), rect.right() - 8 - pill.x(),
                                   pill.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{UNCERTAINTY_MARK} {uncertainty_text(u)}")
        painter.restore()
