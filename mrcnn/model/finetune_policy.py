"""The usual policy for fine-tuning a pretrained Mask R-CNN: normalisation layers frozen
(BatchNorm statistics from a batch of 2 are noise, so pretrained statistics and affine
parameters are kept) and the early backbone stages frozen (they hold generic edges and
textures, and skipping their gradients makes each iteration cheaper).

From scratch none of this applies: frozen BatchNorm cannot learn from random init, so
scratch runs keep trainable normalisation (`mrcnn.model.presets.build_model`).
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

log = logging.getLogger(__name__)

#: Backbone stages left trainable when fine-tuning (torchvision's default for pretrained
#: detection models: layer2, layer3 and layer4; the stem and layer1 stay frozen).
TRAINABLE_STAGES = 3
_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")


def _frozen_from(bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
    with torch.no_grad():
        if bn.affine:
            frozen.weight.copy_(bn.weight)
            frozen.bias.copy_(bn.bias)
        if bn.running_mean is not None and bn.running_var is not None:
            frozen.running_mean.copy_(bn.running_mean)
            frozen.running_var.copy_(bn.running_var)
    return frozen.to(bn.weight.device if bn.affine else frozen.weight.device)


def _batch_norm_from(frozen: FrozenBatchNorm2d) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(frozen.weight.numel(), eps=frozen.eps)
    with torch.no_grad():
        bn.weight.copy_(frozen.weight)
        bn.bias.copy_(frozen.bias)
        bn.running_mean = frozen.running_mean.clone()
        bn.running_var = frozen.running_var.clone()
    return bn.to(frozen.weight.device)


def _swap(module: nn.Module, kind: type, make) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, kind):
            setattr(module, name, make(child))
            count += 1
        else:
            count += _swap(child, kind, make)
    return count


def freeze_for_finetuning(model: nn.Module, *, trainable_stages: int = TRAINABLE_STAGES
                          ) -> dict[str, int]:
    """Apply the fine-tuning policy to `model` in place: every BatchNorm2d becomes a
    FrozenBatchNorm2d with the same statistics and affine parameters, and the backbone's
    stem and stages beyond the last `trainable_stages` stop taking gradients. GroupNorm
    layers (the r18 preset) keep learning: they do not depend on the batch.

    Returns what it did: {"frozen_norms": n, "frozen_parameters": n}. Undo the norm part
    with `restore_batch_norm` before saving, so the checkpoint loads into a plain model."""
    if not 0 <= trainable_stages <= 5:
        raise ValueError(f"trainable_stages must be 0..5, not {trainable_stages}")
    norms = _swap(model, nn.BatchNorm2d, _frozen_from)
    frozen_params = 0
    body = getattr(getattr(model, "backbone", None), "body", None)
    if body is not None:
        frozen_stages = set(_STAGES[trainable_stages:])
        if "conv1" in frozen_stages:
            frozen_stages.add("bn1")
        for name, p in body.named_parameters():
            if name.split(".")[0] in frozen_stages and p.requires_grad:
                p.requires_grad_(False)
                frozen_params += p.numel()
    log.info("fine-tuning policy: %d norm layers frozen, %d backbone parameters frozen",
             norms, frozen_params)
    return {"frozen_norms": norms, "frozen_parameters": frozen_params}


def restore_batch_norm(model: nn.Module) -> int:
    """Turn the FrozenBatchNorm2d layers `freeze_for_finetuning` made back into BatchNorm2d
    (same statistics, eval behaviour unchanged), so the state dict matches `build_model`'s.
    Returns how many were restored."""
    return _swap(model, FrozenBatchNorm2d, _batch_norm_from)
