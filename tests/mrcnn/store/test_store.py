"""The project store: durable, locked, migrated, and every edit committed at once."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mrcnn import masks
from mrcnn.errors import ProjectError, ProjectLockedError
from mrcnn.store import schema
from mrcnn.store.project import DB_NAME, Project, split_for
from mrcnn.store.records import InstanceState, Source

REPO = Path(__file__).resolve().parents[3]


def _mask(h: int, w: int, box: tuple[int, int, int, int]) -> masks.Rle:
    m = np.zeros((h, w), bool)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = True
    return masks.encode(m)


def _fill(project: Project) -> None:
    """Two images (one in a sub-folder), two categories, three instances, one reviewed."""
    root = project.images_root
    a = project.add_image(root / "a.png", 40, 30, "0" * 64)
    b = project.add_image(root / "sub" / "b.png", 20, 10, "f" * 64)
    dog = project.add_category("dog")
    cat = project.add_category("cat")
    project.add_instance(a.id, dog.id, _mask(30, 40, (0, 10, 0, 10)))
    project.add_instance(a.id, cat.id, _mask(30, 40, (5, 30, 20, 40)))
    project.add_instance(b.id, cat.id, _mask(10, 20, (1, 2, 3, 4)), source="model",
                         score=0.75, state="pending")
    project.set_image_status(a.id, "reviewed")


def _state(project: Project) -> tuple:
    return (project.summary(), project.images(), project.categories(), project.instances(),
            project.model_versions())


@pytest.fixture
def images(tmp_path) -> Path:
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    return d


@pytest.fixture
def project(images, tmp_path):
    p = Project.create(tmp_path / "proj", images)
    yield p
    p.close()


def _child(code: str, *args: str) -> subprocess.Popen:
    """A Python child process that runs `code`; it talks over stdin/stdout lines."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


HOLD = """
    import sys
    from mrcnn.store.project import Project
    p = Project.open(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    p.close()
    print("closed", flush=True)
"""


# ---------------------------------------------------------------- create / open
def test_create_then_reopen_keeps_everything(project, tmp_path):
    _fill(project)
    before = _state(project)
    project.close()
    assert {DB_NAME, "models"} <= set(os.listdir(tmp_path / "proj"))
    with Project.open(tmp_path / "proj") as again:
        assert _state(again) == before
        assert again.summary()["images"] == {"total": 2, "new": 1, "predicted": 0,
                                             "in_review": 0, "reviewed": 1}
        assert again.summary()["instances"] == {"total": 3, "accepted": 2, "pending": 1}
        inst = again.instances(state="pending")[0]
        assert (inst.source, inst.score) == ("model", 0.75)
        assert inst.rle.decode().sum() == 1
    with Project.open(tmp_path / "proj", read_only=True) as ro:
        assert _state(ro) == before


def test_database_is_in_wal_mode_with_a_schema_version(project):
    conn = sqlite3.connect(project.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST >= 1
    finally:
        conn.close()
    assert project.summary()["schema_version"] == schema.LATEST
    assert project.integrity_check() == "ok"


def test_create_refuses_an_existing_project_and_a_missing_images_folder(project, tmp_path):
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(project.folder, project.images_root)
    with pytest.raises(ProjectError, match="does not exist"):
        Project.create(tmp_path / "other", tmp_path / "no-such-folder")
    assert not (tmp_path / "other").exists()


def test_create_under_a_file_is_a_project_error(tmp_path, images):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ProjectError, match="file.txt"):
        Project.create(tmp_path / "file.txt" / "proj", images)


def test_open_of_a_folder_that_is_no_project_is_a_clear_error(tmp_path):
    with pytest.raises(ProjectError, match="is not a project"):
        Project.open(tmp_path)
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ProjectError, match="not a readable project database"):
        Project.open(tmp_path)
    with pytest.raises(ProjectError, match="not a readable project database"):
        Project.open(tmp_path, read_only=True)


# ---------------------------------------------------------------- schema versions
def test_an_unversioned_database_is_migrated_to_the_latest_schema(tmp_path):
    sqlite3.connect(tmp_path / DB_NAME).close()  # user_version 0, no tables
    with pytest.raises(ProjectError, match="needs an upgrade"):
        Project.open(tmp_path, read_only=True)
    with Project.open(tmp_path) as p:
        assert p.summary()["schema_version"] == schema.LATEST
        p.add_category("dog")
    with Project.open(tmp_path, read_only=True) as p:
        assert [c.name for c in p.categories()] == ["dog"]


def _as_first_schema(db: Path) -> None:
    """Turn a project database into what the schema-1 program wrote: every table and column
    added since dropped, user_version 1 (today's code cannot write the old schema itself)."""
    first = sqlite3.connect(":memory:")
    first.executescript(schema.MIGRATIONS[0])
    keep = {t: {r[1] for r in first.execute(f"PRAGMA table_info({t})")} for (t,) in
            first.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn = sqlite3.connect(db)
    tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        if table not in keep:
            conn.execute(f"DROP TABLE {table}")
            continue
        for column in [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]:
            if column not in keep[table]:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_project_from_the_first_schema_is_upgraded_keeping_its_data(images, tmp_path):
    with Project.create(tmp_path / "old", images) as old:
        _fill(old)
        before = _state(old)
    _as_first_schema(tmp_path / "old" / DB_NAME)
    with pytest.raises(ProjectError, match="needs an upgrade"):
        Project.open(tmp_path / "old", read_only=True)
    with Project.open(tmp_path / "old") as p:
        assert p.summary() == before[0]
        assert (p.images(), p.categories(), p.instances()) == before[1:4]


def test_a_new_migration_step_runs_once_and_keeps_the_data(project, monkeypatch):
    _fill(project)
    before = _state(project)
    project.close()
    upgrade = "ALTER TABLE images ADD COLUMN note TEXT NOT NULL DEFAULT ''"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, upgrade])
    monkeypatch.setattr(schema, "LATEST", len(schema.MIGRATIONS))
    for _ in range(2):  # the second open finds nothing left to do
        with Project.open(project.folder) as p:
            assert p.summary()["schema_version"] == schema.LATEST
            assert (p.images(), p.categories(), p.instances()) == before[1:4]
            assert "note" in [r[1] for r in p._q("PRAGMA table_info(images)")]


def test_a_failing_migration_leaves_the_old_schema_and_data(project, monkeypatch):
    _fill(project)
    before = _state(project)
    project.close()
    current = schema.LATEST
    monkeypatch.setattr(schema, "MIGRATIONS",
                        [*schema.MIGRATIONS, "ALTER TABLE images ADD COLUMN x INT; NOT SQL"])
    monkeypatch.setattr(schema, "LATEST", len(schema.MIGRATIONS))
    with pytest.raises(ProjectError, match=f"cannot upgrade .* from schema version {current}"):
        Project.open(project.folder)
    monkeypatch.undo()
    with Project.open(project.folder) as p:  # the lock was released, the data is intact
        assert _state(p) == before
        assert "x" not in [r[1] for r in p._q("PRAGMA table_info(images)")]


def test_a_database_from_a_newer_program_is_refused_clearly(project):
    _fill(project)
    project.close()
    conn = sqlite3.connect(project.db_path)
    conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    conn.close()
    for read_only in (False, True, False):  # the failed open released the lock
        with pytest.raises(ProjectError, match="newer program") as info:
            Project.open(project.folder, read_only=read_only)
        assert not isinstance(info.value, ProjectLockedError)
        assert f"schema version {schema.LATEST + 1}" in str(info.value)
    conn = sqlite3.connect(project.db_path)
    assert conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 3
    conn.close()


# ---------------------------------------------------------------- locking
def test_second_writer_in_another_process_is_refused_while_readers_work(project):
    _fill(project)
    folder = project.folder
    project.close()
    child = _child(HOLD, str(folder))
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        with pytest.raises(ProjectLockedError) as info:
            Project.open(folder)
        message = str(info.value)
        assert "already open for writing" in message
        assert f"pid {child.pid}" in message
        assert "read-only" in message
        with Project.open(folder, read_only=True) as ro:
            assert ro.summary()["instances"]["total"] == 3
            with pytest.raises(ProjectError, match="read-only"):
                ro.add_category("nope")
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "closed"
        with Project.open(folder) as p:  # a clean close releases the lock
            p.add_category("mine")
    finally:
        child.kill()
        child.wait()


def test_child_process_is_refused_while_this_one_writes(project):
    child = _child(
        """
        import sys
        from mrcnn.errors import ProjectLockedError
        from mrcnn.store.project import Project
        try:
            Project.open(sys.argv[1])
        except ProjectLockedError as exc:
            print("locked:", exc)
        """,
        str(project.folder),
    )
    out, err = child.communicate(timeout=60)
    assert out.startswith("locked:"), err
    assert f"pid {os.getpid()}" in out


def test_lock_is_released_when_the_holder_is_killed(project):
    folder = project.folder
    project.close()
    child = _child(HOLD, str(folder))
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        with pytest.raises(ProjectLockedError):
            Project.open(folder)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with Project.open(folder) as p:
        assert p.integrity_check() == "ok"


def test_killed_while_editing_loses_no_committed_edit(project):
    folder = project.folder
    img = project.add_image(project.images_root / "a.png", 64, 64, "1" * 64)
    cat = project.add_category("thing")
    project.close()
    child = _child(
        """
        import sys
        import numpy as np
        from mrcnn import masks
        from mrcnn.store.project import Project
        p = Project.open(sys.argv[1])
        for i in range(100000):
            m = np.zeros((64, 64), bool)
            m.flat[i % 4096] = True
            inst = p.add_instance(1, 1, masks.encode(m))
            print(inst.id, flush=True)
        """,
        str(folder),
    )
    acknowledged = []
    try:
        while len(acknowledged) < 30:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            acknowledged.append(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with Project.open(folder) as p:
        assert p.integrity_check() == "ok"
        stored = {i.id for i in p.instances(img.id)}
        assert set(acknowledged) <= stored
        assert all(i.category_id == cat.id and i.area == 1 for i in p.instances())


# ---------------------------------------------------------------- transactions
def test_every_edit_is_visible_to_another_connection_at_once(project):
    with Project.open(project.folder, read_only=True) as reader:
        img = project.add_image(project.images_root / "a.png", 40, 30, "0" * 64)
        assert [i.path for i in reader.images()] == ["a.png"]
        cat = project.add_category("dog")
        assert [c.name for c in reader.categories()] == ["dog"]
        inst = project.add_instance(img.id, cat.id, _mask(30, 40, (0, 3, 0, 3)))
        assert [i.id for i in reader.instances()] == [inst.id]
        project.set_image_status(img.id, "reviewed")
        assert reader.image(img.id).status == "reviewed"
        project.set_instance_mask(inst.id, _mask(30, 40, (0, 5, 0, 5)))
        assert reader.instance(inst.id).area == 25
        assert reader.instance(inst.id).bbox == (0.0, 0.0, 5.0, 5.0)
        project.rename_category(cat.id, "hound")
        assert reader.categories()[0].name == "hound"
        project.delete_instances([inst.id])
        assert reader.instances() == []


def test_an_added_instance_is_the_record_read_back_with_typed_source_and_state(project):
    # add_instance used to hand back the plain strings it was given ("model", "pending") where
    # the record promises Source and InstanceState, unlike the same instance read back
    img = project.add_image(project.images_root / "a.png", 40, 30, "0" * 64)
    cat = project.add_category("dog")
    for source, state, score in (("manual", "accepted", None), ("model", "pending", 0.5)):
        added = project.add_instance(img.id, cat.id, _mask(30, 40, (0, 3, 0, 3)),
                                     source=source, state=state, score=score)
        assert added.source is Source(source) and added.state is InstanceState(state)
        assert added == project.instance(added.id)
        assert repr(added) == repr(project.instance(added.id))
    prediction = (cat.id, _mask(30, 40, (0, 3, 0, 3)), 0.9)
    (predicted,) = project.replace_predictions(img.id, "v1", [prediction])
    assert predicted.source is Source.MODEL and predicted.state is InstanceState.PENDING


def test_a_failing_transaction_leaves_nothing_behind(project):
    _fill(project)
    before = _state(project)
    with Project.open(project.folder, read_only=True) as reader:
        with pytest.raises(RuntimeError, match="power cut"):
            with project.transaction():
                img = project.add_image(project.images_root / "c.png", 8, 8, "2" * 64)
                cat = project.add_category("bird")
                project.add_instance(img.id, cat.id, _mask(8, 8, (0, 8, 0, 8)))
                project.set_image_status(1, "new")
                project.delete_instances([1])
                assert reader.categories() == before[2]  # not visible before commit
                raise RuntimeError("power cut")
        assert _state(project) == before
        assert _state(reader)[1:] == before[1:]
    project.add_category("after")  # the project is still usable
    assert project.category_by_name("after") is not None


def test_an_invalid_instance_is_refused_and_not_stored(project):
    _fill(project)
    before = _state(project)
    with pytest.raises(ProjectError, match="does not match image"):
        project.add_instance(1, 1, _mask(31, 40, (0, 3, 0, 3)))
    with pytest.raises(ProjectError, match="at least one pixel"):
        project.add_instance(1, 1, masks.encode(np.zeros((30, 40), bool)))
    with pytest.raises(ProjectError, match="image status"):
        project.set_image_status(1, "done")
    with pytest.raises(ProjectError, match="no category with id 99"):
        project.add_instance(1, 99, _mask(30, 40, (0, 3, 0, 3)))
    with pytest.raises(ProjectError, match="no image with id 99"):
        project.add_instance(99, 1, _mask(30, 40, (0, 3, 0, 3)))
    with pytest.raises(ProjectError, match="no category with id 99"):
        project.set_instance_category(1, 99)
    with pytest.raises(ProjectError, match="no instance with id 99"):
        project.set_instance_category(99, 1)
    with pytest.raises(ProjectError, match="no category with id 99"):
        project.rename_category(99, "ghost")
    assert _state(project) == before


# ---------------------------------------------------------------- images: paths and split
def test_image_paths_are_stored_relative_to_the_images_root(project, images, tmp_path):
    deep = images / "sub" / "déjà vu" / "x.png"
    outside = tmp_path / "elsewhere" / "y.png"
    rec = project.add_image(deep, 5, 5, "3" * 64)
    assert rec.path == "sub/déjà vu/x.png"
    assert project.image_path(rec) == deep.resolve()
    far = project.add_image(outside, 5, 5, "4" * 64)
    assert Path(far.path).is_absolute()
    assert project.image_path(far) == outside.resolve()
    # The same file reached another way is the same image, not a second one.
    again = project.add_image(images / "sub" / ".." / "sub" / "déjà vu" / "x.png", 5, 5, "3" * 64)
    assert again.id == rec.id and len(project.images()) == 2


def test_symbolic_links_keep_their_name_under_the_images_root(project, images, tmp_path):
    """git-annex, DVC and hand-made links point into a shared store outside the folder."""
    store = tmp_path / "annex" / "objects"
    store.mkdir(parents=True)
    (store / "SHA256-abc").write_bytes(b"x")
    (images / "sub" / "photo.png").symlink_to(store / "SHA256-abc")
    (tmp_path / "alias").symlink_to(images)  # the images folder reached through a link
    rec = project.add_image(images / "sub" / "photo.png", 5, 5, "6" * 64)
    assert rec.path == "sub/photo.png"
    assert project.image_path(rec).read_bytes() == b"x"
    assert project.image_key(tmp_path / "alias" / "sub" / "photo.png") == "sub/photo.png"


def test_a_project_moved_together_with_its_images_still_finds_them(tmp_path):
    base = tmp_path / "work"
    (base / "images" / "sub").mkdir(parents=True)
    (base / "images" / "sub" / "a.png").write_bytes(b"x")
    with Project.create(base / "project", base / "images") as p:
        p.add_image(base / "images" / "sub" / "a.png", 5, 5, "5" * 64)
    shutil.move(base, tmp_path / "moved")
    with Project.open(tmp_path / "moved" / "project", read_only=True) as p:
        assert p.images_root == (tmp_path / "moved" / "images").resolve()
        assert p.image_path(p.images()[0]).read_bytes() == b"x"


def test_split_is_decided_by_content_and_never_changes(project, tmp_path):
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(400)]
    splits = {h: split_for(h) for h in hashes}
    val = sum(s == "val" for s in splits.values()) / len(splits)
    assert 0.12 < val < 0.28  # about VAL_FRACTION of the images validate
    recs = [project.add_image(project.images_root / f"{i}.png", 4, 4, h)
            for i, h in enumerate(hashes[:40])]
    assert {r.split for r in recs} == {"train", "val"}
    for r in recs:
        project.set_image_status(r.id, "reviewed")
    project.close()
    with Project.open(project.folder) as p:
        assert [(i.sha256, i.split) for i in p.images()] == [(h, splits[h]) for h in hashes[:40]]
    # The same photo in another project lands in the same split.
    with Project.create(tmp_path / "other", project.images_root) as other:
        for i, h in enumerate(hashes[:40]):
            assert other.add_image(project.images_root / f"copy{i}.png", 4, 4, h).split == splits[h]


# ---------------------------------------------------------------- categories, versions
def test_categories_get_distinct_colours_and_unique_names(project):
    cats = [project.add_category(n) for n in ("a", "b", "c", "d")]
    assert len({c.color for c in cats}) == 4
    assert all(len(c.color) == 7 and c.color.startswith("#") for c in cats)
    assert project.add_category(" a ").id == cats[0].id
    with pytest.raises(ProjectError, match="already exists"):
        project.rename_category(cats[1].id, "a")
    with pytest.raises(ProjectError, match="non-empty"):
        project.add_category("  ")


def test_model_versions_are_numbered_and_one_is_active(project):
    v1 = project.add_model_version("models/v1.pt", "r18", metadata={"map": 0.5}, activate=True)
    v2 = project.add_model_version("models/v2.pt", "r18", parent_id=v1.id)
    assert (v1.name, v2.name) == ("v1", "v2")
    assert project.active_model_version().id == v1.id
    project.activate_model_version(v2.id)
    project.close()
    with Project.open(project.folder, read_only=True) as p:
        s = p.summary()
        assert s["active_model"] == "v2"
        assert [v["active"] for v in s["model_versions"]] == [False, True]
        assert p.model_version(v1.id).metadata == {"map": 0.5}
        assert p.model_version(v2.id).parent_id == v1.id
