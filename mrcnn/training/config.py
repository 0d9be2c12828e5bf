"""What decides a training run: `TrainConfig`, its defaults in one place, validated once."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mrcnn.model.presets import (
    DEFAULT_MASK_RESOLUTION,
    DEFAULT_PRESET,
    MASK_RESOLUTIONS,
    get_preset,
)

#: Iterations when neither max_iters nor epochs is given.
DEFAULT_MAX_ITERS = 1000

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
    time_precision: bool = True  # on a GPU, keep it only where a timed training step says
    #   it is faster than fp32 (`mrcnn.training.precision`); False: as `amp` says
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
