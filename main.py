"""Start Mask R-CNN Studio: `python main.py [PATH]`.

PATH is a folder of images (a project is made, or reopened, in PATH/.mrcnn-project) or a
project folder. Without PATH the last project is reopened, or a welcome screen is shown.
Nothing heavy (torch, torchvision) is imported here: the window appears first.
"""

from __future__ import annotations

import argparse
import logging
import sys


def create_window(argv: list[str] | None = None):
    """Make the application and the window, show it, and schedule opening PATH.
    Returns (app, window)."""
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="a folder of images or a project folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    args, qt_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app import qt_compat
    from app.settings import APPLICATION, ORGANIZATION

    qt_compat.apply()  # before anything emits signals: see app/qt_compat.py
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)

    from app.main_window import MainWindow
    from app.theme import apply_dark_theme

    apply_dark_theme(app)
    window = MainWindow()
    window.show()
    QTimer.singleShot(0, lambda: window.open_startup(args.path))
    return app, window


def main(argv: list[str] | None = None) -> int:
    app, _window = create_window(argv)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
