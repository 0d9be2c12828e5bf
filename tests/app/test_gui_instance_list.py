"""The Instances panel draws what it says: no rows of the previous image stay on screen."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from app.controllers.project import InstanceRow
from app.panels.instance_list import InstanceListWidget
from mrcnn.store.records import Instance

SWATCH = "#ff0000"


def instance_row(iid: int) -> InstanceRow:
    instance = Instance(iid, 1, 1, {"size": [4, 4], "counts": "0"}, (0.0, 0.0, 1.0, 1.0), 1,
                        "manual", None, None, "accepted")
    return InstanceRow(instance, "thing", SWATCH, "manual")


def on_screen(widget) -> QImage:
    """What the window system shows of the widget now (no repaint forced, unlike grab())."""
    return widget.screen().grabWindow(widget.winId()).toImage()


def swatch_pixels(image: QImage, columns: int = 40) -> int:
    """Pure red pixels in the leftmost columns, where each row draws its colour square."""
    count = 0
    for y in range(image.height()):
        for x in range(min(columns, image.width())):
            c = image.pixelColor(x, y)
            count += c.red() > 200 and c.green() < 60 and c.blue() < 60
    return count


def shown_list(qtbot) -> InstanceListWidget:
    widget = InstanceListWidget()
    qtbot.addWidget(widget)
    widget.resize(360, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_rows([instance_row(1), instance_row(2), instance_row(3)])
    qtbot.waitUntil(lambda: swatch_pixels(on_screen(widget)) > 0)
    return widget


def test_rows_of_the_previous_image_vanish_when_some_were_selected(qtbot):
    widget = shown_list(qtbot)
    widget.select_ids([1, 2])  # as clicking them on the canvas does
    qtbot.wait(50)
    assert swatch_pixels(on_screen(widget)) > 0

    widget.set_rows([])  # the next image has no instances
    qtbot.wait(50)

    assert widget.summary.text() == "0 instances"
    assert widget.row_count() == 0
    assert swatch_pixels(on_screen(widget)) == 0, "rows of the previous image still drawn"


def test_rows_vanish_after_a_click_in_the_list(qtbot):
    widget = shown_list(qtbot)
    rect = widget.tree.visualItemRect(widget.tree.topLevelItem(0))
    qtbot.mouseClick(widget.tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.center()))
    assert widget.selected_ids() == [1]

    widget.set_rows(None)  # the project was closed
    qtbot.wait(50)

    assert widget.summary.text() == "No image"
    assert swatch_pixels(on_screen(widget)) == 0


def test_a_category_colour_like_the_selections_still_shows_on_a_selected_row(qtbot):
    """A category whose colour is near the selection's blue (the second of the default
    colours is) had its colour square vanish on the selected row: the square must stand out
    there (contrast >= 3, as for a control's edge)."""
    from gui_helpers import contrast

    from app.theme import dark_palette

    palette = dark_palette()
    highlight = palette.color(palette.ColorRole.Highlight)
    widget = InstanceListWidget()
    widget.setPalette(palette)
    qtbot.addWidget(widget)
    widget.resize(360, 300)
    widget.show()
    qtbot.waitExposed(widget)
    rows = [instance_row(1), instance_row(2)]
    widget.set_rows([InstanceRow(r.instance, r.category, highlight.name(), r.source)
                     for r in rows])
    viewport = widget.tree.viewport()
    rect = widget.tree.visualItemRect(widget.tree.topLevelItem(0))

    def shot():
        viewport.repaint()
        return viewport.grab(rect).toImage()

    plain = shot()  # unselected: the square is where the swatch colour is
    square = [(x, y) for y in range(plain.height()) for x in range(plain.width())
              if plain.pixelColor(x, y) == highlight]
    assert square, "no colour square drawn"
    widget.select_ids([1])
    selected = shot()
    best = max(contrast(selected.pixelColor(x, y), highlight) for x, y in square)
    assert best >= 3.0, f"the colour square has contrast {best:.1f} on the selected row"
