"""Start Mask R-CNN Studio: `python main.py [PATH]`.

PATH is a folder of images (a project is made, or reopened, in PATH/.mrcnn-project) or a
project folder. Without PATH the last project is reopened, or a welcome screen is shown.
Nothing heavy (torch, torchvision) is imported here: the window appears first.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time

#: Set to "1" to print JSON lines when the window is first shown and when the first image is
#: on screen ({"event", "time" (epoch seconds), "torch" (imported yet?)}); set to "quit" to
#: also quit then. benchmarks/gui.py uses it to time `python main.py PATH` from outside.
STARTUP_REPORT_ENV = "MRCNN_STUDIO_STARTUP_REPORT"


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
    # Everything made so far lives as long as the app: keep it out of the garbage collector's
    # full passes, which otherwise pause the event loop for tens of milliseconds.
    gc.freeze()
    window.show()
    if os.environ.get(STARTUP_REPORT_ENV):
        _report_startup(app, window, quit_after=os.environ[STARTUP_REPORT_ENV] == "quit")
    QTimer.singleShot(0, lambda: window.open_startup(args.path))
    return app, window


def _report_startup(app, window, *, quit_after: bool) -> None:
    from PySide6.QtCore import QTimer

    def report(event: str) -> None:
        print(json.dumps({"event": event, "time": time.time(),
                          "torch": "torch" in sys.modules}), flush=True)

    def image_shown(_image_id: int) -> None:
        window.canvas.image_shown.disconnect(image_shown)
        report("image_shown")
        if quit_after:
            QTimer.singleShot(0, window.close)

    QTimer.singleShot(0, lambda: report("shown"))  # after the first paint events
    window.canvas.image_shown.connect(image_shown)


def main(argv: list[str] | None = None) -> int:
    from app import platform_check

    problem = platform_check.check()  # before Qt aborts on a missing system library
    if problem:
        print(problem, file=sys.stderr)
        return 1
    app, _window = create_window(argv)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
