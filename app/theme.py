"""The window's look: Fusion with a dark palette, so photos and mask colours stand out."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

#: The background of lists and tables.
BASE = QColor(35, 37, 41)
#: Text colours for better / worse numbers, readable on the dark base (contrast ≥ 4.5).
GOOD = QColor(92, 194, 122)
BAD = QColor(240, 106, 95)


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = BASE, QColor(48, 50, 55), QColor(224, 226, 230)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor(42, 44, 49))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor(60, 63, 70))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor(255, 90, 90))
    p.setColor(QPalette.ColorRole.Highlight, QColor(61, 122, 214))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    p.setColor(QPalette.ColorRole.Link, QColor(110, 160, 240))
    p.setColor(QPalette.ColorRole.Mid, QColor(140, 144, 152))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor(130, 134, 140))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 128))
    return p
