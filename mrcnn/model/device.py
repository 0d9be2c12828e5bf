"""Choosing where the model runs (CUDA, then Apple MPS, then CPU) and in what precision,
with a human reason for every choice."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    reason: str  # why this device, in words ("no CUDA device", "requested", ...)
    amp_dtype: torch.dtype | None  # autocast dtype, None = full fp32
    channels_last: bool

    def describe(self) -> str:
        """For the status bar, e.g. "CPU — torch built without CUDA · bf16"."""
        name = {"cuda": "CUDA", "mps": "MPS", "cpu": "CPU"}.get(self.device.type, self.device.type)
        if self.device.type == "cuda":
            name = f"CUDA ({torch.cuda.get_device_name(self.device)})"
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")
        return f"{name} — {self.reason} · {precision}"


@functools.cache
def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 math (AVX512-BF16 or AMX), where bf16 autocast pays."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _cuda_reason() -> str:
    if torch.version.cuda is None:
        return "torch built without CUDA"
    return "no CUDA device found"


def choose_device(requested: str | None = None, *, amp: bool = True) -> DeviceChoice:
    """Pick a device: `requested` ("cuda", "cuda:1", "mps", "cpu") if usable, else the best
    available. `amp=False` turns mixed precision off."""
    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            return _make(torch.device("cpu"), f"CUDA requested but {_cuda_reason()}", amp)
        if dev.type == "mps" and not _mps_available():
            return _make(torch.device("cpu"), "MPS requested but not available", amp)
        return _make(dev, "requested", amp)
    if torch.cuda.is_available():
        return _make(torch.device("cuda"), "GPU found", amp)
    if _mps_available():
        return _make(torch.device("mps"), "Apple GPU found", amp)
    return _make(torch.device("cpu"), f"{_cuda_reason()}", amp)


def fallback_to_cpu(reason: str, *, amp: bool = True) -> DeviceChoice:
    """The CPU choice after a failure elsewhere, e.g. "CUDA out of memory, retried on CPU"."""
    return _make(torch.device("cpu"), reason, amp)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def _make(device: torch.device, reason: str, amp: bool) -> DeviceChoice:
    dtype = None
    channels_last = False
    if amp:
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif device.type == "cpu" and cpu_supports_bf16():
            dtype = torch.bfloat16
            channels_last = True
    return DeviceChoice(device, reason, dtype, channels_last)


def autocast(choice: DeviceChoice):
    """The autocast context for a choice (a no-op in fp32)."""
    if choice.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=choice.device.type, dtype=choice.amp_dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors, whatever torch version raised them."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def cpu_cores() -> int:
    """The CPU cores this process may use (its affinity where the system says)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def describe_hardware(requested: str | None = None) -> dict:
    """The machine as the training recipe needs it, as plain data
    (`mrcnn.training.recipe.Hardware.from_dict`): the device training would use, its name,
    its memory in GiB (GPUs) and the CPU cores."""
    choice = choose_device(requested, amp=False)
    dev = choice.device
    info: dict = {"device": dev.type if dev.type in ("cuda", "mps") else "cpu",
                  "name": "CPU", "memory_gib": None, "cpu_cores": cpu_cores()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1))
    elif dev.type == "mps":
        info["name"] = "Apple GPU"
    return info
