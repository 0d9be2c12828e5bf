"""The mask head at 28 x 28 (torchvision's, every preset's default) or 56 x 56 (a second
upsampling stage): every preset builds either, the 56 model trains and predicts full-size
masks, and a checkpoint rebuilds at the resolution it was trained with wherever it is loaded;
28 x 28 weights (ours or COCO's) load into a 56 model with only the new stage fresh."""

from __future__ import annotations

import pytest
import torch

from mrcnn.errors import CheckpointError
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.coco_weights import coco_cache_path
from mrcnn.model.presets import (
    UPSAMPLING_PREFIX,
    MaskPredictor56,
    build_model,
    mask_resolution_in,
    mask_resolution_of,
)
from mrcnn.model.weights import load_model
from mrcnn.training.start_model import fit_to_categories

SMALL = {"min_size": 64, "max_size": 96}
LOGITS = "roi_heads.mask_predictor.mask_fcn_logits."
CONV5 = "roi_heads.mask_predictor.conv5_mask."


def _image(seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(3, 64, 80)


def _logit_sides(model: torch.nn.Module) -> list[tuple[int, int]]:
    """Records the (H, W) of every mask logits tensor the model computes from now on."""
    sides: list[tuple[int, int]] = []
    model.roi_heads.mask_predictor.register_forward_hook(
        lambda module, args, out: sides.append(tuple(out.shape[-2:])))
    return sides


def _r18(resolution: int, seed: int = 0, num_classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(preset="r18", num_classes=num_classes, mask_resolution=resolution,
                       box_score_thresh=0.0, **SMALL).eval()


@pytest.mark.parametrize("preset", ["r18", "r50", "r50v2"])
def test_every_preset_builds_at_56_keeping_torchvisions_names_for_the_rest(preset):
    with torch.device("meta"):
        coarse = build_model(preset=preset, num_classes=3).state_dict()
        fine_model = build_model(preset=preset, num_classes=3, mask_resolution=56)
    fine = fine_model.state_dict()
    assert mask_resolution_of(fine_model) == 56 and mask_resolution_in(fine) == 56
    assert mask_resolution_in(coarse) == 28
    assert sorted(fine.keys() - coarse.keys()) == [UPSAMPLING_PREFIX + "bias",
                                                  UPSAMPLING_PREFIX + "weight"]
    assert coarse.keys() <= fine.keys()
    assert all(fine[k].shape == coarse[k].shape for k in coarse)


def test_the_56_predictor_doubles_the_side_twice():
    head = MaskPredictor56(8, 4, 3)
    assert head(torch.rand(5, 8, 14, 14)).shape == (5, 3, 56, 56)
    assert head(torch.rand(0, 8, 14, 14)).shape == (0, 3, 56, 56)


def test_other_resolutions_are_refused():
    with pytest.raises(ValueError, match="28, 56"):
        build_model(preset="r18", num_classes=3, mask_resolution=42)
    with pytest.raises(ValueError, match="not both"):
        build_model(preset="r18", num_classes=3, mask_resolution=56,
                    mask_predictor=MaskPredictor56(128, 128, 3))


def test_a_56_model_learns_from_56_masks_and_predicts_image_sized_masks():
    model = _r18(56).train()
    sides = _logit_sides(model)
    masks = torch.zeros(1, 64, 80, dtype=torch.uint8)
    masks[0, 10:40, 20:60] = 1
    target = {"boxes": torch.tensor([[20.0, 10.0, 60.0, 40.0]]),
              "labels": torch.tensor([1]), "masks": masks}
    losses = model([_image()], [target])
    losses["loss_mask"].backward()
    assert torch.isfinite(losses["loss_mask"])
    assert model.roi_heads.mask_predictor.conv6_mask.weight.grad.abs().sum() > 0
    assert sides and all(s == (56, 56) for s in sides)
    with torch.no_grad():
        out = model.eval()([_image()])[0]
    assert out["masks"].shape[1:] == (1, 64, 80) and len(out["masks"]) > 0


def _same_predictions(a: torch.nn.Module, b: torch.nn.Module) -> None:
    with torch.no_grad():
        ours, theirs = a([_image()])[0], b([_image()])[0]
    assert len(ours["masks"]) > 0
    for key in ("boxes", "scores", "masks"):
        assert torch.equal(ours[key], theirs[key]), key


def test_a_checkpoint_rebuilds_at_the_resolution_its_metadata_names(tmp_path):
    model = _r18(56)
    path = tmp_path / "fine.pt"
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18", categories=["a", "b"],
                    metadata={"mask_resolution": 56, "size": 64, "max_size": 96})
    loaded = load_model(source=path, build_kwargs={"box_score_thresh": 0.0}).model
    assert mask_resolution_of(loaded) == 56
    sides = _logit_sides(loaded)
    _same_predictions(model, loaded)
    assert sides == [(56, 56)]


def test_files_without_the_metadata_rebuild_at_the_resolution_their_weights_hold(tmp_path):
    model = _r18(56)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)  # a bare state dict: no metadata at all
    loaded = load_model(source=plain, categories=["a", "b"],
                        build_kwargs={"box_score_thresh": 0.0, **SMALL})
    assert loaded.preset == "r18" and mask_resolution_of(loaded.model) == 56
    _same_predictions(model, loaded.model)
    old = tmp_path / "old.pt"  # what every checkpoint before the option was: 28, unnamed
    save_checkpoint(old, state_dict=_r18(28).state_dict(), preset="r18", categories=["a", "b"],
                    metadata={})
    assert mask_resolution_of(load_model(source=old).model) == 28


def test_invalid_or_contradicting_resolutions_are_checkpoint_errors(tmp_path):
    path = tmp_path / "bad.pt"
    save_checkpoint(path, state_dict=_r18(56).state_dict(), preset="r18", categories=["a", "b"],
                    metadata={"mask_resolution": 112})
    with pytest.raises(CheckpointError, match="invalid mask_resolution"):
        load_model(source=path)
    fine = tmp_path / "fine.pt"
    save_checkpoint(fine, state_dict=_r18(56).state_dict(), preset="r18",
                    categories=["a", "b"], metadata={"mask_resolution": 56})
    with pytest.raises(CheckpointError, match="56 x 56 masks.*28 x 28"):
        load_model(source=fine, build_kwargs={"mask_resolution": 28})


def test_a_28_checkpoint_asked_for_at_56_keeps_its_weights_and_starts_the_new_stage_fresh(
        tmp_path):
    coarse = _r18(28)
    path = tmp_path / "coarse.pt"
    save_checkpoint(path, state_dict=coarse.state_dict(), preset="r18", categories=["a", "b"],
                    metadata={"mask_resolution": 28})
    loaded = load_model(source=path, build_kwargs={"mask_resolution": 56}).model
    assert mask_resolution_of(loaded) == 56
    got, old = loaded.state_dict(), coarse.state_dict()
    assert all(torch.equal(got[k], v) for k, v in old.items())
    stage = got[UPSAMPLING_PREFIX + "weight"]
    assert stage.shape == (128, 128, 2, 2) and stage.std() > 0  # initialised, not zeros


def test_coco_weights_train_at_56_with_their_mask_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(0)
    coco = build_model(preset="r50", num_classes=91).state_dict()  # COCO-shaped, random
    path = coco_cache_path("r50")
    path.parent.mkdir(parents=True)
    torch.save(coco, path)
    loaded = load_model(source="coco", preset="r50", categories=["person", "widget"],
                        build_kwargs={"mask_resolution": 56})
    assert loaded.matched == ["person"] and mask_resolution_of(loaded.model) == 56
    got = loaded.model.state_dict()
    assert torch.equal(got[CONV5 + "weight"], coco[CONV5 + "weight"])
    assert torch.equal(got[LOGITS + "weight"][1], coco[LOGITS + "weight"][1])  # person = 1
    assert UPSAMPLING_PREFIX + "weight" in got
    with_names = load_model(source="coco", preset="r50", build_kwargs={"mask_resolution": 56})
    assert mask_resolution_of(with_names.model) == 56 and with_names.num_classes == 91


def test_new_categories_keep_the_models_resolution_and_known_rows():
    model = _r18(56)
    fitted = fit_to_categories(model, "r18", ["a", "b"], ["b", "c", "d"])
    assert mask_resolution_of(fitted) == 56
    got, old = fitted.state_dict(), model.state_dict()
    assert torch.equal(got[LOGITS + "weight"][1], old[LOGITS + "weight"][2])  # "b" kept
    assert torch.equal(got[UPSAMPLING_PREFIX + "weight"], old[UPSAMPLING_PREFIX + "weight"])
