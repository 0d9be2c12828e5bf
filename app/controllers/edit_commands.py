"""Mask correction commands: a tool's gesture or an Edit-menu action → one call on the
current image's `mrcnn.editing.document.ImageDocument` → one durable undo step → "All changes
saved".

`EditCommands` is also the `ToolHost` the canvas tools use (`app/canvas/tools/base.py`). Errors
from `mrcnn` become a message (`Feedback.guard`), never a crash, and change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

from app.canvas.canvas import CanvasView
from app.canvas.render import InstanceShape, mask_shape
from app.canvas.tools.base import ToolOptions
from app.controllers.commands import Feedback
from app.controllers.model_jobs import box_mask_job
from app.controllers.project import DocumentController, InstanceRow
from app.panels.image_list import ImageListWidget
from app.text import plural
from app.worker import Job, JobRunner
from mrcnn.editing import mask_tools
from mrcnn.editing.document import ImageDocument
from mrcnn.serving.named_predictions import category_for_box
from mrcnn.serving.refinement import refinement_for

if TYPE_CHECKING:
    from app.controllers.model import ModelController
    from app.controllers.sam import SamController

log = logging.getLogger(__name__)

SAVED_TEXT = "All changes saved"
EDITING_TEXT = "Editing… (saved when you let go)"


class EditCommands(QObject):
    """The current image's edits: tool gestures, mask actions, categories, undo and redo."""

    def __init__(self, controller: DocumentController, canvas: CanvasView,
                 image_list: ImageListWidget, runner: JobRunner, feedback: Feedback,
                 saved_label: QLabel, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.canvas = canvas
        self.images = image_list
        self.runner = runner
        self.feedback = feedback
        self.saved_label = saved_label
        self.options = ToolOptions()
        self.current_category: int | None = None  # for new instances
        #: told when the user picks the category for new instances (the window keeps it
        #: per project: `set_current_category`)
        self.on_current_category_changed: Callable[[int], None] = lambda _id: None
        #: asks the user to name the project's first category; its id (None: not given)
        self.ask_first_category: Callable[[], int | None] | None = None
        self._select_pending: int | None = None
        self.on_brush_radius_changed: Callable[[], None] = lambda: None
        #: the window's model (set once it exists): Box → Mask asks it
        self.model: ModelController | None = None
        #: the window's SAM-family model (set once it exists): Click → Mask asks it
        self.sam: SamController | None = None
        canvas.shape_provider = self.shape_for
        canvas.image_shown.connect(lambda _id: self._select_if_shown())
        controller.instances_changed.connect(lambda _id: self._select_if_shown())

    # ---------------------------------------------------------------- host for the tools
    def document(self) -> ImageDocument | None:
        """The shown image's document (None, with a message, when there is none to edit)."""
        image_id = self.canvas.image_id
        if image_id is None or not self.canvas.is_loaded:
            return None
        with self.feedback.guard("Cannot edit"):
            return self.controller.document(image_id)
        return None

    def selected_one(self, purpose: str, required: bool = True) -> int | None:
        ids = self.canvas.selected_ids()
        if len(ids) == 1:
            return ids[0]
        if ids:
            self.say(f"Select only one instance to {purpose} ({len(ids)} are selected)")
        elif required:
            self.say(f"Select an instance to {purpose} first")
        return None

    def set_current_category(self, category_id: int) -> None:
        """The category new instances get from now on (remembered for the project)."""
        self.current_category = category_id
        self.on_current_category_changed(category_id)

    def new_category_id(self, *, ask: bool = False) -> int | None:
        """The category a new instance gets: the one chosen last, else the first one. In a
        project without categories, `ask` (a shape is finished and would be lost) asks the
        user to name one, as labelme asks a label for each shape; otherwise None, with a
        message."""
        cats = self.controller.project.categories() if self.controller.is_open else []
        ids = [c.id for c in cats]
        if self.current_category in ids:
            return self.current_category
        if ids:
            return ids[0]
        if ask and self.ask_first_category is not None and self.controller.is_open:
            chosen = self.ask_first_category()
            if chosen is not None:
                return chosen
            self.say("No category named: nothing was added (Edit ▸ New Category… makes one)",
                     8000)
            return None
        self.say("Make a category first: Edit ▸ New Category…", 8000)
        return None

    def category_color(self, category_id: int) -> str:
        return self.controller.category(category_id).color

    def category_name(self, category_id: int) -> str:
        return self.controller.category(category_id).name

    def category_for_model_name(self, name: str) -> int | None:
        """The category a Box → Mask answer named `name` gets (`category_for_box`)."""
        chosen = self.new_category_id()
        if not self.controller.is_open:
            return None
        return category_for_box(self.controller.project, name, chosen)

    def box_mask_job(self, image_id: int, box: tuple[float, float, float, float]
                     ) -> Job | None:
        """Ask the loaded model for its mask in `box` on an image (a job in the model lane,
        ahead of predictions), refined with image edges when the project's refinement is on
        for this model; None when no model is ready."""
        model = self.model
        if model is None or model.state != "ready":
            return None
        path = self.controller.image_file(self.controller.image(image_id))
        refine = (refinement_for(self.controller.project, model.info.key)
                  if model.info is not None else None)
        return model.submit(box_mask_job, model.session, image_id, path, box, refine,
                            name="box → mask", priority=2)

    def sam_segment_job(self, image_id: int, clicks: tuple, previous, refining=None
                        ) -> Job | None:
        """The SAM model's answer to clicks on an image (a job), refining the mask
        `refining` when given; None without a model."""
        if self.sam is None:
            return None
        return self.sam.segment(image_id, clicks, previous, refining)

    def sam_missing_message(self) -> str:
        return self.sam.missing_message() if self.sam is not None else ""

    def commit(self, title: str, edit: Callable[[ImageDocument], Any]) -> Any:
        """Run one edit on the shown image's document; returns its result once it is
        durable (None when it failed: the message is shown and nothing changed)."""
        doc = self.document()
        if doc is None:
            return None
        with self.feedback.guard(f"Cannot {title.lower()}"):
            result = edit(doc)
            self.saved_label.setText(SAVED_TEXT)
            if doc.undo_label:
                note = (" — this image is reviewed: the change is in the training data"
                        if doc.status == "reviewed" else "")
                label = doc.undo_label
                self.say(f"{label[:1].upper()}{label[1:]}: saved{note}")
            return result
        return None

    def gesture_started(self) -> None:
        self.saved_label.setText(EDITING_TEXT)

    def gesture_ended(self) -> None:
        self.saved_label.setText(SAVED_TEXT)

    def select_new(self, instance_id: int | None) -> None:
        """Select an instance just made, as soon as the canvas shows it."""
        self._select_pending = instance_id
        self._select_if_shown()

    def _select_if_shown(self) -> None:
        iid = self._select_pending
        item = self.canvas.instance_items().get(iid) if iid is not None else None
        if item is not None:
            self._select_pending = None
            self.canvas.clear_selection()
            item.setSelected(True)

    def say(self, message: str, ms: int = 5000) -> None:
        self.feedback.say(message, ms)

    def report(self, message: str) -> None:
        self.feedback.report(message)

    def brush_radius_changed(self) -> None:
        self.say(f"Brush size: {self.options.brush_radius:.0f} px", 2000)
        self.on_brush_radius_changed()

    def shape_for(self, image_id: int, row: InstanceRow) -> InstanceShape | None:
        """The shape of a mask the document has just written (no decoding, no waiting)."""
        doc = self.controller.documents.peek(image_id)
        mask = doc.cached_mask(row.id, row.instance.rle) if doc is not None else None
        if mask is None:
            return None
        return mask_shape(row.id, mask, row.instance.bbox, row.color)

    # ---------------------------------------------------------------- mask actions
    def _each_selected(self, title: str, tool, *args, **kwargs) -> None:
        ids = self.canvas.selected_ids()
        if not ids:
            self.say(f"Select instances to {title.lower()}")
            return
        changed = self.commit(title, lambda d: sum(
            d.apply(i, tool, *args, label=title.lower(), **kwargs) is not None for i in ids))
        if changed is not None:
            self.say(f"{title}: {changed} of {plural(len(ids), 'instance')} changed")

    def fill_holes(self) -> None:
        self._each_selected("Fill holes", mask_tools.fill_holes)

    def remove_specks(self) -> None:
        self._each_selected("Remove specks", mask_tools.remove_specks, self.options.speck_area)

    def split(self) -> None:
        iid = self.selected_one("split")
        if iid is None:
            return
        ids = self.commit("Split", lambda d: d.split_instance(iid))
        if ids is not None:
            self.say(f"Split into {len(ids)} instances" if len(ids) > 1
                     else "That instance is in one piece; nothing to split")

    def merge(self) -> None:
        ids = self.canvas.selected_ids()
        if len(ids) < 2:
            self.say("Select two or more instances to merge")
            return
        # the library keeps the largest one: say which category the merged instance has
        kept = self.commit("Merge", lambda d: d.instance(d.merge_instances(ids)))
        if kept is not None:
            category = self.controller.category(kept.category_id).name
            self.say(f"Merged {len(ids)} instances into one ({category}, the category of "
                     "the largest)")

    # ---------------------------------------------------------------- undo and redo
    def undo(self) -> None:
        self._step("undo")

    def redo(self) -> None:
        self._step("redo")

    def _undo_review_just_left(self, image_id: int | None) -> bool:
        """Reviewing moves on to the next image: Undo right after that (nothing else done
        since) goes back and undoes the review, where a person expects it."""
        rid = self.controller.last_reviewed
        doc = self.controller.documents.peek(rid) if rid is not None else None
        if rid is None or rid == image_id or doc is None or doc.undo_label != "mark reviewed":
            return False
        self.controller.last_reviewed = None
        self.images.select_image(rid)
        with self.feedback.guard("Cannot undo"):
            doc.undo()
            self.saved_label.setText(SAVED_TEXT)
            self.say(f"Undid mark reviewed: {Path(self.controller.image(rid).path).name} "
                     "is back in review")
        return True

    def _step(self, which: str) -> None:
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()  # a half-drawn shape is not a step
        image_id = self.canvas.image_id
        doc = self.controller.documents.peek(image_id) if image_id is not None else None
        if doc is None or not (doc.can_undo if which == "undo" else doc.can_redo):
            if which == "undo" and self._undo_review_just_left(image_id):
                return
            self.say(f"Nothing to {which} on this image")
            return
        with self.feedback.guard(f"Cannot {which}"):
            change = doc.undo() if which == "undo" else doc.redo()
            self.saved_label.setText(SAVED_TEXT)
            if change is not None:
                self.say(f"{'Undid' if which == 'undo' else 'Redid'} {change.label}")
