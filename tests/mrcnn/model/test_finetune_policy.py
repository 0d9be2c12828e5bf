"""The fine-tuning policy: a pretrained model's norm layers and early stages stop learning
while it is fine-tuned, and the saved model is a plain one again."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from mrcnn.model.finetune_policy import freeze_for_finetuning, restore_batch_norm
from mrcnn.model.presets import build_model


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_norms_and_early_stages_freeze_and_the_checkpoint_stays_plain():
    torch.manual_seed(0)
    model = build_model(preset="r50v2", num_classes=3, min_size=64, max_size=64)
    n_bn = _count(model, nn.BatchNorm2d)
    for m in model.modules():  # pretrained-like statistics, so a mix-up would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    image = [torch.rand(3, 64, 64)]
    probe = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model.backbone(probe)

    done = freeze_for_finetuning(model)
    assert done["frozen_norms"] == n_bn > 0 and _count(model, nn.BatchNorm2d) == 0
    assert _count(model, FrozenBatchNorm2d) == n_bn
    body = model.backbone.body
    assert not any(p.requires_grad for p in body.conv1.parameters())
    assert not any(p.requires_grad for p in body.layer1.parameters())
    assert all(p.requires_grad for p in body.layer2.parameters())
    assert all(p.requires_grad for p in model.roi_heads.parameters())

    # training mode: the frozen statistics are used (a batch of one cannot move them)
    model.train()
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1]),
              "masks": torch.zeros(1, 64, 64, dtype=torch.uint8)}
    target["masks"][0, 8:40, 8:40] = 1
    loss = sum(model(image, [target]).values())
    loss.backward()
    assert body.layer1[0].conv1.weight.grad is None
    assert body.layer2[0].conv1.weight.grad is not None

    assert restore_batch_norm(model) == n_bn
    model.eval()
    with torch.no_grad():
        after = model.backbone(probe)
    for key in before:  # same statistics: the same features
        assert torch.allclose(before[key], after[key], atol=1e-5)
    plain = build_model(preset="r50v2", num_classes=3)
    plain.load_state_dict(model.state_dict(), strict=True)  # loads as any checkpoint does


def test_group_norm_models_keep_learning():
    model = build_model(preset="r18", num_classes=3)
    done = freeze_for_finetuning(model)
    assert done["frozen_norms"] == 0
    assert all(p.requires_grad for p in model.backbone.body.layer2.parameters())
