"""The CUDA paths that only a GPU can exercise, in one run (for a machine with one).

1. Where the model runs: `choose_device()` on this machine, as the status bar says it.
2. Training in mixed precision against fp32: our trainer twice on the same synthetic data,
   seed and recipe (r18, 128 px, batch 4, lr 0.04, cosine), once with autocast (kept even
   where a timed step finds fp32 faster: `time_precision=False`) and once with `amp=False`.
   Per run: the loss over the first and the last tenth of the iterations, val segm/bbox AP,
   seconds per iteration. Mixed precision must learn as fp32 does: final loss and AP within
   noise of each other.
3. Prediction after a CUDA out-of-memory error: the process's CUDA memory is capped just
   above what the model holds, and an image too large for what is left is predicted. The
   Predictor must return a prediction, retried on the CPU, and say so in its status text.
4. Training after a CUDA out-of-memory error: the memory of a batch-2 step is measured, the
   cap set at twice that, and a batch of 16 started. The run must finish, with the batch
   halved until it fits (`mrcnn.training.build.train_halving_on_oom`).

Each check prints its figures and PASS or FAIL; the exit status is the number of failures.

    python benchmarks/cuda_paths.py [--iters 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mrcnn.model.device import choose_device
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.events import StepEvent, TrainingEvent
from mrcnn.training.train import TrainConfig, train_project

MiB = 2**20


def check_device() -> tuple[bool, str]:
    choice = choose_device()
    ok = choice.device.type == "cuda" and choice.amp_dtype is not None and choice.channels_last
    return ok, choice.describe()


def train_once(folder: Path, *, amp: bool, iters: int) -> dict:
    losses: list[float] = []

    def progress(event: TrainingEvent) -> None:
        if isinstance(event, StepEvent):
            losses.append(event.loss)

    with Project.open(folder) as project:
        t = time.perf_counter()
        version = train_project(project, TrainConfig(
            preset="r18", max_iters=iters, size=128, batch_size=4, lr=0.04, warmup_iters=50,
            schedule="cosine", scale_jitter=(1.0, 1.0), seed=0, device="cuda", amp=amp,
            time_precision=False),
            progress=progress, evaluate_before=False)
        seconds = time.perf_counter() - t
        after = version.metadata["metrics"]["after"]
    tenth = max(1, len(losses) // 10)
    return {"first": statistics.mean(losses[:tenth]), "last": statistics.mean(losses[-tenth:]),
            "last_sd": statistics.stdev(losses[-tenth:]) if tenth > 1 else 0.0,
            "segm": after["segm"]["AP"], "bbox": after["bbox"]["AP"],
            "s_iter": version.metadata["speed"]["seconds_per_iter"], "seconds": seconds,
            "device": version.metadata["device"]}


def check_mixed_precision(tmp: Path, iters: int) -> tuple[bool, str]:
    runs = {}
    for amp in (True, False):
        folder = make_synthetic_project(tmp / f"amp{int(amp)}", n_train=40, n_val=100,
                                        size=128, seed=0)
        runs[amp] = train_once(folder, amp=amp, iters=iters)
    lines = [f"{'':34}{'loss first':>11}{'loss last':>16}{'segm AP':>9}{'bbox AP':>9}"
             f"{'s/iter':>8}"]
    for amp, r in runs.items():
        name = f"autocast ({r['device'].split('· ')[-1]})" if amp else "fp32 (amp=False)"
        lines.append(f"{name[:34]:34}{r['first']:>11.3f}{r['last']:>9.3f} ±{r['last_sd']:<5.3f}"
                     f"{r['segm']:>9.4f}{r['bbox']:>9.4f}{r['s_iter']:>8.3f}")
    mixed, full = runs[True], runs[False]
    # within noise: the last tenth's losses differ by less than two of their spreads, and
    # segm AP by less than 3 points (two seeds of this recipe differ by about 2)
    noise = 2 * max(mixed["last_sd"], full["last_sd"], 0.01)
    ok = abs(mixed["last"] - full["last"]) <= noise and abs(mixed["segm"] - full["segm"]) < 0.03
    lines.append(f"final loss difference {mixed['last'] - full['last']:+.3f} (noise {noise:.3f}); "
                 f"segm AP difference {100 * (mixed['segm'] - full['segm']):+.2f} points")
    return ok, "\n".join(lines)


def capped(extra_bytes: int) -> None:
    """Cap this process's CUDA memory at what it holds now, its cache emptied, plus
    `extra_bytes`."""
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(
        min(1.0, (torch.cuda.memory_reserved() + extra_bytes) / total))


def uncapped() -> None:
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()


def check_predict_oom() -> tuple[bool, str]:
    torch.manual_seed(0)
    predictor = Predictor(build_model(preset="r18", num_classes=5), fold_batchnorm=True)
    rng = np.random.default_rng(0)
    predictor.predict([rng.integers(0, 255, (480, 640, 3), np.uint8)])  # fits
    before = predictor.describe()
    capped(16 * MiB)
    try:
        big = rng.integers(0, 255, (3000, 4000, 3), np.uint8)  # 144 MiB as a float tensor
        result = predictor.predict([big])
        after = predictor.describe()
        again = predictor.predict([rng.integers(0, 255, (480, 640, 3), np.uint8)])
    finally:
        uncapped()
    ok = (len(result) == 1 and result[0].masks.shape[-2:] == (3000, 4000)
          and predictor.choice.device.type == "cpu" and "out of memory" in after
          and len(again) == 1)
    return ok, f"before: {before}\nafter:  {after}"


def check_train_oom(tmp: Path) -> tuple[bool, str]:
    folder = make_synthetic_project(tmp / "oom", n_train=40, n_val=0, size=128, seed=1)

    def run(batch: int, iters: int) -> dict:
        with Project.open(folder) as project:
            version = train_project(project, TrainConfig(
                preset="r18", max_iters=iters, size=512, batch_size=batch,
                scale_jitter=(1.0, 1.0), seed=0, device="cuda"), evaluate_before=False)
            return version.metadata

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_reserved()
    run(2, 3)
    peak2 = torch.cuda.max_memory_reserved() - base
    torch.cuda.empty_cache()
    capped(2 * peak2)
    try:
        meta = run(16, 6)
    finally:
        uncapped()
    batch = meta["speed"]["batch_size"]
    ok = batch < 16 and meta["iterations"] == 6
    return ok, (f"a batch-2 step at 512 px reserves {peak2 / MiB:.0f} MiB; capped at "
                f"{2 * peak2 / MiB:.0f} MiB more, a batch of 16 finished its "
                f"{meta['iterations']} iterations at batch {batch}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 1
    print(f"card: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        checks: dict[str, Callable[[], tuple[bool, str]]] = {
            "1. where the model runs": check_device,
            f"2. training, mixed precision vs fp32 ({args.iters} iterations)":
                lambda: check_mixed_precision(Path(tmp), args.iters),
            "3. prediction after CUDA out of memory": check_predict_oom,
            "4. training after CUDA out of memory": lambda: check_train_oom(Path(tmp)),
        }
        for name, check in checks.items():
            t = time.perf_counter()
            try:
                ok, text = check()
            except Exception:
                ok, text = False, traceback.format_exc()
            failures += not ok
            print(f"\n{name}: {'PASS' if ok else 'FAIL'} ({time.perf_counter() - t:.0f} s)")
            print(text)
    return failures


if __name__ == "__main__":
    sys.exit(main())
