"""COCO keypoints in and out: a category's `keypoints`/`skeleton` and an annotation's
`keypoints`/`num_keypoints`, checked with the same rigour as masks (the rules of what a
schema and a set of points are live in `mrcnn.keypoints`; this module reads and writes
them as COCO files spell them, and names the record on every refusal).

COCO's conventions: a category's `keypoints` is its list of names, its `skeleton` 1-based
index pairs; an annotation's `keypoints` is a flat [x1, y1, v1, x2, ...] list with one
triplet per name (v = 0: not labelled, written 0, 0, 0), `num_keypoints` how many have
v > 0. A wrong `num_keypoints` is recomputed (said in the import's notes), never trusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mrcnn.errors import CocoFormatError, DatasetFormatError
from mrcnn.keypoints import (
    NOT_LABELLED,
    KeypointError,
    KeypointSchema,
    Points,
    empty_points,
    labelled_count,
    points_from_coco,
    points_to_coco,
)

Fail = Callable[[str, str], CocoFormatError]

#: Coordinates beyond this are refused before any arithmetic (JSON integers may be too big
#: for a float).
_MAX_COORDINATE = 2.0**31


# ---------------------------------------------------------------- import: categories
def category_schema(c: dict, where: str, fail: Fail) -> KeypointSchema | None:
    """The keypoint schema a COCO category record gives (None: it has no keypoints; an
    empty `keypoints` list counts as none)."""
    names = c.get("keypoints")
    skeleton = c.get("skeleton")
    if names is None or names == []:
        if skeleton not in (None, []):
            raise fail(where, "'skeleton' given without a 'keypoints' list of names")
        return None
    if not isinstance(names, list):
        raise fail(where, f"'keypoints' must be a list of names, got {_kind(names)}")
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise fail(where, f"'keypoints' names must be non-empty strings, got {n!r}")
    if len({n.strip() for n in names}) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1}) or names
        raise fail(where, f"'keypoints' names must be unique: {', '.join(map(repr, twice))} "
                          "repeated")
    k = len(names)
    pairs = []
    if skeleton is None:
        skeleton = []
    if not isinstance(skeleton, list):
        raise fail(where, f"'skeleton' must be a list of [a, b] pairs, got {_kind(skeleton)}")
    for pair in skeleton:
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in pair)):
            raise fail(where, f"'skeleton' pair {pair!r} must be two keypoint numbers")
        if not all(1 <= i <= k for i in pair):
            raise fail(where, f"'skeleton' pair {pair} must join keypoints numbered 1..{k} "
                              "(COCO's skeleton is 1-based)")
        if pair[0] == pair[1]:
            raise fail(where, f"'skeleton' pair {pair} joins a keypoint to itself")
        pairs.append((pair[0] - 1, pair[1] - 1))
    try:
        return KeypointSchema(tuple(n.strip() for n in names), tuple(pairs))
    except KeypointError as exc:  # what the checks above missed, said the library's way
        raise fail(where, str(exc)) from None


def same_schema(a: KeypointSchema, b: KeypointSchema) -> bool:
    """Whether two schemas mean the same keypoints: the same names in the same order and
    the same skeleton lines (in any order, either direction); the flip map is not compared
    (a file has none)."""
    return a.names == b.names and {frozenset(p) for p in a.skeleton} == {
        frozenset(p) for p in b.skeleton}


def schema_conflict(category: str, ours: KeypointSchema, theirs: KeypointSchema) -> str:
    """Why the project's schema of `category` and the file's differ, for a refusal."""
    if ours.names != theirs.names:
        what = (f"the project's has {ours.size} keypoints ({', '.join(ours.names)}), the "
                f"file's {theirs.size} ({', '.join(theirs.names)})")
    else:
        what = "the names match but the skeletons differ"
    return (f"category {category!r} already has another keypoint schema in the project: "
            f"{what}; rename the category in the file or change its schema in the project "
            "(nothing was imported)")


# ---------------------------------------------------------------- import: annotations
@dataclass
class NumKeypointsTally:
    """Annotations whose `num_keypoints` disagreed with their keypoints (then recomputed)."""

    wrong: int = 0
    first: str = ""

    def note(self) -> str | None:
        if not self.wrong:
            return None
        return (f"{self.wrong} annotation(s) gave a num_keypoints that does not match their "
                f"keypoints (first: {self.first}); it was recomputed from the keypoints")


def annotation_points(a: dict, schema: KeypointSchema | None, where: str, fail: Fail,
                      tally: NumKeypointsTally) -> Points | None:
    """The points of a COCO annotation record, checked against its category's schema (None:
    it has none, or none labelled). A v = 0 point becomes (0, 0, 0) whatever its x, y."""
    flat = a.get("keypoints")
    if flat is None or (flat == [] and schema is None):
        return None
    if schema is None:
        raise fail(where, "has 'keypoints' but its category has no 'keypoints' list of names")
    if not isinstance(flat, list):
        raise fail(where, f"'keypoints' must be a flat list of x, y, v numbers, got "
                          f"{_kind(flat)}")
    for i, value in enumerate(flat):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(where, f"'keypoints' value {i} is {value!r}, not a number")
        if (isinstance(value, float) and not math.isfinite(value)) or abs(
                value) > _MAX_COORDINATE:
            name = schema.names[i // 3] if i // 3 < schema.size else f"#{i // 3 + 1}"
            raise fail(where, f"keypoint {name!r} has a non-finite or huge value "
                              f"{_number(value)}")
    try:
        points = points_from_coco(flat, schema, "keypoints")
    except KeypointError as exc:
        raise fail(where, str(exc)) from None
    given = a.get("num_keypoints")
    if given is not None and (isinstance(given, bool) or given != labelled_count(points)):
        tally.wrong += 1
        tally.first = tally.first or where
    return points if labelled_count(points) else None


def check_inside(points: Points, schema: KeypointSchema, height: int, width: int,
                 where: str, error: type[DatasetFormatError] = CocoFormatError) -> None:
    """Refuse a labelled point outside its image (COCO's continuous coordinates: 0..width,
    0..height). A polygon may cross the edge and is clipped there; a point has no part
    inside to keep, so it is refused like a mask that lies outside its image."""
    for name, (x, y, v) in zip(schema.names, points, strict=True):
        if v != NOT_LABELLED and not (0 <= x <= width and 0 <= y <= height):
            raise error(f"{where}: keypoint {name!r} ({_number(x)}, {_number(y)}) "
                                  f"lies outside the {width}x{height} image")


# ---------------------------------------------------------------- export
def coco_category_fields(schema: KeypointSchema | None) -> dict:
    """What a category record of a schema gets: `keypoints` (names) and `skeleton` (1-based
    pairs); nothing for a category without one."""
    if schema is None:
        return {}
    return {"keypoints": list(schema.names), "skeleton": schema.coco_skeleton()}


def coco_annotation_fields(schema: KeypointSchema | None, points: Points | None) -> dict:
    """What an annotation of a category with a schema gets: `keypoints` (flat triplets; all
    zeros for an instance without points) and `num_keypoints`; nothing without a schema."""
    if schema is None:
        return {}
    if points is None or len(points) != schema.size:
        points = empty_points(schema)
    return {"keypoints": points_to_coco(points), "num_keypoints": labelled_count(points)}


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__)


def _number(v: float) -> str:
    try:
        return f"{v:g}"
    except OverflowError:
        return f"a {len(str(abs(int(v))))}-digit number"
