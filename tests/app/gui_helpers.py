"""Helpers shared by the GUI tests (imported as a module: conftest files are not)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

#: The photos every GUI test folder holds, in file-name order (see conftest.photos_dir).
PHOTO_NAMES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "voc.jpg")


def luminance(c) -> float:
    """WCAG 2 relative luminance of a QColor."""
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(c.red()) + 0.7152 * channel(c.green()) + 0.0722 * channel(c.blue())


def contrast(a, b) -> float:
    """WCAG 2 contrast ratio of two QColors (1 to 21; 4.5 reads as body text)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def wait_image_shown(qtbot, window, image_id: int | None = None, timeout: int = 10000) -> None:
    """Wait until the canvas shows `image_id` (default: the current image) with its masks."""
    def shown() -> bool:
        target = image_id if image_id is not None else window.image_list.current_id
        canvas = window.canvas
        return (target is not None and canvas.image_id == target and canvas.is_loaded
                and len(canvas.instance_items()) == window.instance_list.row_count())

    qtbot.waitUntil(shown, timeout=timeout)


def wait_thumbnails(qtbot, window, timeout: int = 10000) -> None:
    """Wait until every row in the image list has its thumbnail, made because the row was
    painted (this only reads the cache: asking for one here would start a job itself)."""
    def made() -> bool:
        ids = window.image_list.visible_ids()
        assert not [i for i in ids if window.thumbnails.failed(i)], "a thumbnail failed"
        return all(window.thumbnails.cached(i) is not None for i in ids)
    qtbot.waitUntil(made, timeout=timeout)


def open_folder(qtbot, window, folder: Path) -> None:
    """Open a folder of images and wait for the scan to list every photo."""
    assert window.open_path(folder)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() == len(PHOTO_NAMES),
                    timeout=10000)
    wait_image_shown(qtbot, window)


def run_data_action(qtbot, window, action: str, timeout: int = 30000) -> None:
    """Trigger File ▸ Import… or Export… (its dialog already answered) and wait for its
    background job to end and its result to show."""
    window.actions[action].trigger()
    qtbot.waitUntil(lambda: window.data_commands.job is not None
                    and window.data_commands.job.done, timeout=timeout)


def image_id(window, name: str) -> int:
    for r in window.controller.images():
        if Path(r.path).name == name:
            return r.id
    raise KeyError(name)


def wait_model_ready(qtbot, window, timeout: int = 60000) -> None:
    """Wait until the window's model is loaded (or it is known that there is none)."""
    qtbot.waitUntil(lambda: window.model.state in ("ready", "missing", "failed"),
                    timeout=timeout)


def press(qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press a key as the user does: it goes to whichever widget has the keyboard focus."""
    focus = QApplication.focusWidget()
    assert focus is not None, "no widget has the keyboard focus"
    qtbot.keyClick(focus, key, modifier)


def type_text(qtbot, text: str) -> None:
    """Type `text` into whichever widget has the keyboard focus."""
    for ch in text:
        press(qtbot, ch)


def assert_responsive(probe, limit_s: float = 0.100, what: str = "") -> None:
    """The window answered throughout: no stall of its own (work or waiting on the GUI
    thread) passed `limit_s`, nor did the 99th percentile of all stalls. The time a stall
    spent with the GUI thread ready but waiting for a core that another program held (the
    test suite runs on every core) is not the window's doing."""
    assert len(probe.stalls) > 50, "the probe hardly ran"
    assert probe.max_own_stall <= limit_s and probe.percentile(99) <= limit_s, (
        f"event loop stalled{' ' + what if what else ''}: {probe.report()}")
