"""The model key: one rule, shared by the command line, the model session and the window."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from mrcnn.model.keys import file_key, model_key

REPO = Path(__file__).resolve().parents[3]


def test_model_keys_match_the_command_line(tmp_path):
    checkpoint = tmp_path / "small.pt"
    checkpoint.write_bytes(b"weights" * 1000)
    assert model_key(kind="coco", preset="r50v2") == "coco-r50v2"
    assert model_key(kind="checkpoint", preset="r18", version_name="v2",
                     path=checkpoint) == "v2"
    assert model_key(kind="checkpoint", preset="r18", path=checkpoint) == (
        "file-" + hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:16])
    assert file_key(checkpoint) == model_key(kind="checkpoint", preset="r18", path=checkpoint)
    assert model_key(kind="scratch", preset="r18") == "scratch"


def test_the_key_rule_imports_no_torch():
    code = "import sys, mrcnn.model.keys; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
