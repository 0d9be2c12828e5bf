"""Device and precision choice: CUDA, then MPS, then CPU, with a reason a person can read."""

from __future__ import annotations

import pytest
import torch

from mrcnn.model import device as dev
from mrcnn.model.device import (
    DeviceChoice,
    autocast,
    choose_device,
    cpu_supports_bf16,
    fallback_to_cpu,
    is_out_of_memory,
)

needs_no_gpu = pytest.mark.skipif(
    torch.cuda.is_available() or dev._mps_available(), reason="this machine has a GPU")


@needs_no_gpu
def test_cpu_only_machine_chooses_cpu_and_says_why():
    choice = choose_device()
    assert choice.device.type == "cpu"
    assert "CUDA" in choice.reason
    assert choice.describe().startswith(f"CPU — {choice.reason} · ")
    assert choose_device("auto") == choice


@needs_no_gpu
@pytest.mark.parametrize("requested", ["cuda", "cuda:1"])
def test_cuda_requested_without_cuda_falls_back_to_cpu(requested):
    choice = choose_device(requested)
    assert choice.device.type == "cpu"
    assert choice.reason.startswith("CUDA requested but ")
    assert choice.reason in {"CUDA requested but torch built without CUDA",
                             "CUDA requested but no CUDA device found"}


@needs_no_gpu
def test_mps_requested_without_mps_falls_back_to_cpu():
    choice = choose_device("mps")
    assert choice.device.type == "cpu" and choice.reason == "MPS requested but not available"


def test_cpu_requested():
    choice = choose_device("cpu")
    assert choice.device == torch.device("cpu") and choice.reason == "requested"


def test_precision_follows_the_cpu_and_can_be_turned_off():
    choice = choose_device("cpu")
    if cpu_supports_bf16() and dev.cpu_bf16_speedup() >= dev.BF16_MIN_SPEEDUP:
        assert choice.amp_dtype is torch.bfloat16 and choice.channels_last
        assert choice.describe().endswith(" · bf16")
    else:
        assert choice.amp_dtype is None and not choice.channels_last
        assert " · fp32" in choice.describe()
    off = choose_device("cpu", amp=False)
    assert off.amp_dtype is None and not off.channels_last
    assert off.describe() == "CPU — requested · fp32"


def test_order_is_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    cuda = choose_device()
    assert cuda.device.type == "cuda" and cuda.amp_dtype is torch.float16
    assert cuda.channels_last  # tensor cores read fp16 convolutions in NHWC
    assert choose_device(amp=False).amp_dtype is None

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mps = choose_device()
    assert mps.device.type == "mps" and mps.reason == "Apple GPU found"
    assert mps.amp_dtype is None  # no autocast on MPS


def test_cuda_prefers_bf16_when_supported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_device("cuda").amp_dtype is torch.bfloat16


def test_fallback_to_cpu_keeps_the_reason():
    choice = fallback_to_cpu("CUDA out of memory, retried on CPU")
    assert choice.device.type == "cpu"
    assert choice.describe().startswith("CPU — CUDA out of memory, retried on CPU · ")
    assert fallback_to_cpu("x", amp=False).amp_dtype is None


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def _conv_output(choice: DeviceChoice) -> torch.Tensor:
    conv = torch.nn.Conv2d(3, 8, 3)
    x = torch.rand(1, 3, 16, 16)
    if choice.channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    with torch.no_grad(), autocast(choice):
        return conv(x)


def test_autocast_runs_a_conv_in_the_chosen_precision():
    bf16 = DeviceChoice(torch.device("cpu"), "test", torch.bfloat16, True)
    assert _conv_output(bf16).dtype is torch.bfloat16
    fp32 = DeviceChoice(torch.device("cpu"), "test", None, False)
    assert _conv_output(fp32).dtype is torch.float32


def test_a_cpu_whose_bf16_pays_runs_in_bf16(monkeypatch):
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(dev, "cpu_bf16_speedup", lambda: 1.9)
    choice = choose_device("cpu")
    assert choice.amp_dtype is torch.bfloat16 and choice.channels_last
    assert choice.describe() == "CPU — requested · bf16"
    assert _conv_output(choice).dtype is torch.bfloat16


def test_a_cpu_whose_bf16_is_slower_than_fp32_stays_in_fp32_and_says_why(monkeypatch):
    # AVX512-BF16 without AMX: bf16 flags, but the convolutions run slower than in fp32
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(dev, "cpu_bf16_speedup", lambda: 0.62)
    choice = choose_device("cpu")
    assert choice.amp_dtype is None and not choice.channels_last
    assert choice.describe() == "CPU — requested · fp32 (bf16 measured at 0.62x)"
    assert _conv_output(choice).dtype is torch.float32


def test_the_bf16_measurement_times_real_convolutions():
    speedup = dev.cpu_bf16_speedup()
    assert 0.05 < speedup < 20  # a ratio of two real timings, not a constant
    assert dev.cpu_bf16_speedup() == speedup  # measured once per process


def _timed_run(seconds_in: dict):
    """A stand-in forward pass taking `seconds_in[amp dtype]`; records what it ran under."""
    import time
    ran: list = []

    def run(choice: DeviceChoice) -> None:
        ran.append(choice)
        time.sleep(seconds_in[choice.amp_dtype])
    return run, ran


def test_a_gpu_keeps_autocast_only_where_it_predicts_faster():
    gpu = DeviceChoice(torch.device("cpu"), "GPU found", torch.bfloat16, True)
    run, ran = _timed_run({torch.bfloat16: 0.01, None: 0.03})
    assert dev.fastest_precision(gpu, run) == gpu
    # one warm-up of each, then three rounds taking turns
    assert [c.amp_dtype for c in ran] == [torch.bfloat16, None] * 4
    assert all(c.channels_last == (c.amp_dtype is not None) for c in ran)


def test_where_autocast_is_slower_fp32_is_kept_and_the_status_says_why():
    gpu = DeviceChoice(torch.device("cpu"), "GPU found", torch.float16, True)
    run, _ = _timed_run({torch.float16: 0.04, None: 0.02})
    chosen = dev.fastest_precision(gpu, run)
    assert chosen.amp_dtype is None and not chosen.channels_last
    assert chosen.reason == "GPU found"
    assert chosen.describe().startswith("CPU — GPU found · fp32 (fp16 measured at 0.")
    assert 0.4 < float(chosen.precision_note.split(" at ")[1].rstrip("x")) < 0.6


def test_a_tie_goes_to_fp32_whose_results_are_exact():
    gpu = DeviceChoice(torch.device("cpu"), "GPU found", torch.bfloat16, True)
    run, _ = _timed_run({torch.bfloat16: 0.02, None: 0.02})
    assert dev.fastest_precision(gpu, run).amp_dtype is None
    fp32 = DeviceChoice(torch.device("cpu"), "GPU found", None, False)
    assert dev.fastest_precision(fp32, run) == fp32  # nothing to time


def test_only_a_gpu_with_autocast_times_its_precision_on_the_model():
    assert dev.times_autocast(DeviceChoice(torch.device("cuda"), "GPU found", torch.bfloat16,
                                           True))
    assert not dev.times_autocast(DeviceChoice(torch.device("cuda"), "GPU found", None, False))
    # a CPU's precision is measured once, on a convolution, by choose_device
    assert not dev.times_autocast(DeviceChoice(torch.device("cpu"), "test", torch.bfloat16,
                                               True))
