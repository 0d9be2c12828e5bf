"""Keypoints: a category's keypoint schema (ordered names, a skeleton, the left/right flip
map) and an instance's points (x, y, visibility per name). The rules every part of the
project shares: what a valid schema and a valid set of points are, how COCO writes them
(x, y, v triplets; 1-based skeleton), the flip map derived from the names, the slots a model
with one keypoint head gives each category, and the OKS sigma of each name.

Coordinates are pixel coordinates in the COCO convention (continuous; the centre of pixel
(r, c) is (c + 0.5, r + 0.5)). Visibility: 0 not labelled (then x = y = 0), 1 labelled but
occluded, 2 visible.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mrcnn.errors import KeypointError as KeypointError  # re-exported (errors live there)

NOT_LABELLED, OCCLUDED, VISIBLE = 0, 1, 2
VISIBILITIES = (NOT_LABELLED, OCCLUDED, VISIBLE)

#: One instance's keypoints: (x, y, v) per name of its category's schema, in its order.
Points = tuple[tuple[float, float, int], ...]


@dataclass(frozen=True)
class KeypointSchema:
    """A category's keypoints: ordered unique names, a skeleton (0-based index pairs drawn
    as lines) and, optionally, an explicit flip map (per index, the index of its mirror
    image; None: derived from the names by `derive_flip`)."""

    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.names:
            raise KeypointError("a keypoint schema needs at least one name")
        for name in self.names:
            if not isinstance(name, str) or not name.strip():
                raise KeypointError(f"keypoint names must be non-empty text, got {name!r}")
        if len(set(self.names)) != len(self.names):
            twice = sorted({n for n in self.names if self.names.count(n) > 1})
            raise KeypointError(f"keypoint names must be unique: {', '.join(twice)} repeated")
        k = len(self.names)
        for pair in self.skeleton:
            if (len(pair) != 2 or not all(isinstance(i, int) and 0 <= i < k for i in pair)
                    or pair[0] == pair[1]):
                raise KeypointError(f"skeleton pair {list(pair)} must join two different "
                                    f"keypoints of {k}")
        if self.flip is not None:
            if len(self.flip) != k or sorted(self.flip) != list(range(k)) or any(
                    self.flip[self.flip[i]] != i for i in range(k)):
                raise KeypointError(f"the flip map must pair the {k} keypoints with each other "
                                    f"(each index once, mirrors of each other)")

    @property
    def size(self) -> int:
        return len(self.names)

    def flip_indices(self) -> tuple[int, ...]:
        """Per index, the index of the keypoint it becomes in a mirror image."""
        return self.flip if self.flip is not None else derive_flip(self.names)

    def side(self, index: int) -> str | None:
        """"left", "right" or None: what the name says (for drawing sides apart)."""
        tokens = _tokens(self.names[index])
        if tokens & {"left", "l"}:
            return "left"
        if tokens & {"right", "r"}:
            return "right"
        return None

    def to_json(self) -> str:
        return json.dumps({"names": list(self.names),
                           "skeleton": [list(p) for p in self.skeleton],
                           "flip": None if self.flip is None else list(self.flip)})

    @classmethod
    def from_json(cls, text: str) -> KeypointSchema:
        data = json.loads(text)
        return cls(tuple(data["names"]), tuple(tuple(p) for p in data.get("skeleton", ())),
                   None if data.get("flip") is None else tuple(data["flip"]))

    def coco_skeleton(self) -> list[list[int]]:
        """The skeleton as COCO writes it: 1-based index pairs."""
        return [[a + 1, b + 1] for a, b in self.skeleton]

    @classmethod
    def from_names(cls, names: Sequence[str], skeleton: Sequence[Sequence[str]] = ()
                   ) -> KeypointSchema:
        """A schema from names and a skeleton given as pairs of names (the CLI's form)."""
        names = tuple(n.strip() for n in names)
        index = {n: i for i, n in enumerate(names)}
        pairs = []
        for pair in skeleton:
            missing = [n for n in pair if n not in index]
            if len(pair) != 2 or missing:
                raise KeypointError(f"skeleton pair {'-'.join(pair)}: "
                                    + (f"no keypoint named {', '.join(missing)}" if missing
                                       else "a pair joins exactly two names"))
            pairs.append((index[pair[0]], index[pair[1]]))
        return cls(names, tuple(pairs))


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if t}


_SWAP = {"left": "right", "right": "left", "l": "r", "r": "l"}


def derive_flip(names: Sequence[str]) -> tuple[int, ...]:
    """The flip map the names imply: a name with a word `left`/`right` (or `l`/`r`) between
    separators (`left_eye`, `eye.L`, `front-left-leg`) swaps with the name that has the
    other word in that place; any other name maps to itself."""
    index = {n: i for i, n in enumerate(names)}
    out = list(range(len(names)))
    for i, name in enumerate(names):
        parts = re.split(r"([^A-Za-z0-9]+)", name)
        for j, part in enumerate(parts):
            other = _SWAP.get(part.lower())
            if other is None:
                continue
            if part.isupper():
                other = other.upper()
            elif part[:1].isupper():
                other = other.capitalize()
            mirror = "".join(parts[:j] + [other] + parts[j + 1:])
            if mirror in index:
                out[i] = index[mirror]
                break
    # a pair must point at each other; anything one-sided stays where it is
    return tuple(o if out[o] == i else i for i, o in enumerate(out))


COCO_PERSON_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
#: COCO's person skeleton (as COCO writes it, 1-based).
COCO_PERSON_SKELETON_1 = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))
#: The template offered for people: COCO's 17 keypoints and skeleton.
COCO_PERSON = KeypointSchema(COCO_PERSON_NAMES,
                             tuple((a - 1, b - 1) for a, b in COCO_PERSON_SKELETON_1))
#: COCO's per-keypoint OKS sigmas for its 17 person keypoints.
COCO_SIGMAS = dict(zip(COCO_PERSON_NAMES, (
    .026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087,
    .089, .089), strict=True))
#: The sigma of a name COCO has no sigma for: the mean of COCO's.
DEFAULT_SIGMA = round(sum(COCO_SIGMAS.values()) / len(COCO_SIGMAS), 3)

TEMPLATES: dict[str, KeypointSchema] = {"COCO person (17 keypoints)": COCO_PERSON}


def oks_sigmas(names: Sequence[str]) -> list[float]:
    """The OKS sigma of each name: COCO's for a COCO person keypoint, else DEFAULT_SIGMA."""
    return [COCO_SIGMAS.get(n, DEFAULT_SIGMA) for n in names]


def check_points(points: Sequence[Sequence[float]], schema: KeypointSchema,
                 where: str = "keypoints") -> Points:
    """Validated points for the schema: one (x, y, v) per name, v in 0/1/2, finite
    non-negative coordinates; a v = 0 point becomes (0, 0, 0)."""
    if len(points) != schema.size:
        raise KeypointError(f"{where}: {len(points)} points for {schema.size} keypoint names")
    out = []
    for name, p in zip(schema.names, points, strict=True):
        if len(p) != 3:
            raise KeypointError(f"{where}: keypoint {name!r} needs x, y and visibility")
        x, y, v = p
        if isinstance(v, bool) or v not in VISIBILITIES or int(v) != v:
            raise KeypointError(f"{where}: keypoint {name!r} has visibility {v!r}; expected "
                                "0 (not labelled), 1 (occluded) or 2 (visible)")
        if not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                   for c in (x, y)):
            raise KeypointError(f"{where}: keypoint {name!r} has coordinates {x!r}, {y!r}")
        if v == NOT_LABELLED:
            out.append((0.0, 0.0, 0))
            continue
        if x < 0 or y < 0:
            raise KeypointError(f"{where}: keypoint {name!r} lies outside the image "
                                f"({x}, {y})")
        out.append((float(x), float(y), int(v)))
    return tuple(out)


def points_from_coco(flat: Sequence[float], schema: KeypointSchema,
                     where: str = "keypoints") -> Points:
    """COCO's flat [x1, y1, v1, x2, ...] list → checked points."""
    if not isinstance(flat, (list, tuple)) or len(flat) != 3 * schema.size:
        n = len(flat) if isinstance(flat, (list, tuple)) else type(flat).__name__
        raise KeypointError(f"{where}: {n} numbers where {schema.size} keypoints need "
                            f"{3 * schema.size} (x, y, v per keypoint)")
    return check_points([tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)], schema, where)


def points_to_coco(points: Points) -> list[float | int]:
    """Points → COCO's flat triplets (v = 0 as 0, 0, 0; whole numbers as ints)."""
    out: list[float | int] = []
    for x, y, v in points:
        if v == NOT_LABELLED:
            out += [0, 0, 0]
        else:
            out += [int(x) if float(x).is_integer() else x,
                    int(y) if float(y).is_integer() else y, int(v)]
    return out


def labelled_count(points: Points | None) -> int:
    """COCO's `num_keypoints`: how many points have v > 0."""
    return 0 if points is None else sum(1 for _, _, v in points if v > 0)


def empty_points(schema: KeypointSchema) -> Points:
    return tuple((0.0, 0.0, 0) for _ in schema.names)


def points_to_json(points: Points | None) -> str | None:
    return None if points is None else json.dumps(points_to_coco(points))


def points_from_json(text: str | None) -> Points | None:
    if text is None:
        return None
    flat = json.loads(text)
    return tuple((float(flat[i]), float(flat[i + 1]), int(flat[i + 2]))
                 for i in range(0, len(flat), 3))


def slot_layout(schemas: Mapping[str, KeypointSchema]) -> dict[str, tuple[int, int]]:
    """Where each category's keypoints sit in a model's one keypoint head: (first slot,
    count) per category name, in the mapping's order. The head predicts the sum of counts;
    an instance of a category is trained and read on its own slots only."""
    out, start = {}, 0
    for name, schema in schemas.items():
        out[name] = (start, schema.size)
        start += schema.size
    return out


# ---------------------------------------------------------------- the keypoint tool's gestures
def next_unlabelled(points: Points | None, schema: KeypointSchema) -> int | None:
    """The index of the keypoint a click places next: the first one not labelled (None:
    all are)."""
    current = points or empty_points(schema)
    return next((i for i, (_, _, v) in enumerate(current) if v == NOT_LABELLED), None)


def with_point(points: Points | None, schema: KeypointSchema, index: int, x: float, y: float,
               v: int | None = None) -> Points:
    """The points with keypoint `index` at (x, y); its visibility kept when it had one,
    else `v` (default: visible)."""
    current = list(points or empty_points(schema))
    old_v = current[index][2]
    current[index] = (float(x), float(y), int(v if v is not None else old_v or VISIBLE))
    return check_points(current, schema)


def toggled(points: Points, schema: KeypointSchema, index: int) -> Points:
    """The points with keypoint `index` switched between visible and occluded (a point not
    labelled stays so)."""
    current = list(points)
    x, y, v = current[index]
    if v != NOT_LABELLED:
        current[index] = (x, y, OCCLUDED if v == VISIBLE else VISIBLE)
    return check_points(current, schema)


def without_point(points: Points, schema: KeypointSchema, index: int) -> Points | None:
    """The points with keypoint `index` not labelled; None when no point is left."""
    current = list(points)
    current[index] = (0.0, 0.0, NOT_LABELLED)
    out = check_points(current, schema)
    return out if labelled_count(out) else None


def nearest_point(points: Points | None, x: float, y: float, radius: float) -> int | None:
    """The labelled keypoint nearest to (x, y) within `radius` (None: none)."""
    best, best_d = None, radius
    for i, (px, py, v) in enumerate(points or ()):
        d = math.hypot(px - x, py - y)
        if v != NOT_LABELLED and d <= best_d:
            best, best_d = i, d
    return best
