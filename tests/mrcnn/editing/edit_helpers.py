"""Shared by the edit-document tests (and the child process of the SIGKILL test): a small
project with known masks, random edits of every kind, and snapshots/digests of a project."""


import hashlib
import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mrcnn.editing import image_tools
from mrcnn.editing import mask_tools as mt
from mrcnn.editing.document import ImageDocument
from mrcnn.errors import EditError, MaskToolError
from mrcnn.masks import encode
from mrcnn.store.project import Project

REPO = Path(__file__).resolve().parents[3]
SHAPE = (72, 96)  # the edited image (H, W)
OTHER_SHAPE = (30, 40)  # a second image, for project-wide category edits


# ---------------------------------------------------------------- a small project
def synthetic_rgb(h: int, w: int) -> np.ndarray:
    """Flat 8x8 blocks from a small palette (the wand's regions) plus a noisy band."""
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, (5, 3))
    blocks = rng.integers(0, 5, ((h + 7) // 8, (w + 7) // 8))
    rgb = palette[np.kron(blocks, np.ones((8, 8), int))[:h, :w]].astype(np.int16)
    rgb[h // 2:h // 2 + 6] += rng.integers(-20, 21, (6, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _box(shape, y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def make_project(folder: Path, images: Path) -> tuple[int, int]:
    """A project with two images; returns (edited image id, other image id). Closed after."""
    images.mkdir(parents=True, exist_ok=True)
    with Project.create(folder, images) as p:
        a = p.add_image(images / "a.png", SHAPE[1], SHAPE[0], "a" * 64)
        b = p.add_image(images / "b.png", OTHER_SHAPE[1], OTHER_SHAPE[0], "b" * 64)
        dog, cat, bird = (p.add_category(n).id for n in ("dog", "cat", "bird"))
        v1 = p.add_model_version("models/v1.pt", "resnet18_fpn").id
        ring = _box(SHAPE, 5, 30, 5, 35) & ~_box(SHAPE, 12, 20, 14, 24)
        two = _box(SHAPE, 40, 50, 10, 20) | _box(SHAPE, 55, 70, 25, 45)
        p.add_instance(a.id, dog, encode(ring))
        p.add_instance(a.id, cat, encode(two))
        p.add_instance(a.id, bird, encode(_box(SHAPE, 20, 60, 60, 90)))
        for k, (box, cid) in enumerate([((0, 10, 50, 70), dog), ((35, 45, 40, 80), cat),
                                        ((60, 72, 0, 12), bird)]):
            p.add_instance(a.id, cid, encode(_box(SHAPE, *box)), source="model",
                           model_version_id=v1, score=0.9 - 0.1 * k, state="pending")
        p.add_instance(b.id, dog, encode(_box(OTHER_SHAPE, 2, 10, 3, 30)))
        p.add_instance(b.id, cat, encode(_box(OTHER_SHAPE, 12, 28, 5, 15)))
    return a.id, b.id


def snapshot(project: Project) -> tuple:
    """Everything a user could see: categories, and every instance with its decoded mask."""
    cats = tuple((c.id, c.name, c.color) for c in project.categories())
    insts = tuple(
        (i.id, i.image_id, i.category_id, np.packbits(i.rle.decode()).tobytes(), i.bbox,
         i.area, i.source, i.model_version_id, i.score, i.state)
        for i in project.instances())
    return cats, insts


def disk_snapshot(folder: Path) -> tuple:
    """The snapshot as a fresh connection reads it from disk."""
    with Project.open(folder, read_only=True) as p:
        return snapshot(p)


def digest(project: Project) -> str:
    """A short fingerprint of `snapshot` (RLE counts are canonical, so they stand for masks)."""
    cats = [(c.id, c.name, c.color) for c in project.categories()]
    insts = [(i.id, i.image_id, i.category_id, i.rle.counts, i.source, i.model_version_id,
              i.score, i.state) for i in project.instances()]
    return hashlib.sha256(repr((cats, insts)).encode()).hexdigest()[:20]


OPS = ("brush", "brush", "erase", "poly_add", "poly_cut", "poly_new", "wand", "wand_cut",
       "fill_holes", "specks", "grabcut", "delete", "reject", "accept", "recat", "split",
       "merge", "rename", "merge_cat", "new_cat")


def random_edit(doc: ImageDocument, rng: random.Random, rgb: np.ndarray, n: int) -> str | None:
    """One random user edit through the document; the op's name if a step was recorded."""
    h, w = doc.shape
    insts = doc.instances()
    ids = [i.id for i in insts]
    pending = [i.id for i in insts if i.state == "pending"]
    cats = [c.id for c in doc.project.categories()]
    op = rng.choice(OPS)
    if not ids and op not in ("poly_new", "grabcut", "rename", "merge_cat", "new_cat"):
        op = "poly_new"

    def point() -> tuple[float, float]:
        return rng.uniform(-3, w + 3), rng.uniform(-3, h + 3)

    before = doc.history.next_undo()
    try:
        if op in ("brush", "erase"):
            doc.apply(rng.choice(ids), mt.brush if op == "brush" else mt.erase,
                      [point() for _ in range(rng.randint(1, 3))], rng.uniform(0.5, 7),
                      label=op)
        elif op in ("poly_add", "poly_cut"):
            doc.apply(rng.choice(ids), mt.polygon_add if op == "poly_add" else mt.polygon_cut,
                      np.array([point() for _ in range(rng.randint(3, 6))]), label=op)
        elif op == "poly_new":
            poly = np.array([point() for _ in range(rng.randint(3, 6))])
            doc.add_instance(mt.polygon_mask(poly, (h, w)), rng.choice(cats), label="polygon")
        elif op in ("wand", "wand_cut"):
            seed = (rng.uniform(0, w - 1e-6), rng.uniform(0, h - 1e-6))
            doc.apply(rng.choice(ids), image_tools.magic_wand_edit, rgb, seed, rng.randint(0, 40),
                      subtract=op == "wand_cut", label=op)
        elif op == "fill_holes":
            doc.apply(rng.choice(ids), mt.fill_holes, label=op)
        elif op == "specks":
            doc.apply(rng.choice(ids), mt.remove_specks, rng.randint(2, 60), label=op)
        elif op == "grabcut":
            x0, y0 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
            box = (x0, y0, x0 + rng.uniform(8, w / 2), y0 + rng.uniform(8, h / 2))
            doc.add_instance(image_tools.grabcut(rgb, box, iterations=2), rng.choice(cats),
                             label=op)
        elif op == "delete":
            doc.delete_instances(rng.sample(ids, min(len(ids), rng.randint(1, 2))))
        elif op == "reject" and pending:
            doc.reject_predictions([rng.choice(pending)])
        elif op == "accept" and pending:
            doc.accept_instances(rng.sample(pending, min(len(pending), 2)))
        elif op == "recat":
            doc.set_category(rng.sample(ids, min(len(ids), rng.randint(1, 3))), rng.choice(cats))
        elif op == "split":
            doc.split_instance(rng.choice(ids))
        elif op == "merge" and len(ids) >= 2:
            doc.merge_instances(rng.sample(ids, rng.randint(2, min(3, len(ids)))))
        elif op == "rename":
            doc.rename_category(rng.choice(cats), f"name-{n}")
        elif op == "merge_cat" and len(cats) >= 2:
            doc.merge_categories(*rng.sample(cats, 2))
        elif op in ("new_cat", "merge_cat"):
            doc.add_category(f"new-{n}")
    except (EditError, MaskToolError):
        return None  # e.g. a polygon or GrabCut that selects nothing
    return op if doc.history.next_undo() is not before else None


@contextmanager
def counting_transactions(project: Project, monkeypatch):
    """Count the outermost store transactions opened inside the block."""
    real = project.transaction
    seen = []

    @contextmanager
    def counted():
        if project._depth == 0:
            seen.append(1)
        with real():
            yield

    monkeypatch.setattr(project, "transaction", counted)
    yield seen
    monkeypatch.setattr(project, "transaction", real)
