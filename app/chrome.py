"""Menus and the toolbar, built from the named actions."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QSlider,
    QToolBar,
    QWidget,
)


def build_menus(window: QMainWindow, a: dict[str, QAction], docks: list[QDockWidget]) -> QMenu:
    """File, Edit, Image, Model, View, Help. Returns the (empty) File ▸ Recent menu."""
    bar = window.menuBar()
    file = bar.addMenu("&File")
    file.addAction(a["open_folder"])
    file.addAction(a["open_url"])
    file.addAction(a["open_project"])
    recent = file.addMenu("Open &Recent")
    file.addAction(a["unreadable_files"])
    file.addSeparator()
    file.addAction(a["import_coco"])
    file.addAction(a["export_coco"])
    file.addSeparator()
    saved = file.addAction("Every change is saved as you make it")
    saved.setEnabled(False)
    file.addSeparator()
    file.addAction(a["quit"])

    edit = bar.addMenu("&Edit")
    for name in ("undo", "redo", None,
                 "accept_selected", "accept_all", "accept_above_threshold", "delete_selected",
                 None, "fill_holes", "remove_specks", "split_instance", "merge_instances",
                 None, "new_category", "rename_category", "merge_categories",
                 "delete_category", "category_keypoints", "pick_category",
                 "category_suggestions", None,
                 "select_all_instances", "clear_selection"):
        edit.addSeparator() if name is None else edit.addAction(a[name])

    tools_menu = bar.addMenu("&Tools")
    for name in ("tool_select", "tool_brush", "tool_eraser", "tool_polygon", "tool_grabcut",
                 "tool_wand", "tool_boxmask", "tool_pick", "tool_clickmask", "tool_keypoint",
                 None,
                 "brush_smaller",
                 "brush_larger"):
        tools_menu.addSeparator() if name is None else tools_menu.addAction(a[name])

    image = bar.addMenu("&Image")
    for name in ("next_image", "previous_image", None, "mark_reviewed", "mark_not_reviewed",
                 "move_split",
                 None, "focus_search"):
        image.addSeparator() if name is None else image.addAction(a[name])

    model = bar.addMenu("&Model")
    for name in ("predict_image", "predict_unreviewed", "tiled_prediction", None,
                 "accept_above_threshold", None,
                 "fine_tune", "show_training", "next_uncertain", "check_refinement", None,
                 "find_errors", "find_label_suspects", "show_errors", None,
                 "load_checkpoint", "download_coco", "choose_sam", None,
                 "category_suggestions"):
        model.addSeparator() if name is None else model.addAction(a[name])

    view = bar.addMenu("&View")
    for name in ("toggle_predictions", None, "zoom_in", "zoom_out", "zoom_fit", "zoom_actual"):
        view.addSeparator() if name is None else view.addAction(a[name])
    view.addSeparator()
    for dock in docks:
        view.addAction(dock.toggleViewAction())

    help_ = bar.addMenu("&Help")
    help_.addAction(a["show_shortcuts"])
    return recent


#: Shorter texts for toolbar buttons (menus keep the full ones).
TOOLBAR_TEXT = {"predict_image": "Predict", "predict_unreviewed": "Predict All",
                "accept_all": "Accept All", "accept_above_threshold": "Accept ≥ Threshold",
                "accept_selected": "Accept Selected", "delete_selected": "Delete",
                "mark_reviewed": "Reviewed ▸ Next", "toggle_predictions": "Predictions",
                "zoom_fit": "Fit", "zoom_actual": "100%"}


@dataclass
class ToolbarControls:
    toolbar: QToolBar
    opacity: QSlider  # mask fill opacity, 0–100
    threshold: QSlider  # score threshold for pending predictions, 0–100 (%)
    threshold_value: QLabel  # shows the threshold as a score ("0.50")


def _slider(tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setFixedWidth(110)
    slider.setToolTip(tip)
    return slider


def _labelled(*widgets: QWidget) -> QWidget:
    box = QWidget()
    box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
    row = QHBoxLayout(box)
    row.setContentsMargins(8, 0, 8, 0)
    for w in widgets:
        row.addWidget(w)
    return box


def build_toolbar(window: QMainWindow, a: dict[str, QAction]) -> ToolbarControls:
    """The review toolbar with the score-threshold and mask-opacity sliders."""
    tools = QToolBar("Review", window)
    tools.setObjectName("review_toolbar")
    tools.setMovable(False)
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for name, text in TOOLBAR_TEXT.items():
        a[name].setIconText(text)
    for name in ("open_folder", None, "predict_image", "predict_unreviewed", None,
                 "accept_all", "accept_above_threshold", "accept_selected", "delete_selected",
                 "mark_reviewed", None, "toggle_predictions", None, "fine_tune"):
        tools.addSeparator() if name is None else tools.addAction(a[name])
    threshold = _slider("Hide pending predictions scoring below this (the model is not "
                        "run again)")
    value = QLabel("0.00")
    value.setMinimumWidth(value.fontMetrics().horizontalAdvance("0.00") + 4)
    tools.addWidget(_labelled(QLabel("Score ≥"), threshold, value))
    tools.addSeparator()
    opacity = _slider("Opacity of the mask fills")
    tools.addWidget(_labelled(QLabel("Opacity"), opacity))
    tools.addSeparator()
    for name in ("zoom_fit", "zoom_actual"):
        tools.addAction(a[name])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools)
    return ToolbarControls(tools, opacity, threshold, value)
