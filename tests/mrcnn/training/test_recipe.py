"""The one-click recipe: where a run starts, which preset, size, iterations and batch on
this machine, and the line the Training panel shows before the click."""

from __future__ import annotations

import pytest

from mrcnn.model.presets import PRESETS
from mrcnn.training import recipe as r
from mrcnn.training.recipe import Hardware, choose_recipe

CPU = Hardware(cpu_cores=2)
H100 = Hardware("cuda", "NVIDIA H100 80GB HBM3", 79.2, 16)


def test_the_strongest_start_wins_active_then_coco_then_scratch():
    active = choose_recipe(hardware=CPU, train_images=9, active_name="v2",
                           active_preset="r18", active_size=256, coco_cached=True)
    assert (active.start, active.start_name, active.preset) == ("active", "v2", "r18")
    coco = choose_recipe(hardware=CPU, train_images=9, coco_cached=True)
    assert (coco.start, coco.preset, coco.finetune_policy) == ("coco", "r50v2", True)
    scratch = choose_recipe(hardware=CPU, train_images=9)
    assert (scratch.start, scratch.preset, scratch.finetune_policy) == ("scratch", "r18",
                                                                        False)
    # a preset the user fixed that the COCO file cannot start: scratch, said so
    fixed = choose_recipe(hardware=CPU, train_images=9, coco_cached=True, preset="r18")
    assert fixed.start == "scratch"


def test_a_cpu_run_fits_the_budget_and_says_how_long():
    few = choose_recipe(hardware=CPU, train_images=9, coco_cached=True)
    assert few.size < PRESETS["r50v2"].min_size  # a reduced size on a CPU
    assert few.seconds is not None and few.seconds <= r.CPU_BUDGET_S
    assert few.line().startswith(f"r50v2 from COCO weights · {few.size} px · "
                                 f"{few.max_iters} iterations · batch {few.batch_size} · "
                                 "about ")
    assert few.line().endswith(" min on this CPU")
    many = choose_recipe(hardware=CPU, train_images=2000)
    assert many.max_iters > few.max_iters  # more data, a longer run...
    assert many.seconds <= r.CPU_BUDGET_S  # ...within the budget
    assert many.seconds > 0.8 * r.CPU_BUDGET_S
    # twice the cores: more iterations in the same budget
    quad = choose_recipe(hardware=Hardware(cpu_cores=4), train_images=2000)
    assert quad.max_iters > many.max_iters
    scratch = choose_recipe(hardware=CPU, train_images=9)
    assert scratch.line().startswith("r18 from scratch · 256 px · ")


def test_what_the_user_fixed_is_kept():
    got = choose_recipe(hardware=CPU, train_images=9, coco_cached=True, size=320,
                        max_iters=77, batch_size=3)
    assert (got.preset, got.size, got.max_iters, got.batch_size) == ("r50v2", 320, 77, 3)


def test_on_cuda_the_preset_runs_at_its_own_size_with_a_batch_that_fits():
    big = choose_recipe(hardware=H100, train_images=40, coco_cached=True)
    assert (big.preset, big.size, big.device) == ("r50v2", 800, "cuda")
    assert big.batch_size == r.MAX_GPU_BATCH
    small_gpu = choose_recipe(hardware=Hardware("cuda", "laptop GPU", 8.0, 8),
                              train_images=40)
    assert (small_gpu.preset, small_gpu.start) == ("r50v2", "scratch")
    assert 1 <= small_gpu.batch_size < big.batch_size
    assert r.gpu_batch("r50v2", 800, 4.0, 40) == 1  # never below one image
    assert r.gpu_batch("r50v2", 800, 79.2, 3) == 3  # never more than the images
    assert big.line().endswith("· on this GPU")  # no measured speed for this card


def test_speeds_measured_here_replace_the_reference_figures():
    ref = choose_recipe(hardware=CPU, train_images=9)
    meta = [{"speed": {"device": "cpu", "preset": "r18", "size": 256, "batch_size": 4,
                       "finetune_policy": False, "cpu_cores": 2, "seconds_per_iter": 2.0}},
            {"speed": {"device": "cpu", "preset": "r18", "size": 256, "batch_size": 4,
                       "finetune_policy": False, "cpu_cores": 8, "seconds_per_iter": 0.1}},
            {"speed": "garbage"}, {}]
    measured = r.measured_speeds(meta, cpu_cores=2)
    assert measured == {("r18", 256, 4, False): 2.0}  # other machines' runs do not count
    # a run slowed by other work on the CPU does not cut the next runs short
    busy = {"speed": dict(meta[0]["speed"], seconds_per_iter=5.6)}
    assert r.measured_speeds([meta[0], busy], cpu_cores=2) == measured
    assert r.measured_speeds([busy, meta[0]], cpu_cores=2) == measured
    got = choose_recipe(hardware=CPU, train_images=9, measured=measured)
    assert got.measured and got.seconds == pytest.approx(2.0 * got.max_iters)
    assert got.seconds != ref.seconds


def test_hardware_from_plain_data():
    hw = Hardware.from_dict({"device": "cuda", "name": "A100", "memory_gib": 40,
                             "cpu_cores": 32, "extra": 1})
    assert hw == Hardware("cuda", "A100", 40.0, 32)
    assert Hardware.from_dict(hw.to_dict()) == hw
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Hardware.from_dict({"device": "tpu"})


def test_preset_sizes_agree_with_the_presets():
    for name, size in r.PRESET_SIZES.items():
        assert PRESETS[name].min_size == size
