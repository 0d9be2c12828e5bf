"""Menus and the toolbar, built from the named actions."""

from __future__ import annotations

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
    """File, Edit, Image, View, Help. Returns the (empty) File ▸ Recent menu."""
    bar = window.menuBar()
    file = bar.addMenu("&File")
    file.addAction(a["open_folder"])
    file.addAction(a["open_project"])
    recent = file.addMenu("Open &Recent")
    file.addSeparator()
    file.addAction(a["import_coco"])
    file.addAction(a["export_coco"])
    file.addSeparator()
    saved = file.addAction("Every change is saved as you make it")
    saved.setEnabled(False)
    file.addSeparator()
    file.addAction(a["quit"])

    edit = bar.addMenu("&Edit")
    for name in ("accept_selected", "accept_all", "delete_selected", None,
                 "select_all_instances", "clear_selection"):
        edit.addSeparator() if name is None else edit.addAction(a[name])

    image = bar.addMenu("&Image")
    for name in ("next_image", "previous_image", None, "mark_reviewed", None, "focus_search"):
        image.addSeparator() if name is None else image.addAction(a[name])

    view = bar.addMenu("&View")
    for name in ("toggle_predictions", None, "zoom_in", "zoom_out", "zoom_fit", "zoom_actual"):
        view.addSeparator() if name is None else view.addAction(a[name])
    view.addSeparator()
    for dock in docks:
        view.addAction(dock.toggleViewAction())

    help_ = bar.addMenu("&Help")
    help_.addAction(a["show_shortcuts"])
    return recent


def build_toolbar(window: QMainWindow, a: dict[str, QAction]) -> tuple[QToolBar, QSlider]:
    """The review toolbar and its mask-opacity slider (0–100)."""
    tools = QToolBar("Review", window)
    tools.setObjectName("review_toolbar")
    tools.setMovable(False)
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for name in ("open_folder", None, "accept_all", "accept_selected", "delete_selected",
                 "mark_reviewed", None, "toggle_predictions"):
        tools.addSeparator() if name is None else tools.addAction(a[name])
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setFixedWidth(120)
    slider.setToolTip("Opacity of the mask fills")
    box = QWidget()
    box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
    row = QHBoxLayout(box)
    row.setContentsMargins(8, 0, 8, 0)
    row.addWidget(QLabel("Mask opacity"))
    row.addWidget(slider)
    tools.addWidget(box)
    tools.addSeparator()
    for name in ("zoom_fit", "zoom_actual"):
        tools.addAction(a[name])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools)
    return tools, slider
