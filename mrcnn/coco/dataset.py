"""The format-neutral middle of every import and export (COCO, YOLO-seg, mask PNGs, labelme,
Pascal VOC).

Import: a format's reader turns its files into a `LabelledSet` (every record checked, every
mask decoded at the size of its image, nothing touched yet); `commit_import` then writes it
into the project in one transaction, with the rules every format shares (categories by name,
images by file, duplicates skipped, statuses). A bad record anywhere means nothing imported.

Export: `export_images` gives the project's accepted instances per image, and
`write_folder_atomic` makes a format's output folder appear whole or not at all.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mrcnn import masks
from mrcnn.coco.keypoints import check_inside, same_schema, schema_conflict
from mrcnn.errors import DatasetFormatError, ImageReadError
from mrcnn.io.atomic import EXPORT_MARKER, fsync_dir
from mrcnn.io.images import ImageInfo, verify_image
from mrcnn.io.remote import RemoteImage, check_url, is_url, join_url
from mrcnn.keypoints import KeypointSchema, Points
from mrcnn.store.project import Project
from mrcnn.store.records import Category, ImageRecord
from mrcnn.store.status import after_import

IMPORT_STATUSES = ("reviewed", "in_review")


# ---------------------------------------------------------------- import
@dataclass
class ImportReport:
    images_added: int = 0
    images_known: int = 0
    #: images the project already held under another path or URL, the same file content:
    #: their labels went there, not onto a second copy
    images_same_content: int = 0
    categories_added: int = 0
    annotations_added: int = 0
    duplicates_skipped: int = 0
    empty_skipped: int = 0
    images_marked: int = 0
    status: str = "reviewed"
    format: str = "coco"
    #: records a format can hold but we cannot (labelme points and lines, ...), by kind
    skipped: dict[str, int] = field(default_factory=dict)
    #: what was corrected rather than refused, or kept as it was (a wrong num_keypoints
    #: recomputed, keypoints given to instances already in the project), one line each
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LabelledInstance:
    image: str  # the image's file name as the labelled file gives it
    category: str
    rle: masks.Rle
    where: str  # the record, for messages
    #: (x, y, v) per name of its category's schema (`LabelledSet.schemas`); None: no points
    keypoints: Points | None = None


@dataclass
class LabelledSet:
    """What a reader found, all checked: nothing in here can fail to import."""

    source: Path
    format: str
    files: ImageFiles
    categories: list[str]  # in the file's order (new categories are added in it)
    images: list[str]  # file names, in the file's order
    instances: list[LabelledInstance]
    #: the status an image had in the project that exported it (our own files only)
    statuses: dict[str, str] = field(default_factory=dict)
    #: COCO's own ids, kept where the project has none yet (`mrcnn.coco.ids`)
    category_ids: dict[str, int] = field(default_factory=dict)
    image_ids: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    #: keypoint schemas by category name (categories the file gives keypoints)
    schemas: dict[str, KeypointSchema] = field(default_factory=dict)
    #: lines for the import's report (`ImportReport.notes`)
    notes: list[str] = field(default_factory=list)


class ImageFiles:
    """The images a labelled file names, resolved inside one folder and read once each.

    A name that leaves the folder (absolute, `..`) is refused; an image that does not decode
    is refused naming the record that points at it."""

    def __init__(self, images_dir: str | Path, error: type[DatasetFormatError] =
                 DatasetFormatError, *, field: str = "file name"):
        self.error = error
        self.field = field  # what the format calls an image's name, for messages
        self._found: dict[str, tuple[Path | RemoteImage, ImageInfo]] = {}
        #: a project over a URL: the images are read from under it (through the cache)
        self.url = check_url(str(images_dir)) if is_url(images_dir) else None
        self.images_dir = Path(images_dir)
        if self.url is None and not self.images_dir.is_dir():
            raise error(f"images folder {self.images_dir} does not exist")
        self._root = self.images_dir.resolve()

    def resolve(self, file_name: str, where: str) -> Path | RemoteImage:
        """The file `file_name` names, refused if it lies outside the images folder (or
        the URL the images are under)."""
        name = file_name.replace("\\", "/")
        if Path(name).is_absolute() or (len(name) > 1 and name[1] == ":") or is_url(name):
            raise self.error(f"{where}: {self.field} {file_name!r} is an absolute path; it must "
                             "be relative to the images folder")
        if self.url is not None:
            key = posixpath.normpath(name)
            if key in (".", "..") or key.startswith("../"):
                raise self.error(f"{where}: {self.field} {file_name!r} points outside the "
                                 f"images under {self.url}")
            return RemoteImage(join_url(self.url, key))
        # Judged on the name itself: a symbolic link the user placed in the folder is fine.
        candidate = Path(os.path.normpath(self._root / name))
        if not candidate.is_relative_to(self._root) or candidate == self._root:
            raise self.error(f"{where}: {self.field} {file_name!r} points outside the images "
                             f"folder {self._root}")
        return candidate

    def read(self, file_name: str, where: str) -> tuple[Path | RemoteImage, ImageInfo]:
        """The image's path (or URL) and its size as shown (EXIF applied), read once."""
        if file_name not in self._found:
            path = self.resolve(file_name, where)
            try:
                info = verify_image(path)
            except ImageReadError as exc:
                raise self.error(f"{where}: {exc}") from None
            self._found[file_name] = (path, info)
        return self._found[file_name]

    def size(self, file_name: str, where: str) -> tuple[int, int]:
        """(height, width) of the image as shown."""
        info = self.read(file_name, where)[1]
        return info.height, info.width


def commit_import(project: Project, data: LabelledSet, *, status: str = "reviewed"
                  ) -> ImportReport:
    """Write a checked `LabelledSet` into the project in one transaction: a failure anywhere
    leaves the project as it was.

    Categories are matched by name (new ones added in the file's order), images by file; a
    file outside the images folder whose content the project already holds goes to that
    image (labels made on a copy of the project's images land on its own, not on a second
    copy that would count twice in training and show as a new image);
    an instance already accepted on its image (same category, same mask) is skipped; an
    empty mask is skipped. Images that receive instances get `status`; our own exports'
    recorded statuses come back (a reviewed image with no objects is a true negative).

    Keypoints: a category without a schema gets the file's (`data.schemas`); one with a
    different schema is refused before anything is written. Points are stored with their
    instance; a skipped duplicate without points receives the file's (notes say so)."""
    if status not in IMPORT_STATUSES:
        raise ValueError(f"status must be one of {IMPORT_STATUSES}, got {status!r}")
    report = ImportReport(status=status, format=data.format, skipped=dict(data.skipped),
                          notes=list(data.notes))
    files = {name: data.files.read(name, f"{data.source}: image {name!r}")
             for name in data.images}
    for inst in data.instances:
        h, w = data.files.size(inst.image, inst.where)
        if (inst.rle.height, inst.rle.width) != (h, w):
            raise data.files.error(f"{inst.where}: mask is {inst.rle.width}x"
                                   f"{inst.rle.height} but the image is {w}x{h}")
        if inst.keypoints is not None:
            schema = data.schemas.get(inst.category)
            if schema is None:
                raise data.files.error(f"{inst.where}: has keypoints but its category "
                                       f"{inst.category!r} has no keypoint names")
            check_inside(inst.keypoints, schema, h, w, inst.where, data.files.error)
    _check_schemas(project, data)
    with project.transaction():
        cat_sources = project.category_coco_ids()
        cat_ids: dict[str, int] = {}
        for name in data.categories:
            existing = project.category_by_name(name)
            cat_ids[name] = existing.id if existing else project.add_category(name).id
            report.categories_added += existing is None
            if name in data.category_ids and cat_sources.get(cat_ids[name]) is None:
                project.set_category_coco_id(cat_ids[name], data.category_ids[name])
            schema = data.schemas.get(name)
            if schema is not None and project.category_schema(cat_ids[name]) is None:
                project.set_category_keypoints(cat_ids[name], schema)
                if existing is not None:
                    report.notes.append(f"category {name!r} now has the file's "
                                        f"{schema.size} keypoints")
        image_sources = project.image_coco_ids()
        by_content = project.image_ids_by_content()
        image_ids: dict[str, int] = {}
        for name, (path, info) in files.items():
            file = str(path) if isinstance(path, RemoteImage) else path  # a URL: its key
            stored_as = project.image_key(file)
            known = project.image_by_key(stored_as)
            if known:
                report.images_known += 1
                image_ids[name] = known.id
            elif project.is_outside_key(stored_as) and info.sha256 in by_content:
                report.images_same_content += 1
                image_ids[name] = by_content[info.sha256]
            else:
                report.images_added += 1
                image_ids[name] = project.add_image(file, info.width, info.height,
                                                    info.sha256).id
            if name in data.image_ids and image_sources.get(image_ids[name]) is None:
                project.set_image_coco_id(image_ids[name], data.image_ids[name])
        # (image, category, mask) -> (instance id, its points): accepted ones, not predictions
        seen = {
            (inst.image_id, inst.category_id, inst.rle.counts): (inst.id, inst.keypoints)
            for image_id in {image_ids[i.image] for i in data.instances}
            for inst in project.instances(image_id, state="accepted")
        }
        points_added = points_kept = 0
        annotated: set[int] = set()
        for inst in data.instances:
            if inst.rle.area == 0:
                report.empty_skipped += 1
                continue
            key = (image_ids[inst.image], cat_ids[inst.category], inst.rle.counts)
            if key in seen:
                report.duplicates_skipped += 1
                known_id, known_points = seen[key]
                if inst.keypoints is not None and known_points is None:
                    # the same object labelled again with its keypoints: they are new work
                    project.set_instance_keypoints(known_id, inst.keypoints)
                    seen[key] = (known_id, inst.keypoints)
                    points_added += 1
                elif inst.keypoints is not None and known_points != inst.keypoints:
                    points_kept += 1
                continue
            added = project.add_instance(key[0], key[1], inst.rle, source="manual",
                                         state="accepted", keypoints=inst.keypoints)
            seen[key] = (added.id, added.keypoints)
            annotated.add(key[0])  # only images that received something change status
            report.annotations_added += 1
        marks = {image_id: status for image_id in annotated}
        for name, recorded in data.statuses.items():
            if recorded == "reviewed" or image_ids[name] in marks:
                marks[image_ids[name]] = after_import(recorded)
        for image_id, mark in marks.items():
            if not (mark == "in_review" and project.image(image_id).status == "reviewed"):
                project.set_image_status(image_id, mark)
        report.images_marked = len(marks)
    if points_added:
        report.notes.append(f"{points_added} instance(s) already in the project received "
                            "the file's keypoints")
    if points_kept:
        report.notes.append(f"{points_kept} instance(s) already in the project kept their "
                            "own keypoints (the file's differ)")
    if report.images_same_content:
        report.notes.append(f"{report.images_same_content} image(s) are already in the "
                            "project under another path (the same file): their labels went "
                            "there, not onto a second copy")
    return report


def _check_schemas(project: Project, data: LabelledSet) -> None:
    """Refuse a file whose keypoint schema for a category differs from the one the
    project's category of that name has (a category without one is given the file's)."""
    for name, schema in data.schemas.items():
        existing = project.category_by_name(name)
        if existing is not None and existing.keypoints is not None and not same_schema(
                existing.keypoints, schema):
            record = (f"category id {data.category_ids[name]}: "
                      if name in data.category_ids else "")
            raise data.files.error(f"{data.source}: {record}"
                                   f"{schema_conflict(name, existing.keypoints, schema)}")


# ---------------------------------------------------------------- export
@dataclass
class ExportReport:
    path: Path
    images: int = 0
    annotations: int = 0
    categories: int = 0
    masks: str = "rle"
    rle_fallbacks: int = 0  # instances written as RLE because a polygon would lose pixels
    notes: list[str] = field(default_factory=list)
    format: str = "coco"
    #: what the format could not hold, by kind ("instances with holes": 3, ...)
    losses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportInstance:
    id: int
    category: Category
    rle: masks.Rle
    #: (x, y, v) per name of `category.keypoints`; None: no points (or no schema)
    keypoints: Points | None = None

    def mask(self):
        return masks.decode(self.rle)


@dataclass(frozen=True)
class ExportImage:
    record: ImageRecord
    source: Path | RemoteImage  # the image file, or its URL (remote images)
    name: str  # its name inside an export: relative, POSIX, never leaving the export folder
    instances: list[ExportInstance]

    def local_path(self) -> Path:
        """A local file with the image: itself, or for a remote image its copy in the image
        cache (fetched now: call it right before the file is needed, one image at a time,
        so a small cache never drops it first)."""
        return self.source.local_path() if isinstance(self.source, RemoteImage) else self.source


def export_name(record: ImageRecord) -> str:
    """The name an image takes inside an export folder: its path in the project where that
    is relative and stays inside; otherwise its file name under `outside/`, made unique by
    the start of its hash."""
    parts = PurePosixPath(record.path.replace("\\", "/")).parts
    if (parts and not PurePosixPath(record.path).is_absolute() and ":" not in parts[0]
            and all(p not in ("..", ".", "") for p in parts)):
        return "/".join(parts)
    return f"outside/{record.sha256[:12]}_{PurePosixPath(parts[-1] if parts else 'image').name}"


def export_images(project: Project, *, reviewed_only: bool = False
                  ) -> tuple[list[Category], list[ExportImage]]:
    """The project's categories and, per image (all, or the reviewed ones), its accepted
    instances in the order they were made. Predictions are never exported."""
    categories = project.categories()
    by_id = {c.id: c for c in categories}
    images = project.images("reviewed" if reviewed_only else None)
    wanted = {im.id: [] for im in images}  # type: dict[int, list[ExportInstance]]
    points = accepted_points(project)
    for (iid, image_id, cat_id, h, w, counts, *_rest) in project.instance_rows("accepted"):
        if image_id in wanted:
            wanted[image_id].append(ExportInstance(iid, by_id[cat_id], masks.Rle(h, w, counts),
                                                   points.get(iid)))
    return categories, [ExportImage(im, project.image_source(im), export_name(im),
                                    wanted[im.id]) for im in images]


def accepted_points(project: Project, image_ids: Collection[int] | None = None
                    ) -> dict[int, Points]:
    """The points of the accepted instances that carry some (on `image_ids`, default all),
    by instance id (one query over the points alone); nothing is read when no category has
    a keypoint schema."""
    if not any(c.keypoints is not None for c in project.categories()):
        return {}
    return project.points_by_instance("accepted", image_ids)


def check_out_folder(out_dir: Path) -> None:
    """Refuse an output folder that cannot be written or would destroy something: it must
    be new, empty, or an earlier export of ours (which is then replaced whole)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetFormatError(f"{out_dir} is a file; give a folder for this format")
    parent = out_dir.parent
    if not parent.is_dir():
        raise DatasetFormatError(f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DatasetFormatError(f"cannot write in folder {parent}")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / EXPORT_MARKER).is_file():
        raise DatasetFormatError(
            f"{out_dir} is not empty and is not an earlier export; choose a new or empty "
            "folder (nothing was written)")


def write_folder_atomic(out_dir: str | Path, fill: Callable[[Path], None],
                        verify: Callable[[Path], None] | None = None) -> None:
    """Make `out_dir` by calling `fill` on a temporary folder beside it, then `verify`, then
    renaming it into place: readers see the earlier export or the new one, never half of
    one. An earlier export there is replaced whole; any failure leaves it as it was."""
    out_dir = Path(out_dir)
    check_out_folder(out_dir)
    parent = out_dir.parent
    tmp = parent / f".{out_dir.name}.{secrets.token_hex(4)}.tmp"
    old = parent / f".{out_dir.name}.{secrets.token_hex(4)}.old"
    tmp.mkdir()
    try:
        fill(tmp)
        (tmp / EXPORT_MARKER).write_text("written by Mask R-CNN Studio; a new export "
                                         "replaces this folder whole\n", encoding="utf-8")
        if verify is not None:
            verify(tmp)
        for dirpath, _dirs, _files in os.walk(tmp):
            fsync_dir(dirpath)
        if out_dir.exists():
            os.replace(out_dir, old)
        try:
            os.replace(tmp, out_dir)
        except BaseException:
            if old.exists():
                os.replace(old, out_dir)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


def place_image(src: Path, dst: Path) -> None:
    """Put an image file into an export: a hard link where the file system allows (no
    copy, no space), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        try:
            shutil.copy2(src, dst)
        except OSError as exc:
            raise DatasetFormatError(f"cannot copy image {src} into the export: "
                                     f"{exc.strerror or exc}; nothing was written") from None
