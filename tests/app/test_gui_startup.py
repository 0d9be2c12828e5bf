"""`python main.py [PATH]`: the window comes up fast and without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    sys.path.insert(0, {repo!r})
    import main
    app, window = main.create_window([{folder!r}])
    shown = time.perf_counter() - start
    deadline = time.time() + 30
    while time.time() < deadline and not (window.canvas.is_loaded and window.isVisible()):
        app.processEvents()
    result = {{"shown_s": shown, "loaded": window.canvas.is_loaded,
               "images": window.image_list.model.rowCount(),
               "torch": "torch" in sys.modules, "torchvision": "torchvision" in sys.modules}}
    window.close()
    print(json.dumps(result))
""")


def test_window_opens_a_folder_without_importing_torch(photos_dir, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(repo=str(REPO), folder=str(photos_dir))],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] and result["images"] == 4
    assert not result["torch"] and not result["torchvision"]
    assert result["shown_s"] < 5  # target 2 s; generous for loaded CI machines


def test_main_without_path_shows_the_welcome(qtbot, window):
    window.open_startup(None)  # no recent project in a fresh UI state
    assert window.stack.currentWidget() is window.welcome
    assert not window.controller.is_open
