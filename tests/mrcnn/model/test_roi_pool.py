"""RoIAlign on every CPU core (`mrcnn.model.roi_pool`): the same numbers as torchvision's
one-thread pooler, bit for bit, with the work really split; training untouched."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign

from mrcnn.model.predictor import Predictor
from mrcnn.model.presets import build_model
from mrcnn.model.roi_pool import MIN_ROIS_TO_SPLIT, ThreadedRoIAlign, thread_roi_pools

SHAPES = [(512, 640), (480, 600)]  # two images in a batch padded to 512 x 640


def features(dtype=torch.float32, channels_last=False) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    levels = OrderedDict()
    for i, stride in enumerate((4, 8, 16, 32)):
        x = torch.randn(2, 16, 512 // stride, 640 // stride, generator=g).to(dtype)
        levels[str(i)] = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    levels["pool"] = torch.randn(2, 16, 8, 10, generator=g).to(dtype)
    return levels


def boxes(counts=(300, 77)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    out = []
    for n, (h, w) in zip(counts, SHAPES, strict=True):
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w - 40.0, h - 40.0])
        wh = 2 + torch.rand(n, 2, generator=g) * 300  # small to large: every level gets some
        out.append(torch.cat([xy, torch.minimum(xy + wh, torch.tensor([w, h]))], 1))
    return out


class Recording(torch.nn.Module):
    """A pooler that notes the threads it was called in."""

    def __init__(self, pooler: torch.nn.Module):
        super().__init__()
        self.inner = pooler
        self.threads: set[str] = set()

    @property
    def scales(self):
        return self.inner.scales

    @property
    def featmap_names(self):
        return self.inner.featmap_names

    def forward(self, *args):
        self.threads.add(threading.current_thread().name)
        return self.inner(*args)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("precision", ["fp32", "bf16 autocast, channels_last"])
def test_split_pooling_gives_torchvisions_output_bit_for_bit(threads, precision):
    bf16 = precision != "fp32"
    x = features(torch.bfloat16 if bf16 else torch.float32, channels_last=bf16)
    b = boxes()
    plain = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, sampling_ratio=2)
    recording = Recording(copy.deepcopy(plain))
    threaded = ThreadedRoIAlign(recording, threads)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        first = threaded(x, b, SHAPES)  # the first call sets the scales up: not split
        assert recording.threads == {threading.current_thread().name}
        expected = plain(x, b, SHAPES)
        got = threaded(x, b, SHAPES)
    assert torch.equal(first, expected)
    assert got.dtype == expected.dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert got.shape == (sum(len(t) for t in b), 16, 7, 7)
    assert torch.equal(got, expected)
    assert len(recording.threads) >= 2  # this thread and the pool's: the work was split


def test_few_rois_and_training_go_straight_to_torchvision():
    x = features()
    plain = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, sampling_ratio=2)
    recording = Recording(copy.deepcopy(plain))
    threaded = ThreadedRoIAlign(recording, 2)
    few = [t[: MIN_ROIS_TO_SPLIT - 1] for t in boxes()]
    with torch.inference_mode():
        threaded(x, few, SHAPES)
        assert torch.equal(threaded(x, few, SHAPES), plain(x, few, SHAPES))
    assert recording.threads == {threading.current_thread().name}

    # training: features that need gradients pool as torchvision pools them, gradients too
    a = OrderedDict((k, v.clone().requires_grad_()) for k, v in x.items())
    c = OrderedDict((k, v.clone().requires_grad_()) for k, v in x.items())
    threaded(a, boxes(), SHAPES).square().sum().backward()
    plain(c, boxes(), SHAPES).square().sum().backward()
    assert recording.threads == {threading.current_thread().name}
    assert all(torch.equal(a[k].grad, c[k].grad) for k in ("0", "1", "2", "3"))


def test_the_predictor_pools_on_every_core_and_predicts_the_same():
    """An r18 (random weights) on a photo-sized input: its 300 proposals are pooled split,
    and the detections are those of torchvision's pooler exactly."""
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=5, min_size=320, max_size=320).eval()
    image = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)
    threaded = Predictor(copy.deepcopy(model), score_threshold=0.0)
    heads = threaded.model.roi_heads
    assert isinstance(heads.box_roi_pool, ThreadedRoIAlign)
    assert isinstance(heads.mask_roi_pool, ThreadedRoIAlign)
    plain = Predictor(copy.deepcopy(model), score_threshold=0.0)
    for name in ("box_roi_pool", "mask_roi_pool"):  # back to torchvision's own
        setattr(plain.model.roi_heads, name, getattr(plain.model.roi_heads, name).pooler)
    assert thread_roi_pools(threaded.model, 2) == 2  # idempotent: no pooler wrapped twice
    recording = Recording(heads.box_roi_pool.pooler)
    heads.box_roi_pool.pooler = recording
    threaded.predict([image])  # the first call sets the pooler's scales up
    a, b = threaded.predict([image])[0], plain.predict([image])[0]
    assert len(recording.threads) == 2
    assert len(a.scores) > 0
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.masks, b.masks)
