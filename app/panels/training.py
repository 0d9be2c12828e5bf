"""The Training panel: fine-tune options, a live run (progress, time left, loss curves and
learning rate, Cancel) and the result (before/after table and bars). Shows what
`FinetuneController` tells it; holds no logic of its own."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.panels.charts import LossChartView, MetricsChartView
from app.panels.progress import format_eta
from app.theme import BAD, GOOD
from mrcnn.store.versions import MetricRow
from mrcnn.training.events import StepEvent
from mrcnn.training.launcher import DEVICES, PRESETS, Choices, FinetuneOptions

START_TEXT = {"auto": "Auto (active version, else COCO weights, else scratch)",
              "active": "Active version", "coco": "COCO weights",
              "scratch": "Scratch (random init)"}
ACTIVATE_TEXT = {"if-better": "When its mask AP is higher", "always": "Always"}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


class TrainingPanel(QWidget):
    """Options, progress, charts, results."""

    start_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.start_button = QPushButton("Fine-tune")
        self.start_button.clicked.connect(self.start_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.status = QLabel("Review images, then fine-tune the model on them.")
        self.status.setWordWrap(True)
        #: what one click would run: "r50v2 from COCO weights · 384 px · ... on this CPU"
        self.recipe = QLabel()
        self.recipe.setObjectName("recipe_line")
        self.recipe.setWordWrap(True)
        self.recipe.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m iterations")
        self.eta = QLabel()
        self.eta.setMinimumWidth(self.eta.fontMetrics().horizontalAdvance("00 min 00 s left"))

        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        # 0 is "auto": the one-click recipe decides
        self.iterations = QSpinBox(minimum=0, maximum=1_000_000, singleStep=50)
        self.iterations.setSpecialValueText("auto")
        self.size = QSpinBox(minimum=0, maximum=2048, singleStep=32, suffix=" px")
        self.size.setSpecialValueText("auto")
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.start_from = QComboBox()
        for key, text in START_TEXT.items():
            self.start_from.addItem(text, key)
        self.activate = QComboBox()
        for key, text in ACTIVATE_TEXT.items():
            self.activate.addItem(text, key)
        for box in (self.preset, self.device, self.start_from, self.activate):
            # long choices elide instead of widening the column past the dock
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(12)
        self.options_box = QGroupBox("Options")
        form = QFormLayout(self.options_box)
        form.addRow("Preset", self.preset)
        form.addRow("Iterations", self.iterations)
        form.addRow("Image size", self.size)
        form.addRow("Device", self.device)
        form.addRow("Start from", self.start_from)
        form.addRow("Make it active", self.activate)
        #: why some choices are off (the options that cannot run with the others)
        self.options_note = QLabel()
        self.options_note.setWordWrap(True)
        self.options_note.setStyleSheet("color: palette(placeholder-text);")

        self.loss_chart = LossChartView()
        self.metrics_chart = MetricsChartView()
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Metric (val)", "Before", "After", "Change"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for j in (1, 2, 3):  # the numbers are never cut: the metric's name wraps instead
            header.setSectionResizeMode(j, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(True)
        #: what the scores rest on ("val: 3 images, 24 instances") and, when tiny, a warning
        self.val_note = QLabel()
        self.val_note.setWordWrap(True)
        results = QWidget()
        rcol = QHBoxLayout(results)
        rcol.setContentsMargins(0, 0, 0, 0)
        left = QVBoxLayout()
        left.addWidget(self.val_note)
        left.addWidget(self.table, 1)
        rcol.addLayout(left, 2)
        rcol.addWidget(self.metrics_chart, 3)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.loss_chart, "Loss")
        self.tabs.addTab(results, "Before / after")

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.eta)
        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 4, 0)
        column.addLayout(buttons)
        column.addWidget(self.recipe)
        column.addWidget(self.status)
        column.addLayout(bar)
        column.addWidget(self.options_box)
        column.addWidget(self.options_note)
        column.addStretch(1)
        # a low dock scrolls the controls instead of drawing the notes over each other
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(400)
        layout = QHBoxLayout(self)  # controls left, charts right (a wide, low dock)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(scroll)
        layout.addWidget(self.tabs, 1)
        self.set_running(False)

    # ---------------------------------------------------------------- options
    def set_options(self, o: FinetuneOptions) -> None:
        self.preset.setCurrentText(o.preset)
        self.iterations.setValue(o.max_iters or 0)
        self.size.setValue(o.size or 0)
        self.device.setCurrentText(o.device)
        self.start_from.setCurrentIndex(max(0, self.start_from.findData(o.start)))
        self.activate.setCurrentIndex(max(0, self.activate.findData(o.activate)))

    def set_choices(self, choices: Choices) -> None:
        """Turn off the presets and starting points that cannot run with the other choices;
        each says why in its tooltip, and the note under the options lists them."""
        notes = []
        for box, option, key in ((self.preset, "preset", None), (self.start_from, "start", 1)):
            model = box.model()
            for i in range(box.count()):
                value = box.itemText(i) if key is None else box.itemData(i)
                why = choices.why_not(option, value)
                item = model.item(i)
                item.setEnabled(why is None)
                item.setToolTip(f"Off: {why}" if why else "")
                if why:
                    notes.append(f"{box.itemText(i)} is off: {why}.")
        self.options_note.setText("\n".join(notes))
        self.options_note.setVisible(bool(notes))

    def choice_enabled(self, box: QComboBox, index: int) -> bool:
        return box.model().item(index).isEnabled()

    def read_options(self, base: FinetuneOptions) -> FinetuneOptions:
        """`base` with what the user set here."""
        from dataclasses import replace

        return replace(base, preset=self.preset.currentText(),
                       max_iters=self.iterations.value() or None,
                       size=self.size.value() or None, device=self.device.currentText(),
                       start=self.start_from.currentData(), activate=self.activate.currentData())

    # ---------------------------------------------------------------- a run
    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.options_box.setEnabled(not running)
        self.progress.setVisible(running or self.progress.value() > 0)
        self.eta.setVisible(running)

    def run_started(self, max_iters: int) -> None:
        self.loss_chart.reset(max_iters)
        self.progress.setRange(0, max(1, max_iters))
        self.progress.setValue(0)
        self.eta.setText("")
        self.tabs.setCurrentWidget(self.loss_chart)
        self.set_running(True)

    def show_step(self, step: StepEvent) -> None:
        self.progress.setMaximum(step.max_iters)
        self.progress.setValue(step.iteration)
        self.eta.setText(f"{format_eta(step.eta_seconds)} left")
        self.loss_chart.add_step(step.to_json())

    def set_recipe(self, text: str, *, running: bool = False) -> None:
        """The run one click would start (or, `running`, the one under way), in one line
        ("" hides it)."""
        self.recipe.setText(f"{'This run' if running else 'Next run'}: {text}" if text else "")
        self.recipe.setVisible(bool(text))

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def show_comparison(self, rows: list[MetricRow], before_name: str, after_name: str, *,
                        val_text: str = "", warning: str = "") -> None:
        """The before/after table; `val_text` ("val: 3 images, 24 instances") says what the
        scores rest on, `warning` that they are mostly noise."""
        self.val_note.setText(f"Scored on {val_text.removeprefix('val: ')} of the validation "
                              "split." if val_text else "")
        if warning:
            self.val_note.setText(f"{self.val_note.text()} ⚠ {warning}.".strip())
        self.val_note.setStyleSheet(f"color: {BAD.name()};" if warning else "")
        self.val_note.setToolTip(warning)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            delta = "" if r.delta is None else f"{r.delta:+.3f}"
            for j, text in enumerate((r.label, _fmt(r.before), _fmt(r.after), delta)):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if j == 3 and r.delta is not None and r.delta != 0:
                    item.setForeground(GOOD if r.delta > 0 else BAD)
                self.table.setItem(i, j, item)
        # what the scores rest on is said above the table (val_note)
        self.table.setHorizontalHeaderLabels(["Metric (val)", before_name, after_name,
                                              "Change"])
        self.table.resizeRowsToContents()
        self.metrics_chart.show_rows(rows, before_name, after_name)
        self.tabs.setCurrentIndex(1)
