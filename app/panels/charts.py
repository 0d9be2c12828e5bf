"""Charts of a training run, drawn by QtCharts: the loss curves with the learning rate, and
the before/after metrics as grouped bars."""

from __future__ import annotations

import math

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QLineSeries,
    QLogValueAxis,
    QValueAxis,
)
from PySide6.QtCore import QMargins, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QApplication

from mrcnn.store.versions import MetricRow

#: Loss part → (legend name, colour); parts not named here get grey.
LOSS_STYLE = {
    "loss": ("total", "#1f77b4"),
    "loss_classifier": ("classifier", "#ff7f0e"),
    "loss_box_reg": ("box", "#2ca02c"),
    "loss_mask": ("mask", "#d62728"),
    "loss_objectness": ("objectness", "#9467bd"),
    "loss_rpn_box_reg": ("RPN box", "#8c564b"),
}
LR_COLOR = "#7f7f7f"


def make_chart(title: str) -> QChart:
    """A chart in the window's theme (dark when the app is), titled, legend at the bottom."""
    chart = QChart()
    if QApplication.palette().window().color().lightness() < 128:  # the app's dark theme
        chart.setTheme(QChart.ChartTheme.ChartThemeDark)
        chart.setBackgroundBrush(QApplication.palette().base())
    chart.setTitle(title)
    chart.setMargins(QMargins(4, 4, 4, 4))
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    return chart


def iteration_step(span: int, ticks: int = 5) -> int:
    """A whole tick step (1, 2 or 5 x 10^k) giving at most about `ticks` intervals."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if span / (step * m) <= ticks:
                return step * m
        step *= 10


class LossChartView(QChartView):
    """Loss (total and parts, log scale) and learning rate (right axis) per iteration."""

    def __init__(self, parent=None):
        super().__init__(make_chart("Training loss and learning rate"), parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(220)
        self.series: dict[str, QLineSeries] = {}
        c = self.chart()
        c.legend().setAlignment(Qt.AlignmentFlag.AlignRight)
        self.x_axis = QValueAxis()
        self.x_axis.setTitleText("iteration")
        self.x_axis.setLabelFormat("%d")
        self.loss_axis = QLogValueAxis()
        self.loss_axis.setTitleText("loss")
        self.loss_axis.setLabelFormat("%.2g")
        self.lr_axis = QValueAxis()
        self.lr_axis.setTitleText("learning rate")
        self.lr_axis.setLabelFormat("%.3g")
        c.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        c.addAxis(self.loss_axis, Qt.AlignmentFlag.AlignLeft)
        c.addAxis(self.lr_axis, Qt.AlignmentFlag.AlignRight)
        self.lr = self._line("lr", "learning rate", LR_COLOR, self.lr_axis, dashed=True)
        self._low, self._high, self._lr_high = math.inf, 0.0, 0.0
        self.reset(1)

    def _line(self, key: str, name: str, color: str, axis, *, dashed: bool = False,
              width: float = 1.5) -> QLineSeries:
        s = QLineSeries()
        s.setName(name)
        pen = QPen(QColor(color))
        pen.setWidthF(width)
        if dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        s.setPen(pen)
        self.chart().addSeries(s)
        s.attachAxis(self.x_axis)
        s.attachAxis(axis)
        return s

    def reset(self, max_iters: int) -> None:
        for key, s in list(self.series.items()):
            self.chart().removeSeries(s)
            del self.series[key]
        self.lr.clear()
        self._low, self._high, self._lr_high = math.inf, 0.0, 0.0
        span = max(1, max_iters)
        # whole iterations only: ticks every 1, 2 or 5 x 10^k from 0 (not "0 0 0 0 1"). The
        # range and the step change while the ticks are counted (fixed), else the new range
        # would be laid out with the old step (a long run after a short one: 100,000 ticks)
        self.x_axis.setTickType(QValueAxis.TickType.TicksFixed)
        self.x_axis.setRange(0, span)
        self.x_axis.setTickAnchor(0)
        self.x_axis.setTickInterval(iteration_step(span))
        self.x_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.loss_axis.setRange(0.01, 10)
        self.lr_axis.setRange(0, 1e-3)

    def add_step(self, event: dict) -> None:
        """One "step" event of `train --json`."""
        it = float(event["iteration"])
        values = {"loss": event["loss"], **event.get("losses", {})}
        for key, value in values.items():
            if not (value > 0 and math.isfinite(value)):
                continue
            s = self.series.get(key)
            if s is None:
                name, color = LOSS_STYLE.get(key, (key.removeprefix("loss_"), "#999999"))
                s = self.series[key] = self._line(key, name, color, self.loss_axis,
                                                  width=2.5 if key == "loss" else 1.2)
            s.append(QPointF(it, value))
            self._low, self._high = min(self._low, value), max(self._high, value)
        lo = 10 ** math.floor(math.log10(self._low)) if self._low < math.inf else 0.01
        hi = 10 ** math.ceil(math.log10(self._high)) if self._high > 0 else 10
        self.loss_axis.setRange(lo, max(hi, lo * 10))
        lr = float(event.get("lr", 0.0))
        self.lr.append(QPointF(it, lr))
        if lr > self._lr_high:
            self._lr_high = lr
            self.lr_axis.setRange(0, lr * 1.1)
            self.lr_axis.applyNiceNumbers()

    def points(self, key: str = "loss") -> list[tuple[float, float]]:
        s = self.lr if key == "lr" else self.series.get(key)
        return [(p.x(), p.y()) for p in s.points()] if s is not None else []


def short_label(label: str) -> str:
    """"segm AP50" → "mask AP50", "bbox AP" → "box AP", "segm AP · disc" → "disc"."""
    if " · " in label:
        return label.split(" · ", 1)[1]
    return label.replace("segm", "mask").replace("bbox", "box")


class MetricsChartView(QChartView):
    """Before/after bars for the first rows of a comparison (AP, AP50 of segm and bbox, and
    per class)."""

    def __init__(self, parent=None):
        super().__init__(make_chart("Validation metrics"), parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(200)
        self.bars: QBarSeries | None = None

    def show_rows(self, rows: list[MetricRow], before_name: str, after_name: str) -> None:
        c = self.chart()
        c.removeAllSeries()
        for axis in c.axes():
            c.removeAxis(axis)
        before, after = QBarSet(before_name), QBarSet(after_name)
        before.setColor(QColor("#9aa5b1"))
        after.setColor(QColor("#2a7de1"))
        for r in rows:
            before.append(r.before if r.before is not None else 0.0)
            after.append(r.after if r.after is not None else 0.0)
        self.bars = QBarSeries()
        self.bars.append(before)
        self.bars.append(after)
        c.addSeries(self.bars)
        x = QBarCategoryAxis()
        x.append([short_label(r.label) for r in rows])
        y = QValueAxis()
        y.setRange(0, 1)
        y.setTickCount(6)
        y.setLabelFormat("%.1f")
        c.addAxis(x, Qt.AlignmentFlag.AlignBottom)
        c.addAxis(y, Qt.AlignmentFlag.AlignLeft)
        self.bars.attachAxis(x)
        self.bars.attachAxis(y)

    def values(self) -> list[list[float]]:
        """[before values, after values] as drawn."""
        if self.bars is None:
            return []
        return [[s.at(i) for i in range(s.count())] for s in self.bars.barSets()]
