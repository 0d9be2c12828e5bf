"""Mask R-CNN presets, built with keyword-only arguments and never downloading anything.

Tensor conventions (torchvision): images are float tensors (3, H, W) in [0, 1]; targets and
outputs use boxes (N, 4) float32 xyxy in pixels, labels (N,) int64 contiguous with
0 = background, masks (N, H, W) uint8 for targets and (N, 1, H, W) float probabilities
for outputs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import (
    MaskRCNN,
    maskrcnn_resnet50_fpn,
    maskrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from mrcnn.model.keypoint_head import attach_keypoint_head


@dataclass(frozen=True)
class Preset:
    """A model recipe: architecture, the input size it is trained and run at, and defaults."""

    name: str
    description: str
    min_size: int  # shorter image side, pixels
    max_size: int  # longer side cap, pixels
    coco_weights: str | None  # torchvision weights enum member name, when COCO weights exist
    lr: float  # base learning rate (SGD) for fine-tuning
    scratch_lr: float  # base learning rate when training from random init


PRESETS: dict[str, Preset] = {
    "r50v2": Preset("r50v2", "ResNet-50-FPN v2 (torchvision, best accuracy)", 800, 1333,
                    "MaskRCNN_ResNet50_FPN_V2_Weights", 0.01, 0.02),
    "r50": Preset("r50", "ResNet-50-FPN v1 (torchvision)", 800, 1333,
                  "MaskRCNN_ResNet50_FPN_Weights", 0.01, 0.02),
    "r18": Preset("r18", "ResNet-18-FPN with GroupNorm (small: CPUs and tests)", 320, 533,
                  None, 0.01, 0.01),
}
DEFAULT_PRESET = "r50v2"


#: Feature-pyramid levels of every preset (strides 4, 8, 16, 32, 64): one anchor size each.
FPN_LEVELS = 5


@dataclass(frozen=True)
class Anchors:
    """The RPN's anchors: one size per feature-pyramid level (pixels at the model's input
    size, finest level first) and the aspect ratios (height / width) used at every level,
    in torchvision's convention `AnchorGenerator(((s0,), (s1,), ...), (ratios,) * levels)`.
    """

    sizes: tuple[float, ...]
    ratios: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.sizes) != FPN_LEVELS:
            raise ValueError(f"anchors need {FPN_LEVELS} sizes (one per pyramid level), "
                             f"got {len(self.sizes)}")
        if not self.ratios:
            raise ValueError("anchors need at least one aspect ratio")
        if any(not v > 0 for v in (*self.sizes, *self.ratios)):
            raise ValueError(f"anchor sizes and ratios must be positive: {self.to_dict()}")

    def generator(self) -> AnchorGenerator:
        """A torchvision AnchorGenerator with these anchors."""
        return AnchorGenerator(tuple((s,) for s in self.sizes), (self.ratios,) * len(self.sizes))

    def to_dict(self) -> dict[str, list[float]]:
        """Plain data (for checkpoints' metadata and JSON)."""
        return {"sizes": list(self.sizes), "ratios": list(self.ratios)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Anchors:
        """The anchors `to_dict` wrote; ValueError when `data` is not such a dict."""
        try:
            sizes, ratios = data["sizes"], data["ratios"]
            return cls(tuple(float(s) for s in sizes), tuple(float(r) for r in ratios))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a description of anchors: {data!r}") from exc

    def describe(self) -> str:
        """For people: "sizes 12/24/48/96/192 px, ratios 0.8/1.0/1.25"."""
        return (f"sizes {'/'.join(f'{s:g}' for s in self.sizes)} px, "
                f"ratios {'/'.join(f'{r:g}' for r in self.ratios)}")


#: Each preset's own anchors (what `build_model` uses when given none).
DEFAULT_ANCHORS: dict[str, Anchors] = {
    "r50v2": Anchors((32, 64, 128, 256, 512), (0.5, 1.0, 2.0)),
    "r50": Anchors((32, 64, 128, 256, 512), (0.5, 1.0, 2.0)),
    "r18": Anchors((16, 32, 64, 128, 256), (0.5, 1.0, 2.0)),
}


def default_anchors(preset: str) -> Anchors:
    """The preset's own anchors (torchvision's for r50/r50v2; from 16 px for r18)."""
    return DEFAULT_ANCHORS[get_preset(preset).name]


def anchors_of(model: nn.Module) -> Anchors:
    """The anchors a built Mask R-CNN uses (one size per level, the same ratios at every
    level, as `build_model` makes them); ValueError for another layout."""
    inner: nn.Module = getattr(model, "module", model)  # a DDP-wrapped model: its module
    # nn.Module's attribute access is typed Tensor | Module; torchvision is untyped
    gen = cast(AnchorGenerator, inner.get_submodule("rpn.anchor_generator"))
    sizes: Sequence[Sequence[float]] = gen.sizes
    ratios: Sequence[Sequence[float]] = gen.aspect_ratios
    if any(len(s) != 1 for s in sizes) or any(tuple(r) != tuple(ratios[0]) for r in ratios):
        raise ValueError(f"anchors with several sizes per level or per-level ratios are not "
                         f"supported: sizes {sizes}, ratios {ratios}")
    return Anchors(tuple(float(s[0]) for s in sizes), tuple(float(r) for r in ratios[0]))


#: Side of the per-RoI mask a model predicts: 28 (torchvision's head, every preset's default)
#: or 56 (`MaskPredictor56`: one more 2x upsampling stage, for finer outlines).
MASK_RESOLUTIONS = (28, 56)
DEFAULT_MASK_RESOLUTION = 28


class MaskPredictor56(nn.Sequential):
    """The mask predictor at 56 x 56: torchvision's `MaskRCNNPredictor` with a second 2x
    upsampling stage before the per-class logits.

    Input (R, in_channels, 14, 14) float, the mask head's features of R RoIs; output
    (R, num_classes, 56, 56) float mask logits (torchvision's `maskrcnn_loss` projects the
    ground truth at the logits' side, `paste_masks_in_image` takes any square side).
    Stages: `conv5_mask` ConvTranspose2d 14 -> 28 and `mask_fcn_logits` 1x1 conv keep
    torchvision's names and shapes (a 28 x 28 model's weights load into them);
    `conv6_mask` ConvTranspose2d 28 -> 56 (dim_reduced channels) is the new stage.
    """

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__(OrderedDict([
            ("conv5_mask", nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv6_mask", nn.ConvTranspose2d(dim_reduced, dim_reduced, 2, 2, 0)),
            ("relu6", nn.ReLU(inplace=True)),
            ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1, 1, 0)),
        ]))
        _init_mask_predictor(self)


def _init_mask_predictor(module: nn.Module) -> None:
    """Initialise weights as torchvision initialises its mask predictor (biases as built)."""
    for name, param in module.named_parameters():
        if "weight" in name:
            nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


#: State dict prefix of the stage only a 56 x 56 predictor has (fresh when a 28 x 28 model's
#: or COCO's weights are loaded into one).
UPSAMPLING_PREFIX = "roi_heads.mask_predictor.conv6_mask."
_CONV5 = "roi_heads.mask_predictor.conv5_mask.weight"


def mask_resolution_of(model: nn.Module) -> int:
    """The side of the masks a built Mask R-CNN predicts per RoI (28 or 56)."""
    inner: nn.Module = getattr(model, "module", model)  # a DDP-wrapped model: its module
    predictor = inner.get_submodule("roi_heads.mask_predictor")
    return 56 if isinstance(predictor, MaskPredictor56) else DEFAULT_MASK_RESOLUTION


def mask_resolution_in(state: Mapping[str, object]) -> int:
    """The mask resolution a state dict was saved from (56 when it holds the second
    upsampling stage, else 28)."""
    return 56 if any(k.startswith(UPSAMPLING_PREFIX) for k in state) else DEFAULT_MASK_RESOLUTION


def with_upsampling_stage(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A 28 x 28 model's state dict (ours or COCO's) made loadable into the same model built
    with mask_resolution=56: every tensor kept, the second upsampling stage (`conv6_mask`)
    freshly initialised. A state that has the stage, or no mask predictor, is returned as is."""
    out = dict(state)
    conv5 = out.get(_CONV5)
    if conv5 is None or mask_resolution_in(out) == 56:
        return out
    dim = int(conv5.shape[1])
    stage = nn.ConvTranspose2d(dim, dim, 2, 2, 0)
    _init_mask_predictor(stage)
    for name, value in stage.state_dict().items():
        out[UPSAMPLING_PREFIX + name] = value.to(device=conv5.device, dtype=conv5.dtype)
    return out


def check_mask_resolution(value: object) -> int:
    """`value` when it is one of MASK_RESOLUTIONS; ValueError naming them otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value in MASK_RESOLUTIONS:
        return value
    raise ValueError(f"mask resolution must be one of "
                     f"{', '.join(map(str, MASK_RESOLUTIONS))}, not {value!r}")


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32 if channels % 32 == 0 else 1, channels)


def build_model(*, preset: str = DEFAULT_PRESET, num_classes: int, min_size: int | None = None,
                max_size: int | None = None, anchors: Anchors | None = None,
                mask_resolution: int = DEFAULT_MASK_RESOLUTION,
                keypoints: Mapping[str, Sequence[str]] | None = None, **kwargs) -> MaskRCNN:
    """Build an untrained Mask R-CNN (random init, nothing downloaded). Normalisation is
    trainable (BatchNorm for r50/r50v2, which torchvision builds without weights; GroupNorm for
    r18) and every backbone stage learns: frozen BatchNorm cannot learn from random init.
    Fine-tuning pretrained weights freezes them again (`mrcnn.model.finetune_policy`).

    Args:
        preset: "r50v2", "r50" or "r18".
        num_classes: number of categories + 1 (index 0 is background).
        min_size / max_size: override the preset's input size (shorter side / longer cap).
        anchors: the RPN's anchors (None: the preset's, `default_anchors`). The RPN head
            predicts one objectness and box per ratio, so its shape follows the ratio count;
            a checkpoint loads only into a model built with its own anchors.
        mask_resolution: side of the mask predicted per RoI, 28 (torchvision's head) or 56
            (`MaskPredictor56`, finer outlines for about 4x the mask logits' work); a
            checkpoint loads only into a model built with its own (`mask_resolution_in`).
        keypoints: the layout of a keypoint head beside the mask head, {category name:
            its keypoint names} in category order (`mrcnn.model.keypoint_head`; None or
            empty: no keypoint head); K is the sum of their counts. A checkpoint loads only
            into a model built with its own (kept in its metadata).
        kwargs: passed to torchvision's MaskRCNN (e.g. box_score_thresh,
            box_detections_per_img).
    """
    p = get_preset(preset)
    if num_classes < 2:
        raise ValueError("num_classes must be at least 2 (background + one category)")
    size = {"min_size": min_size or p.min_size, "max_size": max_size or p.max_size}
    if min_size and not max_size:
        size["max_size"] = max(int(min_size * p.max_size / p.min_size), min_size)
    if anchors is not None and "rpn_anchor_generator" in kwargs:
        raise ValueError("give anchors or rpn_anchor_generator, not both")
    anchors = anchors or default_anchors(p.name)
    check_mask_resolution(mask_resolution)
    if mask_resolution != DEFAULT_MASK_RESOLUTION and "mask_predictor" in kwargs:
        raise ValueError("give mask_resolution or mask_predictor, not both")
    if p.name == "r18":
        model = _build_r18(num_classes, size, anchors, kwargs)
    else:
        model = _build_r50(p.name, num_classes, size, anchors, kwargs)
    if mask_resolution == 56:
        old = model.roi_heads.mask_predictor
        model.roi_heads.mask_predictor = MaskPredictor56(
            old.conv5_mask.in_channels, old.conv5_mask.out_channels, num_classes)
    if keypoints:
        attach_keypoint_head(model, keypoints, p.name)
    return model


def _build_r50(name: str, num_classes: int, size: dict, anchors: Anchors,
               kwargs: dict) -> MaskRCNN:
    """torchvision's R50-FPN v1 or v2, untrained, with `anchors`."""
    p = get_preset(name)
    builder = maskrcnn_resnet50_fpn_v2 if p.name == "r50v2" else maskrcnn_resnet50_fpn
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes,
                    **size, **kwargs)
    if anchors != default_anchors(p.name) and "rpn_anchor_generator" not in kwargs:
        # torchvision's builders make their own generator and head: replace both
        model.rpn.anchor_generator = anchors.generator()
        if len(anchors.ratios) != len(default_anchors(p.name).ratios):
            model.rpn.head = RPNHead(model.backbone.out_channels, len(anchors.ratios),
                                     conv_depth=2 if p.name == "r50v2" else 1)
    return model


#: Width of the r18 preset's FPN and heads (torchvision's R50 presets use 256).
R18_WIDTH = 128


def _build_r18(num_classes: int, size: dict, anchors: Anchors, kwargs: dict) -> MaskRCNN:
    """ResNet-18 + FPN, GroupNorm everywhere (trainable from scratch), slim heads and
    fewer proposals, so that it trains at a useful speed on a CPU.

    Default anchors start at 16 px (small inputs hold small objects); proposals, sampled RoIs and
    RoIAlign samples are cut (about 1.7x faster per iteration than torchvision's defaults);
    the box head is a GroupNorm conv head (as in r50v2), which learns to tell categories
    apart from scratch far sooner than the two-layer MLP head (synthetic shapes, 300
    iterations: val segm AP ~0.35 with the MLP head, ~0.6 with this one)."""
    w = R18_WIDTH
    trunk = resnet18(weights=None, norm_layer=_group_norm)
    backbone = BackboneWithFPN(
        trunk,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[64, 128, 256, 512],
        out_channels=w,
        extra_blocks=LastLevelMaxPool(),
        norm_layer=_group_norm,
    )
    levels = ["0", "1", "2", "3"]
    defaults = {
        "rpn_anchor_generator": anchors.generator(),
        "rpn_pre_nms_top_n_train": 500, "rpn_post_nms_top_n_train": 200,
        "rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_test": 300,
        "box_batch_size_per_image": 64,
        "box_roi_pool": MultiScaleRoIAlign(levels, 7, sampling_ratio=1),
        "mask_roi_pool": MultiScaleRoIAlign(levels, 14, sampling_ratio=1),
    }
    defaults.update(kwargs)
    return MaskRCNN(
        backbone,
        num_classes=None,
        box_head=FastRCNNConvFCHead((w, 7, 7), [w, w], [512], norm_layer=_group_norm),
        box_predictor=FastRCNNPredictor(512, num_classes),
        mask_head=MaskRCNNHeads(w, [w] * 4, 1, norm_layer=_group_norm),
        mask_predictor=MaskRCNNPredictor(w, w, num_classes),
        **size,
        **defaults,
    )
