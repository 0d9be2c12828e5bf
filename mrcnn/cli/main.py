"""Command line: `python -m mrcnn COMMAND ...`. The same functions the GUI calls.

Errors print one line on stderr and exit non-zero; the project is left unchanged.
`--json` prints machine-readable output on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from mrcnn import __version__
from mrcnn.errors import MrcnnError, ProjectError
from mrcnn.store.project import PROJECT_DIRNAME

log = logging.getLogger("mrcnn")

EXIT_ERROR = 1
#: What every command's PROJECT may be: the app's rule, `mrcnn.store.project.find_project`.
PROJECT_HELP = ("the project folder, or the folder of images whose project it is (kept in "
                f"its hidden {PROJECT_DIRNAME} folder)")


def _emit(args: argparse.Namespace, data: dict, text: str) -> None:
    if args.json:
        print(json.dumps(data, default=str))
    else:
        print(text)


def cmd_new(args: argparse.Namespace) -> int:
    import re

    from mrcnn.errors import RemoteStorageError
    from mrcnn.io.remote import check_url, is_url
    from mrcnn.store.project import Project, project_folder_for
    from mrcnn.store.scan import find_remote_images, scan_folder, scan_remote

    folder, images = args.project, args.images
    if is_url(str(images)):
        url = check_url(images)
        # Listed before anything is made: an unreachable URL leaves no project behind.
        keys = find_remote_images(url)
        with Project.create(folder, url) as project:
            try:
                report = scan_remote(project, keys, progress=_scan_progress(args))
            except RemoteStorageError as exc:  # the images read so far stay registered
                raise RemoteStorageError(exc.url, exc.reason, (
                    f"{exc.hint}. {len(project.images())} of {len(keys)} images were added "
                    f"to {project.folder} before that; opening it in the window adds the "
                    "rest")) from None
            return _report_new(args, project, report)
    if images is None:  # `new IMAGES_DIR`: the project goes where the window puts it
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:/", str(args.project)):
            raise ProjectError(f"{args.project} looks like a URL; PROJECT is the local "
                               "project folder to create, and the URL goes after --images")
        folder, images = project_folder_for(args.project)
        if images is None:
            raise ProjectError(f"a project already exists in {folder}")
    with Project.create(folder, Path(images)) as project:
        return _report_new(args, project, scan_folder(project))


def _scan_progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    """Progress on stderr while images under a URL are read (every 50 images)."""
    if args.json:
        return None

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"read {done} of {total} images", file=sys.stderr)

    return progress


def _report_new(args: argparse.Namespace, project, report) -> int:
    for path, reason in report.skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    _emit(args, {"project": str(project.folder), "images_root": project.images_location,
                 "added": report.added,
                 "skipped": [{"path": p, "reason": r} for p, r in report.skipped]},
          f"created project {project.folder} over {project.images_location}: "
          f"{report.added} images added, {len(report.skipped)} skipped")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mrcnn.coco.formats import import_dataset
    from mrcnn.store.project import Project

    fmt = getattr(args, "format", "coco")
    with Project.open(args.project) as project:
        r = import_dataset(project, args.file, fmt, images_dir=args.images, status=args.status)
    text = (f"imported {args.file} ({fmt}): {r.annotations_added} annotations on "
            f"{r.images_marked} images (marked {r.status}), {r.images_added} new images, "
            f"{r.categories_added} new categories")
    if r.duplicates_skipped:
        text += f", {r.duplicates_skipped} duplicates skipped"
    if r.empty_skipped:
        text += f", {r.empty_skipped} empty masks skipped"
    for kind, n in r.skipped.items():
        text += f", {n} {kind} skipped"
    for note in r.notes:
        text += f"\n  note: {note}"
    _emit(args, asdict(r), text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mrcnn.coco.formats import export_dataset
    from mrcnn.store.project import Project

    fmt = getattr(args, "format", "coco")
    with Project.open(args.project, read_only=True) as project:
        r = export_dataset(project, args.out, fmt, mask_format=args.masks,
                           reviewed_only=args.reviewed_only)
    text = (f"exported {r.annotations} annotations on {r.images} images, {r.categories} "
            f"categories to {r.path}")
    if fmt == "coco":
        text += " (verified with pycocotools)"
        if r.masks == "polygon":
            text += (f"; {r.rle_fallbacks} instances kept as RLE because a polygon would lose"
                     " pixels" if r.rle_fallbacks else "; every instance fits a polygon exactly")
    for note in r.notes:
        text += f"\n  {note}"
    _emit(args, asdict(r), text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from mrcnn.store.overview import dataset_overview
    from mrcnn.store.project import Project
    from mrcnn.training.launcher import readiness

    with Project.open(args.project, read_only=True) as project:
        s = project.summary()
        o = dataset_overview(project)
        ready = readiness(project)
    per = o.per_image
    lines = [
        f"project      {s['project']}",
        f"images root  {s['images_root']}",
        "images       " + ", ".join(
            f"{k} {v}" for k, v in s["images"].items()) + f"  (val split {s['splits']['val']})",
        *(f"  {split:<11}" + ", ".join(f"{st} {n[split]}" for st, n in o.images.items())
          for split in ("train", "val")),
        "instances    " + ", ".join(f"{k} {v}" for k, v in s["instances"].items()),
        "  sizes      " + "; ".join(f"{split}: small {z.small}, medium {z.medium}, large "
                                    f"{z.large}" for split, z in o.sizes.items()),
        f"  per image  {per.images} reviewed images"
        + (f": {per.min} to {per.max} instances, median {per.median:g}; "
           f"{per.negatives} without any" if per.images else ""),
        f"categories   {len(s['categories'])}"
        + "".join(f"\n  {c.id:>4}  {c.name}  ({c.train + c.val})  train {c.train}, val "
                  f"{c.val}, pending {c.pending}" for c in o.categories),
        f"models       {len(s['model_versions'])}, active: {s['active_model'] or 'none'}",
        # the window's Fine-tune rule (mrcnn.training.launcher.Readiness)
        f"fine-tune    {ready.describe() or 'ready'}",
    ]
    fine_tune = {"ready": ready.ready, "missing": ready.describe(), "advice": ready.advice()}
    _emit(args, {**s, "overview": o.to_dict(), "fine_tune": fine_tune}, "\n".join(lines))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are errors too: one line on stderr, pointing at --help."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m mrcnn",
        description="Mask R-CNN Studio on the command line: projects, COCO import/export, "
        "prediction, training and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"mrcnn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable, help_: str, *,
            project: str = PROJECT_HELP) -> argparse.ArgumentParser:
        """A command with --json whose first argument is the PROJECT (`project`: its help)."""
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.add_argument("project", type=Path, help=project)
        p.set_defaults(func=func)
        return p

    p = add("new", cmd_new, "create a project over a folder of images, or images under a "
        "URL (recursive)",
        project="project folder to create; without --images, the folder of images (the "
        f"project goes in its hidden {PROJECT_DIRNAME} folder, where the app keeps it)")
    p.add_argument("--images", default=None,
                   help="folder of images, or a URL: s3://, gs://, az://, http(s)://, or "
                   "anything fsspec reads (cloud plugins: pip install 'mrcnn-studio[remote]'; "
                   "credentials from the storage's usual places, never stored); images are "
                   "read once to register them and kept in a local, bounded cache")

    from mrcnn.coco.formats import FORMATS

    formats_help = "; ".join(f"{f.name}: {f.describe}" for f in FORMATS.values())
    for name, general in (("import-coco", False), ("import", True)):
        p = add(name, cmd_import, "import labelled data in any format (all or nothing)"
                if general else "import a COCO file (all or nothing)")
        p.add_argument("file", type=Path, help="the file or folder to import (COCO: a .json "
                       "file; the other formats: their folder)" if general else "COCO .json file")
        if general:
            p.add_argument("--format", choices=tuple(FORMATS), default="coco",
                           help=formats_help)
        p.add_argument("--images", default=None,
                       help="folder (or URL) the image names are relative to (default: the "
                       "project's images for a project over a URL, else the format's "
                       "own place: the JSON's folder for COCO, images/ for YOLO, JPEGImages/ "
                       "for VOC, the project's images for labelme and mask PNGs)")
        p.add_argument("--status", choices=("reviewed", "in_review"), default="reviewed",
                       help="status of images that arrive with annotations (default: reviewed)")

    for name, general in (("export-coco", False), ("export", True)):
        p = add(name, cmd_export, "export accepted instances in any format (written "
                "atomically)" if general else "export accepted instances as COCO JSON")
        p.add_argument("out", type=Path, help="output: a .json file for COCO, a new or empty "
                       "folder for the other formats" if general
                       else "output .json file (written atomically)")
        if general:
            p.add_argument("--format", choices=tuple(FORMATS), default="coco",
                           help=formats_help)
        p.add_argument("--masks", choices=("rle", "polygon"), default="rle",
                       help="COCO segmentation format; polygon falls back to RLE where it "
                       "would lose pixels")
        p.add_argument("--reviewed-only", action="store_true",
                       help="only images marked reviewed")

    from mrcnn.cli import analysis as cli_analysis
    from mrcnn.cli import categories as cli_categories
    from mrcnn.cli import model as cli_model
    from mrcnn.cli import refine as cli_refine
    from mrcnn.cli import train as cli_train

    cli_model.register(sub, add)
    cli_train.register(sub, add)
    cli_categories.register(sub, add)
    cli_refine.register(sub, add)
    cli_analysis.register(sub, add)

    add("info", cmd_info, "images per status, instances, categories, model versions")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except MrcnnError as exc:
        # One line, whatever the message: scripts read the first line of stderr.
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # disk full, permission denied, ...: not a bug, still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.Error as exc:
        print(f"error: project database: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; nothing was changed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
