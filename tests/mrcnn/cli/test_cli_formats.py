"""`python -m mrcnn export|import --format F`: every format the window offers, on the command
line, out and back in, with one clear error line for bad input."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from test_cli import assert_one_error_line, run_here, state

from mrcnn.coco.formats import FORMATS
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder

#: Where the images of an export are for a new project over them, and what import needs.
IMAGES = {
    "coco": (None, False),  # the JSON is not beside its images: --images given
    "yolo-seg": ("images", False),
    "masks": (None, True),
    "labelme": (None, False),
    "voc": ("JPEGImages", False),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_then_import_gives_the_instances_back(fmt, make_dataset, tmp_path, capsys,
                                                     helpers):
    ds = make_dataset("rle")
    first = tmp_path / "first"
    assert run_here("new", first, "--images", ds.images_dir, capsys=capsys)[0] == 0
    assert run_here("import-coco", first, ds.json_path, capsys=capsys)[0] == 0
    with Project.open(first, read_only=True) as p:
        before = helpers.project_masks(p)
    out = tmp_path / ("out.json" if fmt == "coco" else "out")
    code, text, err = run_here("export", first, out, "--format", fmt, "--json", capsys=capsys)
    assert code == 0, err
    report = json.loads(text)
    assert (report["format"], report["annotations"]) == (fmt, sum(before.values()))

    inside, needs_images = IMAGES[fmt]
    images = out / inside if inside else ds.images_dir
    second = tmp_path / "second"
    assert run_here("new", second, "--images", images, capsys=capsys)[0] == 0
    args = ["import", second, out, "--format", fmt, "--json"]
    if needs_images or fmt == "coco":
        args += ["--images", ds.images_dir]
    code, text, err = run_here(*args, capsys=capsys)
    assert code == 0, err
    with Project.open(second, read_only=True) as p:
        after = helpers.project_masks(p)
        statuses = {im.status for im in p.images() if p.instances(im.id)}
    assert statuses == {"reviewed"}
    if fmt == "yolo-seg":  # polygons: holes filled, parts apart (the export says how many)
        assert sum(after.values()) >= sum(before.values())
    elif fmt == "voc":  # exact masks; VOC's names are flat (sub/dir/a.jpg → sub__dir__a.jpg)
        assert Counter((f.replace("/", "__"), c, m) for (f, c, m) in before.elements()) == after
    else:  # exact masks, under the same image names
        assert after == before


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"coco"}))
def test_export_into_a_folder_of_other_files_is_refused_and_writes_nothing(
        fmt, make_dataset, tmp_path, capsys):
    ds = make_dataset("rle")
    project = tmp_path / "p"
    run_here("new", project, "--images", ds.images_dir, capsys=capsys)
    run_here("import-coco", project, ds.json_path, capsys=capsys)
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, text, err = run_here("export", project, out, "--format", fmt, capsys=capsys)
    assert_one_error_line(code, text, err, str(out), "not empty")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    # a second export over the first one replaces it whole
    fresh = tmp_path / "fresh"
    assert run_here("export", project, fresh, "--format", fmt, capsys=capsys)[0] == 0
    assert run_here("export", project, fresh, "--format", fmt, capsys=capsys)[0] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"coco"}))
def test_import_of_a_missing_folder_is_one_error_line(fmt, make_dataset, tmp_path, capsys,
                                                      helpers):
    ds = make_dataset("rle")
    project = tmp_path / "p"
    run_here("new", project, "--images", ds.images_dir, capsys=capsys)
    before = state(project, helpers)
    missing = tmp_path / "nowhere"
    code, text, err = run_here("import", project, missing, "--format", fmt, "--images",
                               ds.images_dir, capsys=capsys)
    assert_one_error_line(code, text, err, "nowhere")
    assert state(project, helpers) == before


def test_unknown_format_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_here("export", tmp_path, tmp_path / "o", "--format", "tiff", capsys=capsys)
    assert exc.value.code == 2
    assert "invalid choice: 'tiff'" in capsys.readouterr().err


def test_help_names_every_format(capsys):
    with pytest.raises(SystemExit):
        run_here("export", "--help", capsys=capsys)
    text = capsys.readouterr().out
    for name in FORMATS:
        assert name in text


@pytest.mark.parametrize("fmt", ["yolo-seg", "voc"])
def test_an_export_inside_the_images_folder_is_not_taken_for_new_images(fmt, make_dataset,
                                                                        tmp_path, capsys):
    """YOLO and VOC exports hold copies of the images; a scan of the images folder (the
    window's open, `new`) must not register them a second time."""
    ds = make_dataset("rle")
    project = tmp_path / "p"
    run_here("new", project, "--images", ds.images_dir, capsys=capsys)
    run_here("import-coco", project, ds.json_path, capsys=capsys)
    with Project.open(project, read_only=True) as p:
        before = sorted(im.path for im in p.images())
    assert run_here("export", project, ds.images_dir / "export", "--format", fmt,
                    capsys=capsys)[0] == 0
    with Project.open(project) as p:
        assert scan_folder(p).added == 0
        assert sorted(im.path for im in p.images()) == before
