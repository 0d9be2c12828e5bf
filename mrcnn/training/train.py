"""Training Mask R-CNN on a project's reviewed images.

`Trainer` is a detectron2-style loop (SGD, warmup then step or cosine decay, optional AMP)
whose progress reports, cancellation, checkpoints and evaluation are hooks
(`mrcnn.training.loop`). `train_project` wires it to a project from the steps in
`mrcnn.training.build` (the run's settings: `mrcnn.training.config.TrainConfig`): data from
the store, evaluation on the val split before and after, and a new model version
`models/vN.pt` registered and activated at the end — or nothing at all when training is
cancelled or fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads

from mrcnn.errors import (
    CheckpointError,
    TrainingCancelled,
    TrainingError,
)
from mrcnn.model.checkpoint import load_state, save_checkpoint
from mrcnn.model.convert import LabelMap
from mrcnn.model.device import DeviceChoice, cpu_cores, is_out_of_memory, times_autocast
from mrcnn.model.finetune_policy import freeze_for_finetuning, restore_batch_norm
from mrcnn.model.keypoint_head import keypoint_layout_of
from mrcnn.model.presets import (
    anchors_of,
    mask_resolution_of,
)
from mrcnn.store.project import Project
from mrcnn.store.records import ModelVersion
from mrcnn.store.versions import errors_path, remove_staged, staged_errors_path
from mrcnn.training import distributed
from mrcnn.training.build import (
    Progress,
    build_anchors,
    build_data,
    build_device,
    build_hooks,
    build_loader,
    build_optimizer,
    build_start_model,
    input_sizes,
    set_input_size,
    train_halving_on_oom,
    uses_finetune_policy,
    wrap_distributed,
)
from mrcnn.training.config import TrainConfig
from mrcnn.training.distributed import DistInfo
from mrcnn.training.error_analysis import (
    Detection,
    ErrorList,
    errors_on,
    save_errors,
    truth_images,
    write_errors,
)
from mrcnn.training.events import EvalEvent, SavedEvent, StartEvent
from mrcnn.training.hooks import (
    RESUME_FORMAT,
)
from mrcnn.training.label_smoothing import ClassifierLabelSmoothing
from mrcnn.training.loop import HookBase, Trainer, seed_everything
from mrcnn.training.precision import fastest_training_precision

__all__ = [
    "HookBase", "TrainConfig", "Trainer", "TrainingCancelled", "TrainingError",
    "load_resume_state", "train_project",
]

log = logging.getLogger(__name__)

#: Where `train_project` keeps its periodic, resumable state (inside the models folder).
RESUME_FILE = "resume.pt"


def load_resume_state(path: str | Path) -> dict:
    """Read a state written by a CheckpointHook (weights_only); CheckpointError if it is
    not one."""
    state = load_state(path)
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path} is not a resumable training state")
    return state


# ---------------------------------------------------------------- training a project
def _evaluate(model: nn.Module, project: Project, labels: LabelMap, image_ids: list[int],
              device: DeviceChoice, detections: dict[int, list[Detection]] | None = None
              ) -> dict:
    """Val metrics of the model as it is now; leaves it in training mode afterwards. With
    `detections`, it receives each val image's predictions (for the error list)."""
    from mrcnn.training.evaluate import evaluate_model

    was_training = model.training
    try:
        return evaluate_model(model, project, labels=labels, image_ids=image_ids, device=device,
                              detections=detections)
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
                              anchors=anchors, keypoints=data.keypoints)
    policy = uses_finetune_policy(config, from_scratch=from_scratch)
    if policy:
        freeze_for_finetuning(model)
    if config.roi_batch_per_image:
        # nn.Module's attribute access is typed Tensor | Module; torchvision is untyped
        roi_heads = cast(RoIHeads, model.get_submodule("roi_heads"))
        roi_heads.fg_bg_sampler.batch_size_per_image = config.roi_batch_per_image
    size, max_size = input_sizes(config, model)
    model.to(device.device)
    if config.time_precision and not dist.enabled and times_autocast(device):
        set_input_size(model, size, max_size)
        device = fastest_training_precision(model, data.dataset, config.batch_size, device)
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
        found: ErrorList | None = None
        if data.val_ids:
            val_detections: dict[int, list[Detection]] = {}
            metrics_after = _evaluate(model, project, data.labels, data.val_ids, device,
                                      val_detections)
            emit(EvalEvent(stage="after", iteration=max_iters, metrics=metrics_after))
            # the errors on val, from the predictions just scored (no second pass)
            found = errors_on(truth_images(project, data.val_ids), val_detections,
                              version=None)
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
            # the keypoint head's layout (rebuilt by load_model); absent: no keypoint head
            **({"keypoints": {c: list(n) for c, n in layout.items()}}
               if (layout := keypoint_layout_of(model)) else {}),
        }
        if policy:
            restore_batch_norm(model)  # the checkpoint loads into a plain build_model model
        if stage_to is not None:
            _stage_version(Path(stage_to), model, config.preset, data.labels, metadata, found)
            version = None
        else:
            version = _save_version(project, model, config.preset, data.labels, parent_id,
                                    metadata)
            _keep_errors(project, version, found)
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


def _stage_version(path: Path, model: nn.Module, preset: str, labels: LabelMap,
                   metadata: dict, found: ErrorList | None = None) -> None:
    """Write the checkpoint to `path` and the error list beside it (`staged_errors_path`,
    moved by `register_staged`), atomically; both removed again on any failure."""
    model = getattr(model, "module", model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, state_dict=model.state_dict(), preset=preset,
                        categories=labels.names, metadata=metadata)
        if found is not None:
            write_errors(staged_errors_path(path), found)
    except BaseException:
        remove_staged(path)
        raise
    log.info("staged the trained model at %s", path)


def _keep_errors(project: Project, version: ModelVersion, found: ErrorList | None) -> None:
    """Keep the new version's error list (`errors/vN.json`); the version stands without one
    when it cannot be written (a derived file: `python -m mrcnn errors` finds it again)."""
    try:
        if found is None:
            errors_path(project, version.name).unlink(missing_ok=True)
        else:
            save_errors(project, version.name, found)
    except OSError as exc:
        log.warning("the error list of %s was not kept: %s", version.name, exc)


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
