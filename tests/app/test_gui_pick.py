"""Pick: a click on an object offers the model's predictions covering it, hidden low scores
included, best first; a second click offers the next; Enter accepts (undoable)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from tool_helpers import DISC_CENTER, DISC_RADIUS, RECT, box, disc, make_tool_scene

from mrcnn import masks

K = Qt.Key


@pytest.fixture
def scene(qtbot, window, tmp_path):
    s = make_tool_scene(qtbot, window, tmp_path)
    x0, y0, x1, y1 = RECT
    items = [(s.category_id, masks.encode(disc(DISC_CENTER, DISC_RADIUS)), 0.23),  # hidden
             (s.category_id, masks.encode(disc(DISC_CENTER, DISC_RADIUS + 6)), 0.11),  # hidden
             (s.category_id, masks.encode(box(x0, y0, x1, y1)), 0.92)]  # shown
    window.controller.store_predictions(s.image_id, "v1", items)
    qtbot.waitUntil(lambda: len(window.canvas.instance_items()) == 3, timeout=5000)
    assert window.canvas.score_threshold == pytest.approx(0.5)
    return s


def pending(s) -> dict[int, float]:
    return {i.id: i.score for i in s.doc.instances("pending")}


def test_a_click_offers_the_hidden_prediction_and_enter_accepts_it(qtbot, scene):
    s = scene
    w = s.window
    assert w.instance_list.visible_count() == 1  # the slider hides the two low scores
    hidden = sorted(pending(s).items(), key=lambda kv: -kv[1])[1:]  # 0.23 then 0.11
    s.key(qtbot, K.Key_I)
    assert s.canvas.tool.name == "pick"

    s.click(qtbot, *DISC_CENTER)
    assert s.canvas.tool.offered.id == hidden[0][0]
    assert w.statusBar().currentMessage().startswith("thing 0.23 · 1 of 2 under this point")
    s.click(qtbot, DISC_CENTER[0] + 1, DISC_CENTER[1])  # same spot: the next one
    assert s.canvas.tool.offered.id == hidden[1][0]
    s.click(qtbot, *DISC_CENTER)  # and round again
    assert s.canvas.tool.offered.id == hidden[0][0]

    s.key(qtbot, K.Key_Return)
    accepted = {i.id for i in s.doc.instances("accepted")}
    assert accepted == {hidden[0][0]}
    assert np.array_equal(s.stored()[hidden[0][0]], disc(DISC_CENTER, DISC_RADIUS))
    qtbot.waitUntil(lambda: s.canvas.selected_ids() == [hidden[0][0]], timeout=5000)
    assert w.instance_list.visible_count() == 2  # accepted: shown whatever its score
    assert s.canvas.tool.offered is None  # the offer is gone

    w.actions["undo"].trigger()
    assert hidden[0][0] in pending(s) and not s.doc.instances("accepted")


def test_nothing_under_the_click_says_so_and_keys_stay_the_windows(qtbot, scene):
    s = scene
    s.key(qtbot, K.Key_I)
    s.click(qtbot, 5, 190)  # background
    assert s.canvas.tool.offered is None
    assert s.window.statusBar().currentMessage() == "No prediction covers this point"
    s.click(qtbot, *DISC_CENTER)
    s.key(qtbot, K.Key_Escape)  # drops the offer, accepts nothing
    assert s.canvas.tool.offered is None and not s.doc.instances("accepted")
    assert len(pending(s)) == 3
