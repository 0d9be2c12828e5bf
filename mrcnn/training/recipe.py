"""The one-click training recipe: which model to start from, which preset, input size,
iterations and batch — decided from the project and the machine, and said in one line
before the run starts ("r50v2 from COCO weights · 512 px · 400 iterations · about 12 min on
this CPU").

The one home of that choice: the window's Fine-tune button (`mrcnn.training.launcher`) and
`python -m mrcnn train PROJECT` without --preset/--from both call `choose_recipe`. No torch
here (the window imports this); the machine is described by `Hardware`, which
`mrcnn.model.device.describe_hardware` fills in where torch is loaded.

The order of starting points: the project's active version; else torchvision's COCO
weights for r50v2 when they are on this machine; else scratch. On CUDA the preset runs at its
own input size with a batch that fits the GPU's memory (the trainer halves it on
out-of-memory); on a CPU the run is sized to finish within `CPU_BUDGET_S`, from the seconds
per iteration measured on this project's reference machine (a 2-core CPU, see
`CPU_SECONDS_PER_ITER`) or, better, measured by this project's earlier runs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from mrcnn.model.weight_files import cached_coco_weights
from mrcnn.store.project import Project

log = logging.getLogger(__name__)

#: The time a one-click run on a CPU should take, seconds (training; scoring comes on top).
CPU_BUDGET_S = 15 * 60
#: Cores of the machine CPU_SECONDS_PER_ITER was measured on.
REFERENCE_CORES = 2
#: Seconds per training iteration on the reference machine (2-core x86 CPU, fp32, synthetic
#: 480 px images resized to the size), by (preset, size, batch, fine-tuning policy). Measured
#: with benchmarks/recipes.py; each run also records its own speed in the version's metadata,
#: which replaces these figures on the machine that ran it.
CPU_SECONDS_PER_ITER: dict[tuple[str, int, int, bool], float] = {
    # benchmarks/recipes.py --iters 4, 2026-11-27: r50v2 at 384 px with the policy is 2.1x
    # faster than as torchvision builds it (7.25 s); 512 and 640 px fit only 150 iterations
    ("r18", 256, 4, False): 0.74,
    ("r50v2", 384, 2, True): 3.5,
    ("r50v2", 512, 2, True): 5.3,
    ("r50v2", 640, 2, True): 5.5,
}
#: CPU recipes, by starting point: (preset, size, batch, fine-tuning policy).
CPU_SCRATCH = ("r18", 256, 4, False)
CPU_PRETRAINED = ("r50v2", 384, 2, True)
#: Iterations a run needs at least, and per training image (passes over the data), by
#: whether it starts from scratch; a CPU run is then cut to the budget.
MIN_ITERS = {True: 300, False: 200}
EPOCHS = {True: 40, False: 20}
#: RoIs sampled per image for the box and mask heads of an r50/r50v2 run on a CPU (the
#: preset's 512 make those heads most of a CPU step; 128 is detectron2's usual setting for
#: fine-tuning on a small data set).
CPU_ROI_BATCH = 128
#: Learning-rate warmup: a fifth of the run, at most this many iterations.
MAX_WARMUP = 50
#: GPU memory (GiB) one training image takes at the preset's own size, with mixed
#: precision; scaled by area for other sizes. An estimate: erring high costs only speed, and
#: a batch that does not fit (fp32, where a timed step finds it faster, takes more) is
#: halved by the trainer. One measurement so far, on an H200 (`benchmarks/cuda_paths.py`):
#: r18 at 512 px in bf16 reserved about 0.3 GiB per image, so r18's figure is high.
GPU_GIB_PER_IMAGE = {"r50v2": 2.6, "r50": 2.2, "r18": 0.7}
#: GPU memory kept free for the CUDA context and fragmentation.
GPU_RESERVE_GIB = 3.0
MAX_GPU_BATCH = 16
#: Iterations on a GPU (it is fast: train longer).
GPU_MIN_ITERS = {True: 2000, False: 600}
#: Preset input sizes (mrcnn.model.presets.PRESETS; a test keeps them equal).
PRESET_SIZES = {"r50v2": 800, "r50": 800, "r18": 320}
COCO_PRESET = "r50v2"


@dataclass(frozen=True)
class Hardware:
    """What training can run on: the best device ("cuda", "mps" or "cpu"), its name, GPU
    memory in GiB (None on a CPU) and the CPU's cores."""

    device: str = "cpu"
    name: str = "CPU"
    memory_gib: float | None = None
    cpu_cores: int = REFERENCE_CORES

    @classmethod
    def from_dict(cls, data: Mapping) -> Hardware:
        """From `describe_hardware()`'s plain data (unknown keys are ignored); ValueError for
        an unknown device."""
        device = str(data.get("device", "cpu"))
        if device not in ("cuda", "mps", "cpu"):
            raise ValueError(f"unknown device {device!r} in the hardware description")
        memory = data.get("memory_gib")
        return cls(device=device, name=str(data.get("name", device.upper())),
                   memory_gib=float(memory) if memory is not None else None,
                   cpu_cores=max(1, int(data.get("cpu_cores", REFERENCE_CORES))))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Recipe:
    """A training run as one click would start it."""

    preset: str
    start: str  # "active" | "coco" | "scratch" (or what the user named: a version, a file)
    start_name: str  # for people: "v3", "COCO weights", "scratch"
    size: int  # shorter image side, pixels
    max_iters: int
    batch_size: int
    device: str  # "cuda" | "mps" | "cpu"
    finetune_policy: bool  # frozen norm layers and early stages (pretrained starts)
    seconds: float | None  # estimated training time; None: no measurement for this device
    measured: bool = False  # `seconds` comes from this project's own earlier runs
    roi_batch: int | None = None  # RoIs sampled per image (None: the preset's)

    @property
    def from_scratch(self) -> bool:
        return self.start == "scratch"

    @property
    def warmup_iters(self) -> int:
        """Iterations of learning-rate warmup: a fifth of the run, at most MAX_WARMUP."""
        return min(MAX_WARMUP, self.max_iters // 5)

    @property
    def start_label(self) -> str:
        """For the start event: "coco", "scratch", or the version's name (or the file)."""
        return self.start if self.start in ("coco", "scratch") else self.start_name

    def line(self) -> str:
        """One line for the panel, e.g. "r50v2 from COCO weights · 384 px · 400 iterations ·
        batch 2 · about 12 min on this CPU"."""
        where = {"cuda": "this GPU", "mps": "this GPU", "cpu": "this CPU"}[self.device]
        start = "from scratch" if self.from_scratch else f"from {self.start_name}"
        text = (f"{self.preset} {start} · {self.size} px · {self.max_iters} iterations · "
                f"batch {self.batch_size}")
        if self.seconds is None:
            return f"{text} · on {where}"
        return f"{text} · about {_minutes(self.seconds)} on {where}"

    def to_dict(self) -> dict:
        return asdict(self)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return "1 min"
    return f"{round(seconds / 60)} min"


def _round_down(n: float, step: int = 50) -> int:
    return max(step, int(n // step) * step)


def gpu_batch(preset: str, size: int, memory_gib: float | None, train_images: int) -> int:
    """The batch that fits `memory_gib` of GPU memory for `preset` at `size` px (at least 1,
    at most MAX_GPU_BATCH and the number of training images)."""
    per_image = GPU_GIB_PER_IMAGE[preset] * (size / PRESET_SIZES[preset]) ** 2
    free = (memory_gib or 0.0) - GPU_RESERVE_GIB
    fits = int(free // per_image) if free > 0 else 1
    return max(1, min(fits, MAX_GPU_BATCH, max(1, train_images)))


def cpu_seconds_per_iter(preset: str, size: int, batch: int, policy: bool, cores: int,
                         measured: Mapping[tuple[str, int, int, bool], float] | None = None
                         ) -> tuple[float, bool]:
    """(seconds per iteration, whether this machine measured it): this project's own
    measurement when there is one, else the reference figure scaled by area, batch and
    cores (torch's CPU kernels scale about linearly up to a few cores)."""
    key = (preset, size, batch, policy)
    if measured and key in measured:
        return measured[key], True
    ref = {k: v for k, v in CPU_SECONDS_PER_ITER.items() if k[0] == preset and k[3] == policy}
    if not ref:
        ref = {k: v for k, v in CPU_SECONDS_PER_ITER.items() if k[0] == preset}
    (_, rsize, rbatch, _), seconds = min(ref.items(), key=lambda kv: abs(kv[0][1] - size))
    seconds *= (size / rsize) ** 2 * (batch / rbatch)
    return seconds * REFERENCE_CORES / min(max(1, cores), 8), False


def choose_recipe(*, hardware: Hardware, train_images: int, active_name: str | None = None,
                  active_preset: str | None = None, active_size: int | None = None,
                  coco_cached: bool = False, preset: str | None = None,
                  start: str = "auto", size: int | None = None, max_iters: int | None = None,
                  batch_size: int | None = None,
                  measured: Mapping[tuple[str, int, int, bool], float] | None = None,
                  budget_s: float = CPU_BUDGET_S) -> Recipe:
    """The run one click starts on a project with `train_images` reviewed training images.

    active_*: the project's active version (name, preset, the size it was trained at);
    coco_cached: torchvision's r50v2 COCO weights are on this machine. preset, start, size,
    max_iters, batch_size: what the user fixed (None / "auto": decided here); `start` may
    also name a version or a file. measured: seconds per iteration this project's runs
    measured on this machine (see `measured_speeds`).
    """
    if start == "auto":
        if active_name is not None and preset in (None, active_preset):
            start = "active"
        elif coco_cached and preset in (None, COCO_PRESET):
            start = "coco"
        else:
            start = "scratch"
    scratch = start == "scratch"
    start_name = {"active": active_name or "the active version", "coco": "COCO weights",
                  "scratch": "scratch"}.get(start, start)
    if preset is None:
        preset = (active_preset or CPU_SCRATCH[0]) if start == "active" else (
            COCO_PRESET if start == "coco" else None)
    policy = not scratch and preset in ("r50", "r50v2")
    trained_size = active_size if start == "active" else None
    if hardware.device == "cuda":
        preset = preset or COCO_PRESET
        size = size or trained_size or PRESET_SIZES[preset]
        batch = batch_size or gpu_batch(preset, size, hardware.memory_gib, train_images)
        iters = max_iters or max(GPU_MIN_ITERS[scratch],
                                 math.ceil(EPOCHS[scratch] * train_images / batch))
        return Recipe(preset, start, start_name, size, iters, batch, "cuda", policy, None)
    family = CPU_PRETRAINED if preset in ("r50", "r50v2") else CPU_SCRATCH
    preset = preset or family[0]
    # a CPU trains at the recipe's reduced size, or smaller when the model was trained so
    size = size or min(trained_size or family[1], family[1])
    batch = batch_size or family[2]
    per_iter, was_measured = cpu_seconds_per_iter(preset, size, batch, policy,
                                                  hardware.cpu_cores, measured)
    if max_iters is None:
        data_iters = max(MIN_ITERS[scratch],
                         math.ceil(EPOCHS[scratch] * max(1, train_images) / batch))
        max_iters = min(_round_down(data_iters), _round_down(budget_s / per_iter))
    return Recipe(preset, start, start_name, size, max_iters, batch, hardware.device, policy,
                  None if hardware.device == "mps" else per_iter * max_iters,
                  measured=was_measured,
                  roi_batch=CPU_ROI_BATCH if preset in ("r50", "r50v2") else None)


def measured_speeds(version_metadata: list[Mapping], *, cpu_cores: int
                    ) -> dict[tuple[str, int, int, bool], float]:
    """Seconds per iteration measured by earlier runs on a CPU with `cpu_cores` cores (this
    machine, as far as we can tell), from model versions' metadata: for each recipe the
    fastest run, since a run that shared the CPU with other work can only have been slower
    (one such run would otherwise cut every later run short)."""
    speeds: dict[tuple[str, int, int, bool], float] = {}
    for meta in version_metadata:
        speed = meta.get("speed") if isinstance(meta, Mapping) else None
        if (not isinstance(speed, Mapping) or speed.get("device") != "cpu"
                or speed.get("cpu_cores") != cpu_cores):
            continue
        try:
            key = (str(speed["preset"]), int(speed["size"]), int(speed["batch_size"]),
                   bool(speed["finetune_policy"]))
            seconds = float(speed["seconds_per_iter"])
        except (KeyError, TypeError, ValueError):
            continue
        if seconds > 0:
            speeds[key] = min(seconds, speeds.get(key, seconds))
    return speeds


def recipe_for(project: Project, hardware: Hardware, *, preset: str | None = None,
               start: str = "auto", size: int | None = None, max_iters: int | None = None,
               batch_size: int | None = None, coco_cached: bool | None = None) -> Recipe:
    """`choose_recipe` for `project` as it is now: its reviewed training images, its active
    version (and the size it was trained at), whether the COCO weights are on this machine
    (default: look in the torch cache) and the speeds its earlier runs measured here."""
    active = project.active_model_version()
    trained_size = active.metadata.get("size") if active else None
    if coco_cached is None:
        coco_cached = cached_coco_weights(COCO_PRESET) is not None
    versions = sorted(project.model_versions(), key=lambda v: v.id)
    return choose_recipe(
        hardware=hardware, train_images=project.split_sizes()["train"][0],
        active_name=active.name if active else None,
        active_preset=active.preset if active else None,
        active_size=trained_size if isinstance(trained_size, int) else None,
        coco_cached=coco_cached, preset=preset, start=start, size=size,
        max_iters=max_iters, batch_size=batch_size,
        measured=measured_speeds([v.metadata for v in versions],
                                 cpu_cores=hardware.cpu_cores))


def probe_hardware(*, timeout: float = 120.0) -> Hardware:
    """The machine as a training process sees it, asked of `python -m mrcnn hardware --json`
    (torch loads there, not in the caller). When that fails, a CPU with this machine's
    cores (and a log line saying why)."""
    argv = [sys.executable, "-m", "mrcnn", "hardware", "--json"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=True)
        return Hardware.from_dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        log.warning("could not ask which device training would use (%s); assuming a CPU",
                    exc)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        return Hardware(cpu_cores=max(1, cores))
