"""A GPU that runs out of memory mid-prediction: the image is predicted on the CPU instead,
in the CPU's own precision and layout, and the status says why."""

from __future__ import annotations

import numpy as np
import torch

from mrcnn.model.device import DeviceChoice, choose_device
from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model


def test_out_of_memory_on_the_gpu_retries_on_the_cpu_in_the_cpus_precision():
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3, min_size=96, max_size=96)
    predictor = Predictor(model, device=choose_device("cpu"))
    # as if it had been set up on a GPU (fp16, channels_last): the model stays where it is
    predictor.choice = DeviceChoice(torch.device("cuda"), "GPU found", torch.float16, True)
    predictor.model.backbone.to(memory_format=torch.channels_last)
    calls = []
    forward = predictor._forward

    def out_of_memory_once(tensors, keys=None):
        calls.append(tensors[0].device.type)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(tensors, keys)

    predictor._forward = out_of_memory_once
    image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8)
    prediction = predictor.predict_one(image)
    assert prediction.masks.shape[1:] == (96, 96)
    assert len(calls) == 2
    cpu = choose_device("cpu")
    assert predictor.choice.device.type == "cpu"
    assert predictor.choice.describe().startswith("CPU — CUDA out of memory, retried on CPU · ")
    assert predictor.choice.amp_dtype is cpu.amp_dtype
    weight = next(predictor.model.backbone.parameters())
    assert weight.is_contiguous(memory_format=torch.channels_last) == cpu.channels_last \
        or weight.dim() != 4
