"""The canvas: one image with its instances; zoom, pan, hover, click to select.

Editing tools plug in through `set_tool` (see `app/canvas/tools/`): while one is set, left-button
mouse gestures, the wheel and keys go to it first. `shape_provider` may hand over an
instance's shape at once (a just-edited mask) instead of a background job making it.

Which image is shown, and its pixels and masks loaded in background jobs through the view
cache (prefetch), is `ImageLoadingMixin` (`app/canvas/loading.py`): `show_image`, `prefetch`,
`clear_image`, `forget`. Here the GUI thread only wraps the finished arrays and places items.

Nothing here makes the keyboard wait: an image's pixels show as soon as they are decoded
(before its masks), and a crowded image's instance items are placed (and restyled, when
accepted) a batch per event-loop turn (`ITEM_BATCH`), so a key pressed meanwhile is handled
at once, on the image it was pressed on. Each item caches its look at screen resolution
(see `InstanceItem`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPixmapCache, QTransform
from PySide6.QtWidgets import QApplication, QGraphicsScene, QGraphicsView

from app.canvas.highlight import HighlightItem, highlight_shape
from app.canvas.items import CanvasStyle, ImageItem, InstanceItem
from app.canvas.keypoint_items import KeypointLayer
from app.canvas.loading import ImageLoadingMixin
from app.canvas.render import InstanceShape
from app.canvas.tool_hook import ToolHostMixin
from app.canvas.view_cache import CachedImage, ViewCache
from app.controllers.project import InstanceRow
from app.shortcuts import typing_field
from app.worker import Job, JobRunner
from mrcnn.masks import Rle

MIN_SCALE, MAX_SCALE = 0.01, 64.0


def below_threshold(row: InstanceRow, threshold: float) -> bool:
    """Whether the score threshold hides this instance: a pending prediction scoring below it
    (accepted work, and predictions without a score, always show)."""
    score = row.instance.score
    return row.pending and score is not None and score < threshold
KEY_ZOOM = 1.25
BACKGROUND = QColor(38, 40, 44)
#: Instance items placed (or restyled) per event-loop turn; the keyboard is read between
#: batches. Drawing one for the first time takes about a millisecond.
ITEM_BATCH = 30
#: Room for the items' cached looks (Qt's pixmap cache, 10 MB by default, would hold a few
#: dozen: a crowded image would be drawn again from scratch on every repaint).
PIXMAP_CACHE_KB = 256 * 1024


class CanvasView(ImageLoadingMixin, ToolHostMixin, QGraphicsView):
    """Shows the current image; widgets talk to it with image ids and instance ids."""

    selection_changed = Signal(list)  # ids of the selected instances
    zoom_changed = Signal(float)  # view scale, 1.0 = one image pixel per screen pixel
    image_shown = Signal(int)  # image id: pixels and all masks are on screen
    load_failed = Signal(int, str)  # image id, message
    warned = Signal(str)

    def __init__(self, runner: JobRunner, parent=None):
        super().__init__(parent)
        self._runner = runner
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), PIXMAP_CACHE_KB))
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.style_ = CanvasStyle()
        self.cache = ViewCache()
        self._loads: dict[int, Job] = {}
        self._shape_job: Job | None = None
        self._shape_job_ids: frozenset[int] = frozenset()
        self._batch_timer = QTimer(self)  # places the next batch of items
        self._batch_timer.setSingleShot(True)
        self._batch_timer.setInterval(0)
        self._batch_timer.timeout.connect(self._on_batch_timer_timeout)
        self._image_id: int | None = None
        self._entry: CachedImage | None = None
        self._rows: list[InstanceRow] = []
        self._items: dict[int, InstanceItem] = {}
        self.keypoints = KeypointLayer(self._scene)
        self._image_item: ImageItem | None = None
        self._message = "No image"
        self._show_predictions = True
        self._score_threshold = 0.0
        self._fit_mode = True
        self._quiet = False
        self._space = False
        self._middle_pos = None
        self._tool = None  # an app.canvas.tools.CanvasTool, or None for plain selection
        #: (image id, row) → the instance's shape now, or None (then a job makes it)
        self.shape_provider: Callable[[int, InstanceRow], InstanceShape | None] | None = None
        self._reselect: set[int] = set()  # selected ids whose item is being remade
        #: what `highlight` asked to show: (image id, [(mask, look)]), and its items
        self._highlight: tuple[int, list[tuple[Rle, str]]] | None = None
        self._highlight_items: list[HighlightItem] = []
        self._scene.selectionChanged.connect(self._on_scene_selection_changed)
        self.setBackgroundBrush(BACKGROUND)
        self.setRenderHints(QPainter.RenderHint.Antialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ------------------------------------------------------------------ shown image
    @property
    def image_id(self) -> int | None:
        return self._image_id

    @property
    def is_loaded(self) -> bool:
        return self._image_item is not None

    def _display(self, entry: CachedImage) -> None:
        self._entry = entry
        self._message = ""
        self._image_item = ImageItem(entry.view.levels)
        self._scene.addItem(self._image_item)
        self._scene.setSceneRect(self._image_item.boundingRect())
        self.fit()
        self._place_highlight()
        self._sync_items()

    def update_instances(self, rows: list[InstanceRow]) -> None:
        """The current image's instances changed (accepted, deleted, predicted...)."""
        self._rows = list(rows)
        if self._image_item is not None:
            self._sync_items()

    def _sync_items(self) -> None:
        entry = self._entry
        wanted = {r.id: r for r in self._rows}
        selected = set(self.selected_ids())
        self._quiet = True
        try:
            for iid, item in list(self._items.items()):
                row = wanted.get(iid)
                if row is None or row.instance.rle != entry.masks.get(iid):
                    if row is not None and item.isSelected():
                        self._reselect.add(iid)  # same instance, new mask: stays selected
                    self._scene.removeItem(item)
                    del self._items[iid]
            self._reselect &= wanted.keys()
            missing = []
            budget = ITEM_BATCH
            later = False
            for row in self._rows:
                item = self._items.get(row.id)
                if item is not None and item.row == row:
                    continue
                if budget <= 0:
                    later = True  # on the next turn: keys are read in between
                    continue
                if item is not None:
                    item.set_row(row)  # its look is drawn again: counts as one
                    budget -= 1
                    continue
                shape = entry.shape_for(row.id, row.instance.rle, row.color)
                if shape is None and self.shape_provider is not None:
                    shape = self.shape_provider(self._image_id, row)
                    if shape is not None:
                        entry.add_shapes([shape], {row.id: row.instance.rle},
                                         {row.id: row.color})
                if shape is None:
                    missing.append(row)
                else:
                    self._add_item(row, shape)
                    budget -= 1
                    if row.id in self._reselect:
                        self._reselect.discard(row.id)
                        self._items[row.id].setSelected(True)
        finally:
            self._quiet = False
        self._apply_visibility()
        if missing and not {r.id for r in missing} <= self._shapes_coming():
            self._start_shape_job(missing)
        if later:
            self._batch_timer.start()
        elif not missing:
            self.image_shown.emit(self._image_id)
        if set(self.selected_ids()) != selected:
            self.selection_changed.emit(self.selected_ids())

    def _add_item(self, row: InstanceRow, shape: InstanceShape) -> None:
        item = InstanceItem(row, shape, self.style_, self.scale_factor)
        self._scene.addItem(item)
        self._items[row.id] = item

    def _on_batch_timer_timeout(self) -> None:
        if self._image_item is not None:
            self._sync_items()

    def _clear_scene(self) -> None:
        if self._tool is not None:
            self._tool.cancel()  # its overlay items go before the scene is cleared
        self._reselect.clear()
        self._batch_timer.stop()
        self._quiet = True
        had_selection = bool(self._scene.selectedItems())
        self._scene.clear()
        self._quiet = False
        self._items.clear()
        self.keypoints.forget()
        self._highlight_items = []  # the scene deleted them
        self._image_item = None
        self._entry = None
        if had_selection:
            self.selection_changed.emit([])

    # ------------------------------------------------------------------ highlight
    def highlight(self, image_id: int, marks: list[tuple[Rle, str]]) -> None:
        """Highlight masks on image `image_id` (each with its look: "truth" for an accepted
        instance, "predicted" for a prediction; `app/canvas/highlight.py`), now when it is
        shown, else as soon as it is; another image drops them. [] clears."""
        self._highlight = (image_id, list(marks)) if marks else None
        self._place_highlight()

    def clear_highlight(self) -> None:
        self.highlight(self._image_id or 0, [])

    def highlight_items(self) -> list[HighlightItem]:
        return list(self._highlight_items)

    def _place_highlight(self) -> None:
        for item in self._highlight_items:
            self._scene.removeItem(item)
        self._highlight_items = []
        wanted = self._highlight
        if wanted is None or wanted[0] != self._image_id or self._image_item is None:
            return
        for rle, look in wanted[1]:
            shape = highlight_shape(rle, look)
            if shape is not None:
                item = HighlightItem(shape, look, self.scale_factor)
                self._scene.addItem(item)
                self._highlight_items.append(item)
        if self._highlight_items and not self._fit_mode:
            self.centerOn(self._highlight_items[0].mask_rect.center())
        self.viewport().update()

    # ------------------------------------------------------------------ instances
    def instance_items(self) -> dict[int, InstanceItem]:
        return dict(self._items)

    def selected_ids(self) -> list[int]:
        return sorted(i.instance_id for i in self._scene.selectedItems()
                      if isinstance(i, InstanceItem))

    def select_ids(self, ids: list[int]) -> None:
        """Select exactly these instances (without echoing selection_changed)."""
        wanted = set(ids)
        self._quiet = True
        try:
            for iid, item in self._items.items():
                item.setSelected(iid in wanted and item.isVisible())
        finally:
            self._quiet = False

    def select_all(self) -> None:
        for item in self._items.values():
            item.setSelected(item.isVisible())

    def clear_selection(self) -> None:
        self._scene.clearSelection()

    def center_on_instance(self, instance_id: int) -> None:
        item = self._items.get(instance_id)
        if item is not None:
            self.centerOn(item.boundingRect().center())

    def _on_scene_selection_changed(self) -> None:
        if not self._quiet:
            self.selection_changed.emit(self.selected_ids())

    def set_fill_opacity(self, value: float) -> None:
        self.style_.fill_opacity = max(0.0, min(1.0, value))
        for item in self._items.values():
            item.update()  # its cached look is stale
        self.viewport().update()

    def set_show_predictions(self, show: bool) -> None:
        self._show_predictions = show
        self._apply_visibility()

    @property
    def show_predictions(self) -> bool:
        return self._show_predictions

    def set_score_threshold(self, threshold: float) -> None:
        """Hide pending predictions scoring below `threshold` (accepted work always shows)."""
        self._score_threshold = threshold
        self._apply_visibility()

    @property
    def score_threshold(self) -> float:
        return self._score_threshold

    def shows(self, row: InstanceRow) -> bool:
        """Whether an instance is shown under the current filters."""
        if not row.pending:
            return True
        return self._show_predictions and not below_threshold(row, self._score_threshold)

    def _apply_visibility(self) -> None:
        for item in self._items.values():
            visible = self.shows(item.row)
            item.setVisible(visible)
            if not visible:
                item.setSelected(False)
        size = None
        if self._image_item is not None:
            rect = self._image_item.boundingRect()
            size = (int(rect.width()), int(rect.height()))
        self.keypoints.sync(self._rows, size, self.shows)

    # ------------------------------------------------------------------ zoom and pan
    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def set_scale(self, scale: float, *, anchor: QPoint | None = None) -> None:
        """Zoom to `scale`, keeping the image point under `anchor` (viewport pixels; default
        the centre) where it is."""
        scale = max(MIN_SCALE, min(MAX_SCALE, scale))
        pos = anchor if anchor is not None else self.viewport().rect().center()
        before = self.mapToScene(pos)
        self.setTransform(QTransform.fromScale(scale, scale))
        after = self.mapToScene(pos)
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round((before.x() - after.x()) * scale))
        v.setValue(v.value() + round((before.y() - after.y()) * scale))
        self._fit_mode = False
        self._rescale_items()
        self.zoom_changed.emit(scale)

    def zoom_in(self) -> None:
        self.set_scale(self.scale_factor * KEY_ZOOM)

    def zoom_out(self) -> None:
        self.set_scale(self.scale_factor / KEY_ZOOM)

    def actual_size(self) -> None:
        self.set_scale(1.0)

    def fit(self) -> None:
        if self._image_item is None:
            return
        rect: QRectF = self._image_item.boundingRect()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._fit_mode = True
        self._rescale_items()
        self.zoom_changed.emit(self.scale_factor)

    def _rescale_items(self) -> None:
        scale = self.scale_factor
        for item in (*self._items.values(), *self._highlight_items):
            item.set_view_scale(scale)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event) -> None:
        if self._tool_takes() and self._tool.wheel(event):
            event.accept()
            return
        delta = event.angleDelta().y()
        if delta and self._image_item is not None:
            self.set_scale(self.scale_factor * (1.0015 ** delta),
                           anchor=event.position().toPoint())
            event.accept()
        else:
            super().wheelEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            self.setInteractive(False)
            event.accept()
            return
        if self._tool_takes() and self._tool.key_press(event):
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.setInteractive(True)
            self._reset_pointer()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._middle_pos = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if self._tool_takes() and self._tool.mouse_press(event):
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._middle_pos is not None:
            delta = event.position() - self._middle_pos
            self._middle_pos = event.position()
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - round(delta.x()))
            v.setValue(v.value() - round(delta.y()))
            event.accept()
            return
        if self._tool_takes() and self._tool.mouse_move(event):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton and self._middle_pos is not None:
            self._middle_pos = None
            self._reset_pointer()
            event.accept()
            return
        if self._tool_takes() and self._tool.mouse_release(event):
            event.accept()
            return
        super().mouseReleaseEvent(event)


    def enterEvent(self, event) -> None:
        """Take the keyboard when the pointer comes over the canvas (Space-drag to pan),
        unless the user is typing somewhere."""
        if typing_field(QApplication.focusWidget()) is None:
            self.setFocus()
        super().enterEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if not self._message:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(210, 210, 210))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        painter.setFont(font)
        painter.drawText(self.viewport().rect().adjusted(20, 20, -20, -20),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        painter.restore()
