"""The `categories` command: the project's categories, the class names a model suggested, and
the decisions on them (accept, map, ignore). Arguments and output only: the rule is
`mrcnn.serving.named_predictions`."""

from __future__ import annotations

import argparse
import json
import sys

from mrcnn.errors import ProjectError
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


def cmd_categories(args: argparse.Namespace) -> int:
    from mrcnn.serving import named_predictions as rule

    with Project.open(args.project, read_only=not (args.accept or args.map or args.ignore)
                      ) as project:
        done = []
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
            "decisions": [{"name": d.name, "decision": d.decision,
                           "category": names.get(d.category_id) if d.category_id else None}
                          for d in decisions],
            "suggestions": [{"name": s.name, "predictions": s.predictions,
                             "images": list(s.image_ids)} for s in suggestions]}))
        return 0
    for line in done:
        print(line, file=sys.stderr)
    print("categories   " + (", ".join(c.name for c in cats) or "none yet"))
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
