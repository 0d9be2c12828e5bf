"""Exports and imports of a project whose images are under a URL (fsspec's in-memory
storage): formats that carry the images copy them from the cache one at a time, files that
point at images name their URL, and labelled data imports onto the remote images."""

from __future__ import annotations

import io
import json
import uuid

import fsspec
import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.coco.formats import export_dataset, import_dataset
from mrcnn.errors import CocoFormatError
from mrcnn.io.cache import default_cache
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder
from mrcnn.testing.synthetic import SHAPES, draw_image

N_IMAGES = 5


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """Synthetic images under a memory:// URL, a cache that holds two of them, and a project
    over the URL with every image's true shapes accepted and reviewed."""
    rng = np.random.default_rng(5)
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}/images"
    truth = {}
    biggest = 0
    for i in range(N_IMAGES):
        rgb, instances = draw_image(rng, 64)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        fs.pipe(f"{root}/img_{i}.png", buf.getvalue())
        biggest = max(biggest, len(buf.getvalue()))
        truth[f"img_{i}.png"] = instances
    monkeypatch.setenv("MRCNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MRCNN_CACHE_BYTES", str(2 * biggest))
    url = f"memory:/{root}"
    project = Project.create(tmp_path / "project", url)
    scan_folder(project)
    cats = {name: project.add_category(name).id for name in SHAPES}
    for im in project.images():
        for inst in truth[im.path]:
            project.add_instance(im.id, cats[inst.name], masks.encode(inst.mask))
        project.set_image_status(im.id, "reviewed")
    yield url, project
    project.close()
    fs.rm(root.rsplit("/", 1)[0], recursive=True)


def _masks(project) -> set:
    cats = {c.id: c.name for c in project.categories()}
    paths = {im.id: im.path for im in project.images()}
    return {(paths[i.image_id], cats[i.category_id], i.rle.counts)
            for i in project.instances(state="accepted")}


def test_a_yolo_export_copies_the_remote_images_within_the_cache_bound(remote, tmp_path):
    _url, project = remote
    report = export_dataset(project, tmp_path / "yolo", "yolo-seg")
    cache = default_cache()
    assert cache.total_bytes() <= cache.max_bytes
    copied = sorted(p.name for p in (tmp_path / "yolo" / "images").iterdir())
    assert copied == sorted(im.path for im in project.images())
    assert report.images == N_IMAGES


def test_labelme_files_name_the_image_url(remote, tmp_path):
    url, project = remote
    report = export_dataset(project, tmp_path / "lm", "labelme")
    doc = json.loads((tmp_path / "lm" / "img_0.json").read_text())
    assert doc["imagePath"] == f"{url}/img_0.png"
    assert report.losses.get("absolute imagePaths") == N_IMAGES


def test_coco_and_mask_pngs_import_onto_the_remote_images(remote, tmp_path):
    url, project = remote
    export_dataset(project, tmp_path / "a.json", "coco")
    export_dataset(project, tmp_path / "png", "masks")
    assert json.loads((tmp_path / "a.json").read_text())["info"]["images_root"] == url
    for fmt, source in (("coco", tmp_path / "a.json"), ("masks", tmp_path / "png")):
        other = Project.create(tmp_path / f"other-{fmt}", url)
        try:
            report = import_dataset(other, source, fmt)  # images: the project's URL
            assert report.images_added == N_IMAGES
            assert _masks(other) == _masks(project)
            assert {im.path for im in other.images()} == {im.path for im in project.images()}
        finally:
            other.close()


def test_a_name_leaving_the_url_is_refused(remote, tmp_path, helpers):
    _url, project = remote
    export_dataset(project, tmp_path / "a.json", "coco")
    coco = json.loads((tmp_path / "a.json").read_text())
    coco["images"][0]["file_name"] = "../secret.png"
    (tmp_path / "a.json").write_text(json.dumps(coco))
    before = helpers.project_state(project)
    with pytest.raises(CocoFormatError, match="points outside the images under memory:"):
        import_dataset(project, tmp_path / "a.json", "coco")
    assert helpers.project_state(project) == before
