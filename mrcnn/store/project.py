"""The project store: a folder with `project.db` (SQLite, WAL) and `models/`.

Every public method that changes data is one transaction, committed (and fsynced) before it
returns: that is the autosave. `Project.transaction()` groups several changes into one.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mrcnn.errors import ProjectError
from mrcnn.io.remote import RemoteImage, check_url, is_url, join_url, url_key, url_name
from mrcnn.io.user_dirs import user_data_dir
from mrcnn.store import schema
from mrcnn.store.category_store import CategoryStore
from mrcnn.store.coco_ids import CocoIdStore
from mrcnn.store.instances import InstanceStore
from mrcnn.store.keypoint_store import KeypointStore
from mrcnn.store.lock import WriteLock
from mrcnn.store.records import (
    IMAGE_STATUSES,
    SPLITS,
    STATES,
    ImageRecord,
)
from mrcnn.store.rows import (
    IMAGE_COLS,
    check_value,
    image_from_row,
)
from mrcnn.store.suggestions import SuggestionStore
from mrcnn.store.suspect_checks import SuspectCheckStore
from mrcnn.store.version_store import VersionStore

DB_NAME = "project.db"
#: Where a project made over a folder of images lives: inside it, hidden (scans skip it).
PROJECT_DIRNAME = ".mrcnn-project"
MODELS_DIR = "models"
#: Fraction of images that go to the validation split when they are added (by content hash;
#: the split then stays until a person moves the image: `Project.set_image_split`).
VAL_FRACTION = 0.2
#: Environment variable naming the folder where projects over URLs go by default.
REMOTE_PROJECTS_ENV = "MRCNN_PROJECTS"


def split_for(sha256: str) -> str:
    """The stable split of an image, from its content hash."""
    return "val" if int(sha256[:8], 16) % 1000 < VAL_FRACTION * 1000 else "train"


def is_project(folder: str | Path) -> bool:
    return (Path(folder) / DB_NAME).is_file()


def find_project(path: str | Path) -> Path | None:
    """The project PATH names: PATH itself when it is a project, else the project kept in the
    hidden `PROJECT_DIRNAME` folder of the folder of images PATH; None when it names none.
    The one rule by which the window and every command find a project."""
    path = Path(path).expanduser()
    if is_project(path):
        return path
    if is_project(path / PROJECT_DIRNAME):
        return path / PROJECT_DIRNAME
    return None


def remote_project_folder(url: str) -> Path:
    """Where the project over the images under `url` goes unless the user picks a folder:
    one folder per URL under the user's data folder (`REMOTE_PROJECTS_ENV` overrides it),
    named for the URL, so opening the same URL again reopens its project."""
    url = check_url(url)
    base = os.environ.get(REMOTE_PROJECTS_ENV)
    parent = Path(base) if base else user_data_dir() / "projects"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", url.split("://", 1)[1]).strip("-.")[:60]
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    return parent / f"{slug or url_name(url)}-{digest}"


def project_folder_for(path: str | Path) -> tuple[Path, Path | None]:
    """(project folder, images folder to create it over, or None when it exists) for a PATH
    that is a project or a folder of images."""
    path = Path(path).expanduser()
    found = find_project(path)
    if found is not None:
        return found, None
    if not path.exists():
        raise ProjectError(f"{path} does not exist")
    if not path.is_dir():
        raise ProjectError(f"{path} is not a folder; open a folder of images or a project")
    return path / PROJECT_DIRNAME, path


class Project(CategoryStore, VersionStore, KeypointStore, InstanceStore, SuggestionStore,
              CocoIdStore, SuspectCheckStore):
    """An open project. Use `Project.create` or `Project.open`; close it (or use `with`)."""

    def __init__(self, folder: Path, conn: sqlite3.Connection, lock: WriteLock | None):
        self.folder = folder
        self._conn: sqlite3.Connection | None = conn
        self._lock = lock
        self._depth = 0
        self.read_only = lock is None
        self.images_root = folder.resolve()
        #: the URL of the images when they are remote (`images_root` is then the project
        #: folder, the local place file dialogs start in)
        self.images_url: str | None = None
        self._load_images_root()

    def _load_images_root(self) -> None:
        root = self.meta("images_root")
        if root and is_url(root):
            self.images_url = root
        elif root:
            self.images_root = (self.folder / root).resolve()

    @property
    def is_remote(self) -> bool:
        """Whether the images are under a URL (read through the local image cache)."""
        return self.images_url is not None

    @property
    def images_location(self) -> str:
        """Where the images are, as a person reads it: the images folder, or the URL."""
        return self.images_url or str(self.images_root)

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, folder: str | Path, images_root: str | Path) -> Project:
        """Make a new project in `folder` over the images under `images_root`: a local
        folder, or a URL (s3://, gs://, az://, http(s)://, ...; kept as given, without
        credentials, and not contacted here: `mrcnn.store.scan` lists it)."""
        folder = Path(folder)
        if is_project(folder):
            raise ProjectError(f"a project already exists in {folder}")
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} exists and is not a folder")
        url = check_url(str(images_root)) if is_url(images_root) else None
        images_root = Path(images_root)
        if url is None and not images_root.is_dir():
            raise ProjectError(f"images folder {images_root} does not exist")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MODELS_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create project folder {folder}: "
                               f"{exc.strerror or exc}") from None
        project = cls._connect(folder, read_only=False)
        try:
            root = url or _relative_or_absolute(images_root.resolve(), folder.resolve(),
                                                allow_up=True)
            with project.transaction():
                project._set_meta("images_root", root)
                project._set_meta("created_at", repr(time.time()))
            project._load_images_root()
        except BaseException:
            project.close()
            raise
        return project

    @classmethod
    def open(cls, folder: str | Path, *, read_only: bool = False) -> Project:
        """Open an existing project: `folder` is the project, or the folder of images it was
        made over (see `find_project`). Raises ProjectLockedError when another process
        writes it."""
        found = find_project(folder)
        if found is None:
            raise ProjectError(f"{folder} is not a project (no {DB_NAME} in it) nor a folder "
                               f"of images with one (no {PROJECT_DIRNAME} folder in it)")
        return cls._connect(found, read_only=read_only)

    @classmethod
    def _connect(cls, folder: Path, *, read_only: bool) -> Project:
        lock = None
        if not read_only:
            lock = WriteLock(folder)
            lock.acquire()
        conn = None
        try:
            db = folder / DB_NAME
            try:
                if read_only:
                    conn = sqlite3.connect(
                        f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
                    )
                else:
                    conn = sqlite3.connect(db, isolation_level=None)
                conn.execute("PRAGMA busy_timeout = 5000")
                conn.execute("PRAGMA foreign_keys = ON")
                version = schema.schema_version(conn)
                if version > schema.LATEST:
                    raise ProjectError(
                        f"project {folder} has schema version {version}, made by a newer "
                        f"program; this one understands up to {schema.LATEST}"
                    )
                if not read_only:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = FULL")
                    try:
                        schema.migrate(conn)
                    except sqlite3.Error as exc:
                        raise ProjectError(
                            f"cannot upgrade project {folder} from schema version {version} "
                            f"({exc}); it was left as it was"
                        ) from None
                elif version < schema.LATEST:
                    raise ProjectError(
                        f"project {folder} needs an upgrade; open it once for writing"
                    )
            except sqlite3.Error as exc:
                raise ProjectError(f"{db} is not a readable project database ({exc})") from None
        except BaseException:
            if conn is not None:
                conn.close()
            if lock:
                lock.release()
            raise
        return cls(folder, conn, lock)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @property
    def models_dir(self) -> Path:
        return self.folder / MODELS_DIR

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable unit of change. Nested calls join the outer transaction."""
        if self.read_only:
            raise ProjectError(f"project {self.folder} is open read-only")
        conn = self._connection()
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            conn.execute("ROLLBACK")
            raise
        self._depth = 0
        conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ProjectError("project is closed")
        return self._conn

    def _q(self, sql: str, args: Iterable = ()) -> sqlite3.Cursor:
        return self._connection().execute(sql, tuple(args))

    # ---------------------------------------------------------------- meta
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self._q("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._q("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def set_meta(self, key: str, value: str) -> None:
        """Keep one small project setting (text under `key`; `meta` reads it). One
        transaction."""
        with self.transaction():
            self._set_meta(key, value)

    # ---------------------------------------------------------------- images
    def image_key(self, path: str | Path) -> str:
        """How the store names an image file: relative to the images root (or URL) where
        possible.

        A symbolic link inside the images folder (git-annex, DVC, hand-made links to a shared
        store) keeps its own name there rather than the target's."""
        if self.images_url is not None and is_url(path):
            return url_key(self.images_url, str(path))
        absolute = Path(os.path.abspath(path))
        for candidate in (absolute, absolute.parent.resolve() / absolute.name):
            try:
                return candidate.relative_to(self.images_root).as_posix()
            except ValueError:
                pass
        return _relative_or_absolute(absolute.resolve(), self.images_root)

    @staticmethod
    def is_outside_key(key: str) -> bool:
        """Whether an image key (`image_key`) names a file outside the images root: an
        absolute path, or a whole URL."""
        return is_url(key) or Path(key).is_absolute()

    def image_source(self, image: ImageRecord) -> Path | RemoteImage:
        """Where to read an image: its absolute path, or for remote images the URL and the
        content hash to read it through the local cache with (`mrcnn.io.images` reads both).
        Never touches the network: the window calls it on its own thread."""
        if self.images_url is not None:
            return RemoteImage(join_url(self.images_url, image.path), image.sha256)
        return self.images_root / image.path

    def image_path(self, image: ImageRecord) -> Path:
        """The absolute path of an image file: for remote images, its copy in the local
        image cache, fetched first when it is not there (may raise RemoteStorageError)."""
        source = self.image_source(image)
        return source.local_path() if isinstance(source, RemoteImage) else source

    def add_image(self, path: str | Path, width: int, height: int, sha256: str,
                  status: str = "new") -> ImageRecord:
        """Register an image file (already probed). Returns the existing record if present."""
        check_value(status, IMAGE_STATUSES, "image status")
        key = self.image_key(path)
        with self.transaction():
            existing = self.image_by_key(key)
            if existing:
                return existing
            cur = self._q(
                "INSERT INTO images(path, width, height, sha256, status, split, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, width, height, sha256, status, split_for(sha256), time.time()),
            )
            if cur.lastrowid is None:
                raise ProjectError(f"image {key} was not stored")
            return self.image(cur.lastrowid)

    def image(self, image_id: int) -> ImageRecord:
        row = self._q(f"SELECT {IMAGE_COLS} FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise ProjectError(f"no image with id {image_id}")
        return image_from_row(row)

    def image_by_key(self, key: str) -> ImageRecord | None:
        row = self._q(f"SELECT {IMAGE_COLS} FROM images WHERE path = ?", (key,)).fetchone()
        return image_from_row(row) if row else None

    def image_ids_by_content(self) -> dict[str, int]:
        """Each image content (sha256 of the file) → the first image holding it."""
        rows = self._q("SELECT sha256, MIN(id) FROM images GROUP BY sha256").fetchall()
        return {sha: image_id for sha, image_id in rows}

    def images(self, status: str | Iterable[str] | None = None) -> list[ImageRecord]:
        """Images in insertion order, optionally only those with the given status(es)."""
        if status is None:
            rows = self._q(f"SELECT {IMAGE_COLS} FROM images ORDER BY id")
        else:
            statuses = [status] if isinstance(status, str) else list(status)
            for s in statuses:
                check_value(s, IMAGE_STATUSES, "image status")
            marks = ",".join("?" * len(statuses))
            rows = self._q(
                f"SELECT {IMAGE_COLS} FROM images WHERE status IN ({marks}) ORDER BY id",
                statuses,
            )
        return [image_from_row(r) for r in rows]

    def set_image_status(self, image_id: int, status: str) -> None:
        check_value(status, IMAGE_STATUSES, "image status")
        with self.transaction():
            cur = self._q("UPDATE images SET status = ? WHERE id = ?", (status, image_id))
            if cur.rowcount != 1:
                raise ProjectError(f"no image with id {image_id}")

    def set_image_split(self, image_id: int, split: str) -> None:
        """Move an image to another split ("train" / "val"), e.g. to give the validation set
        enough images. The window does it as an undoable step of the image's document
        (`mrcnn.editing.steps.SetSplit`); nothing else ever changes a split."""
        check_value(split, SPLITS, "split")
        with self.transaction():
            cur = self._q("UPDATE images SET split = ? WHERE id = ?", (split, image_id))
            if cur.rowcount != 1:
                raise ProjectError(f"no image with id {image_id}")

    def split_sizes(self) -> dict[str, tuple[int, int]]:
        """Per split ("train", "val"): (reviewed images, their accepted instances) — the
        data a fine-tune run trains on and scores with."""
        sizes = {str(s): (0, 0) for s in SPLITS}
        for split, images, instances in self._q(
                "SELECT im.split, COUNT(DISTINCT im.id), COUNT(inst.id) FROM images im "
                "LEFT JOIN instances inst ON inst.image_id = im.id AND inst.state = 'accepted' "
                "WHERE im.status = 'reviewed' GROUP BY im.split"):
            sizes[split] = (int(images), int(instances))
        return sizes

    def image_counts(self) -> dict[tuple[str, str], int]:
        """Images per (status, split), every pair present (zeros included): one query. The
        status and split totals of `summary` and the table of `mrcnn.store.overview`."""
        counts = {(str(st), str(sp)): 0 for st in IMAGE_STATUSES for sp in SPLITS}
        for status, split, n in self._q(
                "SELECT status, split, COUNT(*) FROM images GROUP BY status, split"):
            counts[(status, split)] = int(n)
        return counts

    # ---------------------------------------------------------------- summary
    def summary(self) -> dict:
        """Counts for `info`: images per status, instances, categories, model versions."""
        status = {str(st): 0 for st in IMAGE_STATUSES}
        splits = {str(sp): 0 for sp in SPLITS}
        for (st, sp), n in self.image_counts().items():
            status[st] += n
            splits[sp] += n
        states = dict.fromkeys(STATES, 0)
        states.update(dict(self._q("SELECT state, COUNT(*) FROM instances GROUP BY state")))
        per_cat = dict(self._q(
            "SELECT category_id, COUNT(*) FROM instances WHERE state = 'accepted' "
            "GROUP BY category_id"))
        active = self.active_model_version()
        return {
            "project": str(self.folder),
            "images_root": self.images_location,
            "schema_version": schema.schema_version(self._connection()),
            "images": {"total": sum(status.values()), **status},
            "splits": splits,
            "instances": {"total": sum(states.values()), **states},
            "categories": [
                {"id": c.id, "name": c.name, "color": c.color, "instances": per_cat.get(c.id, 0)}
                for c in self.categories()
            ],
            "model_versions": [
                {"name": v.name, "preset": v.preset, "active": v.active,
                 "created_at": v.created_at}
                for v in self.model_versions()
            ],
            "active_model": active.name if active else None,
        }

    def integrity_check(self) -> str:
        return self._q("PRAGMA integrity_check").fetchone()[0]


def _relative_or_absolute(path: Path, base: Path, *, allow_up: bool = False) -> str:
    """`path` relative to `base` (POSIX separators) when inside it (or, with `allow_up`,
    anywhere on the same drive), else absolute."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        if allow_up and path.drive == base.drive:
            return Path(os.path.relpath(path, base)).as_posix()
        return str(path)
