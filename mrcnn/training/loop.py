"""The training loop (detectron2 style): `Trainer` runs SGD steps and calls its hooks before
and after each; whatever watches or steers a run — progress reports, cancellation, periodic
checkpoints and evaluation — is a hook on that loop (`mrcnn.training.hooks`).

A hook sees the trainer as `self.trainer` (set when registered) and may read its public
attributes: `iter` (0-based index of the current step), `start_iter`, `max_iters`,
`losses` (last step's loss parts, floats), `loss` (their sum), `lr` (the step's learning
rate), `step_seconds`, `model`, `optimizer`, `exception` (in `after_train`: what ended the
run, None on success).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from mrcnn.errors import TrainingError, TrainingOutOfMemory
from mrcnn.model.device import DeviceChoice, autocast, is_out_of_memory

log = logging.getLogger(__name__)

#: Rewrites a step's loss parts before they are summed (e.g. label smoothing).
LossTransform = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
#: One training batch as torchvision detection models take it: images and their targets.
Batch = tuple[Sequence[torch.Tensor], Sequence[dict[str, torch.Tensor]]]


class HookBase:
    """Override any of the four methods; the trainer calls them in registration order."""

    trainer: Trainer

    def before_train(self) -> None:
        """Before the first step."""

    def after_train(self) -> None:
        """After the last step, or when training stopped early (see `trainer.exception`)."""

    def before_step(self) -> None:
        """Before each step (`trainer.iter` is the step about to run)."""

    def after_step(self) -> None:
        """After each successful step (`trainer.losses` hold its loss parts)."""


# ---------------------------------------------------------------- randomness
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The global RNG states as plain data and tensors (loadable with weights_only)."""
    numpy_state = np.random.get_state()  # legacy=True: MT19937's tuple, never the dict
    if not isinstance(numpy_state, tuple):
        raise TrainingError("NumPy's global random state is not the MT19937 tuple; "
                            "it cannot be saved with the checkpoint")
    name, keys, pos, has_gauss, gauss = numpy_state
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuples(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


# ---------------------------------------------------------------- the loop
class Trainer:
    """Runs `max_iters` SGD steps of a torchvision detection model over `data` (an endless
    iterator of (images, targets) batches), calling the hooks around each step.

    Errors: a non-finite loss raises TrainingError naming the iteration and the loss parts;
    running out of memory raises TrainingError saying so; hooks may raise (e.g.
    TrainingCancelled). `after_train` hooks run in every case. `loss_transform`, when given,
    rewrites the model's loss dict of each step before the parts are summed.
    """

    def __init__(self, model: nn.Module, data: Iterable[Batch], optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, *,
                 max_iters: int, device: DeviceChoice, start_iter: int = 0,
                 clip_grad_norm: float | None = None, hooks: Sequence[HookBase] = (),
                 loss_transform: LossTransform | None = None):
        self.model = model
        self.loss_transform = loss_transform
        self.data = data
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_iters = max_iters
        self.device = device
        self.start_iter = start_iter
        self.iter = start_iter
        self.clip_grad_norm = clip_grad_norm
        self.losses: dict[str, float] = {}
        self.loss = float("nan")
        self.lr = float(optimizer.param_groups[0]["lr"])
        self.step_seconds = 0.0
        self.exception: BaseException | None = None
        self.scaler = (torch.amp.GradScaler("cuda") if device.device.type == "cuda"
                       and device.amp_dtype == torch.float16 else None)
        self.hooks: list[HookBase] = []
        self.register_hooks(hooks)
        self._data_iter: Iterator[Batch] | None = None
        self._pending_rng: dict | None = None

    def register_hooks(self, hooks: Iterable[HookBase]) -> None:
        for h in hooks:
            h.trainer = self
            self.hooks.append(h)

    def train(self) -> None:
        """Run from `start_iter` to `max_iters`."""
        self.model.train()
        self._data_iter = iter(self.data)
        if self._pending_rng is not None:  # after iter(): creating it draws random numbers
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        self.exception = None
        try:
            for h in self.hooks:
                h.before_train()
            for it in range(self.start_iter, self.max_iters):
                self.iter = it
                for h in self.hooks:
                    h.before_step()
                self.run_step()
                for h in self.hooks:
                    h.after_step()
            self.iter = self.max_iters
        except BaseException as exc:
            self.exception = exc
            raise
        finally:
            for h in self.hooks:
                h.after_train()

    def run_step(self) -> None:
        """One optimisation step on the next batch."""
        start = time.perf_counter()
        self.lr = float(self.optimizer.param_groups[0]["lr"])
        if self._data_iter is None:
            raise TrainingError("run_step() needs a data iterator: call train(), which "
                                "starts one")
        images, targets = next(self._data_iter)
        dev = self.device.device
        images = [im.to(dev, non_blocking=True) for im in images]
        targets = [{k: v.to(dev, non_blocking=True) for k, v in t.items()} for t in targets]
        try:
            with autocast(self.device):
                loss_dict = self.model(images, targets)
            if self.loss_transform is not None:
                loss_dict = self.loss_transform(loss_dict)
            total = sum(v.float() for v in loss_dict.values())
            values = torch.stack([total.detach(), *(v.detach().float()
                                                    for v in loss_dict.values())]).tolist()
            self.losses = dict(zip(loss_dict, values[1:], strict=True))
            self.loss = values[0]
            if not math.isfinite(self.loss):
                parts = ", ".join(f"{k}={v:.4g}" for k, v in self.losses.items())
                raise TrainingError(
                    f"the loss became non-finite at iteration {self.iter + 1} of "
                    f"{self.max_iters} ({parts}); try a lower learning rate")
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(total).backward()
                if self.clip_grad_norm:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                total.backward()
                if self.clip_grad_norm:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
                self.optimizer.step()
        except TrainingError:
            raise
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            self.optimizer.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            raise TrainingOutOfMemory(
                f"out of memory on {dev} at iteration {self.iter + 1}: try a smaller image "
                "size or batch size, or another device") from exc
        if self.scheduler is not None:
            self.scheduler.step()
        self.step_seconds = time.perf_counter() - start

    # ------------------------------------------------------------ resumable state
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this step ended (plain data and
        tensors: loadable with weights_only=True)."""
        model = getattr(self.model, "module", self.model)
        return {
            "iteration": self.iter + 1,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; training continues at state["iteration"]."""
        model = getattr(self.model, "module", self.model)
        model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self._pending_rng = state["rng"]
        self.start_iter = self.iter = int(state["iteration"])
