"""Mixed precision in training only where it pays: on a GPU, before the run starts, one
training step (forward and backward) of a copy of the model on a batch of the run's own
images is timed under autocast and in fp32, and the run trains in the faster one
(`mrcnn.model.device.fastest_precision`: a tie goes to fp32).

Why measure rather than assume: on an H200 our trainer ran in bf16 autocast at 0.69x the
speed of fp32 (TF32 convolutions) for r18 at 128 px, batch 2; 0.90x at 512 px, batch 8; and
0.85x for r50v2 at 800 px, batch 4 (`benchmarks/train.py`), while GPUs without fast fp32
matrix units gain from autocast. Which runs time it: `mrcnn.model.device.times_autocast`
(a CPU's precision is measured once by `choose_device`); a torchrun job keeps what it was
given, so that every process trains alike.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from mrcnn.model.device import DeviceChoice, autocast, fastest_precision
from mrcnn.training.dataset import ProjectDataset, collate
from mrcnn.training.loop import rng_state, set_rng_state

log = logging.getLogger(__name__)


def fastest_training_precision(model: nn.Module, dataset: ProjectDataset, batch_size: int,
                               choice: DeviceChoice) -> DeviceChoice:
    """`choice`, or its fp32 twin where a training step of `model` on the dataset's first
    `batch_size` items runs faster without autocast. Timed on a copy of the model (its
    weights, gradients and normalisation statistics stay untouched), with every random
    generator put back afterwards (the run's draws stay those of its seed); a step that
    fails (out of memory, say) keeps `choice`."""
    state = rng_state()
    try:
        chosen = _time_steps(model, dataset, batch_size, choice)
    except Exception as exc:  # the run itself then meets it, with its own handling
        log.warning("could not time the training precisions on %s: %s", choice.device, exc)
        return choice
    finally:
        if choice.device.type == "cuda":  # the copy is gone: give its memory back
            torch.cuda.empty_cache()
        set_rng_state(state)
    log.info("training precision on %s: %s", choice.device, chosen.describe())
    return chosen


def _time_steps(model: nn.Module, dataset: ProjectDataset, batch_size: int,
                choice: DeviceChoice) -> DeviceChoice:
    probe = copy.deepcopy(model).train().to(choice.device)
    images, targets = collate([dataset[i] for i in range(min(batch_size, len(dataset)))])
    images = [im.to(choice.device) for im in images]
    targets = [{k: v.to(choice.device) for k, v in t.items()} for t in targets]

    def step(c: DeviceChoice) -> None:
        with autocast(c):
            losses = probe(images, targets)
        sum(v.float() for v in losses.values()).backward()
        probe.zero_grad(set_to_none=True)
        if c.device.type == "cuda":
            torch.cuda.synchronize(c.device)

    return fastest_precision(choice, step)
