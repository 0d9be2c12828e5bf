"""Helpers for the fine-tune GUI tests: a synthetic shapes project (reviewed images, a few
unreviewed ones, optionally a weak active version v1) and a window set up to train small."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from model_fixtures import FAST

from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.launcher import FinetuneOptions

SIZE = 64
#: Small and quick: the tests pass their own iterations.
OPTIONS = FinetuneOptions(preset="r18", max_iters=4, size=SIZE, batch_size=4, lr=0.04,
                          device="cpu", start="auto", activate="if-better",
                          nice=5)  # as the model process: a little behind the window
WINDOW_OPTIONS = replace(FAST, lookahead=-1, auto_load=False,
                         build_kwargs={"min_size": SIZE, "max_size": SIZE})


def make_project(folder: Path, *, n_train: int = 14, n_val: int = 4, unreviewed: int = 3,
                 weak_v1: bool = True) -> Path:
    """Synthetic shapes: the first `unreviewed` train images set back to "new" (their
    accepted instances removed); with `weak_v1`, a random-init r18 registered as the active
    version v1 (it scores ~0 AP)."""
    project_dir = make_synthetic_project(folder, n_train=n_train, n_val=n_val, size=SIZE)
    with Project.open(project_dir) as p:
        for im in p.images()[:unreviewed]:
            p.delete_instances([i.id for i in p.instances(im.id)])
            p.set_image_status(im.id, "new")
        if weak_v1:
            add_random_version(p)
    return project_dir


def add_random_version(p: Project, seed: int = 0, activate: bool = True):
    """A random-init r18 checkpoint for the project's categories as the next version."""
    import torch

    from mrcnn.model.checkpoint import save_checkpoint
    from mrcnn.model.presets import build_model

    cats = [c.name for c in p.categories()]
    torch.manual_seed(seed)
    model = build_model(preset="r18", num_classes=len(cats) + 1, min_size=SIZE)
    n = len(p.model_versions()) + 1
    save_checkpoint(p.models_dir / f"v{n}.pt", state_dict=model.state_dict(), preset="r18",
                    categories=cats, metadata={"size": SIZE, "max_size": SIZE})
    return p.add_model_version(f"models/v{n}.pt", "r18", activate=activate,
                               metadata={"iterations": 0})


def open_project(qtbot, window, project_dir: Path) -> None:
    assert window.open_path(project_dir)
    qtbot.waitUntil(lambda: window.image_list.model.rowCount() > 0, timeout=10000)


def set_options(window, **changes) -> None:
    ft = window.finetune
    ft.options = replace(OPTIONS, **changes)
    ft.panel.set_options(ft.options)
