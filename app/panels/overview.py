"""The Dataset dock's panel: the data set overview (`mrcnn.store.overview`) drawn by QtCharts —
accepted instances per category (train and val side by side), instance sizes (a histogram of
√area per split, COCO's small / medium / large in the legend) and images per status (train
and val stacked). It only draws the numbers it is given."""

from __future__ import annotations

import html

from PySide6.QtCharts import (
    QAbstractBarSeries,
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChartView,
    QHorizontalBarSeries,
    QHorizontalStackedBarSeries,
    QStackedBarSeries,
    QValueAxis,
)
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.controllers.project import STATUS_LABELS
from app.panels.charts import iteration_step, make_chart
from app.text import plural
from mrcnn.store.overview import SIZE_BINS, Overview

#: Each split's colour, the same in every chart (readable on the light and the dark theme).
SPLIT_COLORS = {"train": "#2a7de1", "val": "#f28e2b"}
SPLITS = ("train", "val")
#: The charts' least height, and the room each category's pair of bars needs (more
#: categories than fit make the category chart taller, in a scroll area).
CHART_HEIGHT = 200
CATEGORY_ROW_HEIGHT = 24
CHART_MIN_WIDTH = 240
SIZES_MIN_WIDTH = 420


class BarChartView(QChartView):
    """Bars of one value per (split, label): grouped side by side, or stacked; `horizontal`
    lists the labels down the left, first on top."""

    def __init__(self, title: str, *, stacked: bool = False, horizontal: bool = False,
                 truncate_labels: bool = True, parent=None):
        super().__init__(make_chart(title), parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumSize(CHART_MIN_WIDTH, CHART_HEIGHT)
        self._stacked, self._horizontal = stacked, horizontal
        self._truncate = truncate_labels
        self.series: QAbstractBarSeries | None = None
        self._order = slice(None)

    def show_bars(self, labels: list[str], values: dict[str, list[int]],
                  names: dict[str, str] | None = None) -> None:
        """`values`: per split, one value per label; `names`: each split's legend text."""
        c = self.chart()
        c.removeAllSeries()
        for axis in c.axes():
            c.removeAxis(axis)
        order = slice(None, None, -1 if self._horizontal else 1)  # drawn from the bottom up
        if self._horizontal:
            self.series = (QHorizontalStackedBarSeries() if self._stacked
                           else QHorizontalBarSeries())
        else:
            self.series = QStackedBarSeries() if self._stacked else QBarSeries()
        for split, row in values.items():
            bars = QBarSet((names or {}).get(split, split))
            bars.setColor(QColor(SPLIT_COLORS[split]))
            bars.setBorderColor(QColor(SPLIT_COLORS[split]))
            bars.append([float(v) for v in row[order]])
            self.series.append(bars)
        c.addSeries(self.series)
        x = QBarCategoryAxis()
        x.append([html.escape(label) for label in labels[order]])  # labels are rich text
        if not self._horizontal and sum(len(s) for s in labels) > 60:
            x.setLabelsAngle(-45)
        x.setTruncateLabels(self._truncate)
        top = max((sum(col) for col in zip(*values.values(), strict=True)) if self._stacked
                  else (v for row in values.values() for v in row), default=0)
        y = QValueAxis()
        step = iteration_step(max(top, 1), ticks=4)
        y.setRange(0, max(step, -(-top // step) * step))  # whole numbers, the top bar inside
        y.setTickType(QValueAxis.TickType.TicksDynamic)
        y.setTickAnchor(0)
        y.setTickInterval(step)
        y.setLabelFormat("%d")
        font = x.labelsFont()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        x.setLabelsFont(font)
        y.setLabelsFont(font)
        c.addAxis(x, Qt.AlignmentFlag.AlignLeft if self._horizontal
                  else Qt.AlignmentFlag.AlignBottom)
        # lying bars: the scale and the legend on top, in sight when a long chart scrolls
        c.addAxis(y, Qt.AlignmentFlag.AlignTop if self._horizontal
                  else Qt.AlignmentFlag.AlignLeft)
        c.legend().setAlignment(Qt.AlignmentFlag.AlignTop if self._horizontal
                                else Qt.AlignmentFlag.AlignBottom)
        self.series.attachAxis(x)
        self.series.attachAxis(y)
        self._order = order

    def values(self) -> dict[str, list[float]]:
        """Per bar set (its legend text): the values drawn, in the order of `labels`."""
        if self.series is None:
            return {}
        return {s.label(): [s.at(i) for i in range(s.count())][self._order]
                for s in self.series.barSets()}

    def labels(self) -> list[str]:
        axes = [a for a in self.chart().axes() if isinstance(a, QBarCategoryAxis)]
        return [html.unescape(t) for t in axes[0].categories()][self._order] if axes else []


class OverviewPanel(QWidget):
    """A line of text over three charts."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.line = QLabel()
        self.line.setWordWrap(True)
        self.line.setStyleSheet("padding: 2px 4px;")
        self.categories = BarChartView("Accepted instances per category", horizontal=True)
        self.categories.setMinimumSize(CHART_MIN_WIDTH, CHART_HEIGHT)
        scroll = QScrollArea()  # many categories: a taller chart, scrolled
        scroll.setWidget(self.categories)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(CHART_MIN_WIDTH + scroll.verticalScrollBar().sizeHint().width())
        self.sizes = BarChartView("Instance size (√area, pixels)", truncate_labels=False)
        self.sizes.setMinimumWidth(SIZES_MIN_WIDTH)  # its eight range labels side by side
        self.statuses = BarChartView("Images per status", stacked=True, horizontal=True)
        charts = QWidget()
        row = QHBoxLayout(charts)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(scroll, 3)
        row.addWidget(self.sizes, 4)
        row.addWidget(self.statuses, 2)
        # a narrow dock (beside another at the bottom) scrolls the charts sideways instead
        # of squeezing them past reading; it never widens the window
        self.charts = QScrollArea()
        self.charts.setWidget(charts)
        self.charts.setWidgetResizable(True)
        self.charts.setFrameShape(QFrame.Shape.NoFrame)
        self.charts.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        column = QVBoxLayout(self)
        column.setContentsMargins(2, 2, 2, 2)
        column.addWidget(self.line)
        column.addWidget(self.charts, 1)
        self.show_overview(None)

    def show_overview(self, o: Overview | None) -> None:
        """Draw `o` (None: no project)."""
        if o is None:
            self.line.setText("No project")
            for view in (self.categories, self.sizes, self.statuses):
                view.show_bars([], {split: [] for split in SPLITS})
            return
        self.categories.setMinimumHeight(
            max(CHART_HEIGHT, 90 + CATEGORY_ROW_HEIGHT * len(o.categories)))
        self.categories.show_bars(
            [c.name for c in o.categories],
            {split: [getattr(c, split) for c in o.categories] for split in SPLITS})
        self.sizes.show_bars(
            list(SIZE_BINS), {split: list(o.sizes[split].histogram) for split in SPLITS},
            {split: f"{split}: small {z.small}, medium {z.medium}, large {z.large}"
             for split, z in o.sizes.items()})
        self.statuses.show_bars(
            [STATUS_LABELS.get(s, s) for s in o.images],
            {split: [per_split[split] for per_split in o.images.values()] for split in SPLITS})
        self.line.setText(self._line(o))

    @staticmethod
    def _line(o: Overview) -> str:
        p = o.per_image
        text = plural(p.images, "reviewed image")
        if p.images:
            text += (f": {p.min}–{p.max} instances each, median {p.median:g}; "
                     f"{p.negatives} without any")
        pending = sum(c.pending for c in o.categories)
        if pending:
            text += f" · {plural(pending, 'prediction')} pending"
        return text
