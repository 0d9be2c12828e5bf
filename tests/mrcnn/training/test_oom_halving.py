"""On a GPU, running out of memory halves the batch and the run goes on from the step that
failed; anywhere else (or at batch 1) it stops with the error that says what to do."""

from __future__ import annotations

import pytest
import torch

from mrcnn.errors import TrainingOutOfMemory
from mrcnn.model.device import DeviceChoice
from mrcnn.training.build import train_halving_on_oom
from mrcnn.training.config import TrainConfig
from mrcnn.training.distributed import DistInfo


class FakeTrainer:
    """Fails with out-of-memory at iteration 5 while its batches hold more than `fits`."""

    def __init__(self, loader, fits: int):
        self.data, self.fits = loader, fits
        self.iter = self.start_iter = 0
        self.started: list[tuple[int, int]] = []  # (start iteration, batch) of each train()

    def train(self) -> None:
        self.started.append((self.start_iter, self.data.batch_size))
        if self.data.batch_size > self.fits:
            self.iter = 5
            raise TrainingOutOfMemory("out of memory on cuda at iteration 6")
        self.iter = 20


class Loader:
    batch_size = 8


def _device(kind: str) -> DeviceChoice:
    return DeviceChoice(torch.device(kind), "test", None, False)


def test_cuda_out_of_memory_halves_the_batch_and_goes_on(monkeypatch):
    from mrcnn.training import build as build_module

    built: list[tuple[int, int]] = []

    def fake_loader(dataset, config, *, start_iter=0, dist=None):
        built.append((config.batch_size, start_iter))
        loader = Loader()
        loader.batch_size = config.batch_size
        return loader

    monkeypatch.setattr(build_module, "build_loader", fake_loader)
    trainer = FakeTrainer(Loader(), fits=2)
    got = train_halving_on_oom(trainer, None, TrainConfig(batch_size=8), _device("cuda"),
                               DistInfo())
    assert got == 2
    assert trainer.started == [(0, 8), (5, 4), (5, 2)]  # from the step that failed
    assert built == [(4, 5), (2, 5)]


@pytest.mark.parametrize("device,batch,allowed", [("cpu", 8, True), ("cuda", 1, True),
                                                  ("cuda", 8, False)])
def test_otherwise_the_error_stands(device, batch, allowed):
    loader = Loader()
    loader.batch_size = batch
    trainer = FakeTrainer(loader, fits=0)
    config = TrainConfig(batch_size=batch, halve_batch_on_oom=allowed)
    with pytest.raises(TrainingOutOfMemory, match="out of memory"):
        train_halving_on_oom(trainer, None, config, _device(device), DistInfo())
    assert len(trainer.started) == 1
