"""Predictor output and storing predictions in the project (pending, cached, never over
human work)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mrcnn import masks
from mrcnn.model.device import choose_device
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model
from mrcnn.serving.named_predictions import accept_suggestion
from mrcnn.serving.predict import predict_project, select_images
from mrcnn.store.project import Project
from mrcnn.store.scan import scan_folder

CATS = ["disc", "square"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(preset="r18", num_classes=len(CATS) + 1, min_size=64, max_size=96)


@pytest.fixture
def project(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(
            tmp_path / "imgs" / f"img{i}.png")
    p = Project.create(tmp_path / "proj", tmp_path / "imgs")
    scan_folder(p)
    yield p
    p.close()


def test_predictor_output_layout(model):
    img = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    pred = Predictor(model, device=choose_device("cpu"), max_detections=7).predict_one(img)
    n = len(pred)
    assert 0 < n <= 7
    assert pred.boxes.shape == (n, 4) and pred.boxes.dtype == np.float32
    assert pred.labels.dtype == np.int64 and set(pred.labels) <= {1, 2}
    assert pred.scores.dtype == np.float32 and np.all(np.diff(pred.scores) <= 0)
    assert pred.masks.shape == (n, 48, 64) and pred.masks.dtype == bool
    assert np.all(pred.boxes[:, 2] >= pred.boxes[:, 0])
    kept = pred[pred.scores >= pred.scores[n // 2]]
    assert len(kept) >= n // 2 + 1 and kept.masks.shape[0] == len(kept)


def test_score_threshold_filters(model):
    img = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    low = Predictor(model, device=choose_device("cpu"), score_threshold=0.0).predict_one(img)
    cut = float(np.median(low.scores))
    high = Predictor(model, device=choose_device("cpu"), score_threshold=cut).predict_one(img)
    assert len(high) < len(low)
    assert np.all(high.scores > cut)


def test_cancel_between_images(model):
    imgs = [np.zeros((32, 32, 3), np.uint8)] * 4
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    out = Predictor(model, device=choose_device("cpu")).predict(imgs, should_cancel=cancel)
    assert len(out) == 2


def test_predictions_stored_pending_and_cached(project, model):
    for name in CATS:
        project.add_category(name)
    ids = select_images(project, "unreviewed")
    assert len(ids) == 3
    r1 = predict_project(project, model, CATS, model_key="v1", image_ids=ids,
                         device=choose_device("cpu"), max_detections=5)
    assert (r1.predicted, r1.cached) == (3, 0)
    assert r1.instances == len(project.instances(state="pending")) > 0
    assert all(im.status == "predicted" for im in project.images())
    assert {c.name for c in project.categories()} <= set(CATS)
    first = [i.id for i in project.instances()]
    # reopening the same image with the same model: nothing recomputed, nothing changed
    r2 = predict_project(project, model, CATS, model_key="v1", image_ids=ids,
                         device=choose_device("cpu"))
    assert (r2.predicted, r2.cached) == (0, 3)
    assert [i.id for i in project.instances()] == first
    # another model replaces the pending layer
    r3 = predict_project(project, model, CATS, model_key="v2", image_ids=ids[:1],
                         device=choose_device("cpu"), max_detections=2)
    assert r3.predicted == 1
    assert len(project.instances(ids[0], state="pending")) <= 2


def test_predictions_never_touch_accepted_instances(project, model):
    image = project.images()[0]
    cat = project.add_category("disc")
    m = np.zeros((image.height, image.width), bool)
    m[5:20, 5:30] = True
    human = project.add_instance(image.id, cat.id, masks.encode(m))
    project.set_image_status(image.id, "in_review")
    predict_project(project, model, CATS, model_key="v1", image_ids=[image.id],
                    device=choose_device("cpu"), force=True)
    predict_project(project, model, CATS, model_key="v1", image_ids=[image.id],
                    device=choose_device("cpu"), force=True)
    accepted = project.instances(image.id, state="accepted")
    assert [(i.id, i.rle) for i in accepted] == [(human.id, human.rle)]
    assert project.image(image.id).status == "in_review"


def test_names_the_project_lacks_are_suggested_until_accepted(project, model):
    square = project.add_category("square")
    ids = [im.id for im in project.images()]
    report = predict_project(project, model, CATS, model_key="v1", image_ids=ids,
                             device=choose_device("cpu"))
    assert [c.name for c in project.categories()] == ["square"]
    assert all(i.category_id == square.id for i in project.instances())
    assert report.suggested["disc"] > 0
    [suggestion] = project.category_suggestions()
    assert (suggestion.name, suggestion.predictions) == ("disc", report.suggested["disc"])
    # accepting adds the category; predicting again (no --force) stores those predictions
    accept_suggestion(project, "disc")
    again = predict_project(project, model, CATS, model_key="v1", image_ids=ids,
                            device=choose_device("cpu"))
    assert again.predicted == len(suggestion.image_ids) and again.suggested == {}
    disc = project.category_by_name("disc")
    assert sum(i.category_id == disc.id for i in project.instances()) == suggestion.predictions


def test_unreadable_image_reported_others_predicted(project, model, tmp_path):
    bad = project.images()[1]
    (tmp_path / "imgs" / bad.path).write_bytes(b"not an image any more")
    report = predict_project(project, model, CATS, model_key="v1",
                             image_ids=[im.id for im in project.images()],
                             device=choose_device("cpu"))
    assert report.predicted == 2
    assert report.failed == [(bad.path, report.failed[0][1])]
    assert "recognised image" in report.failed[0][1]
    assert project.image(bad.id).status == "new"


def test_mixed_precision_keeps_the_output_layers_in_fp32():
    """Under bf16 autocast the network's heavy layers run in bf16, but objectness, box
    deltas, class scores and mask logits come out of fp32 layers (bf16 rounding there
    shifted boxes and masks); the state dict (what a checkpoint saves) is unchanged."""
    import copy

    from mrcnn.model.device import DeviceChoice
    from mrcnn.model.predictor import output_layers

    torch.manual_seed(0)
    net = build_model(preset="r18", num_classes=3, min_size=64, max_size=96)
    keys = list(net.state_dict())
    bf16 = DeviceChoice(torch.device("cpu"), "test", torch.bfloat16, False)
    predictor = Predictor(net, device=bf16)
    Predictor(net, device=bf16)  # a second wrap changes nothing
    assert list(net.state_dict()) == keys
    rpn_cls, rpn_box, box_predictor, mask_logits = output_layers(copy.deepcopy(net))
    feature = torch.randn(1, net.backbone.out_channels, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net.backbone.fpn.layer_blocks[0](feature).dtype == torch.bfloat16
        assert rpn_cls(feature).dtype == torch.float32
        assert rpn_box(feature).dtype == torch.float32
        assert mask_logits(feature).dtype == torch.float32
        scores, deltas = box_predictor(torch.randn(4, 512))
        assert scores.dtype == deltas.dtype == torch.float32
    assert rpn_cls(feature).dtype == torch.float32  # outside autocast: plain fp32
    out = predictor.predict_one(np.zeros((48, 64, 3), np.uint8))
    assert out.masks.shape[1:] == (48, 64)
