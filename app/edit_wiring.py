"""Wires the mask correction tools into a main window: the Tools toolbar (one checkable
button per tool, brush size, wand tolerance, speck area, category dropdown), and the named
actions (shortcuts in resources/shortcuts.json) to `EditCommands` and `CategoryCommands`.

    window.edits = install_edit_tools(window)
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QLabel, QMainWindow, QSpinBox, QToolBar

from app.canvas.tools.base import MAX_RADIUS, MIN_RADIUS, CanvasTool
from app.canvas.tools.box_mask import BoxMaskTool
from app.canvas.tools.brush import BrushTool, EraserTool
from app.canvas.tools.click_mask import ClickMaskTool
from app.canvas.tools.keypoint import KeypointTool
from app.canvas.tools.pick import PickTool
from app.canvas.tools.shapes import BoxGrabCutTool, PolygonTool
from app.canvas.tools.wand import MagicWandTool
from app.controllers.edit_commands import EditCommands
from app.panels.category_box import CategoryCommands
from app.panels.category_suggestions import SuggestionCommands

#: Tool action name → tool class (None: plain selection).
TOOL_ACTIONS: dict[str, type[CanvasTool] | None] = {
    "tool_select": None, "tool_brush": BrushTool, "tool_eraser": EraserTool,
    "tool_polygon": PolygonTool, "tool_grabcut": BoxGrabCutTool, "tool_wand": MagicWandTool,
    "tool_boxmask": BoxMaskTool, "tool_pick": PickTool, "tool_clickmask": ClickMaskTool,
    "tool_keypoint": KeypointTool,
}
#: `[` and `]` scale the brush by this factor.
SIZE_STEP = 1.25

TOOLBAR_TEXT = {"tool_select": "Select", "tool_brush": "Brush", "tool_eraser": "Eraser",
                "tool_polygon": "Polygon", "tool_grabcut": "GrabCut",
                "tool_wand": "Wand", "tool_boxmask": "Box→Mask", "tool_pick": "Pick",
                "tool_clickmask": "SAM", "tool_keypoint": "Keypoints",
                "fill_holes": "Fill Holes",
                "remove_specks": "Specks", "split_instance": "Split",
                "merge_instances": "Merge", "undo": "Undo", "redo": "Redo"}


@dataclass
class EditTools:
    """What `install_edit_tools` made (tests and the window reach the parts through it)."""

    commands: EditCommands
    categories: CategoryCommands
    tools: dict[str, CanvasTool]  # action name → tool
    toolbar: QToolBar
    brush_size: QSpinBox
    tolerance: QSpinBox
    speck_area: QSpinBox
    suggestions: SuggestionCommands

    def tool(self, name: str) -> CanvasTool | None:
        return self.tools.get(f"tool_{name}")


def _spin(low: int, high: int, value: int, suffix: str, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(suffix)
    spin.setToolTip(tip)
    spin.setKeyboardTracking(False)
    return spin


def install_edit_tools(window: QMainWindow) -> EditTools:
    a = window.actions
    edits = EditCommands(window.controller, window.canvas, window.image_list, window.runner,
                         window.feedback, window.saved_label, parent=window)
    categories = CategoryCommands(edits, parent=window)
    tools = {name: cls(edits) for name, cls in TOOL_ACTIONS.items() if cls is not None}

    group = QActionGroup(window)
    group.setExclusive(True)
    for name in TOOL_ACTIONS:
        a[name].setCheckable(True)
        group.addAction(a[name])
        a[name].toggled.connect(
            lambda on, n=name: on and window.canvas.set_tool(tools.get(n)))
    a["tool_select"].setChecked(True)
    window.controller.project_opened.connect(
        lambda: window.controller.read_only and a["tool_select"].setChecked(True))

    opts = edits.options
    size = _spin(int(MIN_RADIUS), int(MAX_RADIUS), round(opts.brush_radius), " px",
                 "Brush and eraser radius in image pixels ([ and ], or Ctrl+wheel)")
    tolerance = _spin(0, 255, opts.wand_tolerance, "",
                      "Magic wand: how far (per colour channel) a pixel may be from the one "
                      "clicked")
    specks = _spin(1, 1_000_000, opts.speck_area, " px",
                   "Remove Specks drops the parts of a mask smaller than this (never its "
                   "largest part)")
    size.valueChanged.connect(lambda v: setattr(opts, "brush_radius", float(v)))
    tolerance.valueChanged.connect(lambda v: setattr(opts, "wand_tolerance", v))
    specks.valueChanged.connect(lambda v: setattr(opts, "speck_area", v))

    def radius_changed() -> None:
        size.blockSignals(True)
        size.setValue(round(opts.brush_radius))
        size.blockSignals(False)

    edits.on_brush_radius_changed = radius_changed
    brush = tools["tool_brush"]
    a["brush_smaller"].triggered.connect(lambda: brush.resize(1 / SIZE_STEP))
    a["brush_larger"].triggered.connect(lambda: brush.resize(SIZE_STEP))
    a["fill_holes"].triggered.connect(edits.fill_holes)
    a["remove_specks"].triggered.connect(edits.remove_specks)
    a["split_instance"].triggered.connect(edits.split)
    a["merge_instances"].triggered.connect(edits.merge)
    a["undo"].triggered.connect(edits.undo)
    a["redo"].triggered.connect(edits.redo)
    a["new_category"].triggered.connect(lambda: categories.new_category())
    edits.ask_first_category = categories.first_category  # a finished shape is not lost
    a["rename_category"].triggered.connect(categories.rename_category)
    a["merge_categories"].triggered.connect(categories.merge_categories)
    a["delete_category"].triggered.connect(categories.delete_category)
    a["pick_category"].triggered.connect(categories.focus_box)
    a["category_keypoints"].triggered.connect(categories.keypoint_schema)
    keypoint_tool = tools["tool_keypoint"]
    window.canvas.selection_changed.connect(
        lambda _ids: window.canvas.tool is keypoint_tool and keypoint_tool.describe())
    a["tool_keypoint"].toggled.connect(lambda on: on and keypoint_tool.describe())

    def repredict() -> None:  # a decided suggestion's images are predicted again
        model = getattr(window, "model", None)
        if model is not None:
            model.predictions.lookahead()

    suggestions = SuggestionCommands(window.controller, window.feedback.say,
                                     window.feedback.report, repredict, parent=window)
    a["category_suggestions"].triggered.connect(suggestions.show)
    for k in range(1, 10):
        a[f"category_{k}"].triggered.connect(lambda _=False, k=k: categories.choose_number(k))

    bar = QToolBar("Tools", window)
    bar.setObjectName("tools_toolbar")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for name, text in TOOLBAR_TEXT.items():
        a[name].setIconText(text)
    for name in TOOL_ACTIONS:
        bar.addAction(a[name])
    bar.addWidget(QLabel("  Size "))
    bar.addWidget(size)
    bar.addWidget(QLabel("  Tol. "))
    bar.addWidget(tolerance)
    bar.addSeparator()
    bar.addWidget(QLabel(" Category "))
    bar.addWidget(categories.box)
    bar.addSeparator()
    for name in ("fill_holes", "remove_specks"):
        bar.addAction(a[name])
    bar.addWidget(specks)
    for name in ("split_instance", "merge_instances", None, "undo", "redo"):
        bar.addSeparator() if name is None else bar.addAction(a[name])
    window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    categories.refresh()
    return EditTools(edits, categories, tools, bar, size, tolerance, specks, suggestions)
