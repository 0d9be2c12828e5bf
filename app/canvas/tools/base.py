"""What every canvas tool is, and what it may ask of the window (`ToolHost`).

A tool turns mouse gestures on the canvas into one call on the current image's
`mrcnn.editing.document.ImageDocument` when the gesture ends (mouse release, polygon closed, GrabCut
done). The mask work itself is `mrcnn.editing.mask_tools` (and `image_tools`, for the tools that
read the image); a tool only collects points, shows a preview, and commits through
`ToolHost.commit`, which returns once the step is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import Qt

if TYPE_CHECKING:
    from app.canvas.canvas import CanvasView
    from app.worker import Job, JobRunner
    from mrcnn.editing.document import ImageDocument

Point = tuple[float, float]


@dataclass
class ToolOptions:
    """Settings the tools share (shown on the tool toolbar)."""

    brush_radius: float = 8.0  # image pixels
    wand_tolerance: int = 24  # per colour channel, 0-255
    speck_area: int = 64  # Remove Specks drops parts smaller than this (pixels)


MIN_RADIUS, MAX_RADIUS = 1.0, 500.0


class ToolHost(Protocol):
    """What a tool may use (implemented by `app.controllers.edit_commands.EditCommands`)."""

    canvas: CanvasView
    options: ToolOptions

    runner: JobRunner

    def document(self) -> ImageDocument | None: ...
    def selected_one(self, purpose: str, required: bool = True) -> int | None: ...
    def new_category_id(self, *, ask: bool = False) -> int | None: ...
    def category_color(self, category_id: int) -> str: ...
    def category_name(self, category_id: int) -> str: ...
    def category_for_model_name(self, name: str) -> int | None: ...
    def box_mask_job(self, image_id: int, box: tuple[float, float, float, float]
                     ) -> Job | None: ...
    def sam_segment_job(self, image_id: int, clicks: tuple, previous, refining=None
                        ) -> Job | None: ...
    def sam_missing_message(self) -> str: ...
    def commit(self, title: str, edit: Callable[[ImageDocument], Any]) -> Any: ...
    def gesture_started(self) -> None: ...
    def gesture_ended(self) -> None: ...
    def select_new(self, instance_id: int | None) -> None: ...
    def say(self, message: str, ms: int = 5000) -> None: ...
    def report(self, message: str) -> None: ...
    def brush_radius_changed(self) -> None: ...


class CanvasTool:
    """A tool: handlers get Qt events (viewport coordinates) and return True when used.
    `cancel` drops a gesture in progress and every item the tool put in the scene."""

    name = "select"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, host: ToolHost):
        self.host = host
        self.canvas = host.canvas

    def point(self, event) -> Point:
        """The event's position in image coordinates (pixel corners, not rounded)."""
        p = self.canvas.scene_pos(event.position())
        return (p.x(), p.y())

    def screen_px(self) -> float:
        """How many image pixels one screen pixel is at the current zoom."""
        return 1.0 / max(1e-6, self.canvas.scale_factor)

    def mouse_press(self, event) -> bool:
        return False

    def mouse_move(self, event) -> bool:
        return False

    def mouse_release(self, event) -> bool:
        return False

    def mouse_double_click(self, event) -> bool:
        return False

    def wheel(self, event) -> bool:
        return False

    def key_press(self, event) -> bool:
        return False

    def wants_key(self, event) -> bool:
        """Whether this key press belongs to the tool now, ahead of the window's shortcuts."""
        return False

    def cancel(self) -> None:
        pass

    def pointer_left(self) -> None:
        pass


def is_left(event) -> bool:
    return event.button() == Qt.MouseButton.LeftButton


def edit_mode(modifiers) -> str:
    """Shift adds to the selected instance, Alt (or Ctrl) cuts from it; else a new one."""
    mods = Qt.KeyboardModifier
    if modifiers & mods.ShiftModifier:
        return "add"
    if modifiers & (mods.AltModifier | mods.ControlModifier):
        return "cut"
    return "new"
