"""Running a Mask R-CNN on RGB images, fast: the network under bf16/fp16 autocast with
channels_last where the device supports it; the layers that produce the outputs (objectness,
box deltas, class scores, mask logits), resizing, mask pasting and thresholds in fp32.

Why the output layers: rounding objectness and box deltas to bf16 reorders near-equal
proposals and shifts boxes, and pasted masks shift with their boxes. On the synthetic val
set (benchmarks/inference.py) a model under whole-network bf16 agreed with fp32 at mean mask
IoU 0.958; with these few, cheap layers in fp32 it agrees at 0.989, at the same speed."""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from mrcnn.model.box_prompt import (
    DEFAULT_CAPACITY,
    BoxMask,
    FeatureCache,
    ImageFeatures,
    image_features,
    mask_for_box,
)
from mrcnn.model.convert import image_to_tensor
from mrcnn.model.device import (
    DeviceChoice,
    autocast,
    choose_device,
    fastest_precision,
    is_out_of_memory,
    times_autocast,
)
from mrcnn.model.fold import fold_batchnorm as fold_into_convolutions
from mrcnn.model.onnx_backbone import BackgroundBackbone
from mrcnn.model.onnx_backbone import applies as onnx_backbone_applies
from mrcnn.model.roi_pool import thread_roi_pools
from mrcnn.model.uncertainty import Detections, image_uncertainty

log = logging.getLogger(__name__)

#: `Predictor._fastest_precision`'s answers in this process, by model build, GPU and choice
_MEASURED_PRECISION: dict[tuple, DeviceChoice] = {}


@dataclass
class Prediction:
    """Detections for one image. Index with a boolean array to keep a subset."""

    boxes: np.ndarray  # (N, 4) float32, xyxy pixels
    labels: np.ndarray  # (N,) int64, model labels 1..K
    scores: np.ndarray  # (N,) float32, descending
    masks: np.ndarray  # (N, H, W) bool
    #: how unsure the model is about the image, in [0, 1] (`mrcnn.model.uncertainty`);
    #: None unless asked for (it costs a second, mirrored pass)
    uncertainty: float | None = None
    #: a model with a keypoint head: (N, K, 3) float32 (x, y in image pixels, 1) over all of
    #: the head's slots (`mrcnn.model.keypoint_head.detection_points` takes a detection's
    #: category's own), and each point's score (N, K); None without a keypoint head
    keypoints: np.ndarray | None = None
    keypoint_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, keep) -> Prediction:
        return Prediction(self.boxes[keep], self.labels[keep], self.scores[keep], self.masks[keep],
                          self.uncertainty,
                          None if self.keypoints is None else self.keypoints[keep],
                          None if self.keypoint_scores is None else self.keypoint_scores[keep])

    @classmethod
    def empty(cls, height: int, width: int) -> Prediction:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.int64),
                   np.zeros((0,), np.float32), np.zeros((0, height, width), bool))


def with_uncertainty(prediction: Prediction, mirrored: Prediction) -> Prediction:
    """`prediction` with the uncertainty its disagreement with the mirror image's
    prediction (`mirrored`, made on the image flipped left to right) gives."""
    first = Detections(prediction.labels, prediction.scores, prediction.masks)
    second = Detections(mirrored.labels, mirrored.scores, mirrored.masks[:, :, ::-1])
    return replace(prediction, uncertainty=image_uncertainty(first, second))


def output_to_prediction(out: dict[str, torch.Tensor], mask_threshold: float = 0.5) -> Prediction:
    """torchvision's output dict for one image → Prediction (on the CPU, numpy)."""
    points = out.get("keypoints")
    point_scores = out.get("keypoints_scores")
    return Prediction(
        out["boxes"].detach().float().cpu().numpy(),
        out["labels"].detach().cpu().numpy().astype(np.int64),
        out["scores"].detach().float().cpu().numpy(),
        (out["masks"][:, 0] > mask_threshold).cpu().numpy(),
        keypoints=None if points is None else points.detach().float().cpu().numpy(),
        keypoint_scores=(None if point_scores is None
                         else point_scores.detach().float().cpu().numpy()),
    )


def _fp32_forward(forward: Callable, *args):
    device_type = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
    if not torch.is_autocast_enabled(device_type):
        return forward(*args)
    with torch.autocast(device_type, enabled=False):
        return forward(*(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point()
                         else a for a in args))


def output_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of a torchvision MaskRCNN that produce its raw outputs."""
    m: Any = model  # a torchvision MaskRCNN (its parts are untyped modules)
    rpn_head, roi = m.rpn.head, m.roi_heads
    layers: list[nn.Module] = [rpn_head.cls_logits, rpn_head.bbox_pred, roi.box_predictor,
                               roi.mask_predictor.mask_fcn_logits]
    if roi.keypoint_predictor is not None:  # the keypoint heatmaps' logits
        layers.append(roi.keypoint_predictor)
    return layers


def keep_outputs_fp32(model: nn.Module) -> None:
    """Make the output layers compute in fp32 inside autocast regions (idempotent; outside
    autocast nothing changes; the state dict is untouched)."""
    for layer in output_layers(model):
        if not getattr(layer, "_mrcnn_fp32", False):
            layer.forward = functools.partial(_fp32_forward, layer.forward)
            # a plain flag: nn.Module's __setattr__ is typed for tensors and modules only
            layer._mrcnn_fp32 = True  # type: ignore[assignment]


class Predictor:
    """Wraps a torchvision MaskRCNN for inference. The model is put in eval mode on `device`
    (under mixed precision its output layers are set to compute in fp32: `keep_outputs_fp32`).
    With `fold_batchnorm` its BatchNorms are folded into their convolutions
    (`mrcnn.model.fold`: same outputs, less work; the model can then no longer be trained):
    for a model the caller hands over for prediction only, as the model process does.
    With `onnx_backbone`, an fp32 prediction on a CPU runs its backbone in ONNX Runtime
    (`mrcnn.model.onnx_backbone`: the same features, faster) once it is prepared in the
    background, which starts after the first prediction so that one is not slowed.
    With `tune_precision` (the default), autocast on a GPU is kept only where it predicts
    this model faster than fp32 (`mrcnn.model.device.fastest_precision`, timed on a probe
    image at the model's input size when the Predictor is made; once per process for a model
    of the same build on the same GPU). On a CPU its RoIAligns run on every core
    (`mrcnn.model.roi_pool`: the same numbers)."""

    def __init__(self, model: nn.Module, *, device: DeviceChoice | None = None,
                 score_threshold: float = 0.05, max_detections: int = 100,
                 mask_threshold: float = 0.5, feature_cache: int = DEFAULT_CAPACITY,
                 fold_batchnorm: bool = False, onnx_backbone: bool = False,
                 tune_precision: bool = True):
        self.choice = device or choose_device()
        #: backbone features of the images predicted last (by key), for `box_mask`
        self.features = FeatureCache(feature_cache)
        self.model = model.eval().to(self.choice.device)
        m: Any = self.model  # a torchvision MaskRCNN (its parts are untyped modules)
        if fold_batchnorm:
            fold_into_convolutions(self.model)
        m.roi_heads.score_thresh = score_threshold
        m.roi_heads.detections_per_img = max_detections
        self.mask_threshold = mask_threshold
        if self.choice.amp_dtype is not None:
            keep_outputs_fp32(self.model)  # no effect outside autocast
        #: what runs the backbone: "torch", or "onnxruntime" once that is prepared
        self.engine = "torch"
        self.fast_backbone: BackgroundBackbone | None = None
        if tune_precision and times_autocast(self.choice):
            self.choice = self._fastest_precision()
        self._set_layout()
        thread_roi_pools(self.model)  # RoIAlign on every core of a CPU (`roi_pool`)
        if onnx_backbone and onnx_backbone_applies(self.choice):
            self.fast_backbone = BackgroundBackbone(m.backbone)

    def _set_layout(self) -> None:
        self.model.backbone.to(memory_format=torch.channels_last if self.choice.channels_last
                               else torch.contiguous_format)

    def _fastest_precision(self) -> DeviceChoice:
        """This model's faster precision on this GPU (see `tune_precision`)."""
        t: Any = self.model.transform  # torchvision's GeneralizedRCNNTransform
        dev = self.choice.device
        key = (str(dev), torch.cuda.get_device_name(dev) if dev.type == "cuda" else "",
               type(self.model).__name__, sum(p.numel() for p in self.model.parameters()),
               t.min_size, t.max_size, self.choice)
        if key not in _MEASURED_PRECISION:
            height = int(t.min_size[-1])
            width = min(int(t.max_size), round(height * 4 / 3))
            probe = torch.rand((3, height, width), generator=torch.Generator().manual_seed(0))
            asked = self.choice

            def run(choice: DeviceChoice) -> None:
                self.choice = choice
                self._set_layout()
                self._forward([probe])
                if choice.device.type == "cuda":
                    torch.cuda.synchronize(choice.device)

            try:
                _MEASURED_PRECISION[key] = fastest_precision(asked, run)
            except Exception as exc:  # e.g. out of memory: keep what was asked for
                log.warning("could not time the precisions on %s: %s", asked.device, exc)
                return asked
            finally:
                self.choice = asked
            log.info("prediction precision on %s: %s", asked.device,
                     _MEASURED_PRECISION[key].describe())
        return _MEASURED_PRECISION[key]

    def describe(self) -> str:
        """The device and precision for the status bar, and what runs the backbone."""
        engine = " · backbone in ONNX Runtime" if self.engine == "onnxruntime" else ""
        return self.choice.describe() + engine

    def _swap_in_fast_backbone(self) -> None:
        ready = self.fast_backbone.take() if self.fast_backbone is not None else None
        if ready is not None and self.choice.device.type == "cpu":
            self.model.backbone = ready
            self.engine = "onnxruntime"

    @torch.inference_mode()
    def _forward(self, tensors: list[torch.Tensor], keys: Sequence[Hashable] | None = None
                 ) -> list[dict[str, torch.Tensor]]:
        """Predict a batch (on the CPU: moved to the device here); with `keys` (one per
        image) keep each image's features."""
        self._swap_in_fast_backbone()
        m: Any = self.model  # a torchvision MaskRCNN (its parts are untyped modules)
        tensors = [t.to(self.choice.device) for t in tensors]
        original_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        images, _ = m.transform(tensors)
        x = images.tensors
        if self.choice.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.choice):
            features = m.backbone(x)
            proposals, _ = m.rpn(images, features)
            detections, _ = m.roi_heads(features, proposals, images.image_sizes)
        for i, key in enumerate(keys or ()):
            h, w = images.image_sizes[i]
            self.features.put(key, ImageFeatures(
                OrderedDict((k, v[i:i + 1]) for k, v in features.items()),
                (int(h), int(w)), original_sizes[i]))
        detections = [{k: v.float() if v.is_floating_point() else v for k, v in d.items()}
                      for d in detections]
        return m.transform.postprocess(detections, images.image_sizes, original_sizes)

    def predict(self, images: Sequence[np.ndarray], *, batch_size: int = 1,
                should_cancel: Callable[[], bool] | None = None,
                on_progress: Callable[[int, int], None] | None = None,
                keys: Sequence[Hashable] | None = None,
                uncertainty: bool = False) -> list[Prediction]:
        """Predict (H, W, 3) uint8 RGB images. Cancellation is checked between batches
        (the predictions made so far are returned). With `keys` (one per image, e.g. image
        ids) their features are kept for `box_mask` (the last few: `features`).
        With `uncertainty`, each image's mirror image is predicted too (one extra pass) and
        `Prediction.uncertainty` says how much the two disagree."""
        results: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            if should_cancel and should_cancel():
                break
            batch = list(images[start:start + batch_size])
            batch_keys = keys[start:start + batch_size] if keys else None
            if not uncertainty:
                outputs = self._run(batch, batch_keys)
                results.extend(output_to_prediction(o, self.mask_threshold) for o in outputs)
            else:
                # a pass of its own, not the same batch: the image's detections stay exactly
                # those of a plain prediction (batch size changes low-precision results)
                mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in batch]
                outputs = self._run(batch, batch_keys)
                for o, m in zip(outputs, self._run(mirrored), strict=True):
                    results.append(with_uncertainty(output_to_prediction(o, self.mask_threshold),
                                                    output_to_prediction(m, self.mask_threshold)))
            if on_progress:
                on_progress(len(results), len(images))
        if self.fast_backbone is not None and results:
            self.fast_backbone.start()  # after a first prediction, which it must not slow
        return results

    def predict_one(self, image: np.ndarray, *, key: Hashable | None = None,
                    uncertainty: bool = False) -> Prediction:
        return self.predict([image], keys=None if key is None else [key],
                            uncertainty=uncertainty)[0]

    def box_mask(self, key: Hashable, image: np.ndarray | None,
                 box: tuple[float, float, float, float], *, refine_box: bool = True
                 ) -> tuple[BoxMask, bool]:
        """The model's mask for a box drawn on the image kept under `key` (xyxy, pixels of
        the image file), and whether its features came from the cache. Without cached
        features the backbone runs on `image` once (and they are kept); `image` may be None
        only when they are cached (KeyError otherwise)."""
        cached = self.features.get(key)
        hit = cached is not None
        if cached is None:
            if image is None:
                raise KeyError(key)
            cached = image_features(self.model, image, self.choice)
            self.features.put(key, cached)
        answer = mask_for_box(self.model, cached, box, self.choice, refine_box=refine_box,
                              mask_threshold=self.mask_threshold)
        return answer, hit

    def _run(self, batch: Sequence[np.ndarray], keys: Sequence[Hashable] | None = None
             ) -> list[dict[str, torch.Tensor]]:
        tensors = [image_to_tensor(im) for im in batch]  # on the CPU
        try:
            return self._forward(tensors, keys)
        except Exception as exc:
            if not (is_out_of_memory(exc) and self.choice.device.type != "cpu"):
                raise
            log.warning("%s out of memory; retrying on the CPU", self.choice.device)
            if self.choice.device.type == "cuda":
                torch.cuda.empty_cache()
            cpu = choose_device("cpu")
            self.choice = replace(cpu, reason=f"{self.choice.device.type.upper()} out of "
                                  "memory, retried on CPU")
            self.model.to(self.choice.device)
            self._set_layout()
            self.features.clear()  # on the GPU: let them go with it
            return self._forward(tensors, keys)
