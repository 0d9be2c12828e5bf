"""Anchors in the presets: every preset builds with the anchors it is given (the RPN head
following the ratio count), and a checkpoint whose metadata names its anchors is rebuilt with
them wherever a model is loaded, so a saved model predicts exactly as it was trained."""

from __future__ import annotations

import pytest
import torch

from mrcnn.errors import CheckpointError
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.presets import Anchors, anchors_of, build_model, default_anchors
from mrcnn.model.weights import load_model
from mrcnn.training.start_model import fit_to_categories

SMALL = {"min_size": 64, "max_size": 96}
FITTED = Anchors((8, 16, 32, 64, 128), (0.8, 1.0, 1.25))


@pytest.mark.parametrize("preset", ["r18", "r50", "r50v2"])
@pytest.mark.parametrize("ratios", [(0.8, 1.0, 1.25), (0.5, 0.8, 1.25, 2.0)])
def test_every_preset_builds_with_the_anchors_it_is_given(preset, ratios):
    anchors = Anchors((8, 16, 32, 64, 128), ratios)
    with torch.device("meta"):
        model = build_model(preset=preset, num_classes=3, anchors=anchors)
    assert anchors_of(model) == anchors
    assert model.rpn.head.cls_logits.out_channels == len(ratios)
    assert model.rpn.head.bbox_pred.out_channels == 4 * len(ratios)
    cells = model.rpn.anchor_generator.cell_anchors[0]
    widths = sorted((cells[:, 2] - cells[:, 0]).tolist())
    assert widths[len(widths) // 2] == 8  # the 1:1 anchor of the finest level


@pytest.mark.parametrize("preset", ["r18", "r50", "r50v2"])
def test_without_anchors_a_preset_keeps_its_own(preset):
    with torch.device("meta"):
        model = build_model(preset=preset, num_classes=3)
    assert anchors_of(model) == default_anchors(preset)
    assert default_anchors(preset).sizes[0] == (16 if preset == "r18" else 32)


def test_anchors_need_one_size_per_pyramid_level_and_positive_values():
    with pytest.raises(ValueError, match="5 sizes"):
        Anchors((16, 32, 64), (1.0,))
    with pytest.raises(ValueError, match="positive"):
        Anchors((16, 32, 64, 128, 256), (0.0, 1.0))
    assert Anchors.from_dict(FITTED.to_dict()) == FITTED
    with pytest.raises(ValueError, match="not a description"):
        Anchors.from_dict({"sizes": [8, 16, 32, 64, 128]})


def _checkpoint(tmp_path, anchors: Anchors | None, metadata: dict):
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, anchors=anchors, **SMALL).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18", categories=["a", "b"],
                    metadata=metadata)
    return model, path


def test_a_checkpoint_loads_with_the_anchors_it_was_trained_with(tmp_path):
    model, path = _checkpoint(tmp_path, FITTED, {"anchors": FITTED.to_dict(), "size": 64,
                                                 "max_size": 96})
    loaded = load_model(source=path).model
    assert anchors_of(loaded) == FITTED
    torch.manual_seed(1)
    image = torch.rand(3, 64, 80)
    with torch.no_grad():
        rpn_here = model.rpn.anchor_generator(*_image_list(model, image))
        rpn_there = loaded.rpn.anchor_generator(*_image_list(loaded, image))
        ours, theirs = model([image])[0], loaded([image])[0]
    assert torch.equal(rpn_here[0], rpn_there[0])
    assert torch.equal(ours["boxes"], theirs["boxes"])
    assert torch.equal(ours["scores"], theirs["scores"])


def _image_list(model, image):
    images, _ = model.transform([image])
    features = list(model.backbone(images.tensors).values())
    return images, features


def test_a_checkpoint_without_anchors_loads_with_the_presets(tmp_path):
    _, path = _checkpoint(tmp_path, None, {})
    assert anchors_of(load_model(source=path).model) == default_anchors("r18")


def test_a_checkpoint_with_unreadable_anchors_is_refused_by_name(tmp_path):
    _, path = _checkpoint(tmp_path, None, {"anchors": {"sizes": [1, 2]}})
    with pytest.raises(CheckpointError, match="invalid anchors"):
        load_model(source=path)


def test_re_laying_a_model_for_other_categories_keeps_its_anchors():
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, anchors=FITTED, **SMALL)
    fitted = fit_to_categories(model, "r18", ["a", "b"], ["b", "c", "d"])
    assert anchors_of(fitted) == FITTED
    assert torch.equal(fitted.rpn.head.cls_logits.weight, model.rpn.head.cls_logits.weight)
