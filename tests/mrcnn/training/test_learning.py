"""The learning test: the small preset, trained from scratch on the synthetic shapes project
(40 train / 10 val images of 128 px, four shape classes, rings with holes, textured
backgrounds), goes from val segm AP ~0 to >= 0.5 in a few CPU minutes — and the version it
saves scores the same when loaded back from disk. The model is the shared `trained_shapes`
fixture (tests/conftest.py), trained once per run."""

from __future__ import annotations

import logging

import pytest
from torch import nn

from mrcnn.model.checkpoint import load_checkpoint
from mrcnn.model.device import choose_device
from mrcnn.model.presets import Anchors, build_model
from mrcnn.store.project import Project
from mrcnn.training.dataset import project_labels, reviewed_image_ids
from mrcnn.training.evaluate import evaluate_model

log = logging.getLogger(__name__)

SIZE = 128


def small_image_r18(num_classes: int, anchors: Anchors) -> nn.Module:
    """The r18 preset at the test's image size: exactly what `train_project` builds."""
    return build_model(preset="r18", num_classes=num_classes, min_size=SIZE, anchors=anchors)


@pytest.mark.slow
def test_r18_learns_the_synthetic_shapes_from_scratch(trained_shapes):
    metrics = trained_shapes.metadata["metrics"]
    before, after = metrics["before"]["segm"]["AP"], metrics["after"]["segm"]["AP"]
    log.info("segm AP %.3f -> %.3f (bbox %.3f -> %.3f) after %d iterations, %.0f s",
             before, after, metrics["before"]["bbox"]["AP"], metrics["after"]["bbox"]["AP"],
             trained_shapes.metadata["iterations"], trained_shapes.seconds)
    assert trained_shapes.metadata["iterations"] == 300
    assert before < 0.05
    assert after >= 0.5, metrics["after"]

    with Project.open(trained_shapes.project, read_only=True) as project:
        labels = project_labels(project)
        val = reviewed_image_ids(project, "val")
        assert len(val) == 10 and len(reviewed_image_ids(project, "train")) == 40
        # the saved version is the model that was scored (its anchors were fitted to the
        # train boxes: the checkpoint's metadata rebuilds it with them)
        ckpt = load_checkpoint(trained_shapes.checkpoint)
        reloaded = small_image_r18(len(ckpt["categories"]) + 1,
                                   Anchors.from_dict(ckpt["metadata"]["anchors"]))
        reloaded.load_state_dict(ckpt["state_dict"])
        again = evaluate_model(reloaded, project, labels=labels, image_ids=val,
                               device=choose_device("cpu"))
        assert again["segm"]["AP"] == pytest.approx(after, abs=1e-6)
