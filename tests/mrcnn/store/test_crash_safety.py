"""Nothing lost: a process editing or exporting a project is killed (SIGKILL) at random
moments, and every edit it acknowledged is still there, the database is sound, the project
reopens for writing, and an export file is always a whole, valid file.

The working process is `crash_writer.py`, run as a child; it prints a line after each
committed edit, which the parent reads to keep its own model of what the project must hold.
Counts: 50 kills while editing, 12 kills while exporting; a second writer refused 5 ways
(CLI in another process, import-coco, predict, train, Project.open) while readers are served.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.cli.main import main
from mrcnn.coco import io as coco_io
from mrcnn.errors import ProjectLockedError
from mrcnn.store.project import Project

REPO = Path(__file__).resolve().parents[3]
WRITER = Path(__file__).with_name("crash_writer.py")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
       "OPENBLAS_NUM_THREADS": "1"}
EDIT_KILLS = 50
EXPORT_KILLS = 12
#: Image sizes of the edited project (small, so that every acknowledgement is one short line).
SIZES = ((24, 32), (16, 16), (40, 20), (8, 12))


def start(*args: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, str(WRITER), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV)
    line = child.stdout.readline()
    if not line.startswith("ready"):
        child.kill()
        child.wait()
        raise AssertionError(f"writer did not start: {line!r} {child.stderr.read()}")
    return child


def kill(child: subprocess.Popen) -> str:
    """SIGKILL the child; return what it had printed and not yet been read."""
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()
    child.wait()
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return rest


# ---------------------------------------------------------------- the expected model
def read_state(project: Project) -> dict:
    """What the user could see: image status and split, categories, every instance."""
    return {
        "images": {im.id: (im.status, im.split) for im in project.images()},
        "categories": {c.id: c.name for c in project.categories()},
        "instances": {i.id: (i.image_id, i.category_id, i.rle.counts, i.state, i.source)
                      for i in project.instances()},
    }


def apply(state: dict, e: dict) -> dict:
    """`state` after the edit `e` (as the writer reports it, ids included)."""
    s = copy.deepcopy(state)
    inst = s["instances"]
    op = e["op"]
    if op == "add":
        inst[e["id"]] = (e["image"], e["category"], e["counts"], "accepted", "manual")
    elif op == "mask":
        image, cat, _, st, src = inst[e["id"]]
        inst[e["id"]] = (image, cat, e["counts"], st, src)
    elif op == "recat":
        image, _, counts, st, src = inst[e["id"]]
        inst[e["id"]] = (image, e["category"], counts, st, src)
    elif op == "delete":
        for i in e["ids"]:
            inst.pop(i, None)
    elif op == "accept":
        for i in e["ids"]:
            image, cat, counts, _, src = inst[i]
            inst[i] = (image, cat, counts, "accepted", src)
    elif op == "status":
        s["images"][e["image"]] = (e["status"], s["images"][e["image"]][1])
    elif op == "split":
        s["images"][e["image"]] = (s["images"][e["image"]][0], e["split"])
    elif op == "predict":
        for i in [i for i, v in inst.items() if v[0] == e["image"] and v[3] == "pending"]:
            del inst[i]
        for i, (cat, counts) in zip(e["ids"], e["items"], strict=True):
            inst[i] = (e["image"], cat, counts, "pending", "model")
        status, split = s["images"][e["image"]]
        s["images"][e["image"]] = ("predicted" if status == "new" else status, split)
    elif op == "add_category":
        s["categories"][e["id"]] = e["name"]
    elif op == "rename":
        s["categories"][e["id"]] = e["name"]
    else:  # pragma: no cover - the writer and this model must agree
        raise AssertionError(f"unknown edit {op}")
    return s


def with_in_flight(state: dict, e: dict, db: dict) -> dict | None:
    """`state` after the edit that was running when the writer died, taking the ids it would
    have reported from the database; None when the database cannot hold that edit."""
    e = dict(e)
    if e["op"] == "add":
        new = sorted(db["instances"].keys() - state["instances"].keys())
        if len(new) != 1:
            return None
        e["id"] = new[0]
    elif e["op"] == "predict":
        kept = {i for i, v in state["instances"].items()
                if not (v[0] == e["image"] and v[3] == "pending")}
        new = sorted(db["instances"].keys() - kept)
        if len(new) != len(e["items"]):
            return None
        e["ids"] = new
    elif e["op"] == "add_category":
        new = sorted(db["categories"].keys() - state["categories"].keys())
        if len(new) != 1:
            return None
        e["id"] = new[0]
    return apply(state, e)


def follow(lines: list[str], state: dict, in_flight: dict | None) -> tuple[dict, dict | None,
                                                                          int]:
    """Apply the writer's complete lines to the model: (state, edit in flight, acks)."""
    acks = 0
    for line in lines:
        kind, _, payload = line.partition(" ")
        if kind == "begin":
            in_flight = json.loads(payload)
        elif kind == "ok":
            state = apply(state, json.loads(payload))
            in_flight = None
            acks += 1
    return state, in_flight, acks


def check_after_kill(folder: Path, state: dict, in_flight: dict | None) -> tuple[dict, bool]:
    """Reopen for writing (the lock died with the writer), check the database, and compare it
    with the model: every acknowledged edit there, plus at most the one in flight, whole."""
    with Project.open(folder) as project:
        assert project.integrity_check() == "ok"
        db = read_state(project)
    conn = sqlite3.connect(folder / "project.db")
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    if db == state:
        return state, False
    assert in_flight is not None, _diff(state, db)
    after = with_in_flight(state, in_flight, db)
    assert db == after, (in_flight, _diff(state, db))
    return db, True


def _diff(expected: dict, db: dict) -> str:
    out = []
    for table in expected:
        a, b = expected[table], db[table]
        for k in sorted(a.keys() | b.keys()):
            if a.get(k) != b.get(k):
                out.append(f"{table}[{k}]: expected {a.get(k)}, found {b.get(k)}")
    return "; ".join(out[:10])


@pytest.fixture
def edited_project(tmp_path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    with Project.create(tmp_path / "proj", images) as p:
        for n, (h, w) in enumerate(SIZES):
            p.add_image(images / f"im{n}.png", w, h, f"{n:064x}")
        cat = p.add_category("first")
        p.add_category("second")
        m = np.zeros(SIZES[0], bool)
        m[2:9, 3:7] = True
        p.add_instance(1, cat.id, masks.encode(m))
    return tmp_path / "proj"


# ---------------------------------------------------------------- killed while editing
@pytest.mark.slow
def test_fifty_kills_while_editing_lose_no_acknowledged_edit(edited_project):
    folder = edited_project
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with Project.open(folder) as p:
        state = read_state(p)
    acked_total = committed_in_flight = lost_in_flight = 0
    for round_ in range(EDIT_KILLS):
        where = f"seed {seed}, round {round_}"
        child = start("edit", str(folder), str(rng.randrange(2**31)))
        kill_after = rng.randint(0, 6)  # acknowledged edits before the kill
        on_begin = kill_after == 0 or rng.random() < 0.5  # kill as an edit starts, or ends
        delay = rng.choice((0.0, 0.0, rng.uniform(0.0, 0.004)))
        lines: list[str] = []
        acks = 0
        try:
            while True:
                line = child.stdout.readline()
                assert line.endswith("\n"), f"{where}: writer died: {child.stderr.read()}"
                lines.append(line.rstrip("\n"))
                acks += line.startswith("ok ")
                if acks >= kill_after and (line.startswith("begin ") if on_begin
                                           else line.startswith("ok ")):
                    break
            if delay:
                time.sleep(delay)  # a random moment inside the next edit
        finally:
            rest = kill(child)
        # Lines already printed were shown to the user: they count as acknowledged too.
        complete = rest.split("\n")[:-1]  # a line cut by the kill was never acknowledged
        state, in_flight, acked = follow(lines + complete, state, None)
        acked_total += acked
        assert acked >= kill_after, where
        try:
            state, landed = check_after_kill(folder, state, in_flight)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
        committed_in_flight += landed
        lost_in_flight += in_flight is not None and not landed
    assert acked_total >= EDIT_KILLS
    print(f"\n{EDIT_KILLS} kills survived (seed {seed}): {acked_total} acknowledged edits all "
          f"present; edits cut by the kill: {committed_in_flight} committed whole, "
          f"{lost_in_flight} not at all")
    with Project.open(folder) as p:  # and the project is still an ordinary, usable project
        assert read_state(p) == state
        out = folder.parent / "after.json"
        report = coco_io.export_coco(p, out)
        assert report.annotations == sum(v[3] == "accepted" for v in state["instances"].values())


# ---------------------------------------------------------------- killed while exporting
@pytest.fixture
def big_project(tmp_path) -> Path:
    """~8000 instances on 200 images, half of them reviewed: a few MB of COCO JSON."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    with Project.create(tmp_path / "big", images) as p, p.transaction():
        cats = [p.add_category(f"c{i}").id for i in range(5)]
        for n in range(200):
            im = p.add_image(images / f"{n:03d}.png", 64, 48, f"{n:064x}")
            for _ in range(40):
                m = np.zeros((48, 64), bool)
                y, x = rng.integers(0, 40), rng.integers(0, 56)
                m[y:y + rng.integers(2, 9), x:x + rng.integers(2, 9)] = True
                p.add_instance(im.id, cats[n % 5], masks.encode(m))
            if n % 2:
                p.set_image_status(im.id, "reviewed")
    return tmp_path / "big"


def _content(path: Path) -> dict:
    """A file's COCO content without its creation time."""
    coco = json.loads(path.read_bytes())
    coco["info"].pop("date_created")
    return coco


@pytest.mark.slow
def test_kills_while_exporting_leave_the_previous_or_the_new_file_whole(big_project, tmp_path):
    from pycocotools.coco import COCO

    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / "annotations.json"
    variants = []
    with Project.open(big_project, read_only=True) as p:
        for reviewed_only in (False, True):
            start_time = time.perf_counter()
            coco_io.export_coco(p, out, reviewed_only=reviewed_only)
            seconds = time.perf_counter() - start_time
            variants.append(_content(out))
    assert variants[0] != variants[1]
    current = 1  # the file now holds variant 1
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    cut = 0
    for round_ in range(EXPORT_KILLS):
        where = f"seed {seed}, round {round_}"
        child = start("export", str(big_project), str(out), str(1 - current))
        during_write = rng.random() < 0.75
        lines = []
        try:
            while True:
                line = child.stdout.readline()
                assert line.endswith("\n"), f"{where}: exporter died: {child.stderr.read()}"
                lines.append(line.split())
                if during_write and lines[-1][0] == "writing":
                    time.sleep(rng.uniform(0.0, 0.8 * seconds))  # somewhere in the write
                    break
                if not during_write and lines[-1][0] == "done" and rng.random() < 0.5:
                    break
        finally:
            rest = kill(child)
        lines += [r.split() for r in rest.split("\n")[:-1]]
        done = [int(v) for kind, v in lines if kind == "done"]
        writing = [int(v) for kind, v in lines if kind == "writing"]
        possible = {done[-1] if done else current}
        if len(writing) > len(done):
            possible.add(writing[-1])  # the write that was cut may or may not have landed
        with contextlib.redirect_stdout(io.StringIO()):
            loaded = COCO(str(out))  # whole and valid for pycocotools
        content = _content(out)
        assert len(loaded.getAnnIds()) == len(content["annotations"])
        matches = [v for v in possible if variants[v] == content]
        assert matches, f"{where}: the file is neither of {sorted(possible)}"
        current = matches[0]
        visible = sorted(f.name for f in out_dir.iterdir() if not f.name.startswith("."))
        assert visible == ["annotations.json"], where
        temps = [f.name for f in out_dir.iterdir() if f.name.startswith(".")]
        assert all(t.startswith(".annotations.json.") and t.endswith(".tmp") for t in temps)
        cut += bool(temps)
        for t in temps:  # a cut write leaves its hidden temporary file; start clean
            (out_dir / t).unlink()
    assert cut >= 1, "no kill landed inside a write: the test proved nothing"
    print(f"\n{EXPORT_KILLS} kills while exporting (seed {seed}): the file was whole every "
          f"time; {cut} kills landed inside the atomic write")


# ---------------------------------------------------------------- two writers
def _coco_file(folder: Path) -> Path:
    folder.mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(folder / "x.png")
    m = np.zeros((16, 16), np.uint8, order="F")
    m[2:6, 2:6] = 1
    coco = {"images": [{"id": 1, "file_name": "x.png", "width": 16, "height": 16}],
            "categories": [{"id": 1, "name": "refused-category"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "segmentation": masks.encode(m.astype(bool)).to_coco()}]}
    (folder / "coco.json").write_text(json.dumps(coco))
    return folder / "coco.json"


def test_a_second_writer_is_refused_clearly_while_the_first_keeps_writing(
        edited_project, tmp_path, capsys):
    folder = edited_project
    coco_path = _coco_file(tmp_path / "incoming")
    with Project.open(folder) as p:
        state = read_state(p)
    child = start("edit", str(folder), "11")
    lines = [child.stdout.readline().rstrip("\n") for _ in range(6)]  # it is busy editing
    try:
        message = f"already open for writing by another process (pid {child.pid})"
        r = subprocess.run([sys.executable, "-m", "mrcnn", "import-coco", str(folder),
                            str(coco_path)], capture_output=True, text=True, env=ENV,
                           timeout=120)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr
        assert message in r.stderr and "read-only" in r.stderr
        for args in (["import-coco", folder, coco_path], ["predict", folder],
                     ["train", folder, "--max-iters", "1"]):
            capsys.readouterr()
            assert main([str(a) for a in args]) == 1
            out, err = capsys.readouterr()
            assert out == "" and err.count("\n") == 1 and message in err, err
        with pytest.raises(ProjectLockedError, match=rf"pid {child.pid}"):
            Project.open(folder)
        # Readers are served meanwhile, from a consistent snapshot.
        capsys.readouterr()
        assert main(["info", str(folder), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["categories"]
        assert main(["export-coco", str(folder), str(tmp_path / "snapshot.json")]) == 0
    finally:
        rest = kill(child)
    state, in_flight, _ = follow(lines + rest.split("\n")[:-1], state, None)
    state, _ = check_after_kill(folder, state, in_flight)
    with Project.open(folder, read_only=True) as p:
        assert "refused-category" not in {c.name for c in p.categories()}
        assert all(not im.path.endswith("x.png") for im in p.images())
