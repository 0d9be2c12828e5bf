"""Choosing where the model runs (CUDA, then Apple MPS, then CPU) and in what precision,
with a human reason for every choice."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

log = logging.getLogger(__name__)


#: bf16 autocast is chosen on a CPU only where a convolution runs at least this much faster
#: in bf16 than in fp32 (`cpu_bf16_speedup`). It depends on the CPU, not on its flags alone:
#: an Intel Xeon with AVX512-BF16 but no AMX converted more than it gained (bf16 convolutions
#: at 0.6x fp32, the whole Predictor at 0.79x plain fp32 torchvision), while a Zen 4 EPYC,
#: also AVX512-BF16 without AMX, ran them about 2x faster.
BF16_MIN_SPEEDUP = 1.15

#: On a GPU, autocast is kept (for prediction, for training) only where it runs the model at
#: least this much faster than fp32 (`fastest_precision`); a tie goes to fp32, whose results
#: are exact. One image at a time leaves a large GPU mostly waiting on launches, and autocast
#: adds a cast before every convolution: on an H200, r50v2 at 800 px predicted in bf16 at
#: 0.81x and in fp16 at 0.97x the speed of fp32 (TF32 convolutions, BatchNorm folded).
AMP_MIN_SPEEDUP = 1.05

#: Short names of the autocast dtypes, for people.
_AMP_NAMES: dict[torch.dtype, str] = {torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    reason: str  # why this device, in words ("no CUDA device", "requested", ...)
    amp_dtype: torch.dtype | None  # autocast dtype, None = full fp32
    channels_last: bool
    #: why this precision where it is not the obvious one, e.g. "bf16 measured at 0.62x"
    precision_note: str = ""

    def describe(self) -> str:
        """For the status bar, e.g. "CPU — torch built without CUDA · bf16"."""
        name = {"cuda": "CUDA", "mps": "MPS", "cpu": "CPU"}.get(self.device.type, self.device.type)
        if self.device.type == "cuda":
            name = f"CUDA ({torch.cuda.get_device_name(self.device)})"
        precision = "fp32" if self.amp_dtype is None else _AMP_NAMES.get(self.amp_dtype, "fp32")
        note = f" ({self.precision_note})" if self.precision_note else ""
        return f"{name} — {self.reason} · {precision}{note}"


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


@functools.cache
def cpu_bf16_speedup() -> float:
    """How many times faster a convolution of the kind Mask R-CNN's backbone and heads are
    made of runs under bf16 autocast than in fp32 on this CPU (channels_last both ways;
    medians of a few runs). Measured once per process, in about a quarter of a second; only
    asked on CPUs with native bf16 (`cpu_supports_bf16`)."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 256, 48, 64).contiguous(memory_format=torch.channels_last)
    # the two take turns, so a burst of other work slows both rather than one (measured one
    # after the other, a busy moment during the fp32 runs could choose bf16 on a CPU where
    # it is slower, and two processes then predicted the same image in different precisions)
    times: dict[bool, list[float]] = {False: [], True: []}
    with torch.inference_mode():
        for i in range(4):
            for use_bf16 in (False, True):
                with torch.autocast("cpu", torch.bfloat16, enabled=use_bf16):
                    t = time.perf_counter()
                    conv(x)
                    if i:  # the first round warms up
                        times[use_bf16].append(time.perf_counter() - t)
    fp32, bf16 = (statistics.median(times[k]) for k in (False, True))
    return fp32 / max(bf16, 1e-9)


def times_autocast(choice: DeviceChoice) -> bool:
    """Whether work on `choice` times its autocast against fp32 on the model itself
    (`fastest_precision`): on a GPU with autocast on. A CPU's precision is measured once, on
    a convolution, by `choose_device`."""
    return choice.device.type == "cuda" and choice.amp_dtype is not None


def fastest_precision(choice: DeviceChoice, run: Callable[[DeviceChoice], None], *,
                      rounds: int = 3) -> DeviceChoice:
    """`choice` where its autocast runs `run` (one pass of the work under a choice: a
    forward pass, a training step; returning once the device is done) at least
    `AMP_MIN_SPEEDUP` times faster than fp32 without channels_last on the same device; else
    that fp32 choice, whose precision note says what autocast measured (e.g. "bf16 measured
    at 0.81x"). One warm-up run of each, then `rounds` rounds taking turns; medians."""
    if choice.amp_dtype is None:
        return choice
    fp32 = replace(choice, amp_dtype=None, channels_last=False, precision_note="")
    candidates = (choice, fp32)
    for c in candidates:
        run(c)
    times: dict[DeviceChoice, list[float]] = {c: [] for c in candidates}
    for _ in range(rounds):
        for c in candidates:
            t = time.perf_counter()
            run(c)
            times[c].append(time.perf_counter() - t)
    speedup = statistics.median(times[fp32]) / max(statistics.median(times[choice]), 1e-9)
    if speedup >= AMP_MIN_SPEEDUP:
        return choice
    name = _AMP_NAMES.get(choice.amp_dtype, "autocast")
    return replace(fp32, precision_note=f"{name} measured at {speedup:.2f}x")


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
            channels_last = True  # tensor cores read fp16/bf16 convolutions in NHWC
        elif device.type == "cpu" and cpu_supports_bf16():
            speedup = cpu_bf16_speedup()
            if speedup >= BF16_MIN_SPEEDUP:
                dtype = torch.bfloat16
                channels_last = True
            else:
                return DeviceChoice(device, reason, None, False,
                                    f"bf16 measured at {speedup:.2f}x")
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
