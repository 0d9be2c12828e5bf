"""The whole loop over remote images (a local HTTP server; fsspec's in-memory storage): a new
project over the URL, predict, correct, train, export, with a cache too small to hold every
image, which stays within its bound. Tiny settings: r18 with random weights, 64 px."""

from __future__ import annotations

import json
import uuid

import fsspec
import pytest
import torch
from PIL import Image

from mrcnn.coco.io import export_coco
from mrcnn.editing.document import ImageDocument
from mrcnn.io.cache import default_cache
from mrcnn.model.presets import build_model
from mrcnn.serving.predict import predict_project
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder
from mrcnn.testing.http_folder import FolderServer
from mrcnn.testing.synthetic import SHAPES, draw_image
from mrcnn.training.train import TrainConfig, train_project

N_IMAGES = 8
SIZE = 64


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Synthetic shape images (PNG bytes by file name) and their true masks."""
    import io

    import numpy as np

    rng = np.random.default_rng(3)
    out = {}
    for i in range(N_IMAGES):
        rgb, instances = draw_image(rng, SIZE)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        out[f"shape_{i:02d}.png"] = (buf.getvalue(), instances)
    return out


@pytest.fixture
def small_cache(tmp_path, monkeypatch, drawn):
    """A cache that holds about three of the images, not all eight."""
    biggest = max(len(data) for data, _ in drawn.values())
    monkeypatch.setenv("MRCNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MRCNN_CACHE_BYTES", str(3 * biggest))
    return default_cache()


@pytest.fixture(params=["http", "memory"])
def images_url(request, tmp_path, drawn):
    if request.param == "http":
        folder = tmp_path / "served"
        folder.mkdir()
        for name, (data, _) in drawn.items():
            (folder / name).write_bytes(data)
        with FolderServer(folder) as server:
            yield f"{server.url}/"
        return
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    for name, (data, _) in drawn.items():
        fs.pipe(f"{root}/images/{name}", data)
    yield f"memory:/{root}/images"
    fs.rm(root, recursive=True)


def test_predict_correct_train_and_export_over_remote_images(images_url, drawn, small_cache,
                                                             tmp_path):
    torch.manual_seed(0)
    project = Project.create(tmp_path / "project", images_url)
    try:
        assert scan_folder(project).added == N_IMAGES
        assert small_cache.total_bytes() <= small_cache.max_bytes
        cats = {name: project.add_category(name).id for name in SHAPES}
        ids = [im.id for im in project.images()]

        # predict every image (random weights: whatever it proposes is pending)
        model = build_model(preset="r18", num_classes=len(SHAPES) + 1, min_size=SIZE,
                            max_size=SIZE, weights=None, weights_backbone=None)
        report = predict_project(project, model, list(SHAPES), model_key="random",
                                 image_ids=ids, score_threshold=0.0, max_detections=3)
        assert report.failed == []
        assert all(project.predicted_by(i, "random") for i in ids)

        # correct: each image gets its true shapes, drawn by hand, and is marked reviewed
        for im in project.images():
            doc = ImageDocument(project, im.id)
            pending = [i.id for i in doc.instances("pending")]
            if pending:
                doc.delete_instances(pending, label="reject")
            for inst in drawn[im.path][1]:
                doc.add_instance(inst.mask, cats[inst.name])
            doc.mark_reviewed()
        for im in project.images()[-2:]:
            project.set_image_split(im.id, "val")
        for im in project.images()[:-2]:
            project.set_image_split(im.id, "train")

        # train a few steps: every image is read again, through a cache that cannot hold all
        config = TrainConfig(preset="r18", size=SIZE, max_iters=3, batch_size=2,
                             warmup_iters=1, device="cpu", amp=False, seed=0)
        version = train_project(project, config, evaluate_before=False)
        assert version is not None and (project.folder / version.path).is_file()
        assert small_cache.total_bytes() <= small_cache.max_bytes

        # export: the images named as under the URL, every accepted instance
        out = export_coco(project, tmp_path / "out.json")
        coco = json.loads(out.path.read_text())
        assert sorted(im["file_name"] for im in coco["images"]) == sorted(drawn)
        assert len(coco["annotations"]) == sum(len(inst) for _, inst in drawn.values())
    finally:
        project.close()
