"""Hostile COCO files and file names: one clear error, nothing touched outside, no change."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest
from hostile_helpers import H, W, _coco_for, _gradient, _one_line_error, _save
from hostile_helpers import project as project  # the fixture, for the tests below

from mrcnn.coco import validate as coco_validate
from mrcnn.coco.io import export_coco, import_coco
from mrcnn.errors import CocoFormatError
from mrcnn.io import images as imageio
from mrcnn.store.project import Project


# ---------------------------------------------------------------- COCO files, command line
def _valid_coco(folder: Path) -> dict:
    folder.mkdir(exist_ok=True)
    _save(folder / "fine.png", _gradient())
    return _coco_for({"fine.png": (W, H)})


COCO_CASES = {
    # id: (bytes of the file, given a valid COCO dict; words of the one error line)
    "non-utf8": (lambda c: json.dumps(c).replace("thing", "caf\xe9").encode("latin-1"),
                 "not UTF-8 text (byte 0xe9 at offset"),
    "utf16": (lambda c: json.dumps(c).encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
    "deeply-nested": (lambda c: json.dumps({**c, "info": 0}).replace(
        '"info": 0', '"info": ' + "[" * 50_000 + "]" * 50_000).encode(), "nested too deeply"),
    "rle-counts-short": (lambda c: json.dumps(_with_seg(c, {"size": [H, W],
                                                             "counts": [5, 10, 20]})).encode(),
                         "counts sum to 35, not height*width = 600"),
    "rle-counts-long": (lambda c: json.dumps(_with_seg(c, {"size": [H, W],
                                                            "counts": [0, 300, 301]})).encode(),
                        "counts sum to 601, not height*width = 600"),
    "rle-string-short": (lambda c: json.dumps(_with_seg(c, {"size": [H, W],
                                                             "counts": "0d1"})).encode(),
                         "bad segmentation: RLE counts sum to"),
    # Found by test_fuzz_coco.py: JSON integers too big for a float once crashed the import.
    "polygon-integer-too-big-for-a-float": (
        lambda c: json.dumps(_with_seg(c, [[0, 0, 5, 0, 2**64 + 1, 9]])).encode(),
        "polygon point (1.84467e+19, 9) lies far outside the 30x20 image"),
    "polygon-integer-too-big-for-any-float": (
        lambda c: json.dumps(_with_seg(c, [[0, 0, 5, 0, 10**400, 9]])).encode(),
        "polygon point (a 401-digit number, 9) lies far outside"),
    "number-with-5000-digits": (
        lambda c: json.dumps(_with_key(c, "area", 0)).replace('"area": 0',
                                                              '"area": ' + "9" * 5000).encode(),
        "unreadable JSON number (Exceeds the limit (4300 digits)"),
}


def _with_key(coco: dict, key: str, value) -> dict:
    coco["annotations"][0][key] = value
    return coco


def _with_seg(coco: dict, seg) -> dict:
    coco["annotations"][0]["segmentation"] = seg
    return coco


@pytest.mark.parametrize("case", COCO_CASES, ids=list(COCO_CASES))
def test_bad_coco_file_is_one_error_line_and_changes_nothing(case, project, helpers,
                                                             tmp_path, capsys):
    make, words = COCO_CASES[case]
    folder = tmp_path / "incoming"
    path = folder / "coco.json"
    data = make(_valid_coco(folder))
    path.write_bytes(data)
    before = helpers.project_state(project)
    project.close()  # the command line opens it itself
    err = _one_line_error(["import-coco", project.folder, path], capsys)
    assert words in err and str(path) in err, err
    with Project.open(project.folder, read_only=True) as p:
        assert helpers.project_state(p) == before


def test_an_absurd_bbox_is_not_trusted_but_recomputed_from_the_mask(project, tmp_path):
    """bbox and area in a file are never trusted (they once crashed the import when too big
    for a float); what is stored comes from the mask."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    coco["annotations"][0].update(bbox=[0, 0, 10**400, 1], area=-5)
    (folder / "coco.json").write_text(json.dumps(coco))
    import_coco(project, folder / "coco.json")
    inst = project.instances()[-1]
    assert inst.bbox == (0.0, 0.0, float(W // 2), float(H // 2)) and inst.area == 150


def test_a_file_above_the_size_limit_is_refused_unread(project, helpers, tmp_path, capsys,
                                                       monkeypatch):
    """Refused from its size alone: nothing is read, so nothing can run out of memory."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    coco["info"] = {"padding": "x" * 3_000_000}  # valid, only too big for the limit below
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    before = helpers.project_state(project)
    project.close()
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    monkeypatch.setattr(coco_validate, "MAX_COCO_BYTES", 2 * 2**20)
    err = _one_line_error(["import-coco", project.folder, path], capsys)
    assert "coco.json: file is 2.9 MiB, above the 2.0 MiB limit for one COCO file" in err
    assert path not in reads
    with Project.open(project.folder, read_only=True) as p:
        assert helpers.project_state(p) == before


@pytest.mark.skipif(os.name != "posix", reason="needs a sparse file")
def test_a_file_above_the_default_limit_is_refused_in_an_instant(project, helpers, tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: 512 MiB + 1 byte that take no disk space
        f.truncate(coco_validate.MAX_COCO_BYTES + 1)
    before = helpers.project_state(project)
    start = time.perf_counter()
    with pytest.raises(CocoFormatError, match=r"huge.json: file is 512.0 MiB, above the "
                                              r"512.0 MiB limit"):
        import_coco(project, path)
    assert time.perf_counter() - start < 2.0
    assert helpers.project_state(project) == before


# ---------------------------------------------------------------- file names in a COCO file
def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root (links not followed): (size, mtime_ns)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def escape_setup(tmp_path):
    """tmp/base/images/{fine.png, sub/, link -> tmp/base/elsewhere/deep}, and a valid photo
    at every place outside that a hostile name could reach: if the program ever read one of
    them, the import would succeed."""
    base = tmp_path / "base"
    images = base / "images"
    (images / "sub").mkdir(parents=True)
    deep = base / "elsewhere" / "deep"
    deep.mkdir(parents=True)
    _save(images / "fine.png", _gradient())
    for where in (base, base / "elsewhere", deep, tmp_path):
        _save(where / "x.png", _gradient())
    (images / "link").symlink_to(deep)
    return images


PATHS = {
    # id: (file_name, given the images folder; words of the message)
    "dot-dot": (lambda d: "../x.png", "points outside the images folder"),
    "dot-dot-backslash": (lambda d: "..\\x.png", "points outside the images folder"),
    "sub-dot-dot-backslash": (lambda d: "sub\\..\\..\\x.png", "points outside"),
    "dot-segments": (lambda d: "sub/./../.././x.png", "points outside"),
    "dot-dot-alone": (lambda d: "..", "points outside"),
    "dot": (lambda d: ".", "points outside"),
    "absolute": (lambda d: str(d.parent / "x.png"), "is an absolute path"),
    "absolute-double-slash": (lambda d: "//" + str(d.parent / "x.png").lstrip("/"),
                              "is an absolute path"),
    "backslash-root": (lambda d: "\\..\\x.png", "is an absolute path"),
    "drive-letter": (lambda d: "C:\\Users\\x.png", "is an absolute path"),
    "drive-letter-slash": (lambda d: "c:/x.png", "is an absolute path"),
    "drive-relative": (lambda d: "D:x.png", "is an absolute path"),
    "unc-share": (lambda d: "\\\\server\\share\\x.png", "is an absolute path"),
    "symlink-then-dot-dot": (lambda d: "link/../../x.png", "points outside"),
    # Judged on the name: link/../x.png is images/x.png (absent), never elsewhere/deep/../x.png
    "symlink-dot-dot-physical": (lambda d: "link/../x.png", "file not found"),
    "nul-byte": (lambda d: "fine.png\x00../../x.png", "'file_name' contains a NUL character"),
    "long-component": (lambda d: "a" * 300 + ".png", "File name too long"),
    "long-path": (lambda d: "d/" * 2100 + "x.png", "File name too long"),
    "home-tilde": (lambda d: "~/x.png", "file not found"),
    "env-variable": (lambda d: "$HOME/x.png", "file not found"),
    "windows-env-variable": (lambda d: "%USERPROFILE%\\x.png", "file not found"),
    # a URL names a file by itself: never taken relative to the images folder
    "file-url": (lambda d: "file:///" + str(d.parent / "x.png").lstrip("/"),
                 "is an absolute path"),
    "lookalike-dots": (lambda d: "\u2025/x.png", "file not found"),
    "a-folder": (lambda d: "sub/", "is a folder, not a file"),
}


@pytest.mark.parametrize("case", PATHS, ids=list(PATHS))
def test_no_file_name_reads_or_writes_outside_the_chosen_folders(case, escape_setup, tmp_path,
                                                                  new_project, helpers,
                                                                  monkeypatch):
    images = escape_setup
    project = new_project(images, tmp_path / "proj")
    make, words = PATHS[case]
    coco = _coco_for({"fine.png": (W, H), "placeholder": (W, H)})
    coco["images"][1]["file_name"] = make(images)
    out = tmp_path / "exports"
    out.mkdir()
    path = out / "coco.json"
    path.write_text(json.dumps(coco))
    reads: list[str] = []
    real = imageio._read_bytes
    monkeypatch.setattr(imageio, "_read_bytes", lambda p: reads.append(str(p)) or real(p))
    before = helpers.project_state(project)
    files = _tree(tmp_path)
    with pytest.raises(CocoFormatError) as info:
        import_coco(project, path, images_dir=images)
    message = str(info.value)
    assert "images[1] (id 2)" in message and words in message, message
    assert helpers.project_state(project) == before
    inside = str(images.resolve()) + os.sep
    for p in reads:  # only files named under the images folder were opened
        assert os.path.normpath(p).startswith(inside), p
    changed = {k for k, v in _tree(tmp_path).items() if files.get(k) != v}
    assert changed <= {"proj/project.db", "proj/project.db-wal", "proj/project.db-shm"}, changed


def test_hostile_names_inside_the_project_write_nothing_outside_the_export(
        project, helpers, tmp_path):
    """Category names and image paths are data, never paths the program writes to."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    coco["categories"] = [{"id": i, "name": n} for i, n in enumerate(
        ["../../evil", "/etc/passwd", "C:\\Windows\\x", "con", "a/b\\c", "\u202eexe.png"], 1)]
    coco["annotations"] = [{**coco["annotations"][0], "id": i, "category_id": i}
                           for i in range(1, 7)]
    (folder / "coco.json").write_text(json.dumps(coco))
    import_coco(project, folder / "coco.json")
    files = _tree(tmp_path)
    out = tmp_path / "out" / "export.json"
    out.parent.mkdir()
    export_coco(project, out)
    changed = {k for k, v in _tree(tmp_path).items() if files.get(k) != v}
    assert changed == {"out/export.json"}
    names = {c["name"] for c in json.loads(out.read_text())["categories"]}
    assert {"../../evil", "/etc/passwd", "C:\\Windows\\x"} <= names


def test_errors_leave_the_program_running(project, helpers, tmp_path):
    """After every kind of refusal above, the same open project still takes a valid import."""
    folder = tmp_path / "incoming"
    coco = _valid_coco(folder)
    bad = json.loads(json.dumps(coco))
    bad["annotations"][0]["segmentation"] = {"size": [H, W], "counts": [1]}
    (folder / "bad.json").write_text(json.dumps(bad))
    (folder / "good.json").write_text(json.dumps(coco))
    with contextlib.suppress(CocoFormatError):
        import_coco(project, folder / "bad.json")
    report = import_coco(project, folder / "good.json")
    assert report.annotations_added == 1 and project.integrity_check() == "ok"
