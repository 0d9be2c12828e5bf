"""BatchNorm folded into the convolution before it, for inference: in eval mode a BatchNorm
is a per-channel scale and shift, which the convolution's weights and bias can absorb, so
the network stops reading and writing every feature map a second time. The outputs are the
same up to float rounding; the model can no longer be trained (its BatchNorms are gone), so
only a model the caller owns for prediction is folded (`Predictor(fold_batchnorm=True)`).

Only pairs whose data flow is known are folded: consecutive children of an `nn.Sequential`
(torchvision's `Conv2dNormActivation` in the r50v2 FPN and heads, ResNet downsampling) or
of the backbone's `IntermediateLayerGetter` (which runs its children in order: the stem), and
the `convK`/`bnK` pairs of torchvision's ResNet stem and blocks. GroupNorm (r18) depends on
each input's statistics and is left alone."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops.misc import FrozenBatchNorm2d

_NORMS = (nn.BatchNorm2d, FrozenBatchNorm2d)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(norm, _NORMS)
            and norm.running_mean is not None
            and conv.out_channels == norm.running_mean.shape[0])


def _stats(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A BatchNorm's (weight, bias, running mean, running variance) as tensors."""
    mean = norm.running_mean
    var = norm.running_var
    assert isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)
    weight = norm.weight if isinstance(norm.weight, torch.Tensor) else torch.ones_like(mean)
    bias = norm.bias if isinstance(norm.bias, torch.Tensor) else torch.zeros_like(mean)
    return weight, bias, mean, var


@torch.no_grad()
def folded_conv(conv: nn.Conv2d, norm: nn.Module) -> nn.Conv2d:
    """A new convolution computing `norm(conv(x))` (the norm in eval mode)."""
    weight, bias, mean, var = _stats(norm)
    scale = weight / torch.sqrt(var + float(getattr(norm, "eps", 1e-5)))
    out = copy.deepcopy(conv)  # the same geometry
    out.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
    conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    out.bias = nn.Parameter((conv_bias - mean) * scale + bias)
    return out


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every known conv → BatchNorm pair of `model` in place (the BatchNorm becomes an
    `nn.Identity`); the number folded. The model is put in eval mode."""
    model.eval()
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential | IntermediateLayerGetter):
            names = list(module._modules)
            for a, b in zip(names, names[1:], strict=False):
                conv, norm = module._modules[a], module._modules[b]
                if isinstance(conv, nn.Conv2d) and norm is not None and _foldable(conv, norm):
                    module._modules[a] = folded_conv(conv, norm)
                    module._modules[b] = nn.Identity()
                    folded += 1
        elif isinstance(module, ResNet | Bottleneck | BasicBlock):
            for k in ("", "1", "2", "3"):
                conv, norm = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
                if isinstance(conv, nn.Conv2d) and norm is not None and _foldable(conv, norm):
                    setattr(module, f"conv{k}", folded_conv(conv, norm))
                    setattr(module, f"bn{k}", nn.Identity())
                    folded += 1
    return folded
