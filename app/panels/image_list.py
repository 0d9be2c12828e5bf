"""The image list (left dock): the images' model, filters, search, order and counts (one
row's roles and drawing: `app.panels.image_rows`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)

from app.controllers.project import STATUS_LABELS
from app.panels.image_rows import (
    ID_ROLE,
    PATH_ROLE,
    SOURCE_ROLE,
    SPLIT_ROLE,
    STATUS_COLORS,
    STATUS_ROLE,
    UNCERTAINTY_ROLE,
    VAL_COLOR,
    ImageDelegate,
)
from app.panels.thumbnails import ThumbnailCache
from app.text import plural, uncertainty_text
from mrcnn.io.remote import RemoteImage
from mrcnn.store.records import ImageRecord
from mrcnn.store.status import UNREVIEWED, is_unreviewed

#: Status filter choices: label → statuses shown (None: all).
FILTERS = {"All images": None, "New": {"new"}, "Predicted": {"predicted"},
           "In review": {"in_review"}, "Reviewed": {"reviewed"},
           "Not reviewed": {str(s) for s in UNREVIEWED}}
#: Split filter choices: label → split shown (None: both).
SPLIT_FILTERS = {"Both splits": None, "Training": "train", "Validation": "val"}
#: List orders: key → label ("uncertain": unreviewed images the model is least sure of first).
ORDERS = {"file": "File order", "uncertain": "Most uncertain first"}


class ImageListModel(QAbstractListModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[ImageRecord] = []
        self._paths: dict[int, Path | RemoteImage] = {}
        self._index: dict[int, int] = {}
        self._uncertainty: dict[int, float | None] = {}

    def set_uncertainties(self, values: dict[int, float | None]) -> None:
        """How unsure the model is about each image, shown with it (empty: none shown)."""
        self._uncertainty = dict(values)
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1),
                                  [UNCERTAINTY_ROLE, Qt.ItemDataRole.ToolTipRole])

    def set_images(self, records: list[ImageRecord],
                   paths: dict[int, Path | RemoteImage]) -> None:
        self.beginResetModel()
        self._rows = list(records)
        self._paths = dict(paths)
        self._index = {r.id: i for i, r in enumerate(self._rows)}
        self.endResetModel()

    def records(self) -> list[ImageRecord]:
        return list(self._rows)

    def row_of(self, image_id: int) -> int:
        return self._index.get(image_id, -1)

    def update_status(self, image_id: int, status: str) -> None:
        self._update(image_id, status=status)

    def update_split(self, image_id: int, split: str) -> None:
        self._update(image_id, split=split)

    def _update(self, image_id: int, **changes) -> None:
        row = self.row_of(image_id)
        if row < 0:
            return
        self._rows[row] = replace(self._rows[row], **changes)
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def refresh_row(self, image_id: int) -> None:
        row = self.row_of(image_id)
        if row >= 0:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(r.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            u = self._uncertainty.get(r.id)
            return (f"{self._paths.get(r.id, r.path)}\n{r.width}×{r.height} · "
                    f"{STATUS_LABELS.get(r.status, r.status)} · "
                    f"{'validation' if r.split == 'val' else 'training'} split"
                    + ("" if u is None else f"\nuncertainty {uncertainty_text(u)} (the review "
                       "order's: how unsure the model was about it)"))
        if role == UNCERTAINTY_ROLE:
            return self._uncertainty.get(r.id)
        if role == ID_ROLE:
            return r.id
        if role == STATUS_ROLE:
            return r.status
        if role == SPLIT_ROLE:
            return str(r.split)
        if role == PATH_ROLE:
            return str(self._paths.get(r.id, r.path))
        if role == SOURCE_ROLE:
            return self._paths.get(r.id, Path(r.path))
        return None


class ImageFilterProxy(QSortFilterProxyModel):
    """Rows whose status is in the chosen set, in the chosen split, and whose file name
    contains the search."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._statuses: set[str] | None = None
        self._split: str | None = None
        self._text = ""
        self._rank: dict[int, int] | None = None  # image id → place; None: file order

    def set_rank(self, rank: dict[int, int] | None) -> None:
        """Order rows by `rank` (unranked ones after, in file order); None: file order."""
        self._rank = rank
        self.invalidate()
        self.sort(0 if rank is not None else -1)

    def order_key(self, image_id: int, row: int) -> tuple[int, int]:
        """Where the image of source `row` goes in the list's order (also when filtered out)."""
        if self._rank is None:
            return (0, row)
        return (self._rank.get(image_id, len(self._rank)), row)

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        return (self.order_key(left.data(ID_ROLE), left.row())
                < self.order_key(right.data(ID_ROLE), right.row()))

    def set_statuses(self, statuses: set[str] | None) -> None:
        with self._filter_change():
            self._statuses = statuses

    def set_split(self, split: str | None) -> None:
        with self._filter_change():
            self._split = split

    def set_text(self, text: str) -> None:
        with self._filter_change():
            self._text = text.strip().lower()

    @contextmanager
    def _filter_change(self) -> Iterator[None]:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+
            self.beginFilterChange()
            yield
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            yield
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        index = self.sourceModel().index(source_row, 0, source_parent)
        if self._statuses is not None and index.data(STATUS_ROLE) not in self._statuses:
            return False
        if self._split is not None and index.data(SPLIT_ROLE) != self._split:
            return False
        return not self._text or self._text in str(index.data(PATH_ROLE)).lower()


class SearchField(QLineEdit):
    """The search box. Enter keeps the search and hands the keyboard back to the canvas (D
    and A then move through the images found); Esc gives the search up: it clears the box,
    then hands the keyboard back (`app.shortcuts.FieldKeyGuard`). When Esc left the text, a
    person's next Ctrl+A, Backspace (to clear the box) reached the canvas and deleted the
    image's instances."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.clear()  # the event goes on up to the window, which hands the keys back
        super().keyPressEvent(event)


class ImageListWidget(QWidget):
    """The project's images; emits the id of the image the user moves to."""

    current_image_changed = Signal(int)
    order_changed = Signal(str)  # a key of ORDERS

    def __init__(self, thumbnails: ThumbnailCache, parent=None):
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.model = ImageListModel(self)
        self.proxy = ImageFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        # typing here never fires the window's shortcuts (app/shortcuts.py: FieldKeyGuard)
        self.search = SearchField(placeholderText="Search file names…", clearButtonEnabled=True)
        self.status_filter = QComboBox()
        self.status_filter.addItems(list(FILTERS))
        self.split_filter = QComboBox()
        self.split_filter.addItems(list(SPLIT_FILTERS))
        self.split_filter.setToolTip("Show the images of one split: training, or validation "
                                     "(the images new model versions are scored on)")
        self.counts = QLabel()
        self.counts.setWordWrap(True)
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        self.counts.setStyleSheet("padding: 2px 2px;")
        self.view = QListView()
        self.view.setModel(self.proxy)
        self.view.setItemDelegate(ImageDelegate(thumbnails, self.view))
        self.view.setUniformItemSizes(True)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.order_box = QComboBox()
        for key, label in ORDERS.items():
            self.order_box.addItem(label, key)
        self.order_box.setToolTip("Order of the list (Most uncertain first: the unreviewed "
                                  "images whose predictions are most borderline)")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.status_filter)
        top.addWidget(self.split_filter)
        top.addWidget(self.order_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.counts)
        layout.addWidget(self.view, 1)
        self._current: int | None = None
        self._quiet = False
        self.search.textChanged.connect(self._on_search_text_changed)
        self.status_filter.currentTextChanged.connect(self._on_status_filter_changed)
        self.split_filter.currentTextChanged.connect(self._on_split_filter_changed)
        self.order_box.currentIndexChanged.connect(
            lambda _i: self.order_changed.emit(self.order))
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        thumbnails.thumbnail_ready.connect(self.model.refresh_row)

    # ---------------------------------------------------------------- contents
    def set_images(self, records: list[ImageRecord],
                   paths: dict[int, Path | RemoteImage]) -> None:
        with self._quietly():
            self.model.set_images(records, paths)
        if self._current is not None and self.model.row_of(self._current) < 0:
            self._current = None
        self._select_in_view(self._current)
        self._update_counts()

    def update_status(self, image_id: int, status: str) -> None:
        with self._quietly():
            self.model.update_status(image_id, status)
        self._select_in_view(self._current)
        self._update_counts()

    def update_split(self, image_id: int, split: str) -> None:
        with self._quietly():
            self.model.update_split(image_id, split)
        self._select_in_view(self._current)
        self._update_counts()

    def split_of(self, image_id: int | None) -> str | None:
        """The split of an image in the list (None: not in it)."""
        row = self.model.row_of(image_id) if image_id is not None else -1
        return str(self.model.records()[row].split) if row >= 0 else None

    @property
    def order(self) -> str:
        return self.order_box.currentData()

    def set_order(self, order: str) -> None:
        """Choose the list's order (a key of ORDERS; an unknown one: file order)."""
        self.order_box.setCurrentIndex(max(0, self.order_box.findData(order)))

    def set_rank(self, rank: dict[int, int] | None,
                 uncertainty: dict[int, float | None] | None = None) -> None:
        """Show the images in this order (see ImageFilterProxy.set_rank), each with its
        `uncertainty` when given (the review order's measure)."""
        self.model.set_uncertainties(uncertainty or {})
        with self._quietly():
            self.proxy.set_rank(rank)
        self._select_in_view(self._current)

    def visible_ids(self) -> list[int]:
        return [self.proxy.index(r, 0).data(ID_ROLE) for r in range(self.proxy.rowCount())]

    def _update_counts(self) -> None:
        records = self.model.records()
        per = dict.fromkeys(STATUS_LABELS, 0)
        for r in records:
            per[r.status] = per.get(r.status, 0) + 1
        shown = self.proxy.rowCount()
        head = f"<b>{plural(len(records), 'image')}</b>"
        if shown != len(records):
            head += f" · showing {shown}"
        chips = " &nbsp; ".join(
            f"<span style='color:{STATUS_COLORS[s]}'>●</span> {n} {STATUS_LABELS[s].lower()}"
            for s, n in per.items())
        val = [r for r in records if r.split == "val"]
        reviewed_val = sum(r.status == "reviewed" for r in val)
        reviewed = sum(r.status == "reviewed" for r in records)
        splits = (f"{len(records) - len(val)} training · <span style='color:{VAL_COLOR}'>"
                  f"{len(val)} validation</span> ({reviewed_val} of {reviewed} reviewed)")
        self.counts.setText(f"{head}<br>{chips}<br>{splits}")

    # ---------------------------------------------------------------- current image
    @property
    def current_id(self) -> int | None:
        return self._current

    def select_image(self, image_id: int | None) -> None:
        """Make `image_id` the current image and tell the window (once)."""
        if image_id is None or self.model.row_of(image_id) < 0:
            return
        changed = image_id != self._current
        self._current = image_id
        self._select_in_view(image_id)
        if changed:
            self.current_image_changed.emit(image_id)

    def neighbor(self, image_id: int | None, step: int) -> int | None:
        """The next (step > 0) or previous visible image from `image_id`, in the list's
        order; works also when `image_id` itself is filtered out."""
        visible = self.visible_ids()
        if not visible:
            return None
        if image_id is None:
            return visible[0] if step > 0 else visible[-1]
        after, before = self._split_at(image_id, visible)
        if step > 0:
            return after[0] if after else None
        return before[-1] if before else None

    def next_unreviewed(self, image_id: int | None) -> int | None:
        """The first visible unreviewed image after `image_id` in the list's order, going
        round to the top; never `image_id` itself. None: no other is left."""
        visible = self.visible_ids()
        after, before = self._split_at(image_id, visible) if image_id is not None else (
            visible, [])
        status = {r.id: r.status for r in self.model.records()}
        return next((i for i in after + before
                     if i != image_id and is_unreviewed(status[i])), None)

    def _split_at(self, image_id: int, visible: list[int]) -> tuple[list[int], list[int]]:
        """`visible` (in list order) split into the images after and before `image_id`."""
        def key(i: int) -> tuple[int, int]:
            return self.proxy.order_key(i, self.model.row_of(i))

        here = key(image_id)
        return ([i for i in visible if key(i) > here], [i for i in visible if key(i) < here])

    def go(self, step: int) -> bool:
        target = self.neighbor(self._current, step)
        if target is None:
            return False
        self.select_image(target)
        return True

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Changes made here are not the user moving to another image."""
        old, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = old

    def _select_in_view(self, image_id: int | None) -> None:
        with self._quietly():
            index = QModelIndex()
            if image_id is not None:
                index = self.proxy.mapFromSource(self.model.index(self.model.row_of(image_id)))
            if index.isValid():
                self.view.setCurrentIndex(index)
                self.view.scrollTo(index)
            else:
                self.view.selectionModel().clear()

    def _on_view_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._quiet or not current.isValid():
            return
        image_id = current.data(ID_ROLE)
        if image_id != self._current:
            self._current = image_id
            self.current_image_changed.emit(image_id)

    def _on_search_text_changed(self, text: str) -> None:
        with self._quietly():
            self.proxy.set_text(text)
        self._select_in_view(self._current)
        self._update_counts()

    def _on_status_filter_changed(self, label: str) -> None:
        with self._quietly():
            self.proxy.set_statuses(FILTERS.get(label))
        self._select_in_view(self._current)
        self._update_counts()

    def _on_split_filter_changed(self, label: str) -> None:
        with self._quietly():
            self.proxy.set_split(SPLIT_FILTERS.get(label))
        self._select_in_view(self._current)
        self._update_counts()

    def set_status_filter(self, label: str) -> None:
        self.status_filter.setCurrentText(label)
