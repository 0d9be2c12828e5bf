"""The keypoint head beside the mask head: its K is the sum of the categories' keypoints,
it predicts points for every detection, its layout survives a checkpoint's save and load,
a head re-laid for other schemas keeps what it knew by (category, name), and COCO's person
keypoint weights start the head of a category with COCO's names (from the torch cache only)."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor

from mrcnn.errors import CheckpointError
from mrcnn.keypoints import COCO_PERSON_NAMES
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.keypoint_head import (
    COCO_KEYPOINT_FILE,
    check_layout,
    coco_keypoint_init,
    keypoint_layout_of,
    total_slots,
    with_keypoint_layout,
)
from mrcnn.model.presets import build_model
from mrcnn.model.weights import load_model
from mrcnn.training.start_model import fit_to_categories

SMALL = {"min_size": 64, "max_size": 96}
LAYOUT = {"square": ("top_left", "top_right", "bottom_right", "bottom_left"),
          "triangle": ("apex", "left_base", "right_base")}
PRED = "roi_heads.keypoint_predictor.kps_score_lowres."


def _model(layout=LAYOUT, classes=3, **kwargs):
    torch.manual_seed(0)
    return build_model(preset="r18", num_classes=classes, keypoints=layout, **SMALL, **kwargs)


def test_one_head_predicts_every_categorys_slots():
    model = _model()
    assert keypoint_layout_of(model) == LAYOUT and total_slots(LAYOUT) == 7
    assert model.roi_heads.keypoint_predictor.kps_score_lowres.out_channels == 7
    assert keypoint_layout_of(_model(None)) is None
    model.eval().roi_heads.score_thresh = 0.0
    with torch.no_grad():
        out = model([torch.rand(3, 64, 80)])[0]
    assert out["keypoints"].shape == (len(out["boxes"]), 7, 3)
    assert out["keypoints_scores"].shape == (len(out["boxes"]), 7)
    with torch.device("meta"):
        r50 = build_model(preset="r50v2", num_classes=3, keypoints=LAYOUT).state_dict()
    assert r50[PRED + "weight"].shape == (512, 7, 4, 4)


def test_a_model_with_a_keypoint_head_trains():
    model = _model().train()
    boxes = torch.tensor([[10.0, 10, 40, 40]])
    masks = torch.zeros((1, 64, 80), dtype=torch.uint8)
    masks[0, 10:40, 10:40] = 1
    points = torch.zeros((1, 7, 3))
    points[0, 4:7] = torch.tensor([[25.0, 11, 2], [11, 39, 2], [39, 39, 2]])
    losses = model([torch.rand(3, 64, 80)], [{"boxes": boxes, "labels": torch.tensor([2]),
                                              "masks": masks, "keypoints": points}])
    assert "loss_keypoint" in losses and torch.isfinite(losses["loss_keypoint"])


def test_the_layout_survives_a_checkpoint(tmp_path):
    model = _model()
    path = tmp_path / "kp.pt"
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18",
                    categories=["square", "triangle"],
                    metadata={"keypoints": {k: list(v) for k, v in LAYOUT.items()}})
    loaded = load_model(source=path, categories=["square", "triangle"], build_kwargs=SMALL)
    assert keypoint_layout_of(loaded.model) == LAYOUT
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    # a model re-laid for changed categories keeps its keypoint head
    refit = fit_to_categories(loaded.model, "r18", ["square", "triangle"],
                              ["triangle", "square", "disc"])
    assert keypoint_layout_of(refit) == LAYOUT
    assert torch.equal(refit.state_dict()[PRED + "weight"], model.state_dict()[PRED + "weight"])
    # metadata naming another layout than the weights hold is refused
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18",
                    categories=["square", "triangle"], metadata={})
    with pytest.raises(CheckpointError):
        load_model(source=path, categories=["square", "triangle"], build_kwargs=SMALL)
    with pytest.raises(ValueError):
        check_layout({"square": []})


def test_a_head_relaid_keeps_what_it_knew_by_name():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items() if "keypoint" in k}
    wanted = {"triangle": ("right_base", "apex", "tail"), "ring": ("centre",)}
    with_keypoint_layout(model, wanted, "r18")
    assert keypoint_layout_of(model) == wanted
    after = model.state_dict()
    for key, value in before.items():
        if "keypoint_head" in key:
            assert torch.equal(after[key], value)  # the convolutions stay
    weight = after[PRED + "weight"]
    assert weight.shape[1] == 4
    assert torch.equal(weight[:, 0], before[PRED + "weight"][:, 6])  # right_base
    assert torch.equal(weight[:, 1], before[PRED + "weight"][:, 4])  # apex
    with_keypoint_layout(model, {}, "r18")
    assert keypoint_layout_of(model) is None


def test_coco_person_keypoints_start_a_person_head(tmp_path, monkeypatch):
    torch.manual_seed(1)
    head, predictor = KeypointRCNNHeads(256, (512,) * 8), KeypointRCNNPredictor(512, 17)
    state = {**{f"roi_heads.keypoint_head.{k}": v for k, v in head.state_dict().items()},
             **{f"roi_heads.keypoint_predictor.{k}": v for k, v in predictor.state_dict().items()}}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(state, cache / COCO_KEYPOINT_FILE)
    model = build_model(preset="r50", num_classes=3)
    layout = {"car": ("front", "back"), "person": ("left_eye", "nose", "right_eye")}
    with_keypoint_layout(model, layout, "r50")  # a head added: COCO's where it fits
    heads = model.roi_heads
    assert torch.equal(heads.keypoint_head.state_dict()["0.weight"], head.state_dict()["0.weight"])
    weight = heads.keypoint_predictor.kps_score_lowres.weight
    coco = predictor.kps_score_lowres.weight
    for slot, name in enumerate(layout["person"], start=2):
        assert torch.equal(weight[:, slot], coco[:, COCO_PERSON_NAMES.index(name)])
    assert not torch.equal(weight[:, 0], coco[:, 0])  # the car's slots start fresh
    # r18 has another head; no file, nothing taken
    assert coco_keypoint_init(_model(), LAYOUT, "r18") == []
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    assert coco_keypoint_init(model, layout, "r50") == []
