"""The `categories` command: the project's categories, the class names a model suggested, and
the decisions on them (accept, map, ignore). Arguments and output only: the rule is
`mrcnn.serving.named_predictions`."""

from __future__ import annotations

import argparse
import json
import sys

from mrcnn.errors import ProjectError
from mrcnn.keypoints import COCO_PERSON, KeypointError, KeypointSchema
from mrcnn.store.project import Project
from mrcnn.store.suggestions import CategorySuggestion

DECIDE_HINT = ("decide with: python -m mrcnn categories PROJECT --accept NAME | "
               "--map NAME=CATEGORY | --ignore NAME")


def describe_suggestions(suggestions: list[CategorySuggestion]) -> str:
    """One line per suggested class name, and how to decide (what `predict` prints too)."""
    lines = [f"  {s.name!r}: {s.predictions} predictions on {len(s.image_ids)} images"
             for s in suggestions]
    return "\n".join(["classes the model knows but the project lacks (not stored):", *lines,
                      DECIDE_HINT])


#: Keypoint schemas `--keypoints CATEGORY --template NAME` offers.
KEYPOINT_TEMPLATES = {"coco-person": COCO_PERSON}


def keypoint_schema(args: argparse.Namespace) -> KeypointSchema | None:
    """The schema `--names`/`--skeleton`, `--template` or `--clear-keypoints` ask for (None:
    clear); ProjectError for none or several of them."""
    given = [bool(args.names), bool(args.template), bool(args.clear_keypoints)]
    if sum(given) != 1:
        raise ProjectError("--keypoints CATEGORY needs one of --names a,b,c [--skeleton a-b,b-c]"
                           ", --template " + "|".join(KEYPOINT_TEMPLATES)
                           + " or --clear-keypoints")
    if args.skeleton and not args.names:
        raise ProjectError("--skeleton goes with --names")
    if args.clear_keypoints:
        return None
    if args.template:
        return KEYPOINT_TEMPLATES[args.template]
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    pairs = [tuple(p.strip() for p in pair.split("-")) for pair in
             (args.skeleton or "").split(",") if pair.strip()]
    try:
        return KeypointSchema.from_names(names, pairs)
    except KeypointError as exc:
        raise ProjectError(str(exc)) from None


def _set_keypoints(project: Project, args: argparse.Namespace) -> str:
    schema = keypoint_schema(args)
    cat = next((c for c in project.categories() if c.name == args.keypoints), None)
    if cat is None:
        raise ProjectError(f"the project has no category {args.keypoints!r}; its categories "
                           f"are: {', '.join(c.name for c in project.categories()) or 'none'}")
    project.set_category_keypoints(cat.id, schema)
    if schema is None:
        return f"{cat.name!r} has no keypoints now"
    return f"{cat.name!r} has {schema.size} keypoints: {', '.join(schema.names)}"


def cmd_categories(args: argparse.Namespace) -> int:
    from mrcnn.serving import named_predictions as rule

    writes = args.accept or args.map or args.ignore or args.keypoints
    if not args.keypoints and (args.names or args.template or args.clear_keypoints
                               or args.skeleton):
        raise ProjectError("--names, --skeleton, --template and --clear-keypoints go with "
                           "--keypoints CATEGORY")
    with Project.open(args.project, read_only=not writes) as project:
        done = []
        if args.keypoints:
            done.append(_set_keypoints(project, args))
        for name in args.accept:
            cat = rule.accept_suggestion(project, name)
            done.append(f"accepted {name!r}: category {cat.name!r} (its images will be "
                        "predicted again)")
        for pair in args.map:
            name, sep, category = pair.partition("=")
            if not sep or not name.strip() or not category.strip():
                raise ProjectError(f"--map needs NAME=CATEGORY, got {pair!r}")
            cat = rule.map_suggestion(project, name.strip(), category.strip())
            done.append(f"mapped {name.strip()!r} to {cat.name!r} (its images will be "
                        "predicted again)")
        for name in args.ignore:
            rule.ignore_suggestion(project, name)
            done.append(f"ignoring {name!r}")
        cats = project.categories()
        names = {c.id: c.name for c in cats}
        decisions = project.category_decisions()
        suggestions = rule.suggestions(project)
    if args.json:
        print(json.dumps({
            "categories": [c.name for c in cats],
            "keypoints": {c.name: {"names": list(c.keypoints.names),
                                   "skeleton": [list(p) for p in c.keypoints.skeleton]}
                          for c in cats if c.keypoints is not None},
            "decisions": [{"name": d.name, "decision": d.decision,
                           "category": names.get(d.category_id) if d.category_id else None}
                          for d in decisions],
            "suggestions": [{"name": s.name, "predictions": s.predictions,
                             "images": list(s.image_ids)} for s in suggestions]}))
        return 0
    for line in done:
        print(line, file=sys.stderr)
    print("categories   " + (", ".join(c.name for c in cats) or "none yet"))
    for c in cats:
        if c.keypoints is not None:
            print(f"  {c.name!r} keypoints: {', '.join(c.keypoints.names)}")
    for d in decisions:
        what = f"→ {names.get(d.category_id or 0)!r}" if d.decision == "map" else "ignored"
        print(f"  {d.name!r} {what}")
    if suggestions:
        print(describe_suggestions(suggestions))
    return 0


def register(sub, add) -> None:
    """Add the `categories` command to the CLI's subparsers (`add` makes one with --json)."""
    p = add("categories", cmd_categories,
            "the categories, the class names a model suggested, and decisions on them")
    p.add_argument("--accept", action="append", default=[], metavar="NAME",
                   help="add the suggested class NAME as a category")
    p.add_argument("--map", action="append", default=[], metavar="NAME=CATEGORY",
                   help="store predictions of class NAME under the project's CATEGORY")
    p.add_argument("--ignore", action="append", default=[], metavar="NAME",
                   help="never store predictions of class NAME")
    p.add_argument("--keypoints", default=None, metavar="CATEGORY",
                   help="set CATEGORY's keypoint schema (with --names, --template or "
                   "--clear-keypoints); training then learns its points too")
    p.add_argument("--names", default=None, metavar="a,b,c",
                   help="the keypoint names, in order (a name with left/right in it "
                   "swaps with its mirror name when images are flipped)")
    p.add_argument("--skeleton", default=None, metavar="a-b,b-c",
                   help="pairs of keypoint names joined by lines")
    p.add_argument("--template", default=None, choices=sorted(KEYPOINT_TEMPLATES),
                   help="a ready schema: coco-person (COCO's 17 keypoints and skeleton)")
    p.add_argument("--clear-keypoints", action="store_true",
                   help="remove CATEGORY's keypoint schema (refused while instances carry "
                   "points)")
