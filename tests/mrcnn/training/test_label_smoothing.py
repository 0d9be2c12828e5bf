"""Label smoothing of the box classifier's cross-entropy: the loss it trains on is the
smoothed cross-entropy of the very logits and sampled labels of the step; off, it is
torchvision's own loss; a run with it registers a version that says so and loads into a
plain model. Tiny r18 models at 64 px on CPU."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.distributed as torch_dist
from torch import nn

from mrcnn.model.checkpoint import load_checkpoint
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.hooks import CallbackHook
from mrcnn.training.label_smoothing import ClassifierLabelSmoothing
from mrcnn.training.train import TrainConfig, train_project


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(preset="r18", num_classes=3, min_size=64).train()


def one_image() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """A 64 px image with two objects (classes 1 and 2), as the model takes it."""
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 64, 64, generator=g)
    masks = torch.zeros(2, 64, 64, dtype=torch.uint8)
    masks[0, 8:30, 10:40] = 1
    masks[1, 35:60, 20:50] = 1
    target = {"boxes": torch.tensor([[10.0, 8.0, 40.0, 30.0], [20.0, 35.0, 50.0, 60.0]]),
              "labels": torch.tensor([1, 2]), "masks": masks}
    return [image], [target]


class Spy:
    """The test's own record of a step's class logits and sampled labels (independent of
    the code under test)."""

    def __init__(self, model: nn.Module):
        heads = model.roi_heads
        original = heads.select_training_samples
        self.logits: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

        def select(proposals, targets):
            out = original(proposals, targets)
            self.labels = torch.cat(out[2])
            return out

        heads.select_training_samples = select
        heads.box_predictor.register_forward_hook(
            lambda m, i, o: setattr(self, "logits", o[0].detach().float()))


def smoothed_ce_by_hand(logits: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """(1 - eps) * NLL of the true class + eps * mean over classes of -log p, averaged."""
    logp = torch.log_softmax(logits.double(), dim=1)
    nll = -logp[torch.arange(len(labels)), labels]
    uniform = -logp.mean(dim=1)
    return ((1 - eps) * nll + eps * uniform).mean()


def forward(model, smoothing, **autocast):
    images, targets = one_image()
    torch.manual_seed(2)  # the proposal sampler is random
    if autocast:
        with torch.autocast(**autocast):
            raw = model(images, targets)
    else:
        raw = model(images, targets)
    return raw, smoothing(dict(raw))


def test_smoothed_loss_is_the_smoothed_cross_entropy_of_the_steps_logits():
    model = tiny_model()
    spy = Spy(model)
    with ClassifierLabelSmoothing(model, 0.1) as smoothing:
        raw, losses = forward(model, smoothing)
    assert spy.logits is not None and spy.labels is not None
    assert spy.logits.shape == (len(spy.labels), 3)
    assert set(spy.labels.tolist()) >= {0}  # background proposals are scored too
    expected = smoothed_ce_by_hand(spy.logits, spy.labels, 0.1)
    assert losses["loss_classifier"].item() == pytest.approx(expected.item(), rel=1e-5)
    # it is not torchvision's plain cross-entropy, and the other parts are untouched
    plain = smoothed_ce_by_hand(spy.logits, spy.labels, 0.0)
    assert raw["loss_classifier"].item() == pytest.approx(plain.item(), rel=1e-5)
    assert abs(losses["loss_classifier"].item() - plain.item()) > 1e-4
    assert {k: v.item() for k, v in losses.items() if k != "loss_classifier"} == \
        {k: v.item() for k, v in raw.items() if k != "loss_classifier"}
    # and it trains the classifier
    losses["loss_classifier"].backward()
    grad = model.roi_heads.box_predictor.cls_score.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_zero_smoothing_is_torchvisions_own_loss():
    model = tiny_model()
    with ClassifierLabelSmoothing(model, 0.0) as smoothing:
        raw, losses = forward(model, smoothing)
    assert losses["loss_classifier"].item() == pytest.approx(
        raw["loss_classifier"].item(), rel=1e-6)


def test_under_autocast_the_loss_is_float32():
    model = tiny_model()
    spy = Spy(model)
    with ClassifierLabelSmoothing(model, 0.2) as smoothing:
        _, losses = forward(model, smoothing, device_type="cpu", dtype=torch.bfloat16)
    assert losses["loss_classifier"].dtype == torch.float32
    expected = smoothed_ce_by_hand(spy.logits, spy.labels, 0.2)
    assert losses["loss_classifier"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_works_through_distributed_data_parallel(tmp_path):
    torch_dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                                  world_size=1)
    try:
        model = tiny_model()
        spy = Spy(model)
        ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        with ClassifierLabelSmoothing(ddp, 0.1) as smoothing:
            _, losses = forward(ddp, smoothing)
            sum(losses.values()).backward()
        expected = smoothed_ce_by_hand(spy.logits, spy.labels, 0.1)
        assert losses["loss_classifier"].item() == pytest.approx(expected.item(), rel=1e-5)
        assert model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0
    finally:
        torch_dist.destroy_process_group()


def test_removed_it_leaves_a_plain_model():
    model = tiny_model()
    plain_forward = type(model.roi_heads).select_training_samples
    smoothing = ClassifierLabelSmoothing(model, 0.1)
    smoothing.remove()
    smoothing.remove()  # twice is harmless
    assert "select_training_samples" not in vars(model.roi_heads)
    assert model.roi_heads.select_training_samples.__func__ is plain_forward
    assert not model.roi_heads.box_predictor._forward_hooks
    assert not model._forward_pre_hooks
    with pytest.raises(ValueError, match="label smoothing"):
        ClassifierLabelSmoothing(model, 1.0)


# ---------------------------------------------------------------- end to end
@pytest.fixture
def project(tmp_path_factory, tmp_path):
    source = make_synthetic_project(tmp_path_factory.mktemp("ls"), n_train=4, n_val=2,
                                    size=64, seed=3)
    shutil.copytree(source.parent, tmp_path / "copy")
    p = Project.open(tmp_path / "copy" / "project")
    yield p
    p.close()


def first_step_losses(project, eps: float, model: nn.Module | None = None):
    """Train 2 iterations with label smoothing eps; (the first step's losses, version)."""
    config = TrainConfig(preset="r18", size=64, max_iters=2, batch_size=2, warmup_iters=1,
                         device="cpu", amp=False, seed=0, label_smoothing=eps)
    steps: list[dict[str, float]] = []
    hook = CallbackHook(after_step=lambda t: steps.append(dict(t.losses)))
    version = train_project(project, config, model=model, hooks=[hook])
    return steps[0], version


def test_training_with_label_smoothing_records_it_and_saves_a_plain_model(project):
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=len(project.categories()) + 1)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    smoothed, version = first_step_losses(project, 0.1, model)
    assert version is not None
    # the same first step without smoothing: only the classifier loss differs
    twin = build_model(preset="r18", num_classes=len(project.categories()) + 1)
    twin.load_state_dict(init)
    plain, _ = first_step_losses(project, 0.0, twin)
    assert smoothed["loss_classifier"] != pytest.approx(plain["loss_classifier"], rel=1e-4)
    assert smoothed["loss_objectness"] == pytest.approx(plain["loss_objectness"], rel=1e-5)
    assert project.model_version(version.id).metadata["config"]["label_smoothing"] == 0.1
    assert "select_training_samples" not in vars(model.roi_heads)  # detached after the run
    assert not model.roi_heads.box_predictor._forward_hooks and not model._forward_pre_hooks
    ckpt = load_checkpoint(project.folder / version.path)
    plain = build_model(preset="r18", num_classes=len(project.categories()) + 1)
    plain.load_state_dict(ckpt["state_dict"])  # strict: no extra keys


def test_label_smoothing_is_off_by_default_and_validated():
    assert TrainConfig().label_smoothing == 0.0
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="label_smoothing"):
            TrainConfig(label_smoothing=bad).validate()
