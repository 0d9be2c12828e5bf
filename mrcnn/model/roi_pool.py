"""RoIAlign on every CPU core, for prediction.

torchvision's RoIAlign runs on one thread on a CPU, whatever `torch.get_num_threads()` says,
and on channels_last features (the layout the Predictor's backbone runs in) it is slower
still. In a prediction of r50v2 at 800 px (bf16, 2 cores) the box and mask RoIAligns took a
fifth of the time: 1,000 proposals pooled by one core while the other waited.

Each RoI's pooled features depend on that RoI and the feature maps alone, so `ThreadedRoIAlign`
splits an image's RoIs into one run per thread and pools them at once, on features made
contiguous (and fp32, which RoIAlign computes in anyway) once per call; the runs' outputs,
concatenated in order, are torchvision's output bit for bit (tested). torchvision's kernel
releases the GIL, so the threads run in parallel. The worker threads run in the caller's
autocast, inference and grad modes (torch keeps those per thread).

Only on a CPU, for prediction, and only where it pays: with one thread, few RoIs, features
on a GPU or features that need gradients (training), the call goes straight to torchvision's
pooler. Nor is the pooler's first call split (it sets the pooler's scales up from the
feature sizes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

#: Fewer RoIs than this in an image are pooled in one run (splitting costs more than it saves).
MIN_ROIS_TO_SPLIT = 64

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of `workers` threads (made again when more are asked for; the
    smaller one is not shut down, as another caller may be submitting to it: its idle threads
    end once it is no longer referenced)."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < workers:
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="roi-align")
            _pool_workers = workers
        return _pool


def _cpu_autocast() -> tuple[bool, torch.dtype]:
    """Whether CPU autocast is on in this thread, and its dtype."""
    try:
        return torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")
    except (TypeError, AttributeError):  # torch before 2.4
        return torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()


def _pooling_input(level: torch.Tensor) -> torch.Tensor:
    """A level as RoIAlign reads it: contiguous, and half precision made fp32 once here (under
    autocast torchvision casts it to fp32 on every call, and RoIAlign computes in fp32)."""
    if level.dtype in (torch.bfloat16, torch.float16):
        level = level.float()
    return level.contiguous()


class _CallerModes:
    """The caller thread's autocast, inference and grad modes, to run work in another
    thread as if in the caller's."""

    def __init__(self) -> None:
        self.autocast, self.dtype = _cpu_autocast()
        self.inference = torch.is_inference_mode_enabled()
        self.grad = torch.is_grad_enabled()

    def run(self, fn, *args):
        with torch.autocast("cpu", dtype=self.dtype, enabled=self.autocast), \
                torch.inference_mode(self.inference), torch.set_grad_enabled(self.grad):
            return fn(*args)


class ThreadedRoIAlign(nn.Module):
    """torchvision's MultiScaleRoIAlign `pooler`, with each image's RoIs split over `threads`
    threads on a CPU (see the module docstring). Called as the pooler is; holds no weights,
    so a model's state dict is the same with it or without."""

    def __init__(self, pooler: nn.Module, threads: int):
        super().__init__()
        self.pooler = pooler
        self.threads = int(threads)

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        pooler: Any = self.pooler  # torchvision's MultiScaleRoIAlign (untyped attributes)
        first = next(iter(x.values()))
        if (self.threads < 2 or first.device.type != "cpu" or pooler.scales is None
                or first.requires_grad  # training: its backward stays torchvision's
                or max((len(b) for b in boxes), default=0) < MIN_ROIS_TO_SPLIT):
            return pooler(x, boxes, image_shapes)
        names = set(pooler.featmap_names)
        modes = _CallerModes()
        outputs: list[torch.Tensor] = []
        for i, image_boxes in enumerate(boxes):
            features = OrderedDict((k, _pooling_input(v[i:i + 1])) for k, v in x.items()
                                   if k in names)
            shape = [image_shapes[i]]
            chunks = image_boxes.tensor_split(self.threads) \
                if len(image_boxes) >= MIN_ROIS_TO_SPLIT else (image_boxes,)
            later = [_executor(self.threads - 1).submit(modes.run, pooler, features, [c], shape)
                     for c in chunks[1:]]
            outputs.append(pooler(features, [chunks[0]], shape))  # this thread's share
            outputs.extend(f.result() for f in later)
        # torchvision's output has the first level's dtype (bf16 under bf16 autocast)
        return torch.cat(outputs).to(first.dtype)


def thread_roi_pools(model: nn.Module, threads: int | None = None) -> int:
    """Wrap a torchvision MaskRCNN's RoI poolers (box, mask, keypoint) in `ThreadedRoIAlign`
    with `threads` threads (default: torch's); idempotent. Returns how many were wrapped."""
    threads = torch.get_num_threads() if threads is None else threads
    heads = getattr(model, "roi_heads", None)
    wrapped = 0
    for name in ("box_roi_pool", "mask_roi_pool", "keypoint_roi_pool"):
        pooler = getattr(heads, name, None)
        if pooler is None:
            continue
        if isinstance(pooler, ThreadedRoIAlign):
            pooler.threads = threads
        else:
            setattr(heads, name, ThreadedRoIAlign(pooler, threads))
        wrapped += 1
    return wrapped
