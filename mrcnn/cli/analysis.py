"""The `errors` and `hints` commands: a model's errors on the validation split (kept with the
model version, compared with its parent's), and the labels of reviewed images a confident
prediction disagrees with. Arguments and output only: the rules are
`mrcnn.training.error_analysis` and `mrcnn.training.label_hints`."""

from __future__ import annotations

import argparse
import json
import sys

from mrcnn.cli.model import _load_model, add_model_options
from mrcnn.cli.progress import ProgressLine
from mrcnn.errors import ProjectError
from mrcnn.serving.session import STORED_SCORE_FLOOR
from mrcnn.store.project import Project
from mrcnn.training.error_analysis import (
    DETECTION_SCORE,
    KIND_LABELS,
    Detection,
    ErrorDiff,
    TruthImage,
    error_diff,
    errors_on,
    reviewed_ids,
    save_errors,
    stored_errors,
    truth_images,
)
from mrcnn.training.label_hints import SUSPECT_LABELS, rank_suspects, split_answered


def _detect(project: Project, args: argparse.Namespace, images: list[TruthImage],
            skipped: list[tuple[str, str]]) -> tuple[dict[int, list[Detection]], str,
                                                     str | None, str]:
    """Predict `images` with the model the command line names: (detections per image id,
    model key, its version name or None, where it came from)."""
    from mrcnn.model.device import choose_device
    from mrcnn.training.evaluate import detect_images

    loaded, key = _load_model(project, args, for_predict=True)
    version = (project.model_version(loaded.version_id).name
               if loaded.version_id is not None else None)

    line = ProgressLine()

    def progress(done: int, total: int) -> None:
        if not args.json:
            line.show(f"predicted {done}/{total}")

    found = detect_images(loaded.model, loaded.categories, images,
                          device=choose_device(args.device, amp=not args.no_amp),
                          score_threshold=min(args.score, STORED_SCORE_FLOOR),
                          progress=progress, skipped=skipped)
    if not args.json:
        line.end()
    return found, key, version, loaded.source


def _parent_diff(project: Project, version: str | None, found) -> ErrorDiff | None:
    """The comparison with the parent version's kept error list, when both have one."""
    if version is None:
        return None
    record = next((v for v in project.model_versions() if v.name == version), None)
    if record is None or record.parent_id is None:
        return None
    parent = project.model_version(record.parent_id).name
    before = stored_errors(project, parent)
    return error_diff(before, found) if before is not None else None


def _image_names(project: Project) -> dict[int, str]:
    return {im.id: im.path for im in project.images()}


def cmd_errors(args: argparse.Namespace) -> int:
    skipped: list[tuple[str, str]] = []
    with Project.open(args.project, read_only=True) as project:
        images = truth_images(project)
        if not images:
            raise ProjectError("no reviewed images in the validation split to find errors on")
        predictions, key, version, source = _detect(project, args, images, skipped)
        found = errors_on(images, predictions, version=version or key,
                          score_floor=args.score, skipped=skipped)
        kept = save_errors(project, version, found) if version is not None else None
        diff = _parent_diff(project, version, found)
        names = _image_names(project)
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "model": source, "model_key": key, "version": version,
            "kept": str(kept) if kept else None, "rule": found.rule(),
            "images": len(found.image_ids),
            "counts": {str(k): n for k, n in found.counts().items()},
            "errors": [{**e.to_dict(), "path": names.get(e.image_id)} for e in found.errors],
            "since_parent": None if diff is None else {
                "parent": diff.before, "images": len(diff.image_ids),
                "fixed": [e.to_dict() for e in diff.fixed],
                "new": [e.to_dict() for e in diff.introduced]},
            "skipped": [{"path": p, "reason": r} for p, r in skipped]}))
        return 0
    print(found.describe())
    print(f"  ({found.rule()})")
    for e in found.errors:
        score = "" if e.score is None else f"  score {e.score:.2f}"
        print(f"  {names.get(e.image_id, e.image_id)}  {KIND_LABELS[e.kind]:<14} "
              f"{e.category:<12} IoU {e.iou:.2f}{score}  {e.describe()}")
    if diff is not None:
        print(diff.describe())
        for label, errors in (("fixed", diff.fixed), ("new", diff.introduced)):
            for e in errors:
                print(f"  {label:<5}  {names.get(e.image_id, e.image_id)}  {e.describe()}")
    print(f"kept for {version} in {kept}" if kept else
          f"not kept: {source} is not a model version of this project")
    return 0


def cmd_hints(args: argparse.Namespace) -> int:
    skipped: list[tuple[str, str]] = []
    split = None if args.split == "all" else args.split
    with Project.open(args.project, read_only=True) as project:
        images = truth_images(project, reviewed_ids(project, split))
        if not images:
            raise ProjectError(f"no reviewed images ({args.split}) to look for label errors "
                               "on")
        predictions, key, _version, source = _detect(project, args, images, skipped)
        found = rank_suspects(images, predictions, score_floor=args.score)
        suspects, answered = split_answered(found, project.suspect_checks())
        names = _image_names(project)
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    listed = found if args.all else suspects
    right = {id(s) for s, _check in answered}
    shown = listed[:args.limit] if args.limit else listed
    if args.json:
        print(json.dumps({"model": source, "model_key": key, "images": len(predictions),
                          "suspects": [{**s.to_dict(), "path": names.get(s.image_id),
                                        "found_right": id(s) in right} for s in shown],
                          "total": len(suspects), "found_right": len(answered),
                          "skipped": [{"path": p, "reason": r} for p, r in skipped]}))
        return 0
    hidden = ("" if not answered else
              f"; {len(answered)} more found right earlier"
              + (", marked below" if args.all else " (--all lists them)"))
    print(f"{len(suspects)} label suspects on {len(predictions)} reviewed images "
          f"({source}; detections score ≥ {args.score:.2f}){hidden}"
          + (f", the first {len(shown)}:" if len(shown) < len(listed) else ":"))
    for s in shown:
        where = f"instance {s.instance_id}" if s.instance_id is not None else "no instance"
        mark = "  [found right]" if id(s) in right else ""
        print(f"  {s.score:.2f}  {names.get(s.image_id, s.image_id)}  {where}  "
              f"{SUSPECT_LABELS[s.kind]}  {s.describe()}{mark}")
    return 0


def register(sub, add) -> None:
    """Add the `errors` and `hints` commands to the CLI's subparsers."""
    p = add("errors", cmd_errors,
            "a model's errors on the reviewed validation images (false positives, missed "
            "instances, poor fits), kept with its model version and compared with its "
            "parent's; the window's Errors panel lists them")
    add_model_options(p)
    p.add_argument("--score", type=float, default=DETECTION_SCORE,
                   help="predictions scoring at least this count as detections (default "
                   f"{DETECTION_SCORE}, the window's default score slider)")

    p = add("hints", cmd_hints,
            "label suspects: accepted instances on reviewed images a confident prediction "
            "disagrees with (another category, an unlabelled object, no detection), ranked")
    add_model_options(p)
    p.add_argument("--split", default="all", choices=("all", "train", "val"),
                   help="which reviewed images (default all; a model has seen its training "
                   "images' labels, so val is the stronger evidence)")
    p.add_argument("--score", type=float, default=DETECTION_SCORE,
                   help=f"predictions scoring at least this count (default {DETECTION_SCORE})")
    p.add_argument("--limit", type=int, default=0, help="list at most this many (0: all)")
    p.add_argument("--all", action="store_true",
                   help="also list the suspects found right earlier (the window's Label Is "
                   "Right), marked")

