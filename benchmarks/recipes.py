"""Training recipes on this machine: seconds per iteration of each candidate, the time a
one-click run of it takes, and (with --train) its val segm AP after the whole run.

The figures behind `mrcnn.training.recipe.CPU_SECONDS_PER_ITER` and GPU_GIB_PER_IMAGE come
from here. Candidates (CPU): r18 from scratch at 256 px (batch 4) and r50v2 with the
fine-tuning policy (frozen norms, stem and layer1; 128 RoIs per image) at 384/512/640 px
(batch 2), and r50v2 at 384 px as torchvision builds it (trainable norms, 512 RoIs) as the
baseline for the policy. On a GPU: r50v2 at 800 px, peak memory per image at two batches
(the slope is what one more image costs) and the out-of-memory halving under a memory cap.

Speed does not depend on the weights, so the r50v2 candidates run from random weights
(COCO's are not needed to time them); their AP needs the real COCO weights (`--train` says
"n/a" without them: a random r50v2 with frozen norms cannot learn).

    python benchmarks/recipes.py [--data COCO.json --images DIR] [--iters 6] [--train]
    python benchmarks/recipes.py --gpu        # on a CUDA machine
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from mrcnn.model.device import choose_device, cpu_cores, describe_hardware
from mrcnn.model.finetune_policy import freeze_for_finetuning
from mrcnn.model.presets import build_model
from mrcnn.model.weight_files import cached_coco_weights
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.build import make_optimizer, set_input_size
from mrcnn.training.dataset import (
    ProjectDataset,
    collate,
    project_labels,
    reviewed_image_ids,
    train_transform,
)
from mrcnn.training.recipe import Hardware, choose_recipe


@dataclass(frozen=True)
class Candidate:
    preset: str
    size: int
    batch: int
    policy: bool  # the fine-tuning policy (pretrained starts)
    roi: int | None  # RoIs per image (None: the preset's)

    @property
    def name(self) -> str:
        how = "fine-tune policy" if self.policy else "all trainable"
        roi = f", {self.roi} RoIs" if self.roi else ""
        return f"{self.preset} {self.size}px b{self.batch} ({how}{roi})"


CPU_CANDIDATES = (
    Candidate("r18", 256, 4, False, None),
    Candidate("r50v2", 384, 2, False, None),
    Candidate("r50v2", 384, 2, True, 128),
    Candidate("r50v2", 512, 2, True, 128),
    Candidate("r50v2", 640, 2, True, 128),
)


def project_for(args, tmp: Path) -> Path:
    if args.data:
        from mrcnn.coco.io import import_coco

        folder = tmp / "project"
        with Project.create(folder, args.images) as p:
            import_coco(p, args.data, images_dir=args.images)
        return folder
    return make_synthetic_project(tmp, n_train=16, n_val=4, size=480)


def build(c: Candidate, num_classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(preset=c.preset, num_classes=num_classes)
    if c.policy:
        freeze_for_finetuning(model)
    if c.roi:
        model.roi_heads.fg_bg_sampler.batch_size_per_image = c.roi
    set_input_size(model, c.size, int(c.size * 1333 / 800))
    return model


def seconds_per_iter(c: Candidate, ds: ProjectDataset, labels, device, iters: int,
                     warmup: int = 2) -> tuple[float, float | None]:
    """(median seconds per iteration, peak GPU memory in GiB or None)."""
    model = build(c, labels.num_classes).to(device).train()
    opt = make_optimizer(model, lr=0.001, momentum=0.9, weight_decay=1e-4)
    images, targets = collate([ds[i % len(ds)] for i in range(c.batch)])
    images = [im.to(device) for im in images]
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else (
            torch.autocast("cpu", enabled=False))
        with amp:
            loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return statistics.median(times), peak


def cpu_table(args, folder: Path) -> None:
    hw = Hardware.from_dict(describe_hardware("cpu"))
    with Project.open(folder, read_only=True) as p:
        labels = project_labels(p)
        ids = reviewed_image_ids(p, "train")
        ds = ProjectDataset(p, ids, labels=labels, transform=train_transform(flip=True))
        print(f"# CPU recipes on {hw.cpu_cores} cores, {len(ids)} training images, "
              f"{args.iters} timed iterations each (median)")
        print("| candidate | s/iter | it/s | one-click iterations | one-click time | AP |")
        print("|---|---|---|---|---|---|")
        base = None
        for c in CPU_CANDIDATES:
            spi, _ = seconds_per_iter(c, ds, labels, torch.device("cpu"), args.iters)
            start = "scratch" if c.preset == "r18" else "coco"
            plan = choose_recipe(hardware=hw, train_images=len(ids), coco_cached=True,
                                 preset=c.preset, start=start, size=c.size, batch_size=c.batch,
                                 measured={(c.preset, c.size, c.batch, c.policy): spi})
            if c.preset == "r50v2" and not c.policy:
                base = spi
            ratio = f" ({base / spi:.1f}x the all-trainable r50v2)" if base and c.policy \
                and c.size == 384 else ""
            ap = "n/a: needs real COCO weights" if c.preset != "r18" else (
                train_ap(folder, plan) if args.train else "(--train)")
            print(f"| {c.name} | {spi:.2f}{ratio} | {1 / spi:.2f} | {plan.max_iters} | "
                  f"{plan.seconds / 60:.1f} min | {ap} |", flush=True)


def train_ap(folder: Path, plan) -> str:
    import subprocess
    import sys

    argv = [sys.executable, "-m", "mrcnn", "train", str(folder), "--json", "--from", "scratch",
            "--preset", plan.preset, "--size", str(plan.size), "--max-iters",
            str(plan.max_iters), "--batch-size", str(plan.batch_size), "--device", "cpu"]
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    import json

    after = [json.loads(line) for line in out.splitlines()
             if '"stage": "after"' in line]
    ap = after[-1]["metrics"]["segm"]["AP"] if after else float("nan")
    return f"{ap:.3f} ({(time.perf_counter() - start) / 60:.1f} min with scoring)"


def gpu_table(args, folder: Path) -> None:
    from mrcnn.errors import TrainingOutOfMemory  # noqa: F401  (what the halving catches)
    from mrcnn.training.train import TrainConfig, train_project

    dev = choose_device("cuda").device
    if dev.type != "cuda":
        raise SystemExit("--gpu needs a CUDA device")
    hw = Hardware.from_dict(describe_hardware())
    print(f"# GPU: {hw.name}, {hw.memory_gib} GiB; torch {torch.__version__}")
    with Project.open(folder, read_only=True) as p:
        labels = project_labels(p)
        ids = reviewed_image_ids(p, "train")
        ds = ProjectDataset(p, ids, labels=labels, transform=train_transform(flip=True))
        print("| r50v2 800 px, bf16 | s/iter | images/s | peak GiB |")
        print("|---|---|---|---|")
        peaks = {}
        for batch in (2, 4, 8):
            c = Candidate("r50v2", 800, batch, False, None)
            spi, peak = seconds_per_iter(c, ds, labels, dev, args.iters)
            peaks[batch] = peak
            print(f"| batch {batch} | {spi:.3f} | {batch / spi:.1f} | {peak:.1f} |", flush=True)
            torch.cuda.empty_cache()
        per_image = (peaks[8] - peaks[2]) / 6
        print(f"memory per extra image at 800 px: {per_image:.2f} GiB "
              f"(recipe.GPU_GIB_PER_IMAGE['r50v2'] assumes 2.6)")
        plan = choose_recipe(hardware=hw, train_images=len(ids))
        print(f"one-click plan here: {plan.line()}")
    # out of memory under a cap: the batch halves and the run goes on
    cap = 0.12
    torch.cuda.set_per_process_memory_fraction(cap, dev)
    with Project.open(folder, read_only=True) as p:
        config = TrainConfig(preset="r50v2", max_iters=6, size=800, batch_size=16,
                             warmup_iters=0, device="cuda")
        t = time.perf_counter()
        version = train_project(p, config, stage_to=folder / "oom_test.pt",
                                evaluate_before=False)
        del version
    torch.cuda.set_per_process_memory_fraction(1.0, dev)
    import json

    meta = torch.load(folder / "oom_test.pt", weights_only=True)["metadata"]
    print(f"memory capped at {cap:.0%} of the GPU: asked for batch 16, finished 6 iterations "
          f"at batch {meta['speed']['batch_size']} in {time.perf_counter() - t:.0f} s")
    print(json.dumps(meta["speed"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="a COCO file (default: synthetic shapes)")
    ap.add_argument("--images", type=Path, help="its images folder")
    ap.add_argument("--iters", type=int, default=6, help="timed iterations per candidate")
    ap.add_argument("--train", action="store_true",
                    help="also train each CPU recipe it can score and report val segm AP")
    ap.add_argument("--gpu", action="store_true", help="the GPU measurements instead")
    args = ap.parse_args()
    if bool(args.data) != bool(args.images):
        ap.error("--data and --images go together")
    torch.set_num_threads(cpu_cores())
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"COCO weights on this machine: {cached_coco_weights() is not None}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = project_for(args, Path(tmp))
        if args.gpu:
            gpu_table(args, folder)
        else:
            cpu_table(args, folder)


if __name__ == "__main__":
    main()
