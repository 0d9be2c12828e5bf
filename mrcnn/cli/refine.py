"""The `refine-check` command: does refining predicted masks with image evidence raise their IoU
on this project's validation split? Measures, keeps the decision in the project and prints it.
Arguments and output only: the rule is `mrcnn.serving.refinement`."""

from __future__ import annotations

import argparse
import json
import sys

from mrcnn.cli.model import _load_model, add_model_options
from mrcnn.errors import ProjectError
from mrcnn.serving.refinement import (
    PredictMasks,
    measure_refinement,
    save_refinement,
    stored_predictions,
    validation_image_ids,
)
from mrcnn.store.project import Project


def _stored(project: Project, spec: str | None) -> tuple[PredictMasks, str]:
    """The stored predictions of the model version `spec` names (default: the active one)."""
    from mrcnn.serving.resolve import version_named

    version = (project.active_model_version() if spec in (None, "active")
               else version_named(project, spec))
    if version is None:
        raise ProjectError("--stored measures a model version's stored predictions: name one "
                           "with --model vN, or activate one")
    return stored_predictions(project, version.id), version.name


def _predicting(project: Project, args: argparse.Namespace) -> tuple[PredictMasks, str]:
    """The model named on the command line, predicting each image in memory (nothing is
    stored)."""
    from mrcnn.model.device import choose_device
    from mrcnn.model.predictor import Predictor

    loaded, key = _load_model(project, args, for_predict=True)
    predictor = Predictor(loaded.model, device=choose_device(args.device, amp=not args.no_amp),
                          score_threshold=args.score_threshold)

    def predict(_image_id: int, image):
        return list(predictor.predict_one(image).masks)
    return predict, key


def cmd_refine_check(args: argparse.Namespace) -> int:
    skipped: list[tuple[str, str]] = []
    with Project.open(args.project) as project:
        if not validation_image_ids(project):
            raise ProjectError("no reviewed images in the validation split to measure mask "
                               "refinement on")
        predict, key = (_stored(project, args.model) if args.stored
                        else _predicting(project, args))
        decision = measure_refinement(project, predict, model_key=key, skipped=skipped)
        save_refinement(project, decision)
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps({**decision.to_dict(), "gain": decision.gain,
                          "line": decision.describe(),
                          "skipped": [{"path": p, "reason": r} for p, r in skipped]}))
        return 0
    print(decision.describe())
    if decision.instances:
        methods = ", ".join(f"{m} {v:.3f}" for m, v in decision.by_method.items())
        print(f"mean IoU of {key}'s masks on {decision.instances} matched instances of "
              f"{decision.images} validation images: {decision.iou_before:.3f} as predicted; "
              f"refined: {methods}")
    return 0


def register(sub, add) -> None:
    """Add the `refine-check` command to the CLI's subparsers (`add` makes one with --json)."""
    p = add("refine-check", cmd_refine_check,
            "measure whether refining predicted masks with image edges (GrabCut, an edge-aware "
            "filter) raises their IoU on the validation split; keeps the decision in the "
            "project (on: `predict` stores that model's masks refined)")
    add_model_options(p)
    p.add_argument("--stored", action="store_true",
                   help="measure the predictions already stored for the model version "
                        "(--model vN, default the active one) instead of predicting")
    p.add_argument("--score-threshold", type=float, default=0.05)
