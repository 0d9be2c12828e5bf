"""Every user command of the window, by name. Names key the shortcuts config and the help."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.shortcuts import ShortcutConfig


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    tip: str
    #: when it is enabled: "" always, "project" with a project open, "editable" with a
    #: project open for writing, "writable" with that and an image shown, "image" with an
    #: image shown
    needs: str = ""
    checkable: bool = False


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_folder", "Open &Folder…", "Open a folder of images (a project is kept "
               "in a hidden .mrcnn-project folder inside it)"),
    ActionSpec("open_url", "Open &URL…", "Open images under a URL (s3://, gs://, az://, "
               "http(s)://); they are read through a local cache, listed as they arrive, and "
               "the project is kept in a local folder"),
    ActionSpec("open_project", "Open &Project…", "Open an existing project folder"),
    ActionSpec("unreadable_files", "Unrea&dable Files…", "List the files of the images "
               "folder that could not be read, and why (they are not in the project)",
               needs="project"),
    ActionSpec("import_coco", "&Import…", "Add labelled data: COCO JSON, YOLO segmentation, "
               "mask PNGs, labelme JSON or Pascal VOC", needs="project"),
    ActionSpec("export_coco", "&Export…", "Write accepted instances as COCO JSON, YOLO "
               "segmentation, mask PNGs, labelme JSON or Pascal VOC", needs="project"),
    ActionSpec("quit", "&Quit", "Close the window (every change is already saved)"),
    ActionSpec("next_image", "&Next Image", "Show the next image in the list", needs="project"),
    ActionSpec("previous_image", "P&revious Image", "Show the previous image in the list",
               needs="project"),
    ActionSpec("mark_reviewed", "Mark &Reviewed and Next",
               "Mark this image reviewed (it becomes training data) and go to the next "
               "unreviewed one in the list",
               needs="writable"),
    ActionSpec("mark_not_reviewed", "Mark &Not Reviewed",
               "Take this image out of the training data (back to review); undoable",
               needs="writable"),
    ActionSpec("move_split", "Move to &Validation",
               "Move this image to the validation split (new model versions are scored on "
               "it) or back to training; undoable", needs="writable"),
    ActionSpec("accept_selected", "&Accept Selected", "Accept the selected predictions",
               needs="writable"),
    ActionSpec("accept_all", "Accept A&ll Predictions",
               "Accept every pending prediction on this image", needs="writable"),
    ActionSpec("delete_selected", "&Delete Selected", "Delete the selected instances",
               needs="writable"),
    ActionSpec("accept_above_threshold", "Accept Abo&ve Threshold",
               "Accept the pending predictions scoring at least the score threshold",
               needs="writable"),
    ActionSpec("predict_image", "&Predict This Image",
               "Run the model on this image now (again, if it was predicted before)",
               needs="writable"),
    ActionSpec("predict_unreviewed", "Predict All &Unreviewed",
               "Run the model on every unreviewed image it has not predicted yet, in the "
               "background (progress and Cancel in the status bar)", needs="editable"),
    ActionSpec("tiled_prediction", "&Tiled Prediction for Large Images",
               "Predict images whose longer side is over 2666 px and twice the model's input in "
               "overlapping tiles at full resolution, plus the whole image for large objects, "
               "so that small objects are found (slower; images already predicted keep their "
               "predictions until predicted again); off: every image whole, resized",
               checkable=True),
    ActionSpec("load_checkpoint", "&Load Model Checkpoint…",
               "Predict with a checkpoint file (.pt) of your choice", needs="editable"),
    ActionSpec("choose_sam", "&Interactive Segmentation Model…",
               "Pick a SAM-family model's encoder and decoder ONNX files for Click → Mask "
               "(nothing is downloaded)"),
    ActionSpec("download_coco", "&Download COCO Weights",
               "Download torchvision's COCO-pretrained weights (about 180 MB) and predict "
               "with them", needs="editable"),
    ActionSpec("check_refinement", "Check Mask &Refinement",
               "Measure on the reviewed validation images whether snapping the loaded model's "
               "masks to image edges (GrabCut, an edge-aware filter) makes them more accurate; "
               "it is turned on for that model only where it does", needs="editable"),
    ActionSpec("find_errors", "Find &Errors on Validation",
               "Predict the reviewed validation images with the loaded model version and list "
               "its false positives, missed instances and poor fits (kept with the version; "
               "what changed since its parent)", needs="project"),
    ActionSpec("find_label_suspects", "Find &Label Suspects",
               "Predict the reviewed images with the loaded model and list the labels a "
               "confident prediction disagrees with (another category, an unlabelled object, "
               "no detection)", needs="project"),
    ActionSpec("show_errors", "E&rrors Panel", "Show the errors of the model versions and "
               "the label suspects", needs="project"),
    ActionSpec("fine_tune", "&Fine-tune", "Train a new model version on the reviewed images "
               "in the background (progress, loss curves and Cancel in the Training panel)",
               needs="editable"),
    ActionSpec("show_training", "&Training Panel", "Show fine-tune options, the running "
               "training and the model versions", needs="project"),
    ActionSpec("next_uncertain", "Next Most &Uncertain",
               "Go to the unreviewed image whose predictions the model is least sure of",
               needs="project"),
    ActionSpec("select_all_instances", "Select All &Instances", "Select every visible instance",
               needs="image"),
    ActionSpec("clear_selection", "Clear Selection", "Select no instance", needs="image"),
    ActionSpec("toggle_predictions", "Show &Predictions", "Show or hide pending predictions",
               needs="image", checkable=True),
    ActionSpec("zoom_in", "Zoom &In", "Zoom in", needs="image"),
    ActionSpec("zoom_out", "Zoom &Out", "Zoom out", needs="image"),
    ActionSpec("zoom_fit", "&Fit to Window", "Show the whole image", needs="image"),
    ActionSpec("zoom_actual", "Actual &Size (100%)", "One image pixel per screen pixel",
               needs="image"),
    ActionSpec("focus_search", "&Search Images", "Search images by file name", needs="project"),
    ActionSpec("show_shortcuts", "&Keyboard Shortcuts", "List every keyboard shortcut"),
    *(  # mask correction (app/edit_wiring.py)
        ActionSpec("tool_select", "&Select Tool", "Click or drag to select instances",
                   checkable=True),
        ActionSpec("tool_brush", "&Brush", "Paint onto the selected instance (nothing selected: "
                   "a new instance); size with [ and ] or Ctrl+wheel", needs="writable",
                   checkable=True),
        ActionSpec("tool_eraser", "&Eraser", "Erase from the selected instance",
                   needs="writable", checkable=True),
        ActionSpec("tool_polygon", "&Polygon", "Click points, close (first point, double-click "
                   "or Enter) for a new instance; hold Shift to add to the selected one, Alt "
                   "to cut from it", needs="writable", checkable=True),
        ActionSpec("tool_grabcut", "Box → &GrabCut", "Drag a box around an object: GrabCut "
                   "makes it a new instance", needs="writable", checkable=True),
        ActionSpec("tool_wand", "Magic &Wand", "Click a region of one colour: a new instance; "
                   "Shift adds it to the selected one, Alt subtracts it", needs="writable",
                   checkable=True),
        ActionSpec("tool_boxmask", "Box → &Mask", "Drag a box around an object: the model "
                   "makes it a new instance with its category (GrabCut when no model is "
                   "loaded)", needs="writable", checkable=True),
        ActionSpec("tool_pick", "&Pick Prediction", "Click an object: the model's predictions "
                   "covering that point, hidden low scores included, best first; click again "
                   "for the next, Enter accepts", needs="writable", checkable=True),
        ActionSpec("tool_clickmask", "&Click → Mask (SAM)", "Click an object: a SAM-family "
                   "model (your ONNX files) makes its mask; Alt+click removes, Enter accepts",
                   needs="writable", checkable=True),
        ActionSpec("tool_keypoint", "&Keypoints", "With an instance selected, click to "
                   "place its next keypoint (Tab skips a name); drag a point to move it, O "
                   "makes it occluded or visible, Delete removes it", needs="writable",
                   checkable=True),
        ActionSpec("brush_smaller", "Smaller Brush", "Make the brush smaller", needs="image"),
        ActionSpec("brush_larger", "Larger Brush", "Make the brush larger", needs="image"),
        ActionSpec("fill_holes", "Fill &Holes", "Fill the holes of the selected instances",
                   needs="writable"),
        ActionSpec("remove_specks", "Remove Spec&ks", "Drop the parts of the selected "
                   "instances smaller than the speck area", needs="writable"),
        ActionSpec("split_instance", "Spli&t into Instances", "Make each disconnected part of "
                   "the selected instance an instance of its own", needs="writable"),
        ActionSpec("merge_instances", "&Merge Selected", "Merge the selected instances into "
                   "one", needs="writable"),
        ActionSpec("undo", "&Undo", "Undo the last change to this image", needs="writable"),
        ActionSpec("redo", "&Redo", "Redo the last undone change to this image",
                   needs="writable"),
        ActionSpec("new_category", "&New Category…", "Add a category (and give it to the "
                   "selected instances)", needs="writable"),
        ActionSpec("rename_category", "Re&name Category…", "Rename a category in the whole "
                   "project (undoable)", needs="writable"),
        ActionSpec("merge_categories", "Merge &Categories…", "Merge one category into another "
                   "in the whole project (undoable)", needs="writable"),
        ActionSpec("delete_category", "&Delete Category…", "Delete a category in the whole "
                   "project; its instances move to another category or are deleted (undoable)",
                   needs="writable"),
        ActionSpec("category_keypoints", "&Keypoint Schema…", "Give a category keypoints "
                   "(names in order and a skeleton; COCO person as a template), or remove "
                   "them (undoable)", needs="writable"),
        ActionSpec("pick_category", "&Pick Category by Name", "Type a few letters of any "
                   "category and Enter to choose it", needs="writable"),
        ActionSpec("category_suggestions", "&Suggested Categories…", "Classes the model knows "
                   "but the project lacks: accept, map to one of yours, or ignore",
                   needs="editable"),
        *(ActionSpec(f"category_{k}", f"Category {k}", f"Give the selected instances the "
                     f"{k}th category of the list", needs="writable") for k in range(1, 10)),
    ),
)

SPECS = {spec.name: spec for spec in ACTIONS}


def build_actions(parent: QWidget, shortcuts: ShortcutConfig) -> dict[str, QAction]:
    """One QAction per spec, with its shortcuts, added to `parent` so that the shortcuts
    work even for actions that are in no menu."""
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, parent)
        action.setObjectName(spec.name)
        action.setCheckable(spec.checkable)
        keys = shortcuts.for_action(spec.name)
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip = spec.tip
        if keys:
            tip += f" ({shortcuts.text(spec.name)})"
        action.setToolTip(tip)
        action.setStatusTip(spec.tip)
        parent.addAction(action)
        actions[spec.name] = action
    return actions


def update_enabled(actions: dict[str, QAction], *, project: bool, writable: bool,
                   image: bool) -> None:
    state = {"": True, "project": project, "image": image, "editable": project and writable,
             "writable": writable and image}
    for name, action in actions.items():
        # an owner may hold an action back (e.g. fine-tune until enough images are reviewed)
        action.setEnabled(state[SPECS[name].needs] and action.property("ready") is not False)
