"""A child process for the crash-safety tests: it works on a project until it is killed.

    python crash_writer.py edit PROJECT SEED
        Random edits, as a user makes them (add, repaint, relabel, delete and accept instances,
        image status and split, category adds and renames, a model's predictions replacing
        the earlier ones). Before each edit it prints `begin {json}`; once the edit is
        committed it prints `ok {json}` (the same edit with the ids it created).

    python crash_writer.py export PROJECT OUT FIRST_VARIANT
        Exports the (read-only) project to OUT over and over, alternating all images
        (variant 0) and reviewed images only (variant 1). Prints `writing V` when the atomic
        write of variant V starts and `done V` when it has replaced OUT.

Both print `ready PID` first. Every line is flushed at once: a line the parent has read
describes something already on disk.
"""

from __future__ import annotations

import json
import os
import random
import sys

import numpy as np

from mrcnn import masks
from mrcnn.coco import io as coco_io
from mrcnn.store.project import Project

STATUSES = ("new", "predicted", "in_review", "reviewed")


def say(*parts: object) -> None:
    sys.stdout.write(" ".join(map(str, parts)) + "\n")
    sys.stdout.flush()


def random_counts(rng: random.Random, h: int, w: int) -> str:
    """A random non-empty rectangle (sometimes with a hole) as compressed RLE counts."""
    m = np.zeros((h, w), bool)
    y0, x0 = rng.randrange(h), rng.randrange(w)
    y1, x1 = rng.randint(y0 + 1, h), rng.randint(x0 + 1, w)
    m[y0:y1, x0:x1] = True
    if y1 - y0 > 2 and x1 - x0 > 2 and rng.random() < 0.3:
        m[y0 + 1, x0 + 1] = False
    return masks.encode(m).counts


def edit(folder: str, seed: int) -> None:
    rng = random.Random(seed)
    project = Project.open(folder)
    sizes = {im.id: (im.height, im.width) for im in project.images()}
    categories = [c.id for c in project.categories()]
    instances = {i.id: (i.image_id, i.state) for i in project.instances()}  # id: (image, state)
    say("ready", os.getpid())
    ops = ["add", "add", "mask", "recat", "delete", "accept", "status", "split", "predict",
           "add_category", "rename"]
    for n in range(1_000_000):
        op = rng.choice(ops)
        if op in ("mask", "recat", "delete") and not instances:
            op = "add"
        if op == "accept" and all(s != "pending" for _, s in instances.values()):
            op = "predict"
        image = rng.choice(list(sizes))
        h, w = sizes[image]
        e: dict = {"op": op}
        if op == "add":
            e.update(image=image, category=rng.choice(categories),
                     counts=random_counts(rng, h, w))
        elif op == "mask":
            target = rng.choice(list(instances))
            e.update(id=target, counts=random_counts(rng, *sizes[instances[target][0]]))
        elif op == "recat":
            e.update(id=rng.choice(list(instances)), category=rng.choice(categories))
        elif op == "delete":
            e.update(ids=rng.sample(list(instances), min(len(instances), rng.randint(1, 2))))
        elif op == "accept":
            e.update(ids=[i for i, (_, s) in instances.items() if s == "pending"][:2])
        elif op == "status":
            e.update(image=image, status=rng.choice(STATUSES))
        elif op == "split":
            e.update(image=image, split=rng.choice(("train", "val")))
        elif op == "predict":
            e.update(image=image, items=[[rng.choice(categories), random_counts(rng, h, w)]
                                         for _ in range(rng.randint(0, 3))])
        elif op == "add_category":
            e.update(name=f"cat-{seed}-{n}")
        elif op == "rename":
            e.update(id=rng.choice(categories), name=f"renamed-{seed}-{n}")
        say("begin", json.dumps(e))

        if op == "add":
            inst = project.add_instance(image, e["category"], masks.Rle(h, w, e["counts"]))
            e["id"] = inst.id
            instances[inst.id] = (image, "accepted")
        elif op == "mask":
            ih, iw = sizes[instances[e["id"]][0]]
            project.set_instance_mask(e["id"], masks.Rle(ih, iw, e["counts"]))
        elif op == "recat":
            project.set_instance_category(e["id"], e["category"])
        elif op == "delete":
            project.delete_instances(e["ids"])
            for i in e["ids"]:
                del instances[i]
        elif op == "accept":
            project.accept_instances(e["ids"])
            instances.update({i: (instances[i][0], "accepted") for i in e["ids"]})
        elif op == "status":
            project.set_image_status(image, e["status"])
        elif op == "split":
            project.set_image_split(image, e["split"])
        elif op == "predict":
            added = project.replace_predictions(
                image, f"model-{seed}",
                [(c, masks.Rle(h, w, counts), 0.5) for c, counts in e["items"]])
            for i in [i for i, (im, s) in instances.items() if im == image and s == "pending"]:
                del instances[i]
            e["ids"] = [a.id for a in added]
            instances.update(dict.fromkeys(e["ids"], (image, "pending")))
        elif op == "add_category":
            e["id"] = project.add_category(e["name"]).id
            categories.append(e["id"])
        elif op == "rename":
            project.rename_category(e["id"], e["name"])
        say("ok", json.dumps(e))


def export(folder: str, out: str, first: int) -> None:
    real = coco_io.write_atomic
    variant = first

    def announced(*args, **kwargs):
        say("writing", variant)
        return real(*args, **kwargs)

    coco_io.write_atomic = announced
    with Project.open(folder, read_only=True) as project:
        say("ready", os.getpid())
        while True:
            coco_io.export_coco(project, out, reviewed_only=bool(variant))
            say("done", variant)
            variant = 1 - variant


if __name__ == "__main__":
    if sys.argv[1] == "edit":
        edit(sys.argv[2], int(sys.argv[3]))
    else:
        export(sys.argv[2], sys.argv[3], int(sys.argv[4]))
