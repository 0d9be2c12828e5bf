"""An image's split (train or val) follows from its content hash alone: the same in every
process and every run, so a project's validation set never shuffles between sessions."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from mrcnn.store.project import split_for

REPO = Path(__file__).resolve().parents[3]
HASHES = [hashlib.sha256(f"image-{i}".encode()).hexdigest() for i in range(24)]
#: Pinned: changing these moves users' images between train and val.
VAL = {3, 14}
EXPECTED = ["val" if i in VAL else "train" for i in range(len(HASHES))]


def test_the_split_of_known_hashes_is_pinned():
    assert [split_for(h) for h in HASHES] == EXPECTED
    assert split_for("0" * 64) == "val" and split_for("f" * 64) == "train"


def test_another_process_with_another_hash_seed_agrees():
    code = ("import json, sys; from mrcnn.store.project import split_for; "
            "print(json.dumps([split_for(h) for h in json.loads(sys.stdin.read())]))")
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", code], input=json.dumps(HASHES),
                             capture_output=True, text=True, env=env, check=True, timeout=60)
        assert json.loads(out.stdout) == EXPECTED
