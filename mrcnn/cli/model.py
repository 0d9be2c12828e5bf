"""Model commands of the CLI: predict, eval (train lives in `mrcnn.cli.train`). Arguments and
output only: which model a spec names, and its key, is `mrcnn.serving.resolve`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mrcnn.cli.progress import ProgressLine
from mrcnn.store.project import Project


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model version (v3), checkpoint file, or 'coco' (default: the project's "
                        "active version, else COCO weights in the torch cache)")
    p.add_argument("--preset", default=None, help="architecture for 'coco' (default r50v2)")
    p.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best)")
    p.add_argument("--no-amp", action="store_true", help="full fp32, no mixed precision")
    p.add_argument("--download", action="store_true",
                   help="allow downloading torchvision's COCO weights when not cached")


def _progress_printer(args: argparse.Namespace):
    if not args.json:
        return None

    def emit(done: int, total: int | None) -> None:
        print(json.dumps({"event": "download", "bytes": done, "total": total}), flush=True)
    return emit


def _load_model(project: Project, args: argparse.Namespace, *, for_predict: bool):
    """The model named on the command line and its key (`mrcnn.serving.resolve`)."""
    from mrcnn.serving.resolve import resolve_model as resolve

    return resolve(project, args.model, preset=args.preset, for_predict=for_predict,
                   allow_download=args.download, progress=_progress_printer(args))


def cmd_predict(args: argparse.Namespace) -> int:
    from mrcnn.cli.categories import describe_suggestions
    from mrcnn.coco.io import check_out_path, write_results
    from mrcnn.model.device import choose_device
    from mrcnn.model.keypoint_head import keypoint_layout_of
    from mrcnn.serving.predict import CocoResults, predict_project, select_images

    if args.out is not None:
        check_out_path(args.out)  # before the work, not after
    with Project.open(args.project) as project:
        loaded, key = _load_model(project, args, for_predict=True)
        choice = choose_device(args.device, amp=not args.no_amp)
        ids = select_images(project, args.images)
        results = (CocoResults(project, loaded.categories, keypoint_layout_of(loaded.model))
                   if args.out is not None else None)

        current = [0, len(ids)]  # images done, of
        line = ProgressLine()

        def progress(done: int, total: int) -> None:
            current[:] = [done, total]
            if args.json:
                print(json.dumps({"event": "progress", "done": done, "total": total}),
                      flush=True)
            else:
                line.show(f"predicted {done}/{total}")

        def tile_progress(done: int, total: int) -> None:
            if args.json:
                print(json.dumps({"event": "tiles", "image": current[0] + 1, "done": done,
                                  "total": total}), flush=True)
            else:
                line.show(f"predicted {current[0]}/{current[1]}, image {current[0] + 1} in "
                          f"tiles: {done}/{total}")

        report = predict_project(project, loaded.model, loaded.categories, model_key=key,
                                 image_ids=ids, model_version_id=loaded.version_id,
                                 device=choice, score_threshold=args.score_threshold,
                                 force=args.force, progress=progress,
                                 on_prediction=None if results is None else results.add,
                                 uncertainty=not args.no_uncertainty, tiles=args.tiles,
                                 tile_progress=tile_progress, fold_batchnorm=True,
                                 onnx_backbone=True)
        suggestions = project.category_suggestions()
    if not args.json:
        line.end()
    if results is not None:
        write_results(args.out, results.results)
    for path, reason in report.failed:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    data = {"event": "done", "model": loaded.source, "model_key": key, **report.__dict__,
            "suggestions": [{"name": s.name, "predictions": s.predictions,
                             "images": list(s.image_ids)} for s in suggestions]}
    if results is not None:
        data["out"] = {"path": str(args.out), "detections": len(results.results)}
    if args.json:
        print(json.dumps(data, default=str))
    else:
        print(f"{loaded.source} on {report.device}: predicted {report.predicted} images "
              f"({report.instances} instances) in {report.seconds:.1f} s; "
              f"{report.cached} already predicted by {key}, {len(report.failed)} unreadable")
        if results is not None:
            print(f"wrote {len(results.results)} detections on {len(ids) - len(report.failed)} "
                  f"images to {args.out} (COCO results format)")
        if suggestions:
            print(describe_suggestions(suggestions))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from mrcnn.model.device import choose_device
    from mrcnn.training.dataset import reviewed_image_ids
    from mrcnn.training.evaluate import evaluate_model

    with Project.open(args.project, read_only=True) as project:
        loaded, key = _load_model(project, args, for_predict=False)
        split = None if args.split == "all" else args.split
        ids = reviewed_image_ids(project, split)
        if not ids:
            from mrcnn.errors import ProjectError

            raise ProjectError(f"no reviewed images in split {args.split!r} to evaluate on")
        metrics = evaluate_model(loaded.model, project, labels=loaded.label_map(),
                                 image_ids=ids, device=choose_device(args.device,
                                                                     amp=not args.no_amp))
    if args.json:
        print(json.dumps({"model": loaded.source, "model_key": key, "split": args.split,
                          "images": len(ids), **metrics}))
        return 0
    print(f"{loaded.source} on {len(ids)} reviewed {args.split} images")
    print(f"{'':6}{'AP':>7}{'AP50':>7}{'AP75':>7}{'APs':>7}{'APm':>7}{'APl':>7}")
    for kind in ("bbox", "segm"):
        m = metrics[kind]
        print(f"{kind:<6}" + "".join(f"{m[k]:>7.3f}" for k in ("AP", "AP50", "AP75", "APs",
                                                               "APm", "APl")))
    if "keypoints" in metrics:  # a model with a keypoint head: OKS keypoint AP
        m = metrics["keypoints"]
        print(f"{'kps':<6}" + "".join(f"{m[k]:>7.3f}" for k in ("AP", "AP50", "AP75"))
              + f"{'':>7}" + "".join(f"{m[k]:>7.3f}" for k in ("APm", "APl")))
    print("per-class segm AP: " + ", ".join(f"{n} {v:.3f}"
                                            for n, v in metrics["segm"]["per_class"].items()))
    if "keypoints" in metrics:
        print("per-class keypoint AP: " + ", ".join(
            f"{n} {v:.3f}" for n, v in metrics["keypoints"]["per_class"].items()))
    return 0


def _tiles(value: str):
    from mrcnn.serving.tiles import parse_tiles

    try:
        return parse_tiles(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub, add) -> None:
    """Add the model commands to the CLI's subparsers (`add` makes one with --json)."""
    p = add("predict", cmd_predict, "predict images; results are stored as pending instances")
    add_model_options(p)
    p.add_argument("--images", default="unreviewed", choices=("all", "unreviewed"))
    p.add_argument("--score-threshold", type=float, default=0.05)
    p.add_argument("--force", action="store_true", help="re-predict images already predicted")
    p.add_argument("--no-uncertainty", action="store_true",
                   help="skip the mirrored second pass that measures how unsure the model is "
                   "about each image (the review queue's order; halves the time)")
    p.add_argument("--tiles", type=_tiles, default="auto", metavar="auto|off|SIZE",
                   help="predict large images in overlapping tiles at full resolution, plus "
                        "the whole image resized for large objects: auto (default) tiles an "
                        "image whose longer side is over twice the model's longest input "
                        "and over 2666 px, "
                        "with tiles of its shorter input side; SIZE tiles every image larger "
                        "than SIZE pixels in tiles of SIZE; off never tiles")
    p.add_argument("--out", type=Path, default=None, metavar="RESULTS.json",
                   help="also write the detections as COCO results (for pycocotools' loadRes "
                        "or detectron2), with the image and category ids of the COCO file the "
                        "project was imported from (else those export-coco writes); images "
                        "already predicted are run again for it (use --images all to score "
                        "the reviewed ones)")

    p = add("eval", cmd_eval, "COCO metrics of a model on the project's reviewed images")
    add_model_options(p)
    p.add_argument("--split", default="val", choices=("val", "train", "all"))
