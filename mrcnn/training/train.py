"""Training Mask R-CNN on a project's reviewed images.

`Trainer` is a detectron2-style loop (SGD, warmup then step or cosine decay, optional AMP)
whose progress reports, cancellation, checkpoints and evaluation are hooks
(`mrcnn.training.loop`). `train_project` wires it to a project: data from the store, evaluation on
the val split before and after, and a new model version `models/vN.pt` registered and
activated at the end — or nothing at all when training is cancelled or fails.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mrcnn.errors import (
    CheckpointError,
    TrainingCancelled,
    TrainingError,
    TrainingOutOfMemory,
)
from mrcnn.model.checkpoint import load_state, save_checkpoint
from mrcnn.model.convert import LabelMap
from mrcnn.model.device import DeviceChoice, choose_device, cpu_cores, is_out_of_memory
from mrcnn.model.finetune_policy import freeze_for_finetuning, restore_batch_norm
from mrcnn.model.presets import (
    DEFAULT_MASK_RESOLUTION,
    DEFAULT_PRESET,
    MASK_RESOLUTIONS,
    Anchors,
    anchors_of,
    build_model,
    get_preset,
    mask_resolution_of,
)
from mrcnn.store.project import Project
from mrcnn.store.records import ModelVersion
from mrcnn.training import distributed
from mrcnn.training.anchors import fit_training_anchors
from mrcnn.training.dataset import (
    InfiniteSampler,
    ProjectDataset,
    collate,
    project_labels,
    reviewed_image_ids,
    train_transform,
)
from mrcnn.training.distributed import DistInfo
from mrcnn.training.events import EvalEvent, SavedEvent, StartEvent, TrainingEvent
from mrcnn.training.hooks import (
    RESUME_FORMAT,
    CancelHook,
    CheckpointHook,
    EvalHook,
    ProgressHook,
)
from mrcnn.training.label_smoothing import ClassifierLabelSmoothing
from mrcnn.training.loop import HookBase, Trainer, seed_everything

__all__ = [
    "HookBase", "TrainConfig", "Trainer", "TrainingCancelled", "TrainingError",
    "load_resume_state", "train_project",
]

log = logging.getLogger(__name__)

#: Iterations when neither max_iters nor epochs is given.
DEFAULT_MAX_ITERS = 1000
#: Where `train_project` keeps its periodic, resumable state (inside the models folder).
RESUME_FILE = "resume.pt"

Progress = Callable[[TrainingEvent], Any]


@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults live here and nowhere else."""

    preset: str = DEFAULT_PRESET
    max_iters: int | None = None  # iterations (batches); or give epochs; neither: 1000
    epochs: float | None = None  # passes over the training images
    size: int | None = None  # shorter image side in pixels; None: the preset's
    batch_size: int = 2
    lr: float | None = None  # None: the preset's (fine-tuning or from-scratch) rate
    momentum: float = 0.9
    weight_decay: float = 1e-4  # not applied to normalisation layers
    warmup_iters: int = 100  # linear warmup from lr * warmup_factor
    warmup_factor: float = 0.001
    schedule: str = "cosine"  # "cosine" (to 0) or "step"
    steps: tuple[float, ...] = (0.75, 0.9)  # "step": fractions of max_iters where lr *= gamma
    gamma: float = 0.1
    clip_grad_norm: float | None = None  # max gradient norm, None: no clipping
    scale_jitter: tuple[float, float] = (0.8, 1.2)  # random shorter side, as × size
    flip: bool = True  # random horizontal flips
    anchors: str = "fit"  # from scratch: "fit" to the train boxes, or the preset's "default"
    #   (a loaded model always keeps its own: its RPN was trained with them)
    mask_resolution: int = DEFAULT_MASK_RESOLUTION  # mask side per RoI, 28 or 56, of a model
    #   built here (scratch, a bare init_state); a loaded model keeps its own
    seed: int = 0
    device: str | None = None  # "cuda", "cpu", "mps", None/"auto": the best available
    amp: bool = True  # mixed precision where the device supports it
    eval_period: int = 0  # evaluate val every N iterations (0: only before and after)
    checkpoint_period: int = 0  # save resumable state every N iterations (0: never)
    num_workers: int = 0  # DataLoader worker processes
    label_smoothing: float = 0.0  # box classifier cross-entropy smoothing (0: off)
    # frozen norm layers and early stages (mrcnn.model.finetune_policy); None: when
    # fine-tuning a pretrained r50/r50v2 (never from scratch, where frozen norms cannot learn)
    finetune_policy: bool | None = None
    roi_batch_per_image: int | None = None  # RoIs sampled per image for the heads; None:
    # the preset's (512 for r50/r50v2: most of a CPU step; the CPU recipe samples fewer)
    halve_batch_on_oom: bool = True  # on CUDA: out of memory halves the batch and goes on
    start: str = ""  # for the start event and metadata: "coco", "scratch", "v3", a file
    recipe: str = ""  # the run in one line (mrcnn.training.recipe.Recipe.line)

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        get_preset(self.preset)
        if self.max_iters is not None and self.epochs is not None:
            raise ValueError("give max_iters or epochs, not both")
        checks = [
            ("max_iters", self.max_iters is None or self.max_iters > 0),
            ("epochs", self.epochs is None or self.epochs > 0),
            ("size", self.size is None or self.size >= 32),
            ("batch_size", self.batch_size >= 1),
            ("lr", self.lr is None or self.lr > 0),
            ("momentum", 0 <= self.momentum < 1),
            ("weight_decay", self.weight_decay >= 0),
            ("warmup_iters", self.warmup_iters >= 0),
            ("warmup_factor", 0 < self.warmup_factor <= 1),
            ("schedule", self.schedule in ("cosine", "step")),
            ("steps", all(0 < s < 1 for s in self.steps)),
            ("gamma", 0 < self.gamma <= 1),
            ("clip_grad_norm", self.clip_grad_norm is None or self.clip_grad_norm > 0),
            ("scale_jitter", 0 < self.scale_jitter[0] <= 1 <= self.scale_jitter[1]),
            ("anchors", self.anchors in ("fit", "default")),
            ("mask_resolution", self.mask_resolution in MASK_RESOLUTIONS),
            ("eval_period", self.eval_period >= 0),
            ("checkpoint_period", self.checkpoint_period >= 0),
            ("num_workers", self.num_workers >= 0),
            ("label_smoothing", 0 <= self.label_smoothing < 1),
            ("roi_batch_per_image", self.roi_batch_per_image is None
             or self.roi_batch_per_image >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"invalid training setting {name}={getattr(self, name)!r}")

    def iterations(self, n_images: int) -> int:
        """max_iters, or epochs converted to iterations for `n_images` training images."""
        if self.max_iters is not None:
            return self.max_iters
        if self.epochs is not None:
            return max(1, math.ceil(self.epochs * n_images / self.batch_size))
        return DEFAULT_MAX_ITERS

    def base_lr(self, *, from_scratch: bool) -> float:
        if self.lr is not None:
            return self.lr
        p = get_preset(self.preset)
        return p.scratch_lr if from_scratch else p.lr

    def to_dict(self) -> dict:
        """Plain data (for checkpoints' metadata and JSON)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


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
    norm_params, other = [], []
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
    model.transform.min_size = sizes
    model.transform.max_size = max(max_size, int(max_size * max(sizes) / size))


def _max_size_for(preset: str, size: int) -> int:
    p = get_preset(preset)
    return max(int(size * p.max_size / p.min_size), size)

def load_resume_state(path: str | Path) -> dict:
    """Read a state written by a CheckpointHook (weights_only); CheckpointError if it is
    not one."""
    state = load_state(path)
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path} is not a resumable training state")
    return state


# ---------------------------------------------------------------- training a project
def _evaluate(model: nn.Module, project: Project, labels: LabelMap, image_ids: list[int],
              device: DeviceChoice) -> dict:
    """Val metrics of the model as it is now; leaves it in training mode afterwards."""
    from mrcnn.training.evaluate import evaluate_model

    was_training = model.training
    try:
        return evaluate_model(model, project, labels=labels, image_ids=image_ids, device=device)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        raise TrainingError(
            f"out of memory on {device.device.type} while evaluating on {len(image_ids)} val "
            "images: try a smaller image size; the previous model version stays active"
        ) from None
    finally:
        if device.channels_last:  # the predictor may have changed the backbone's layout
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)


def _next_version_name(project: Project) -> str:
    return f"v{max((v.id for v in project.model_versions()), default=0) + 1}"


def train_project(project: Project, config: TrainConfig, *, model: nn.Module | None = None,
                  init_state: dict | None = None, parent_id: int | None = None,
                  hooks: Sequence[HookBase] = (), progress: Progress | None = None,
                  should_cancel: Callable[[], bool] | None = None,
                  evaluate_before: bool | None = None,
                  resume_from: str | Path | None = None,
                  dist: DistInfo | None = None,
                  stage_to: str | Path | None = None) -> ModelVersion | None:
    """Train on the project's reviewed train-split images; save, register and activate the
    result as a new model version.

    model: the network to train (its classes must be the project's categories + 1); None
        builds config.preset from scratch. init_state: a state dict loaded into it first.
    parent_id: the model version this one was fine-tuned from (metadata).
    progress: receives the run's events (`mrcnn.training.events`): a StartEvent, StepEvents,
        EvalEvents (stage "before" | "during" | "after") and a SavedEvent.
    should_cancel: checked before every step; True raises TrainingCancelled.
    evaluate_before: evaluate the starting model on val; None: unless built from scratch.
    resume_from: a state saved by periodic checkpoints (config.checkpoint_period).
    dist: the process's place in a torchrun job (see mrcnn.training.distributed): every process
        trains on its shard with DistributedDataParallel; only rank 0 evaluates, reports,
        and writes the checkpoint and the store (the others return None).
    stage_to: write the checkpoint (atomically) to this file instead, register nothing and
        return None; the SavedEvent then carries the staged path, preset, parent_id and
        metadata for the caller to register (`mrcnn.store.versions.register_staged`). This lets
        a process that holds the project open read-only train for the one that writes it.

    Cancelled or failed runs register nothing and leave no file behind. Returns the new
    ModelVersion (the checkpoint is `project.folder / version.path`).
    """
    config.validate()
    started = time.time()
    data = build_data(project, config)
    max_iters = config.iterations(len(data.dataset))
    dist = dist or DistInfo()
    device = build_device(config, dist)
    from_scratch = model is None and init_state is None
    seed_everything(config.seed)
    anchors = build_anchors(config, data) if from_scratch else None
    model = build_start_model(config, data.labels, model=model, init_state=init_state,
                              anchors=anchors)
    policy = uses_finetune_policy(config, from_scratch=from_scratch)
    if policy:
        freeze_for_finetuning(model)
    if config.roi_batch_per_image:
        model.roi_heads.fg_bg_sampler.batch_size_per_image = config.roi_batch_per_image
    size, max_size = input_sizes(config, model)
    model.to(device.device)
    if evaluate_before is None:
        evaluate_before = not from_scratch
    emit = (progress if dist.is_main else None) or (lambda event: None)
    start_name = config.start or ("scratch" if from_scratch else "")
    emit(StartEvent(max_iters=max_iters, train_images=len(data.train_ids),
                    val_images=len(data.val_ids), device=device.describe(),
                    preset=config.preset, size=size, world_size=dist.world_size,
                    start=start_name, recipe=config.recipe, batch_size=config.batch_size))

    def evaluate() -> dict:
        return _evaluate(model, project, data.labels, data.val_ids, device)

    set_input_size(model, size, max_size)
    metrics_before = None
    if evaluate_before and data.val_ids and dist.is_main:
        metrics_before = evaluate()
        emit(EvalEvent(stage="before", iteration=0, metrics=metrics_before))

    resume_state = load_resume_state(resume_from) if resume_from is not None else None
    start_iter = int(resume_state["iteration"]) if resume_state else 0
    if start_iter >= max_iters:
        raise TrainingError(f"the resumed state is at iteration {start_iter}, past the "
                            f"{max_iters} iterations asked for")

    set_input_size(model, size, max_size, config.scale_jitter)
    loader = build_loader(data.dataset, config, start_iter=start_iter, dist=dist)
    optimizer, scheduler = build_optimizer(model, config, from_scratch=from_scratch,
                                           max_iters=max_iters)
    resume_path = project.models_dir / RESUME_FILE
    all_hooks = build_hooks(config, dist, progress=progress, should_cancel=should_cancel,
                            evaluate=evaluate if data.val_ids else None,
                            on_eval=lambda it, m: emit(EvalEvent(stage="during", iteration=it,
                                                                 metrics=m)),
                            resume_path=resume_path,
                            resume_extra={"config": config.to_dict(),
                                          "categories": data.labels.names,
                                          "train_image_ids": data.train_ids})
    all_hooks.extend(hooks)
    smoothing = (ClassifierLabelSmoothing(model, config.label_smoothing)
                 if config.label_smoothing else None)  # removed in the finally below
    trainer = Trainer(wrap_distributed(model, device, dist), loader, optimizer, scheduler,
                      max_iters=max_iters, device=device, clip_grad_norm=config.clip_grad_norm,
                      hooks=all_hooks, loss_transform=smoothing)
    if resume_state is not None:
        if resume_state.get("extra", {}).get("categories", data.labels.names) != data.labels.names:
            raise TrainingError("the resumed state was trained on other categories")
        trainer.load_state_dict(resume_state)

    train_start = time.perf_counter()
    try:
        batch_size = train_halving_on_oom(trainer, data.dataset, config, device, dist)
        train_seconds = time.perf_counter() - train_start
        if not dist.is_main:  # rank 0 alone evaluates and writes
            return None
        set_input_size(model, size, max_size)
        model.eval()
        metrics_after = None
        if data.val_ids:
            metrics_after = evaluate()
            emit(EvalEvent(stage="after", iteration=max_iters, metrics=metrics_after))
        if should_cancel is not None and should_cancel():
            raise TrainingCancelled("training cancelled before the model was saved")
        parent = project.model_version(parent_id) if parent_id is not None else None
        metadata = {
            "preset": config.preset, "categories": data.labels.names,
            "parent_version": parent.name if parent else None,
            "training_image_ids": data.train_ids, "val_image_ids": data.val_ids,
            "metrics": {"before": metrics_before, "after": metrics_after},
            "created_at": time.time(), "started_at": started,
            "iterations": max_iters, "train_seconds": train_seconds,
            "size": size, "max_size": max_size, "from_scratch": from_scratch,
            "start": start_name, "recipe": config.recipe, "finetune_policy": policy,
            "speed": {"device": device.device.type, "preset": config.preset, "size": size,
                      "batch_size": batch_size, "finetune_policy": policy,
                      "cpu_cores": cpu_cores(),
                      "seconds_per_iter": train_seconds / max(1, max_iters - start_iter)},
            "final_losses": trainer.losses, "device": device.describe(),
            "config": config.to_dict(), "world_size": dist.world_size,
            "anchors": anchors_of(model).to_dict(),
            "mask_resolution": mask_resolution_of(model),
        }
        if policy:
            restore_batch_norm(model)  # the checkpoint loads into a plain build_model model
        if stage_to is not None:
            _stage_version(Path(stage_to), model, config.preset, data.labels, metadata)
            version = None
        else:
            version = _save_version(project, model, config.preset, data.labels, parent_id,
                                    metadata)
    except BaseException:
        if dist.is_main:
            resume_path.unlink(missing_ok=True)
        raise
    finally:
        if smoothing is not None:
            smoothing.remove()
        distributed.shutdown(dist)
    resume_path.unlink(missing_ok=True)
    if version is None:
        emit(SavedEvent(staged=str(stage_to), preset=config.preset, parent_id=parent_id,
                        metadata=metadata))
        return None
    emit(SavedEvent(version=version.name, path=version.path))
    return version


# ---------------------------------------------------------------- the build steps
@dataclass(frozen=True)
class TrainingData:
    """The project's training data: its label map, the reviewed image ids of each split, and
    the train split as a data set (with augmentation)."""

    labels: LabelMap
    train_ids: list[int]
    val_ids: list[int]
    dataset: ProjectDataset


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
    dataset = ProjectDataset(project, train_ids, labels=labels,
                             transform=train_transform(flip=config.flip))
    if dataset.num_instances == 0:
        raise TrainingError("the reviewed train images have no accepted instances")
    return TrainingData(labels, train_ids, val_ids, dataset)


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
    p = get_preset(config.preset)
    size = config.size or p.min_size
    max_size = _max_size_for(config.preset, size) if config.size else p.max_size
    fitted = fit_training_anchors(data.dataset.samples, preset=config.preset, size=size,
                                  max_size=max_size)
    log.info("anchors fitted to %d train boxes at %d px: %s (%s; the preset's %s: %s)",
             fitted.fit.boxes, size, fitted.anchors.describe(), fitted.fit.describe(),
             fitted.default.describe(), fitted.default_fit.describe())
    return fitted.anchors


def build_start_model(config: TrainConfig, labels: LabelMap, *, model: nn.Module | None = None,
                      init_state: dict | None = None,
                      anchors: Anchors | None = None) -> nn.Module:
    """`model` (None: config.preset built from scratch, with `anchors`, None: the preset's,
    and config.mask_resolution) with `init_state` loaded; TrainingError when its classes are
    not the project's categories + 1. A bare `init_state` names no anchors: it goes into the
    preset's (pass a `model` built with its own to keep others)."""
    if model is None:
        model = build_model(preset=config.preset, num_classes=labels.num_classes,
                            anchors=anchors, mask_resolution=config.mask_resolution)
    n_out = model.roi_heads.box_predictor.cls_score.out_features
    if n_out != labels.num_classes:
        raise TrainingError(f"the model has {n_out - 1} classes but the project has "
                            f"{len(labels.names)} categories")
    if init_state is not None:
        model.load_state_dict(init_state)
    return model


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
    size = config.size or int(model.transform.min_size[-1])
    max_size = _max_size_for(config.preset, size) if config.size else int(
        model.transform.max_size)
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


def _stage_version(path: Path, model: nn.Module, preset: str, labels: LabelMap,
                   metadata: dict) -> None:
    """Write the checkpoint to `path` (atomically; removed again on any failure)."""
    model = getattr(model, "module", model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, state_dict=model.state_dict(), preset=preset,
                        categories=labels.names, metadata=metadata)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    log.info("staged the trained model at %s", path)


def _save_version(project: Project, model: nn.Module, preset: str, labels: LabelMap,
                  parent_id: int | None, metadata: dict) -> ModelVersion:
    """Write models/vN.pt and register it (active), as one unit: on any failure neither the
    file nor the record remains."""
    model = getattr(model, "module", model)
    path: Path | None = None
    try:
        with project.transaction():
            name = _next_version_name(project)
            rel = f"{project.models_dir.name}/{name}.pt"
            path = project.folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(path, state_dict=model.state_dict(), preset=preset,
                            categories=labels.names, metadata=metadata)
            version = project.add_model_version(rel, preset, parent_id=parent_id,
                                                metadata=metadata, activate=True)
            if version.name != name:  # pragma: no cover - ids and names always agree
                raise TrainingError(f"model version named {version.name}, expected {name}")
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    log.info("saved model version %s to %s", version.name, path)
    return version
