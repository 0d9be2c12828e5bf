"""Label smoothing for the box classifier's cross-entropy.

torchvision's `RoIHeads` computes `loss_classifier` as plain cross-entropy between the box
predictor's class logits and the labels of the sampled proposals. `ClassifierLabelSmoothing`
remembers both while the model trains (a wrapper around the head's
`select_training_samples` and a forward hook on its `box_predictor`) and, called on the
model's loss dict, replaces `loss_classifier` with the smoothed cross-entropy

    (1 - eps) * NLL(true class) + eps * mean over classes of -log p(class)

computed in float32 (also under autocast). Nothing touches torchvision's module globals;
`remove()` restores the model exactly, so its state dict and checkpoints are those of a
plain model.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from mrcnn.errors import TrainingError

LOSS_NAME = "loss_classifier"


class ClassifierLabelSmoothing:
    """Attached to `model` (a torchvision detection model, or one wrapped in
    DistributedDataParallel) on creation; `remove()` (or leaving a `with` block) detaches it.

    Call it on the loss dict of a training-mode forward: it returns the dict with
    `loss_classifier` recomputed with label smoothing `eps` (0 <= eps < 1).
    """

    def __init__(self, model: nn.Module, eps: float):
        if not 0 <= eps < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {eps!r}")
        self.eps = float(eps)
        net = cast(Any, getattr(model, "module", model))
        self._heads = net.roi_heads  # torchvision's RoIHeads
        self._logits: torch.Tensor | None = None
        self._labels: list[torch.Tensor] | None = None
        original = self._heads.select_training_samples
        # What remove() puts back: an instance attribute someone else set, else nothing.
        self._previous = self._heads.__dict__.get("select_training_samples")

        def select_training_samples(proposals, targets):
            sampled = original(proposals, targets)
            self._labels = sampled[2]  # (proposals, matched_idxs, labels, regression_targets)
            return sampled

        self._heads.select_training_samples = select_training_samples
        self._hooks = [
            # a step that failed (out of memory) must not keep its graph alive into the next
            net.register_forward_pre_hook(lambda module, inputs: self._forget()),
            self._heads.box_predictor.register_forward_hook(self._remember_logits),
        ]

    def _forget(self) -> None:
        self._logits = self._labels = None

    def _remember_logits(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if module.training:
            self._logits = output[0]  # (class_logits [N, num_classes], box_regression)

    def __call__(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`losses` with loss_classifier smoothed (float32 scalar); TrainingError when the
        last forward left no logits and labels to smooth."""
        logits, labels = self._logits, self._labels
        self._forget()
        if LOSS_NAME not in losses:
            return losses
        if logits is None or labels is None:
            raise TrainingError("label smoothing saw no box classifier logits in this step")
        smoothed = F.cross_entropy(logits.float(), torch.cat(labels, dim=0),
                                   label_smoothing=self.eps)
        return {**losses, LOSS_NAME: smoothed}

    def remove(self) -> None:
        """Detach from the model (idempotent)."""
        for hook in self._hooks:
            hook.remove()
        if self._previous is not None:
            self._heads.select_training_samples = self._previous
        else:
            self._heads.__dict__.pop("select_training_samples", None)
        self._forget()

    def __enter__(self) -> ClassifierLabelSmoothing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
