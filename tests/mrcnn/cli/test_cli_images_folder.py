"""Every command's PROJECT may be the folder of images: its project is found where the app
keeps it (the hidden .mrcnn-project folder), by the one rule `find_project`."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import assert_one_error_line, run, run_here

from mrcnn.store.project import PROJECT_DIRNAME, Project, find_project


def test_info_takes_the_images_folder_the_app_opened(make_dataset, tmp_path):
    ds = make_dataset("rle")
    with Project.create(ds.images_dir / PROJECT_DIRNAME, ds.images_dir):
        pass  # what File ▸ Open Folder… leaves behind
    r = run("info", ds.images_dir)
    assert r.returncode == 0, r.stderr
    assert f"project      {ds.images_dir / PROJECT_DIRNAME}" in r.stdout


def test_every_command_takes_the_images_folder_for_its_project(make_dataset, tmp_path, capsys):
    ds = make_dataset("rle")
    images = ds.images_dir
    code, out, err = run_here("new", images, "--json", capsys=capsys)
    assert code == 0, err
    assert Path(json.loads(out)["project"]) == images / PROJECT_DIRNAME  # where the app looks
    assert find_project(images) == images / PROJECT_DIRNAME
    assert_one_error_line(*run_here("new", images, capsys=capsys), "already exists")

    code, out, err = run_here("import-coco", images, ds.json_path, "--json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["annotations_added"] == len(ds.expected)
    code, out, err = run_here("info", images, "--json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["instances"]["accepted"] == len(ds.expected)
    code, out, err = run_here("export-coco", images, tmp_path / "out.json", "--json",
                              capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["annotations"] == len(ds.expected)
    # the model commands find the project too: what is missing is the model named
    for command in (["predict", images, "--model", "v9"], ["eval", images, "--model", "v9"],
                    ["train", images, "--from", "v9"]):
        assert_one_error_line(*run_here(*command, capsys=capsys), "'v9'")


def test_a_folder_with_no_project_says_so(tmp_path, capsys):
    assert_one_error_line(*run_here("info", tmp_path, capsys=capsys), "is not a project",
                          PROJECT_DIRNAME)
