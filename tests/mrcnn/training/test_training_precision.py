"""On a GPU a run times one training step under autocast and in fp32 before it starts, and
trains in the faster one (a tie goes to fp32); the progress says which. The timing must not
change the run: the same seed gives the same losses as a run started in that precision
outright. Exercised here on the CPU by letting a run time its precision there."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import torch

from mrcnn.model import device as device_module
from mrcnn.model.device import DeviceChoice
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training import precision as precision_module
from mrcnn.training import train as train_module
from mrcnn.training.events import StartEvent
from mrcnn.training.train import TrainConfig, train_project

BF16 = DeviceChoice(torch.device("cpu"), "GPU found", torch.bfloat16, True)
CONFIG = TrainConfig(preset="r18", max_iters=4, size=64, batch_size=2,
                     scale_jitter=(1.0, 1.0), seed=0)


def _run(folder, monkeypatch, device: DeviceChoice, *, timed: bool) -> tuple[str, dict]:
    monkeypatch.setattr(train_module, "build_device", lambda config, dist: device)
    monkeypatch.setattr(train_module, "times_autocast",
                        lambda choice: timed and choice.amp_dtype is not None)
    started: list[StartEvent] = []
    with Project.open(folder) as project:
        version = train_project(project, CONFIG, evaluate_before=False,
                                progress=lambda e: started.append(e)
                                if isinstance(e, StartEvent) else None)
    return started[0].device, version.metadata["final_losses"]


def test_a_run_where_autocast_times_slower_trains_in_fp32_and_learns_the_same(
        tmp_path, monkeypatch):
    folder = make_synthetic_project(tmp_path / "synthetic", n_train=6, n_val=0, size=64)
    timed_steps: list = []
    fastest = device_module.fastest_precision

    def spying(choice, run, **kw):
        def counted(c):
            timed_steps.append(c.amp_dtype)
            run(c)
            if c.amp_dtype is not None:
                time.sleep(0.5)  # autocast slower, as on an H200
        return fastest(choice, counted, **kw)

    monkeypatch.setattr(precision_module, "fastest_precision", spying)
    # the timed steps really step in fp32 both ways: bf16 backward passes crawl on CPUs
    # without bf16 matrix units
    monkeypatch.setattr(precision_module, "autocast", lambda choice: contextlib.nullcontext())
    said, losses = _run(folder, monkeypatch, BF16, timed=True)
    assert timed_steps == [torch.bfloat16, None] * 4  # a warm-up and three rounds of each
    assert said.startswith("CPU — GPU found · fp32 (bf16 measured at 0.")
    # the timing left the model and every random generator as they were: the same losses
    # as a run started in fp32 outright
    fp32 = DeviceChoice(BF16.device, BF16.reason, None, False)
    said_outright, losses_outright = _run(folder, monkeypatch, fp32, timed=False)
    assert said_outright == "CPU — GPU found · fp32"
    assert losses == losses_outright


def test_a_run_in_fp32_or_without_mixed_precision_times_nothing(tmp_path, monkeypatch):
    folder = make_synthetic_project(tmp_path / "synthetic", n_train=6, n_val=0, size=64)
    monkeypatch.setattr(precision_module, "fastest_precision",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("timed")))
    fp32 = DeviceChoice(torch.device("cpu"), "GPU found", None, False)
    assert _run(folder, monkeypatch, fp32, timed=True)[0] == "CPU — GPU found · fp32"


def test_a_run_told_not_to_time_keeps_the_precision_it_was_given(tmp_path, monkeypatch):
    folder = make_synthetic_project(tmp_path / "synthetic", n_train=6, n_val=0, size=64)
    monkeypatch.setattr(precision_module, "fastest_precision",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("timed")))
    monkeypatch.setattr(train_module, "build_device", lambda config, dist: BF16)
    monkeypatch.setattr(train_module, "times_autocast", lambda choice: True)
    started: list[StartEvent] = []
    config = dataclasses.replace(CONFIG, max_iters=1, time_precision=False)
    with Project.open(folder) as project:
        train_project(project, config, evaluate_before=False,
                      progress=lambda e: started.append(e) if isinstance(e, StartEvent) else None)
    assert started[0].device == "CPU — GPU found · bf16"
