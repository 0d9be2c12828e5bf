"""Drawing tools driven by real mouse and key events on a known synthetic image: brush,
eraser, polygon, Box → GrabCut, magic wand. Every check reads the masks back from a second,
read-only open of the project: what the user would find after a crash."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsPathItem
from tool_helpers import DISC_CENTER, DISC_RADIUS, RECT, box, disc, make_tool_scene, stroke

K = Qt.Key
MOD = Qt.KeyboardModifier


@pytest.fixture
def tool_scene(qtbot, window, tmp_path):
    return make_tool_scene(qtbot, window, tmp_path)


def test_tool_buttons_are_exclusive_and_keys_pick_them(qtbot, tool_scene):
    s = tool_scene
    a = s.window.actions
    assert a["tool_select"].isChecked() and s.canvas.tool is None
    for key, name in ((K.Key_B, "brush"), (K.Key_E, "eraser"), (K.Key_N, "polygon"),
                      (K.Key_R, "grabcut"), (K.Key_W, "wand"), (K.Key_V, None)):
        s.key(qtbot, key)
        checked = [n for n in a if n.startswith("tool_") and a[n].isChecked()]
        assert checked == [f"tool_{name or 'select'}"]
        assert (s.canvas.tool.name if s.canvas.tool else None) == name
    bar = s.window.edits.toolbar
    assert {a[f"tool_{n}"] for n in ("select", "brush", "eraser", "polygon", "grabcut",
                                      "wand")} <= set(bar.actions())


def test_brush_stroke_adds_exactly_the_stroked_discs_and_is_saved(qtbot, tool_scene):
    s = tool_scene
    base = box(20, 120, 60, 160)
    iid = s.add(qtbot, base)
    s.click(qtbot, 40, 140)  # select it (Select tool)
    assert s.canvas.selected_ids() == [iid]
    s.key(qtbot, K.Key_B)
    s.window.edits.brush_size.setValue(5)
    points = s.drag(qtbot, [(58, 140), (90, 150), (120, 170), (121.5, 171)])
    expected = base | stroke(points, 5)
    assert expected.sum() > base.sum() + 300  # the stroke really painted
    stored = s.stored()
    assert list(stored) == [iid] and np.array_equal(stored[iid], expected)
    assert s.window.saved_label.text() == "All changes saved"
    assert s.canvas.selected_ids() == [iid]  # still selected: paint on
    # the canvas shows the new mask at once (no waiting for a background job)
    item = s.canvas.instance_items()[iid]
    shape = item.shape_data
    shown = np.zeros_like(expected)
    fh, fw = shape.fill.shape[:2]
    shown[shape.y:shape.y + fh, shape.x:shape.x + fw] = shape.fill[..., 3] > 0
    assert np.array_equal(shown, expected) and item.opacity() == 1.0


def test_eraser_removes_exactly_the_stroked_discs(qtbot, tool_scene):
    s = tool_scene
    base = disc(DISC_CENTER, DISC_RADIUS)
    iid = s.add(qtbot, base)
    s.click(qtbot, *DISC_CENTER)
    s.key(qtbot, K.Key_E)
    s.window.edits.brush_size.setValue(6)
    points = s.drag(qtbot, [(40, 70), (70, 72), (100, 66)])
    expected = base & ~stroke(points, 6)
    assert 0 < expected.sum() < base.sum() - 500
    assert np.array_equal(s.stored()[iid], expected)


def test_brush_with_nothing_selected_paints_a_new_instance(qtbot, tool_scene):
    s = tool_scene
    s.key(qtbot, K.Key_B)
    s.window.edits.brush_size.setValue(4)
    points = s.drag(qtbot, [(30, 30), (60, 40)])
    stored = s.stored()
    assert len(stored) == 1
    (iid, mask), = stored.items()
    assert np.array_equal(mask, stroke(points, 4))
    assert s.stored_categories()[iid] == s.category_id
    qtbot.waitUntil(lambda: s.canvas.selected_ids() == [iid], timeout=5000)


def test_brush_size_keys_wheel_and_outline(qtbot, tool_scene):
    s = tool_scene
    s.key(qtbot, K.Key_B)
    edits = s.window.edits
    edits.brush_size.setValue(10)
    s.key(qtbot, K.Key_BracketRight)
    assert edits.brush_size.value() == round(10 * 1.25)
    s.key(qtbot, K.Key_BracketLeft)
    s.key(qtbot, K.Key_BracketLeft)
    assert edits.brush_size.value() == round(10 / 1.25)
    before = edits.commands.options.brush_radius
    pos = QPointF(s.vp(100, 100))
    wheel = QWheelEvent(pos, s.canvas.viewport().mapToGlobal(pos), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, MOD.ControlModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    scale = s.canvas.scale_factor
    QApplication.sendEvent(s.canvas.viewport(), wheel)
    assert edits.commands.options.brush_radius > before  # Ctrl+wheel sizes the brush...
    assert s.canvas.scale_factor == scale  # ...and does not zoom
    qtbot.mouseMove(s.canvas.viewport(), s.vp(100, 100))
    outline = edits.tool("brush")._outline
    assert outline is not None and outline.isVisible()
    assert outline.radius == edits.commands.options.brush_radius
    assert abs(outline.x() - 100) < 1 and abs(outline.y() - 100) < 1


class PaintSpy(QObject):
    def __init__(self):
        super().__init__()
        self.rects = []

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            self.rects.append(event.region().boundingRect())
        return False


def test_brush_drag_repaints_only_the_changed_region(qtbot, tool_scene):
    s = tool_scene
    iid = s.add(qtbot, box(20, 120, 60, 160))
    s.click(qtbot, 40, 140)
    s.key(qtbot, K.Key_B)
    s.window.edits.brush_size.setValue(4)
    port = s.canvas.viewport()
    spy = PaintSpy()
    port.installEventFilter(spy)
    try:
        qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=s.vp(50, 140))
        qtbot.waitUntil(lambda: bool(spy.rects), timeout=3000)  # the press shows the mask
        spy.rects.clear()
        # mid-gesture: not acknowledged, and nothing half-done in the store
        assert s.window.saved_label.text().startswith("Editing")
        assert np.array_equal(s.stored()[iid], box(20, 120, 60, 160))
        for x in (55, 60, 65):
            qtbot.mouseMove(port, s.vp(x, 141))
            qtbot.waitUntil(lambda: bool(spy.rects), timeout=3000)
    finally:
        port.removeEventFilter(spy)
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=s.vp(65, 141))
    whole = port.rect().width() * port.rect().height()
    painted = max(r.width() * r.height() for r in spy.rects)
    assert painted < whole / 100  # a brush-sized patch, not the whole view
    assert s.stored()[iid][140, 62] and s.window.saved_label.text() == "All changes saved"


def test_polygon_fills_its_interior_as_a_new_instance(qtbot, tool_scene):
    s = tool_scene
    s.key(qtbot, K.Key_N)
    corners = [(20.3, 110.2), (100.7, 118.4), (90.2, 180.6), (30.5, 170.1)]
    for x, y in corners:
        s.click(qtbot, x, y)
    pts = [s.at(s.vp(x, y)) for x, y in corners]
    s.key(qtbot, K.Key_Return)  # closes the polygon (not "mark reviewed")
    qtbot.waitUntil(lambda: len(s.stored()) == 1, timeout=5000)
    (iid, mask), = s.stored().items()
    # pixel centres inside the convex quad: same side of every edge
    yy, xx = np.mgrid[:mask.shape[0], :mask.shape[1]] + 0.5
    inside = np.ones(mask.shape, bool)
    for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
        inside &= (bx - ax) * (yy - ay) - (by - ay) * (xx - ax) > 0
    assert np.array_equal(mask, inside) and inside.sum() > 3000
    assert s.window.controller.image(s.image_id).status != "reviewed"


def test_polygon_with_shift_adds_and_with_alt_cuts(qtbot, tool_scene):
    s = tool_scene
    base = box(40, 40, 80, 80)
    iid = s.add(qtbot, base)
    s.click(qtbot, 60, 60)
    s.key(qtbot, K.Key_N)
    # Shift on the first click: add the square 80..100 x 40..60 (corners on pixel corners)
    s.click(qtbot, 80, 40, MOD.ShiftModifier)
    for x, y in ((100, 40), (100, 60), (80, 60)):
        s.click(qtbot, x, y)
    s.click(qtbot, 80, 40)  # back on the first point: closes
    added = base | box(80, 40, 100, 60)
    assert np.array_equal(s.stored()[iid], added)
    # Alt: cut 40..60 x 60..80 out of it
    s.click(qtbot, 40, 60, MOD.AltModifier)
    for x, y in ((60, 60), (60, 80), (40, 80)):
        s.click(qtbot, x, y)
    s.key(qtbot, K.Key_Enter)
    assert np.array_equal(s.stored()[iid], added & ~box(40, 60, 60, 80))
    assert len(s.stored()) == 1


def test_polygon_escape_drops_it_and_backspace_removes_a_point(qtbot, tool_scene):
    s = tool_scene
    s.key(qtbot, K.Key_N)
    for x, y in ((20, 20), (60, 20), (60, 60)):
        s.click(qtbot, x, y)
    tool = s.window.edits.tool("polygon")
    s.key(qtbot, K.Key_Backspace)
    assert len(tool.points) == 2
    s.key(qtbot, K.Key_Escape)
    assert tool.points == [] and s.stored() == {}


def test_backspace_on_a_polygons_only_point_drops_it_and_the_app_lives_on(qtbot, tool_scene):
    """One point clicked, the pointer moved, Backspace: the app crashed (a segmentation
    fault redrawing a polygon of no points), found by the monkey test. Now the polygon is
    gone, as with Escape, and the next one draws as usual."""
    s = tool_scene
    s.key(qtbot, K.Key_N)
    s.click(qtbot, 20.0, 20.0)
    qtbot.mouseMove(s.canvas.viewport(), s.vp(60.0, 60.0))
    tool = s.window.edits.tool("polygon")
    assert len(tool.points) == 1
    s.key(qtbot, K.Key_Backspace)
    assert tool.points == []
    s.key(qtbot, K.Key_Backspace)  # nothing left to remove: the key is not the tool's
    for x, y in ((20.3, 110.2), (100.7, 118.4), (90.2, 180.6)):
        s.click(qtbot, x, y)
    s.key(qtbot, K.Key_Return)
    qtbot.waitUntil(lambda: len(s.stored()) == 1, timeout=5000)

def test_grabcut_box_finds_a_high_contrast_disc(qtbot, tool_scene):
    s = tool_scene
    s.key(qtbot, K.Key_R)
    cx, cy = DISC_CENTER
    r = DISC_RADIUS + 8
    s.drag(qtbot, [(cx - r, cy - r), (cx, cy), (cx + r, cy + r)])
    qtbot.waitUntil(lambda: len(s.stored()) == 1, timeout=20000)
    (iid, mask), = s.stored().items()
    truth = disc(DISC_CENTER, DISC_RADIUS)
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou >= 0.9, iou
    qtbot.waitUntil(lambda: s.canvas.selected_ids() == [iid], timeout=5000)
    assert s.window.saved_label.text() == "All changes saved"
    # the tool's own name, as on its button (str.capitalize once made it "Grabcut")
    assert s.window.statusBar().currentMessage() == "GrabCut: saved"


def test_magic_wand_selects_a_flat_region_exactly_and_adds_or_subtracts(qtbot, tool_scene):
    s = tool_scene
    s.key(qtbot, K.Key_W)
    x0, y0, x1, y1 = RECT
    s.click(qtbot, (x0 + x1) / 2, (y0 + y1) / 2)
    qtbot.waitUntil(lambda: len(s.stored()) == 1, timeout=5000)
    (iid, mask), = s.stored().items()
    assert np.array_equal(mask, box(x0, y0, x1, y1))
    qtbot.waitUntil(lambda: s.canvas.selected_ids() == [iid], timeout=5000)
    # Shift+click on the red disc adds it to the selected instance; Alt+click takes it away
    s.click(qtbot, *DISC_CENTER, MOD.ShiftModifier)
    truth = disc(DISC_CENTER, DISC_RADIUS)
    assert np.array_equal(s.stored()[iid], box(x0, y0, x1, y1) | truth)
    s.click(qtbot, *DISC_CENTER, MOD.AltModifier)
    assert np.array_equal(s.stored()[iid], box(x0, y0, x1, y1))


@pytest.mark.parametrize("answer", ["cell", None])
def test_a_polygon_in_a_project_without_categories_asks_for_one_instead_of_vanishing(
        qtbot, window, tmp_path, monkeypatch, answer):
    """A new user's first polygon, before any category exists: it used to vanish on closing
    with "Make a category first" in the status bar. Now the category is asked for then (as
    labelme asks a label per shape) and the polygon is kept; cancelling adds nothing."""
    from app.panels import category_box

    asked = []
    outline_shown = []

    def ask(_parent, _title, label, text=""):
        asked.append(label)
        # the person names what they can see: the polygon's outline is still on the canvas
        outline_shown.append(any(
            isinstance(item, QGraphicsPathItem) and item.boundingRect().contains(
                QRectF(20.3, 110.2, 80.0, 70.0))
            for item in s.window.canvas.scene().items()))
        return answer

    monkeypatch.setattr(category_box, "ask_category_name", ask)
    s = make_tool_scene(qtbot, window, tmp_path, category=None)
    s.key(qtbot, K.Key_N)
    for x, y in [(20.3, 110.2), (100.7, 118.4), (90.2, 180.6), (30.5, 170.1)]:
        s.click(qtbot, x, y)
    assert not asked  # not while drawing: once the shape is finished
    s.key(qtbot, K.Key_Return)
    assert len(asked) == 1 and "no categories yet" in asked[0]
    assert outline_shown == [True]
    if answer is None:
        qtbot.waitUntil(lambda: "nothing was added" in s.window.statusBar().currentMessage())
        assert s.stored() == {} and s.window.controller.project.categories() == []
        return
    qtbot.waitUntil(lambda: len(s.stored()) == 1, timeout=5000)
    (iid, mask), = s.stored().items()
    assert mask.sum() > 3000
    (cat,) = s.window.controller.project.categories()
    assert cat.name == "cell" and s.stored_categories() == {iid: cat.id}
    for x, y in [(150.0, 30.0), (190.0, 30.0), (190.0, 70.0), (150.0, 70.0)]:
        s.click(qtbot, x, y)  # a second shape is not asked about: "cell" is chosen
    s.key(qtbot, K.Key_Return)
    qtbot.waitUntil(lambda: len(s.stored()) == 2, timeout=5000)
    assert len(asked) == 1 and set(s.stored_categories().values()) == {cat.id}
