"""Fixtures for the GUI's model tests: one model process shared by the tests, a small r18
checkpoint, and a project over the photos whose active model version is that checkpoint."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.controllers.model import ModelOptions

#: Categories of the test checkpoint (a random-weight r18: every detection scores ~0.4).
CATEGORIES = ["person", "cat"]
#: Small inputs keep a CPU prediction well under a second.
FAST = ModelOptions(device="cpu", max_detections=30,
                    build_kwargs={"min_size": 64, "max_size": 96})


@pytest.fixture(scope="session")
def model_process(tmp_path_factory):
    """One model process for all GUI model tests (each window loads its own model into it).
    Its downloads go through a proxy nobody listens on: this machine is "offline"."""
    from mrcnn.serving.process import ModelProcess

    saved = {k: os.environ.get(k) for k in ("TORCH_HOME", "https_proxy", "HTTPS_PROXY",
                                            "no_proxy", "NO_PROXY")}
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("child_torch_home"))
    os.environ["https_proxy"] = os.environ["HTTPS_PROXY"] = "http://127.0.0.1:9"
    os.environ.pop("no_proxy", None)
    os.environ.pop("NO_PROXY", None)
    proc = ModelProcess()
    try:
        proc.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield proc
    proc.close()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A random-weight r18 checkpoint for CATEGORIES (weights only, as training writes)."""
    import torch

    from mrcnn.model.checkpoint import save_checkpoint
    from mrcnn.model.presets import build_model

    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=len(CATEGORIES) + 1, min_size=64)
    path = tmp_path_factory.mktemp("checkpoint") / "r18.pt"
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18", categories=CATEGORIES)
    return path


@pytest.fixture
def project_with_model(photos_dir, checkpoint) -> Path:
    """The photos' project (made as `python main.py photos` would), its images scanned, its
    categories those of the checkpoint, registered as its active model version v1."""
    from app.controllers.project import PROJECT_DIRNAME
    from mrcnn.store.project import Project
    from mrcnn.store.scan import scan_folder

    with Project.create(photos_dir / PROJECT_DIRNAME, photos_dir) as project:
        scan_folder(project)
        for name in CATEGORIES:
            project.add_category(name)
        shutil.copy(checkpoint, project.models_dir / "v1.pt")
        project.add_model_version("models/v1.pt", "r18", activate=True)
    return photos_dir
