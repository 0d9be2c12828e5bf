"""Training throughput: our trainer (train_project) vs a plain torchvision training loop.

Baseline: the loop from torchvision's detection tutorial — fp32, SGD, the same preset,
images, batch size, input size and augmentation (horizontal flip) — in this process, on
the same device (on CUDA with torch's defaults: TF32 convolutions, no autocast).
Prints images/s of both (timed after warm-up iterations) and the ratio (target >= 2.0);
where the device has mixed precision, our trainer also with autocast kept (no timed choice,
`time_precision=False`) and turned off (amp=False).

    python benchmarks/train.py [--iters 40] [--warmup 5] [--size 128] [--batch 2]
                               [--preset r18] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mrcnn.model.device import choose_device
from mrcnn.model.presets import build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.dataset import (
    ProjectDataset,
    collate,
    project_labels,
    reviewed_image_ids,
    train_transform,
)
from mrcnn.training.events import StepEvent, TrainingEvent
from mrcnn.training.train import TrainConfig, train_project


def plain_loop(project: Project, *, iters: int, warmup: int, size: int, batch: int,
               device: torch.device, preset: str) -> float:
    labels = project_labels(project)
    ids = reviewed_image_ids(project, "train")
    ds = ProjectDataset(project, ids, labels=labels, transform=train_transform(flip=True))
    loader = DataLoader(ds, batch_size=batch, shuffle=True, collate_fn=collate)
    torch.manual_seed(0)
    model = build_model(preset=preset, num_classes=labels.num_classes,
                        min_size=size).train().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    done, start = 0, None
    while done < warmup + iters:
        for images, targets in loader:
            if done == warmup:
                start = time.perf_counter()
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            loss = sum(model(images, targets).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == warmup + iters:
                loss.item()  # waits for the device
                break
    return iters * batch / (time.perf_counter() - start)


def ours(project: Project, *, iters: int, warmup: int, size: int, batch: int,
         device: torch.device, preset: str, amp: bool = True, timed: bool = True) -> float:
    stamps: dict[int, float] = {}

    def progress(event: TrainingEvent) -> None:
        if isinstance(event, StepEvent):
            stamps[event.iteration] = time.perf_counter()

    train_project(project, TrainConfig(preset=preset, max_iters=warmup + iters, size=size,
                                       batch_size=batch, scale_jitter=(1.0, 1.0), seed=0,
                                       device=device.type, amp=amp, time_precision=timed),
                  progress=progress, evaluate_before=False)
    return iters * batch / (stamps[warmup + iters] - stamps[warmup])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--device", default=None, help="cuda, cpu, ... (default: the best)")
    ap.add_argument("--preset", default="r18")
    args = ap.parse_args()
    choice = choose_device(args.device)
    kw = {"iters": args.iters, "warmup": args.warmup, "size": args.size, "batch": args.batch,
          "device": choice.device, "preset": args.preset}
    print(f"device: {choice.describe()}; {args.preset} at {args.size} px, batch {args.batch}, "
          f"{args.iters} timed iterations after {args.warmup} warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_synthetic_project(Path(tmp) / "synthetic")
        with Project.open(folder) as project:
            base = plain_loop(project, **kw)
            fast = ours(project, **kw)
            mixed = full = None
            if choice.amp_dtype is not None:  # the precisions the trainer chooses between
                mixed = ours(project, **kw, timed=False)
                full = ours(project, **kw, amp=False)
    print(f"{'':30}{'images/s':>10}{'ratio':>8}")
    print(f"{'plain torchvision loop (fp32)':30}{base:>10.2f}{1.0:>8.2f}x")
    print(f"{'mrcnn trainer':30}{fast:>10.2f}{fast / base:>8.2f}x   (target >= 2.0)")
    if mixed is not None and full is not None:
        print(f"{'mrcnn trainer, autocast kept':30}{mixed:>10.2f}{mixed / base:>8.2f}x")
        print(f"{'mrcnn trainer, amp=False':30}{full:>10.2f}{full / base:>8.2f}x")


if __name__ == "__main__":
    main()
