"""The project database schema and its migrations (PRAGMA user_version = schema version)."""

from __future__ import annotations

import sqlite3

#: Each entry upgrades the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    # 0 -> 1: the first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        width INTEGER NOT NULL CHECK (width > 0),
        height INTEGER NOT NULL CHECK (height > 0),
        sha256 TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'predicted', 'in_review', 'reviewed')),
        split TEXT NOT NULL CHECK (split IN ('train', 'val')),
        added_at REAL NOT NULL
    );
    CREATE INDEX images_status ON images(status);
    CREATE TABLE categories (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        color TEXT NOT NULL
    );
    CREATE TABLE model_versions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        preset TEXT NOT NULL,
        parent_id INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
        created_at REAL NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        category_id INTEGER NOT NULL REFERENCES categories(id),
        height INTEGER NOT NULL,
        width INTEGER NOT NULL,
        counts TEXT NOT NULL,
        bbox_x REAL NOT NULL, bbox_y REAL NOT NULL, bbox_w REAL NOT NULL, bbox_h REAL NOT NULL,
        area INTEGER NOT NULL CHECK (area > 0),
        source TEXT NOT NULL CHECK (source IN ('manual', 'model')),
        model_version_id INTEGER REFERENCES model_versions(id) ON DELETE CASCADE,
        score REAL,
        state TEXT NOT NULL CHECK (state IN ('accepted', 'pending')),
        created_at REAL NOT NULL
    );
    CREATE INDEX instances_image ON instances(image_id);
    """,
    # 1 -> 2: which model has predicted which image (so reopening does not recompute).
    """
    CREATE TABLE predictions (
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        model_key TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (image_id, model_key)
    );
    """,
    # 2 -> 3: class names a model predicts that the project has no category for are kept
    # aside as suggestions (per image), and the user's decision on each name (map it to a
    # category, or ignore it) is remembered (`mrcnn.store.suggestions`).
    """
    CREATE TABLE category_suggestions (
        name TEXT NOT NULL,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        model_key TEXT NOT NULL,
        predictions INTEGER NOT NULL CHECK (predictions > 0),
        PRIMARY KEY (name, image_id)
    );
    CREATE TABLE category_decisions (
        name TEXT PRIMARY KEY,
        decision TEXT NOT NULL CHECK (decision IN ('map', 'ignore')),
        category_id INTEGER REFERENCES categories(id) ON DELETE CASCADE,
        decided_at REAL NOT NULL,
        CHECK ((decision = 'map') = (category_id IS NOT NULL))
    );
    """,
    # 3 -> 4: the id an image or category has in the COCO file it was imported from (NULL:
    # it came otherwise), so exported files and prediction results (`predict --out`) use the
    # user's own ids (`mrcnn.coco.ids`).
    """
    ALTER TABLE images ADD COLUMN coco_id INTEGER;
    ALTER TABLE categories ADD COLUMN coco_id INTEGER;
    """,
    # 4 -> 5: how unsure the model was about the image when it predicted it
    # (`mrcnn.model.uncertainty`; NULL: not measured), for the review queue.
    """
    ALTER TABLE predictions ADD COLUMN uncertainty REAL;
    """,
    # 5 -> 6: keypoints (`mrcnn.keypoints`): a category's schema (JSON: names, skeleton,
    # flip map; NULL: the category has none) and an instance's points (JSON: COCO's flat
    # x, y, v triplets in the schema's order; NULL: none labelled).
    """
    ALTER TABLE categories ADD COLUMN keypoints TEXT;
    ALTER TABLE instances ADD COLUMN keypoints TEXT;
    """,
    # 6 -> 7: label suspects a person looked at and found right (`mrcnn.store.suspect_checks`;
    # the rule that reads them is `mrcnn.training.label_hints`): on which image, what kind of
    # suspect, the label's category and the mask looked at, so a later search does not list
    # the same label again.
    """
    CREATE TABLE suspect_checks (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        category TEXT NOT NULL,
        height INTEGER NOT NULL,
        width INTEGER NOT NULL,
        counts TEXT NOT NULL,
        checked_at REAL NOT NULL
    );
    CREATE INDEX suspect_checks_image ON suspect_checks(image_id);
    """,
]

LATEST = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to LATEST, one transaction per step. Returns the final version."""
    version = schema_version(conn)
    while version < LATEST:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version += 1
    return version
