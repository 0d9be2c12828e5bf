"""`python -m mrcnn new PROJECT --images URL`: a local project over images under a URL; an
unreachable URL is one clear error line and leaves nothing behind."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_one_error_line, run, run_here

from mrcnn.store.project import Project
from mrcnn.testing.http_folder import FolderServer


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    (folder / "day 1").mkdir(parents=True)
    for i, name in enumerate(("a.png", "day 1/b.png", "day 1/c.jpg")):
        rgb = np.random.default_rng(i).integers(0, 256, (16, 24, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG" if name.endswith("jpg") else "PNG")
        (folder / name).write_bytes(buf.getvalue())
    with FolderServer(folder) as server:
        yield server


def test_new_over_a_url_lists_and_registers_the_images(served, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRCNN_CACHE", str(tmp_path / "cache"))
    code, out, err = run_here("new", tmp_path / "p", "--images", served.url, "--json",
                              capsys=capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["images_root"] == served.url and result["added"] == 3
    with Project.open(tmp_path / "p", read_only=True) as project:
        assert sorted(im.path for im in project.images()) == ["a.png", "day 1/b.png",
                                                              "day 1/c.jpg"]
    code, out, err = run_here("info", tmp_path / "p", capsys=capsys)
    assert code == 0 and f"images root  {served.url}" in out


def test_an_unreachable_url_is_one_error_line_and_no_project(served, tmp_path):
    url = served.url
    served.stop()
    r = run("new", tmp_path / "p", "--images", url)
    assert_one_error_line(r.returncode, r.stdout, r.stderr, url, "cannot reach",
                          "Check the network connection")
    assert not (tmp_path / "p").exists()


def test_a_url_given_as_the_project_says_where_it_goes(tmp_path, capsys):
    assert_one_error_line(*run_here("new", "s3://bucket/images", capsys=capsys),
                          "looks like a URL", "--images")
