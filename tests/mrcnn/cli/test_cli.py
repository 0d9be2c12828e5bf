"""`python -m mrcnn`: the contract scripts rely on. One clear error line, project unchanged."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from mrcnn.cli.main import main
from mrcnn.store.project import Project

REPO = Path(__file__).resolve().parents[3]


def run(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m mrcnn ARGS` in a fresh process, as a user or a script runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mrcnn", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def run_here(*args, capsys) -> tuple[int, str, str]:
    """The same entry point, in this process (faster; same code path after start-up)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, out: str, err: str, *fragments: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert out == ""


def state(folder: Path, helpers) -> tuple:
    with Project.open(folder, read_only=True) as p:
        return helpers.project_state(p)


# ---------------------------------------------------------------- commands
def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for command in ("new", "import-coco", "export-coco", "info"):
        assert command in r.stdout


def test_new_import_export_info_end_to_end(make_dataset, tmp_path, helpers):
    ds = make_dataset("labelme")  # JPEGImages/voc.jpg: the scan is recursive
    (ds.images_dir / "broken.jpg").write_text("not an image")
    proj = tmp_path / "my project"

    r = run("new", proj, "--images", ds.images_dir, "--json")
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert created["added"] == 4
    assert [Path(s["path"]).name for s in created["skipped"]] == ["broken.jpg"]
    assert "warning: skipped" in r.stderr and "broken.jpg" in r.stderr

    r = run("import-coco", proj, ds.json_path, "--json")
    assert r.returncode == 0, r.stderr
    imported = json.loads(r.stdout)
    assert imported["annotations_added"] == len(ds.expected)
    assert (imported["images_added"], imported["images_known"]) == (0, 4)
    assert imported["status"] == "reviewed"

    r = run("info", proj, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["images"]["total"] == 4
    assert (info["images"]["reviewed"], info["images"]["new"]) == (3, 1)
    assert info["instances"]["accepted"] == len(ds.expected)
    assert "_background_" not in [c["name"] for c in info["categories"]]
    assert sum(c["instances"] for c in info["categories"]) == len(ds.expected)

    r = run("export-coco", proj, tmp_path / "out.json", "--masks", "polygon", "--json")
    assert r.returncode == 0, r.stderr
    exported = json.loads(r.stdout)
    assert (exported["annotations"], exported["masks"]) == (len(ds.expected), "polygon")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "out.json"))
    assert len(coco.getAnnIds()) == len(ds.expected)
    assert exported["rle_fallbacks"] == sum(isinstance(a["segmentation"], dict)
                                            for a in coco.dataset["annotations"])

    with Project.open(proj) as p:
        p.set_image_status(p.image_by_key("JPEGImages/voc.jpg").id, "in_review")
    r = run("export-coco", proj, tmp_path / "reviewed.json", "--reviewed-only")
    assert r.returncode == 0, r.stderr
    assert "(verified with pycocotools)" in r.stdout
    reviewed = json.loads((tmp_path / "reviewed.json").read_text())
    assert len(reviewed["images"]) == 2
    assert len(reviewed["annotations"]) == len(ds.expected) - 19  # VOC's 19 are in review

    with Project.open(proj, read_only=True) as p:
        assert helpers.project_masks(p) == ds.expected_masks()


def test_human_readable_output(make_dataset, tmp_path, capsys):
    ds = make_dataset("rle")
    proj = tmp_path / "p"
    code, out, _ = run_here("new", proj, "--images", ds.images_dir, capsys=capsys)
    assert code == 0 and "4 images added, 0 skipped" in out
    elsewhere = ds.write(path=tmp_path / "coco.json")  # not beside the images: --images
    code, out, _ = run_here("import-coco", proj, elsewhere, "--images", ds.images_dir,
                            "--status", "in_review", capsys=capsys)
    assert code == 0 and f"{len(ds.expected)} annotations on 3 images (marked in_review)" in out
    code, out, _ = run_here("info", proj, capsys=capsys)
    assert code == 0
    assert "in_review 3" in out and "new 1" in out and "ring  (1)" in out
    code, out, _ = run_here("import-coco", proj, ds.json_path, capsys=capsys)
    assert code == 0 and f"{len(ds.expected)} duplicates skipped" in out
    code, out, _ = run_here("export-coco", proj, tmp_path / "o.json", "--masks", "polygon",
                            capsys=capsys)
    assert code == 0 and "instances kept as RLE because a polygon would lose pixels" in out


# ---------------------------------------------------------------- errors
@pytest.fixture
def project_dir(make_dataset, tmp_path):
    """A project with imported annotations (closed), and its dataset."""
    ds = make_dataset("rle")
    folder = tmp_path / "proj"
    with Project.create(folder, ds.images_dir) as p:
        from mrcnn.coco.io import import_coco

        import_coco(p, ds.json_path)
    return folder, ds


def test_bad_import_file_is_one_error_line_and_changes_nothing(project_dir, helpers):
    folder, ds = project_dir
    bad = ds.copy()
    bad["annotations"][3]["category_id"] = 42
    bad["images"].append({"id": 9, "file_name": "camera.png"})  # would be a new image
    path = ds.write(bad, ds.images_dir / "bad.json")
    before = state(folder, helpers)
    r = run("import-coco", folder, path, "--json")
    assert_one_error_line(r.returncode, r.stdout, r.stderr, "bad.json",
                          "annotations[3] (id 4)", "category_id 42 is not in 'categories'")
    assert state(folder, helpers) == before


def test_polygon_points_that_would_crash_pycocotools_are_refused(project_dir, helpers):
    """pycocotools segfaults on polygon points near 1e9; the user gets an error, not a crash
    (in a child process here, so that a regression cannot take the test run down)."""
    folder, ds = project_dir
    bad = ds.copy()
    bad["annotations"][2]["segmentation"] = [[0, 0, 1e9, 0, 0, 1e9]]
    path = ds.write(bad, ds.images_dir / "huge.json")
    before = state(folder, helpers)
    r = run("import-coco", folder, path)
    assert_one_error_line(r.returncode, r.stdout, r.stderr, "annotations[2] (id 3)",
                          "lies far outside the 500x375 image")
    assert state(folder, helpers) == before


def test_locked_project_refuses_writers_but_serves_readers(project_dir, helpers, tmp_path):
    folder, ds = project_dir
    with Project.open(folder) as holder:  # e.g. the GUI has it open
        before = helpers.project_state(holder)
        r = run("import-coco", folder, ds.json_path)
        assert_one_error_line(r.returncode, r.stdout, r.stderr, "already open for writing",
                              f"pid {os.getpid()}")
        assert helpers.project_state(holder) == before
        r = run("info", folder, "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["instances"]["total"] > 0
        r = run("export-coco", folder, tmp_path / "while-open.json")
        assert r.returncode == 0, r.stderr


def test_opening_something_that_is_no_project(tmp_path, capsys):
    r = run("info", tmp_path)
    assert_one_error_line(r.returncode, r.stdout, r.stderr, "is not a project")
    (tmp_path / "project.db").write_bytes(b"\x00garbage" * 512)
    for command in (["info", tmp_path], ["import-coco", tmp_path, tmp_path / "x.json"],
                    ["export-coco", tmp_path, tmp_path / "x.json"]):
        assert_one_error_line(*run_here(*command, capsys=capsys),
                              "not a readable project database")
    assert (tmp_path / "project.db").read_bytes() == b"\x00garbage" * 512
    assert not (tmp_path / "x.json").exists()


def test_more_errors_are_one_line_and_change_nothing(project_dir, helpers, tmp_path, capsys):
    folder, ds = project_dir
    before = state(folder, helpers)
    (tmp_path / "a-file").write_text("x")
    cases = [
        (["import-coco", folder, tmp_path / "missing.json"], ["missing.json: file not found"]),
        (["import-coco", folder, ds.json_path, "--images", tmp_path / "nope"],
         ["images folder", "does not exist"]),
        (["export-coco", folder, tmp_path / "no-dir" / "out.json"], ["does not exist"]),
        (["export-coco", folder, tmp_path], ["is a folder"]),
        (["new", folder, "--images", ds.images_dir], ["already exists"]),
        (["new", tmp_path / "fresh", "--images", tmp_path / "no-images"], ["does not exist"]),
        (["new", tmp_path / "a-file" / "proj", "--images", ds.images_dir], ["a-file"]),
    ]
    for args, fragments in cases:
        assert_one_error_line(*run_here(*args, "--json", capsys=capsys), *fragments)
    assert state(folder, helpers) == before
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "no-dir").exists()


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    [],
    ["new"],
    ["export-coco", "p", "o.json", "--masks", "bitmap"],
    ["import-coco", "p", "f.json", "--status", "new"],
], ids=["unknown-command", "no-command", "missing-arguments", "bad-mask-format", "bad-status"])
def test_usage_mistakes_are_one_error_line(args):
    r = run(*args)
    assert r.returncode == 2
    assert_one_error_line(r.returncode, r.stdout, r.stderr, "--help")


def test_disk_and_database_failures_are_one_error_line(project_dir, helpers, tmp_path, capsys,
                                                       monkeypatch):
    import sqlite3

    folder, ds = project_dir
    before = state(folder, helpers)
    out = tmp_path / "out.json"
    out.write_text("previous export")

    def no_space(fd):
        raise OSError(28, "No space left on device", str(out))

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", no_space)  # the disk fills up while the export is written
        assert_one_error_line(*run_here("export-coco", folder, out, capsys=capsys),
                              "No space left on device", str(out))
    assert out.read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    def io_error(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    bigger = ds.copy()
    bigger["annotations"][0]["segmentation"] = {"size": [375, 500], "counts": [7, 9, 187484]}
    with monkeypatch.context() as m:
        m.setattr(Project, "add_instance", io_error)
        assert_one_error_line(
            *run_here("import-coco", folder, ds.write(bigger, ds.images_dir / "b.json"),
                      capsys=capsys),
            "project database: disk I/O error")
    assert state(folder, helpers) == before
