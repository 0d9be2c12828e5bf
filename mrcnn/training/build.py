"""The steps `train_project` is built from (`mrcnn.training.train`): the data, the device,
the anchors, the start model, the input size, the loader, the optimizer and its schedule, the
hooks, distributed wrapping, and the out-of-memory halving; and the building blocks they use.
Each is a plain function of the `TrainConfig`, testable alone."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mrcnn.errors import (
    TrainingError,
    TrainingOutOfMemory,
)
from mrcnn.model.convert import LabelMap
from mrcnn.model.device import DeviceChoice, choose_device
from mrcnn.model.keypoint_head import Layout, layout_for, with_keypoint_layout
from mrcnn.model.presets import (
    Anchors,
    build_model,
    get_preset,
)
from mrcnn.store.project import Project
from mrcnn.training import distributed
from mrcnn.training.anchors import fit_training_anchors
from mrcnn.training.config import TrainConfig
from mrcnn.training.dataset import (
    InfiniteSampler,
    KeypointTargets,
    ProjectDataset,
    TrainingCrops,
    collate,
    project_labels,
    reviewed_image_ids,
    train_transform,
)
from mrcnn.training.distributed import DistInfo
from mrcnn.training.events import TrainingEvent
from mrcnn.training.hooks import (
    CancelHook,
    CheckpointHook,
    EvalHook,
    ProgressHook,
)
from mrcnn.training.loop import HookBase, Trainer

log = logging.getLogger(__name__)

#: Called with each training event (a window's progress, the JSON writer).
Progress = Callable[[TrainingEvent], Any]


# ---------------------------------------------------------------- building blocks
def lr_factor(it: int, *, max_iters: int, warmup_iters: int, warmup_factor: float,
              schedule: str, steps: Sequence[float] = (), gamma: float = 0.1) -> float:
    """The learning rate multiplier at (0-based) iteration `it`: linear warmup, then
    cosine decay to 0 or steps of ×gamma at the given fractions of max_iters."""
    if schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * min(it, max_iters) / max_iters))
    else:
        factor = gamma ** sum(it >= round(s * max_iters) for s in steps)
    if it < warmup_iters:
        alpha = it / warmup_iters
        factor *= warmup_factor * (1 - alpha) + alpha
    return factor


def make_optimizer(model: nn.Module, *, lr: float, momentum: float,
                   weight_decay: float) -> torch.optim.SGD:
    """SGD; normalisation layers' weights and biases get no weight decay."""
    norm_types = (nn.GroupNorm, nn.BatchNorm2d, nn.LayerNorm, nn.SyncBatchNorm)
    norm_params: list[nn.Parameter] = []
    other: list[nn.Parameter] = []
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if p.requires_grad:
                (norm_params if isinstance(module, norm_types) else other).append(p)
    groups = [{"params": other, "weight_decay": weight_decay}]
    if norm_params:
        groups.append({"params": norm_params, "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


def scale_jitter_sizes(size: int, low: float, high: float, step: int = 16) -> tuple[int, ...]:
    """Shorter-side sizes for multi-scale training, multiples of `step` between size × low
    and size × high, ending with `size` itself (which torchvision uses in eval mode)."""
    lo, hi = math.ceil(size * low / step), math.floor(size * high / step)
    sizes = [s * step for s in range(lo, hi + 1) if s * step != size]
    return (*sizes, size)


def set_input_size(model: nn.Module, size: int, max_size: int,
                   jitter: tuple[float, float] | None = None) -> None:
    """Set a torchvision detection model's resize: shorter side `size` (randomly one of the
    jittered sizes in training mode), longer side capped at `max_size`."""
    sizes = scale_jitter_sizes(size, *jitter) if jitter else (size,)
    transform: Any = model.transform  # torchvision's GeneralizedRCNNTransform
    transform.min_size = sizes
    transform.max_size = max(max_size, int(max_size * max(sizes) / size))


def _max_size_for(preset: str, size: int) -> int:
    p = get_preset(preset)
    return max(int(size * p.max_size / p.min_size), size)


def _config_input_size(config: TrainConfig) -> tuple[int, int]:
    """(shorter side, longer side cap) of the training input: config.size, else the
    preset's (a loaded model's own may differ: `input_sizes`)."""
    p = get_preset(config.preset)
    size = config.size or p.min_size
    return size, _max_size_for(config.preset, size) if config.size else p.max_size


# ---------------------------------------------------------------- the build steps
@dataclass(frozen=True)
class TrainingData:
    """The project's training data: its label map, the reviewed image ids of each split, the
    train split as a data set (with augmentation), and the keypoint head's layout (empty:
    the project has no keypoint categories, the model no keypoint head)."""

    labels: LabelMap
    train_ids: list[int]
    val_ids: list[int]
    dataset: ProjectDataset
    keypoints: Layout = dataclasses.field(default_factory=dict)


def build_data(project: Project, config: TrainConfig) -> TrainingData:
    """The reviewed images to train on and to score with; TrainingError when there is
    nothing to train on."""
    labels = project_labels(project)
    if not labels.names:
        raise TrainingError("the project has no categories to train on")
    train_ids = reviewed_image_ids(project, "train")
    val_ids = reviewed_image_ids(project, "val")
    if not train_ids:
        raise TrainingError("no reviewed images in the train split: review some images first")
    size, max_size = _config_input_size(config)
    schemas = project.keypoint_schemas()
    layout = layout_for(schemas, labels.names)
    # with keypoints the data set flips itself: their left/right slots swap
    targets = KeypointTargets.of(schemas, layout, labels) if layout else None
    dataset = ProjectDataset(project, train_ids, labels=labels,
                             transform=train_transform(flip=config.flip and not layout),
                             crops=TrainingCrops(size, max_size), keypoints=targets,
                             flip=config.flip and bool(layout))
    if dataset.num_instances == 0:
        raise TrainingError("the reviewed train images have no accepted instances")
    return TrainingData(labels, train_ids, val_ids, dataset, layout)


def build_device(config: TrainConfig, dist: DistInfo) -> DeviceChoice:
    """The device to train on; in a torchrun job, this process's device, with the process
    group started."""
    device = choose_device(config.device, amp=config.amp)
    if dist.enabled:
        device = dataclasses.replace(device, device=distributed.device_for(dist, device.device))
        distributed.init(dist, device.device)
    return device


def build_anchors(config: TrainConfig, data: TrainingData) -> Anchors | None:
    """The anchors of a model trained from scratch: with config.anchors "fit", fitted to the
    train boxes at the input size (`mrcnn.training.anchors`); else None (the preset's)."""
    if config.anchors != "fit":
        return None
    size, max_size = _config_input_size(config)
    fitted = fit_training_anchors(data.dataset.samples, preset=config.preset, size=size,
                                  max_size=max_size)
    log.info("anchors fitted to %d train boxes at %d px: %s (%s; the preset's %s: %s)",
             fitted.fit.boxes, size, fitted.anchors.describe(), fitted.fit.describe(),
             fitted.default.describe(), fitted.default_fit.describe())
    return fitted.anchors


def build_start_model(config: TrainConfig, labels: LabelMap, *, model: nn.Module | None = None,
                      init_state: dict | None = None,
                      anchors: Anchors | None = None,
                      keypoints: Layout | None = None) -> nn.Module:
    """`model` (None: config.preset built from scratch, with `anchors`, None: the preset's,
    and config.mask_resolution) with `init_state` loaded; TrainingError when its classes are
    not the project's categories + 1. A bare `init_state` names no anchors: it goes into the
    preset's (pass a `model` built with its own to keep others). The model gets a keypoint
    head for the `keypoints` layout (None or empty: none; a given model's own head is
    re-laid for it, `mrcnn.model.keypoint_head.with_keypoint_layout`)."""
    layout = keypoints or {}
    if model is None:
        # a bare init_state holds a keypoint head only when trained with this layout
        first = layout if init_state is None or _has_keypoint_head(init_state) else {}
        model = build_model(preset=config.preset, num_classes=labels.num_classes,
                            anchors=anchors, mask_resolution=config.mask_resolution,
                            keypoints=first)
    heads: Any = model.roi_heads  # torchvision's RoIHeads
    n_out = int(heads.box_predictor.cls_score.out_features)
    if n_out != labels.num_classes:
        raise TrainingError(f"the model has {n_out - 1} classes but the project has "
                            f"{len(labels.names)} categories")
    if init_state is not None:
        model.load_state_dict(init_state)
    return with_keypoint_layout(model, layout, config.preset)


def _has_keypoint_head(state: dict) -> bool:
    return any(k.startswith("roi_heads.keypoint_") for k in state)


def uses_finetune_policy(config: TrainConfig, *, from_scratch: bool) -> bool:
    """Whether the run freezes norm layers and early stages: as configured, else when a
    pretrained r50/r50v2 is fine-tuned. Never from scratch (frozen norms cannot learn)."""
    if from_scratch:
        return False
    if config.finetune_policy is not None:
        return config.finetune_policy
    return config.preset in ("r50", "r50v2")


def train_halving_on_oom(trainer: Trainer, dataset: ProjectDataset, config: TrainConfig,
                         device: DeviceChoice, dist: DistInfo) -> int:
    """Run `trainer`; on a CUDA out-of-memory (single process, batch > 1, allowed by the
    config) halve the batch and go on from the step that failed. Returns the batch size the
    run ended with."""
    batch = config.batch_size
    while True:
        try:
            trainer.train()
            return batch
        except TrainingOutOfMemory:
            if (device.device.type != "cuda" or dist.enabled or batch == 1
                    or not config.halve_batch_on_oom):
                raise
            batch //= 2
            log.warning("out of memory at iteration %d: batch halved to %d, going on",
                        trainer.iter + 1, batch)
            smaller = dataclasses.replace(config, batch_size=batch)
            trainer.data = build_loader(dataset, smaller, start_iter=trainer.iter, dist=dist)
            trainer.start_iter = trainer.iter


def input_sizes(config: TrainConfig, model: nn.Module) -> tuple[int, int]:
    """(shorter side, longer side cap) in pixels: config.size, else the model's own."""
    transform: Any = model.transform  # torchvision's GeneralizedRCNNTransform
    size = config.size or int(transform.min_size[-1])
    max_size = _max_size_for(config.preset, size) if config.size else int(transform.max_size)
    return size, max_size


def build_loader(dataset: ProjectDataset, config: TrainConfig, *, start_iter: int = 0,
                 dist: DistInfo | None = None) -> DataLoader:
    """An endless loader of (images, targets) batches, this process's shard, continuing
    after `start_iter` batches."""
    dist = dist or DistInfo()
    return DataLoader(
        dataset, batch_size=config.batch_size, collate_fn=collate,
        sampler=InfiniteSampler(len(dataset), seed=config.seed,
                                start=start_iter * config.batch_size,
                                rank=dist.rank, world_size=dist.world_size),
        num_workers=config.num_workers, persistent_workers=config.num_workers > 0)


def build_optimizer(model: nn.Module, config: TrainConfig, *, from_scratch: bool,
                    max_iters: int) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD at the config's (fine-tuning or from-scratch) rate, and its warmup-then-decay
    schedule over `max_iters` (see `lr_factor`)."""
    optimizer = make_optimizer(model, lr=config.base_lr(from_scratch=from_scratch),
                               momentum=config.momentum, weight_decay=config.weight_decay)

    def factor(it: int) -> float:
        return lr_factor(it, max_iters=max_iters, warmup_iters=config.warmup_iters,
                         warmup_factor=config.warmup_factor, schedule=config.schedule,
                         steps=config.steps, gamma=config.gamma)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_hooks(config: TrainConfig, dist: DistInfo, *,
                progress: Progress | None = None,
                should_cancel: Callable[[], bool] | None = None,
                evaluate: Callable[[], dict] | None = None,
                on_eval: Callable[[int, dict], Any] | None = None,
                resume_path: Path | None = None,
                resume_extra: dict | None = None) -> list[HookBase]:
    """The standard hooks of a run: cancellation, progress events, periodic evaluation
    (`evaluate`, None: no val images) and periodic resumable checkpoints to `resume_path`.
    Only rank 0 reports, evaluates and writes."""
    hooks: list[HookBase] = []
    if should_cancel is not None:
        hooks.append(CancelHook(should_cancel))
    if progress is not None and dist.is_main:
        hooks.append(ProgressHook(progress))
    if config.eval_period and evaluate is not None and dist.is_main:
        hooks.append(EvalHook(config.eval_period, evaluate, on_eval))
    if config.checkpoint_period and resume_path is not None and dist.is_main:
        hooks.append(CheckpointHook(resume_path, config.checkpoint_period, extra=resume_extra))
    return hooks


def wrap_distributed(model: nn.Module, device: DeviceChoice, dist: DistInfo) -> nn.Module:
    """`model` as DistributedDataParallel in a torchrun job (synchronised batch norm on
    CUDA), else itself."""
    if not dist.enabled:
        return model
    net = model
    if device.device.type == "cuda":
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    # Mask and box heads see no positives in some batches: their parameters may be unused.
    return nn.parallel.DistributedDataParallel(
        net, device_ids=[device.device] if device.device.type == "cuda" else None,
        find_unused_parameters=True)
