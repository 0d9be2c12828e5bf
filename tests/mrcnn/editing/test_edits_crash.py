"""A child process editing through the document is killed (SIGKILL) right after an
acknowledgement; the reopened project holds every acknowledged edit."""


import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from edit_helpers import REPO, digest, make_project

from mrcnn.store.project import Project

# ---------------------------------------------------------------- crash safety
CHILD = """
import random, sys
sys.path.insert(0, {tests!r})
from edit_helpers import digest, random_edit, synthetic_rgb
from mrcnn.editing.document import ImageDocument
from mrcnn.store.project import Project

folder, image_id, seed, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
project = Project.open(folder)
doc = ImageDocument(project, image_id)
rng = random.Random(seed)
rgb = synthetic_rgb(*doc.shape)
print("ready", digest(project), flush=True)
n = 0
while limit < 0 or n < limit:
    n += 1
    r = rng.random()
    if r < 0.15:
        doc.undo()
    elif r < 0.2:
        doc.redo()
    else:
        random_edit(doc, rng, rgb, n)
    print("ack", n, digest(project), flush=True)
"""
KILLS = 4
DRY_STEPS = 90


def _child(folder: Path, image_id: int, limit: int) -> list[str]:
    code = CHILD.format(tests=str(Path(__file__).parent))
    return [sys.executable, "-c", code, str(folder), str(image_id), "11", str(limit)]


def test_every_acknowledged_edit_survives_sigkill(tmp_path):
    base = tmp_path / "base"
    image_a, _b = make_project(base, tmp_path / "images")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # A full run tells what the project holds after each step (the child is deterministic).
    shutil.copytree(base, tmp_path / "dry")
    dry = subprocess.run(_child(tmp_path / "dry", image_a, DRY_STEPS), capture_output=True,
                         text=True, env=env, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    digests = [line.split()[-1] for line in dry.stdout.splitlines()]
    assert len(digests) == DRY_STEPS + 1 and len(set(digests)) > DRY_STEPS // 2

    rng = random.Random(5)
    for k in range(KILLS):
        folder = tmp_path / f"run{k}"
        shutil.copytree(base, folder)
        child = subprocess.Popen(_child(folder, image_a, -1), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert child.stdout.readline().split() == ["ready", digests[0]]
            target, acked = rng.randint(1, DRY_STEPS - 30), 0
            while acked < target:
                _ack, n, d = child.stdout.readline().split()
                acked = int(n)
                assert d == digests[acked]
        finally:
            child.send_signal(signal.SIGKILL)  # right after an acknowledgement
            rest = child.stdout.read()
            child.wait()
            child.stdout.close()
            child.stderr.close()
        for line in rest.splitlines():
            parts = line.split()
            if len(parts) == 3:  # a line cut short by the kill is ignored
                acked = int(parts[1])
        assert acked + 1 <= DRY_STEPS, "the child ran too far ahead of the reader"
        with Project.open(folder) as p:
            on_disk = digest(p)
            assert p.integrity_check() == "ok"
        # Every acknowledged step is there; the step in flight may or may not be.
        assert on_disk in (digests[acked], digests[acked + 1]), (k, acked)
