"""The error browser: Model ▸ Find Errors on Validation lists the loaded version's errors
(kept with it); a click on a missed instance shows its image with the missed area highlighted
on the canvas; a child version's list says which errors it fixed and which it introduced
since its parent. Label Suspects lists what the model disagrees with, and a click shows it.

The model is a stand-in `Session` whose predictions are the project's own accepted masks,
with some left out per version: v1 misses one instance, v2 (trained from v1) another."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import FAST
from PySide6.QtCore import QPointF, Qt

from mrcnn import masks
from mrcnn.serving.session import ImagePrediction, ModelInfo, ModelRequest
from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.error_analysis import ErrorKind, stored_errors

OPTIONS = replace(FAST, lookahead=-1, auto_load=True, auto_load_delay_ms=0)

Truth = dict[int, list[tuple[int, str, masks.Rle]]]  # image id -> (instance id, category, mask)


class StandInSession:
    """The `Session` protocol without a model: each image's accepted masks, scoring 0.9,
    except the instances `dropped[model key]` (not detected) and those `relabelled[key]`
    (detected as another category)."""

    def __init__(self, truth: Truth, dropped: dict[str, set[int]],
                 relabelled: dict[str, dict[int, str]] | None = None):
        self.truth = truth
        self.dropped = dropped
        self.relabelled = relabelled or {}
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def load(self, request: ModelRequest, progress=None, should_cancel=None) -> ModelInfo:
        self._info = ModelInfo(request.version_name or "file-x", f"{request.version_name} "
                               "(project)", "r18", "version", request.version_id,
                               ("disc", "square", "ring", "triangle"), "CPU")
        return self._info

    def predict_path(self, image_id: int, path, uncertainty: bool = False) -> ImagePrediction:
        key = self._info.key
        other = self.relabelled.get(key, {})
        items = [(other.get(iid, name), rle, 0.9) for iid, name, rle in self.truth[image_id]
                 if iid not in self.dropped.get(key, set())]
        return ImagePrediction(image_id, key, self._info.version_id, items, 0.0)

    def unload(self) -> None:
        self._info = None


@pytest.fixture
def shapes(tmp_path) -> tuple[Path, Truth, list[int]]:
    """Synthetic shapes (1 train, 3 val images of 96 px); v1 active, v2 trained from v1.
    Returns the folder, every image's accepted instances and the val image ids."""
    folder = make_synthetic_project(tmp_path / "shapes", n_train=1, n_val=3, size=96, seed=2)
    with Project.open(folder) as p:
        names = {c.id: c.name for c in p.categories()}
        truth = {im.id: [(i.id, names[i.category_id], i.rle) for i in p.instances(im.id)]
                 for im in p.images()}
        val = [im.id for im in p.images() if im.split == "val"]
        v1 = p.add_model_version("models/v1.pt", "r18", activate=True)
        p.add_model_version("models/v2.pt", "r18", parent_id=v1.id, activate=False)
        p.activate_model_version(v1.id)
    return folder, truth, val


def open_window(qtbot, make_window, folder: Path, session) -> object:
    w = make_window(model_options=OPTIONS, model_session=session)
    assert w.open_path(folder)
    qtbot.waitUntil(lambda: w.model.state == "ready", timeout=10000)
    return w


def find_errors(qtbot, w):
    with qtbot.waitSignal(w.errors.errors_found, timeout=30000) as got:
        w.actions["find_errors"].trigger()
    return got.args[0]


def click(qtbot, tree, item) -> None:
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                     pos=tree.visualItemRect(item).center())


def pixel(canvas, image, x: float, y: float):
    """The colour the canvas shows at image pixel (x, y) (its centre) in a grab."""
    p = canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))
    return image.pixelColor(p.x(), p.y())


def test_a_missed_instance_is_listed_and_shown_highlighted_and_v2_says_what_changed(
        qtbot, make_window, shapes):
    folder, truth, val = shapes
    first, second = truth[val[0]][0], truth[val[1]][0]  # v1 misses first, v2 misses second
    session = StandInSession(truth, {"v1": {first[0]}, "v2": {second[0]}})
    w = open_window(qtbot, make_window, folder, session)
    panel = w.errors.panel
    shown = w.image_list.current_id

    found = find_errors(qtbot, w)
    assert w.image_list.current_id == shown and not w.canvas.highlight_items()  # no jump
    assert found.version == "v1" and found.image_ids == tuple(val)
    assert [(e.kind, e.instance_id) for e in found.errors] == [(ErrorKind.MISSED, first[0])]
    with Project.open(folder, read_only=True) as p:
        assert stored_errors(p, "v1") == found  # kept with the version
    assert w.errors.dock.isVisible() and panel.chosen_version() == "v1"
    assert panel.summary.text().startswith("v1 on 3 validation images: 1 missed, 0 false "
                                           "positives, 0 poor fits")
    assert "was not trained from another version" in panel.summary.text()
    (missed,) = panel.shown_errors()
    item = panel.error_item(missed)
    assert [item.text(c) for c in range(3)] == [Path(w.controller.image(val[0]).path).name,
                                                "missed", first[1]]

    # a click shows the image with the missed area highlighted
    w.image_list.select_image(val[2])
    click(qtbot, panel.errors, item)
    canvas = w.canvas
    qtbot.waitUntil(lambda: canvas.image_id == val[0] and canvas.is_loaded
                    and bool(canvas.highlight_items()), timeout=10000)
    assert w.image_list.current_id == val[0]
    (mark,) = canvas.highlight_items()
    mask = masks.decode(first[2])
    ys, xs = np.nonzero(mask)
    assert mark.look == "truth"
    rect = mark.mask_rect
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (
        xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    # on screen: inside the missed mask the canvas shows the highlight, outside it not
    qtbot.waitUntil(lambda: canvas.viewport().isVisible())
    lit = canvas.grab().toImage()
    mark.setVisible(False)
    plain = canvas.grab().toImage()
    mark.setVisible(True)
    inside = (int(np.median(xs)), int(np.median(ys)))
    inside = next((x, y) for x, y in [inside, *zip(xs, ys, strict=True)] if mask[y, x])
    assert pixel(canvas, lit, *inside) != pixel(canvas, plain, *inside)
    far = next((x, y) for y in range(mask.shape[0]) for x in range(mask.shape[1])
               if not mask[max(0, y - 6):y + 7, max(0, x - 6):x + 7].any())
    assert pixel(canvas, lit, *far) == pixel(canvas, plain, *far)
    # another image drops the highlight
    w.image_list.select_image(val[2])
    assert canvas.highlight_items() == []

    # v2, trained from v1: it finds what v1 missed and misses another
    with Project.open(folder, read_only=True) as p:
        v2 = next(v for v in p.model_versions() if v.name == "v2")
    w.finetune.activate(v2.id)
    qtbot.waitUntil(lambda: w.model.info is not None and w.model.info.key == "v2",
                    timeout=10000)
    found2 = find_errors(qtbot, w)
    assert [(e.kind, e.instance_id) for e in found2.errors] == [(ErrorKind.MISSED, second[0])]
    assert panel.chosen_version() == "v2"
    assert "since v1: 1 fixed, 1 new (on the 3 validation images both were scored on)" in \
        panel.summary.text()
    assert [panel.error_item(e).text(5) for e in panel.shown_errors()] == ["new"]
    panel.set_view("fixed")
    (fixed,) = panel.shown_errors()
    assert (fixed.kind, fixed.instance_id) == (ErrorKind.MISSED, first[0])
    assert panel.error_item(fixed).text(5) == "fixed"
    panel.set_view("new")
    assert [(e.kind, e.instance_id) for e in panel.shown_errors()] == [
        (ErrorKind.MISSED, second[0])]
    # choosing v1 again lists v1's errors, kept since
    panel.version.setCurrentText("v1")
    panel.set_view("all")
    assert [(e.kind, e.instance_id) for e in panel.shown_errors()] == [
        (ErrorKind.MISSED, first[0])]
    # deleting v1 deletes its list: v2 has nothing to compare with any more
    w.finetune.delete(next(v.id for v in w.controller.project.model_versions()
                           if v.name == "v1"))
    assert not versions.errors_path(w.controller.project, "v1").exists()


def test_label_suspects_are_listed_and_a_click_shows_one(qtbot, make_window, shapes):
    folder, truth, val = shapes
    target = truth[val[1]][0]
    other = next(n for n in ("disc", "square", "ring", "triangle") if n != target[1])
    session = StandInSession(truth, {}, relabelled={"v1": {target[0]: other}})
    w = open_window(qtbot, make_window, folder, session)
    with qtbot.waitSignal(w.errors.suspects_found, timeout=30000) as got:
        w.actions["find_label_suspects"].trigger()
    result = got.args[0]
    assert result.images == len(truth)  # every reviewed image, train and val
    panel = w.errors.panel
    assert panel.tabs.currentIndex() == 1
    (suspect,) = panel.shown_suspects()
    assert (suspect.kind, suspect.instance_id, suspect.category, suspect.suggested) == (
        "wrong_category", target[0], target[1], other)
    item = panel.suspect_item(suspect)
    assert item.text(2) == "another category?" and item.text(4) == other
    click(qtbot, panel.suspects, item)
    qtbot.waitUntil(lambda: w.canvas.image_id == val[1] and bool(w.canvas.highlight_items()),
                    timeout=10000)
    assert [m.look for m in w.canvas.highlight_items()] == ["truth"]  # same mask: shown once
    qtbot.waitUntil(lambda: w.canvas.selected_ids() == [target[0]], timeout=10000)


def test_the_list_sorts_by_each_column_as_numbers(qtbot):
    from app.panels.errors import ERROR_COLUMNS, ErrorsPanel
    from mrcnn.training.error_analysis import ErrorList, FoundError

    panel = ErrorsPanel()
    qtbot.addWidget(panel)
    rows = [FoundError(1, ErrorKind.POOR_FIT, "disc", 0.62, 0.9),
            FoundError(2, ErrorKind.MISSED, "ring", 0.05),
            FoundError(3, ErrorKind.FALSE_POSITIVE, "square", 0.0, 0.55),
            FoundError(1, ErrorKind.POOR_FIT, "disc", 0.7, 0.1)]
    panel.set_errors(ErrorList("v1", (1, 2, 3), tuple(rows)), None,
                     {1: "b.png", 2: "a.png", 3: "C.png"})
    tree = panel.errors
    for column, expected in (("IoU", [0.0, 0.05, 0.62, 0.7]),
                             ("Score", [None, 0.1, 0.55, 0.9])):
        tree.sortItems(ERROR_COLUMNS.index(column), Qt.SortOrder.AscendingOrder)
        key = "iou" if column == "IoU" else "score"
        assert [getattr(e, key) for e in panel.shown_errors()] == expected
    tree.sortItems(ERROR_COLUMNS.index("Image"), Qt.SortOrder.AscendingOrder)
    assert [e.image_id for e in panel.shown_errors()][:1] == [2]  # a.png, whatever the case
    tree.sortItems(ERROR_COLUMNS.index("Kind"), Qt.SortOrder.AscendingOrder)
    assert [str(e.kind) for e in panel.shown_errors()] == [
        "false_positive", "missed", "poor_fit", "poor_fit"]


def test_a_suspect_found_right_is_kept_and_left_out_of_the_next_search(qtbot, make_window,
                                                                        shapes):
    folder, truth, val = shapes
    first, second = truth[val[1]][0], truth[val[2]][0]
    relabel = {iid: next(n for n in ("disc", "square", "ring", "triangle") if n != name)
               for iid, name, _rle in (first, second)}
    session = StandInSession(truth, {}, relabelled={"v1": relabel})
    w = open_window(qtbot, make_window, folder, session)

    def search() -> None:
        with qtbot.waitSignal(w.errors.suspects_found, timeout=30000):
            w.actions["find_label_suspects"].trigger()

    search()
    panel = w.errors.panel
    assert {s.instance_id for s in panel.shown_suspects()} == {first[0], second[0]}
    item = next(panel.suspect_item(s) for s in panel.shown_suspects()
                if s.instance_id == first[0])
    click(qtbot, panel.suspects, item)
    assert panel.right_button.text() == "Label Is Right" and panel.right_button.isEnabled()
    qtbot.mouseClick(panel.right_button, Qt.MouseButton.LeftButton)
    # kept before the window says so
    assert [c.category for c in w.controller.project.suspect_checks()] == [first[1]]
    assert "Found right" in w.statusBar().currentMessage()
    assert [s.instance_id for s in panel.shown_suspects()] == [second[0]]
    assert "1 found right earlier, not listed" in panel.suspects_summary.text()
    # the next one is current and shown
    qtbot.waitUntil(lambda: w.canvas.image_id == val[2], timeout=10000)

    search()  # a later search leaves it out
    assert [s.instance_id for s in panel.shown_suspects()] == [second[0]]
    panel.show_right.setChecked(True)
    (right,) = panel.found_right_shown()
    assert right.instance_id == first[0]
    item = panel.suspect_item(right)
    assert item.text(5).startswith("found right · ")
    click(qtbot, panel.suspects, item)
    assert panel.right_button.text() == "List It Again"
    qtbot.mouseClick(panel.right_button, Qt.MouseButton.LeftButton)
    assert w.controller.project.suspect_checks() == []
    assert panel.found_right_shown() == []
    assert {s.instance_id for s in panel.shown_suspects()} == {first[0], second[0]}


def test_in_a_project_open_read_only_a_label_cannot_be_marked_right(qtbot, make_window, shapes,
                                                                    monkeypatch):
    from app import dialogs

    folder, truth, val = shapes
    target = truth[val[1]][0]
    other = next(n for n in ("disc", "square", "ring", "triangle") if n != target[1])
    session = StandInSession(truth, {}, relabelled={"v1": {target[0]: other}})
    holder = Project.open(folder)  # another window has it open for writing
    try:
        monkeypatch.setattr(dialogs, "ask_open_read_only", lambda *_a: True)
        w = make_window(model_options=OPTIONS, model_session=session)
        assert w.open_path(folder)
        assert w.controller.read_only
        with qtbot.waitSignal(w.errors.suspects_found, timeout=30000):
            w.actions["find_label_suspects"].trigger()
        panel = w.errors.panel
        (suspect,) = panel.shown_suspects()
        click(qtbot, panel.suspects, panel.suspect_item(suspect))
        assert not panel.right_button.isEnabled()
        assert "read-only" in panel.right_button.toolTip()
    finally:
        holder.close()
    with Project.open(folder, read_only=True) as p:
        assert p.suspect_checks() == []


class FileSession(StandInSession):
    """The stand-in, loading a checkpoint file the user picked (not a project version)."""

    def load(self, request: ModelRequest, progress=None, should_cancel=None) -> ModelInfo:
        if request.version_id is not None:
            return super().load(request, progress, should_cancel)
        self._info = ModelInfo("file-x", f"file {Path(request.source).name}", "r18",
                               "checkpoint", None, ("disc", "square", "ring", "triangle"),
                               "CPU", path=request.source)
        return self._info


@pytest.mark.parametrize("versions_kept", [True, False])
def test_errors_of_a_loaded_file_say_what_to_do_in_this_project(qtbot, make_window, shapes,
                                                                 versions_kept):
    """Errors are kept per model version. With a checkpoint file loaded, Find Errors said
    "activate one (Model Versions)" even in a project that had no version to activate."""
    folder, truth, _ = shapes
    if not versions_kept:
        with Project.open(folder) as p:
            p.activate_model_version(None)
            for v in p.model_versions():
                p.delete_model_version(v.id)
            assert p.model_versions() == []
    w = make_window(model_options=OPTIONS, model_session=FileSession(truth, {}))
    assert w.open_path(folder)
    w.model.load_file(folder / "picked.pt")
    qtbot.waitUntil(lambda: w.model.info is not None and w.model.info.kind == "checkpoint",
                    timeout=10000)
    w.actions["find_errors"].trigger()
    qtbot.waitUntil(lambda: "kept per model version" in w.statusBar().currentMessage(),
                    timeout=10000)
    said = w.statusBar().currentMessage()
    assert "the loaded model is file picked.pt" in said
    if versions_kept:
        assert "activate one (Model Versions)" in said
    else:
        assert "none yet" in said and "Fine-tune" in said and "activate" not in said

