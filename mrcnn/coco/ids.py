"""The ids a COCO file written for a project gives its images and categories: the rule, shared
by `export-coco` (`mrcnn.coco.io.build_coco`) and prediction results (`predict --out`), so
both line up with each other and with the file the project was imported from.

An image (or category) imported from a COCO file keeps its id there; one that came otherwise
gets its project id, unless an imported one holds that number, then the next free one. When
two imported files used the same id, the image (category) imported first keeps it and the
other is numbered as if it had none. No torch.
"""

from __future__ import annotations

from collections.abc import Mapping

from mrcnn.store.project import Project


def numbering(source_ids: Mapping[int, int | None]) -> dict[int, int]:
    """Project id → file id, unique, for `source_ids` (project id → id in the imported file,
    or None)."""
    ids: dict[int, int] = {}
    taken: set[int] = set()
    for pid in sorted(source_ids):
        sid = source_ids[pid]
        if sid is not None and sid not in taken:
            ids[pid] = sid
            taken.add(sid)
    rest = [pid for pid in sorted(source_ids) if pid not in ids]
    for pid in rest:
        if pid not in taken:
            ids[pid] = pid
            taken.add(pid)
    free = max(taken, default=0) + 1
    for pid in rest:
        if pid not in ids:
            ids[pid] = free
            free += 1
    return ids


def file_image_ids(project: Project) -> dict[int, int]:
    """Image id → the image's id in COCO files the project writes (all images, so a file of
    some of them numbers them as a file of all would)."""
    return numbering(project.image_coco_ids())


def file_category_ids(project: Project) -> dict[int, int]:
    """Category id → the category's id in COCO files the project writes."""
    return numbering(project.category_coco_ids())
