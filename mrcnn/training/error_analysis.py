"""The errors a model makes on the validation split, image by image: what it detected that is
not there (false positive), what it did not find (missed), and what it found with a poor mask
(poor fit); which errors a new version fixed and which it introduced; kept per model version.

The rule (one home, the window and `python -m mrcnn errors` call it):

- A *detection* is a prediction scoring at least `DETECTION_SCORE` (0.5: the window's default
  score slider, so the errors are those a person sees on the canvas).
- Detections are matched to the image's accepted instances of the *same category*, one to
  one, greedily by mask IoU (the highest IoU first; a tie goes to the higher score), a pair
  only when its IoU reaches `MATCH_IOU` (0.5, COCO's loosest threshold). Matching within a
  category is COCO's: a detection of the wrong category is a false positive and its object a
  miss (`other_category` names the confusion on both).
- A match with IoU below `GOOD_FIT_IOU` (0.75, COCO's strict threshold) is a *poor fit*
  (0.5 <= IoU < 0.75); an unmatched detection a *false positive*; an unmatched accepted
  instance *missed*.

Each error keeps the masks it is about (the accepted instance's and the prediction's, as RLE),
so the window shows it without running a model. The list is kept per model version in
`errors/<version>.json` in the project folder (`mrcnn.store.versions.errors_path`: JSON
written atomically; a derived file, beside the database rather than in it, so a schema never
changes for it and a version's list is replaced whole). Training writes it from the
predictions of its final evaluation (no second pass); `python -m mrcnn errors` and the
window's Model ▸ Find Errors on Validation write it for an existing version.

Torch-free: the window imports it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pycocotools import mask as cocomask

from mrcnn.errors import ProjectError
from mrcnn.io.atomic import write_atomic
from mrcnn.io.remote import RemoteImage
from mrcnn.masks import Rle
from mrcnn.store.project import Project
from mrcnn.store.records import ImageStatus, InstanceState, Split, StrEnum
from mrcnn.store.versions import errors_path

#: Predictions scoring at least this count as detections (the window's default slider).
DETECTION_SCORE = 0.5
#: A detection and an accepted instance of one category match at this mask IoU or more.
MATCH_IOU = 0.5
#: A match below this mask IoU is a poor fit.
GOOD_FIT_IOU = 0.75
#: The error list file's format.
FORMAT = 1

#: One detection as plain data: (category name, mask, score).
Detection = tuple[str, Rle, float]


class ErrorKind(StrEnum):
    FALSE_POSITIVE = "false_positive"
    MISSED = "missed"
    POOR_FIT = "poor_fit"


#: How a person reads each kind.
KIND_LABELS = {ErrorKind.FALSE_POSITIVE: "false positive", ErrorKind.MISSED: "missed",
               ErrorKind.POOR_FIT: "poor fit"}


@dataclass(frozen=True)
class TruthInstance:
    """One accepted instance as the analysis needs it."""

    instance_id: int
    category: str
    rle: Rle


@dataclass(frozen=True)
class TruthImage:
    """One reviewed image as plain data: where to read it and its accepted instances."""

    image_id: int
    path: str  # as the project lists it (for messages)
    file: str | RemoteImage  # where to read it (a remote image through the local cache)
    instances: tuple[TruthInstance, ...]


def reviewed_ids(project: Project, split: Split | str | None = Split.VAL) -> list[int]:
    """The reviewed images of `split` (None: both splits), in id order."""
    return [im.id for im in project.images(ImageStatus.REVIEWED)
            if split is None or im.split == split]


def truth_images(project: Project, image_ids: Iterable[int] | None = None) -> list[TruthImage]:
    """The images (default: the reviewed validation images) with their accepted instances,
    read from the project at once (plain data another thread or process may use)."""
    names = {c.id: c.name for c in project.categories()}
    out = []
    for image_id in reviewed_ids(project) if image_ids is None else image_ids:
        record = project.image(image_id)
        source = project.image_source(record)
        out.append(TruthImage(
            image_id, record.path, source if isinstance(source, RemoteImage) else str(source),
            tuple(TruthInstance(i.id, names[i.category_id], i.rle)
                  for i in project.instances(image_id, state=InstanceState.ACCEPTED))))
    return out


def iou_matrix(a: Sequence[Rle], b: Sequence[Rle]) -> np.ndarray:
    """(len(a), len(b)) mask IoUs; masks of another size than the other's count as 0."""
    out = np.zeros((len(a), len(b)), np.float64)
    if not len(a) or not len(b):
        return out
    sizes = {(r.height, r.width) for r in (*a, *b)}
    for size in sizes:
        ia = [i for i, r in enumerate(a) if (r.height, r.width) == size]
        ib = [j for j, r in enumerate(b) if (r.height, r.width) == size]
        if ia and ib:
            ious = cocomask.iou([_coco(a[i]) for i in ia], [_coco(b[j]) for j in ib],
                                [0] * len(ib))
            out[np.ix_(ia, ib)] = np.asarray(ious, np.float64).reshape(len(ia), len(ib))
    return out


def _coco(rle: Rle) -> dict:
    return {"size": [rle.height, rle.width], "counts": rle.counts.encode("ascii")}


def match(ious: np.ndarray, scores: Sequence[float], allowed: np.ndarray, *,
          min_iou: float = MATCH_IOU) -> dict[int, int]:
    """Detection index -> truth index, one to one, greedily by IoU (highest first; ties to
    the higher score), only where `allowed` (same shape as `ious`) and IoU >= `min_iou`."""
    pairs = sorted(((float(ious[d, t]), float(scores[d]), d, t)
                    for d, t in zip(*np.nonzero(allowed & (ious >= min_iou)), strict=True)),
                   key=lambda p: (-p[0], -p[1], p[2], p[3]))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _iou, _score, d, t in pairs:
        if d not in out and t not in used:
            out[int(d)] = int(t)
            used.add(int(t))
    return out


@dataclass(frozen=True)
class FoundError:
    """One error on one image.

    `category`: the accepted instance's (missed, poor fit) or the detection's (false
    positive). `iou`: the match's (poor fit); a missed instance's best IoU with a detection
    of its category; a false positive's best IoU with an accepted instance of its category.
    `score`: the detection's (None for a missed instance). `truth` / `predicted`: the masks
    (a missed instance's `predicted` is the detection overlapping it most, of any category, if
    any does; a false positive's `truth` the accepted instance it overlaps most). Where that
    other mask reaches MATCH_IOU with another category, `other_category` names it."""

    image_id: int
    kind: ErrorKind
    category: str
    iou: float
    score: float | None = None
    instance_id: int | None = None
    truth: Rle | None = None
    predicted: Rle | None = None
    other_category: str | None = None

    @property
    def mask(self) -> Rle | None:
        """The mask the error is about: the prediction's for a false positive, else the
        accepted instance's."""
        return self.predicted if self.kind == ErrorKind.FALSE_POSITIVE else self.truth

    def describe(self) -> str:
        """One line for a person: "missed disc (detected as ring)", "poor fit: square, IoU
        0.62"."""
        if self.kind == ErrorKind.MISSED:
            extra = f" (detected as {self.other_category})" if self.other_category else ""
            return f"missed {self.category}{extra}"
        if self.kind == ErrorKind.POOR_FIT:
            return f"poor fit: {self.category}, IoU {self.iou:.2f}"
        if self.other_category:
            extra = f" over a {self.other_category}"
        elif self.iou >= MATCH_IOU:
            extra = " (a second detection of one object)"
        else:
            extra = ""
        return f"false positive {self.category}{extra}, score {self.score or 0:.2f}"

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "kind": str(self.kind), "category": self.category,
                "iou": round(self.iou, 4), "score": self.score, "instance_id": self.instance_id,
                "truth": self.truth.to_coco() if self.truth else None,
                "predicted": self.predicted.to_coco() if self.predicted else None,
                "other_category": self.other_category}

    @classmethod
    def from_dict(cls, d: Mapping) -> FoundError:
        return cls(int(d["image_id"]), ErrorKind(d["kind"]), str(d["category"]),
                   float(d["iou"]), None if d.get("score") is None else float(d["score"]),
                   None if d.get("instance_id") is None else int(d["instance_id"]),
                   _rle(d.get("truth")), _rle(d.get("predicted")), d.get("other_category"))


def _rle(d: Mapping | None) -> Rle | None:
    if d is None:
        return None
    h, w = d["size"]
    return Rle(int(h), int(w), str(d["counts"]))


def find_errors(image_id: int, truth: Sequence[TruthInstance],
                detections: Sequence[Detection], *, score_floor: float = DETECTION_SCORE,
                ) -> list[FoundError]:
    """One image's errors (see the module docstring for the rule): missed instances and poor
    fits in the order of `truth`, then false positives by score."""
    dets = [d for d in detections if d[2] >= score_floor]
    ious = iou_matrix([d[1] for d in dets], [t.rle for t in truth])
    same = np.array([[d[0] == t.category for t in truth] for d in dets], bool).reshape(
        len(dets), len(truth))
    matched = match(ious, [d[2] for d in dets], same)
    truth_of = {t: d for d, t in matched.items()}
    found: list[FoundError] = []
    for j, t in enumerate(truth):
        d = truth_of.get(j)
        if d is not None:
            if ious[d, j] < GOOD_FIT_IOU:
                found.append(FoundError(image_id, ErrorKind.POOR_FIT, t.category,
                                        float(ious[d, j]), dets[d][2], t.instance_id, t.rle,
                                        dets[d][1]))
            continue
        mine = ious[same[:, j], j] if dets else np.zeros(0)
        near = int(np.argmax(ious[:, j])) if dets else -1
        overlap = near >= 0 and ious[near, j] > 0
        found.append(FoundError(
            image_id, ErrorKind.MISSED, t.category, float(mine.max()) if mine.size else 0.0,
            None, t.instance_id, t.rle, dets[near][1] if overlap else None,
            dets[near][0] if overlap and ious[near, j] >= MATCH_IOU
            and dets[near][0] != t.category else None))
    for d in sorted(set(range(len(dets))) - set(matched), key=lambda i: -dets[i][2]):
        name, rle, score = dets[d]
        mine = ious[d, same[d]] if truth else np.zeros(0)
        near = int(np.argmax(ious[d])) if truth else -1
        overlap = near >= 0 and ious[d, near] > 0
        found.append(FoundError(
            image_id, ErrorKind.FALSE_POSITIVE, name, float(mine.max()) if mine.size else 0.0,
            score, None, truth[near].rle if overlap else None, rle,
            truth[near].category if overlap and ious[d, near] >= MATCH_IOU
            and truth[near].category != name else None))
    return found


@dataclass(frozen=True)
class ErrorList:
    """The errors of one model on a set of images (the validation split when it was
    found): what the Errors panel lists and `errors/<version>.json` holds."""

    version: str | None  # the model version (or model key) whose predictions these are
    image_ids: tuple[int, ...]  # the images it was found on
    errors: tuple[FoundError, ...]
    score_floor: float = DETECTION_SCORE
    match_iou: float = MATCH_IOU
    good_fit_iou: float = GOOD_FIT_IOU
    created_at: float = 0.0
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason): images that were unreadable

    def counts(self) -> dict[ErrorKind, int]:
        out = dict.fromkeys(ErrorKind, 0)
        for e in self.errors:
            out[e.kind] += 1
        return out

    def describe(self) -> str:
        """"v3 on 10 validation images: 4 missed, 2 false positives, 3 poor fits"."""
        c = self.counts()
        n = len(self.image_ids)
        return (f"{self.version or 'the model'} on {_plural(n, 'validation image')}: "
                f"{c[ErrorKind.MISSED]} missed, "
                f"{_plural(c[ErrorKind.FALSE_POSITIVE], 'false positive')}, "
                f"{_plural(c[ErrorKind.POOR_FIT], 'poor fit')}")

    def rule(self) -> str:
        """The rule the list was found with, for a person."""
        return (f"detections: score ≥ {self.score_floor:.2f}; matched to an accepted instance "
                f"of the same category at mask IoU ≥ {self.match_iou:.2f}; a match below "
                f"IoU {self.good_fit_iou:.2f} is a poor fit")

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": self.version, "image_ids": list(self.image_ids),
                "score_floor": self.score_floor, "match_iou": self.match_iou,
                "good_fit_iou": self.good_fit_iou, "created_at": self.created_at,
                "skipped": [list(s) for s in self.skipped],
                "errors": [e.to_dict() for e in self.errors]}

    @classmethod
    def from_dict(cls, d: Mapping) -> ErrorList:
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r}, expected {FORMAT}")
        return cls(d.get("version"), tuple(int(i) for i in d["image_ids"]),
                   tuple(FoundError.from_dict(e) for e in d["errors"]),
                   float(d["score_floor"]), float(d["match_iou"]), float(d["good_fit_iou"]),
                   float(d.get("created_at") or 0.0),
                   tuple((str(p), str(r)) for p, r in d.get("skipped", [])))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def errors_on(images: Sequence[TruthImage], predictions: Mapping[int, Sequence[Detection]],
              *, version: str | None, score_floor: float = DETECTION_SCORE,
              skipped: Sequence[tuple[str, str]] = ()) -> ErrorList:
    """The error list of the model whose detections per image id are `predictions`, on the
    `images` it predicted (those it has no predictions for are left out)."""
    found: list[FoundError] = []
    ids = []
    for image in images:
        if image.image_id not in predictions:
            continue
        ids.append(image.image_id)
        found.extend(find_errors(image.image_id, image.instances, predictions[image.image_id],
                                 score_floor=score_floor))
    return ErrorList(version, tuple(ids), tuple(found), score_floor=score_floor,
                     created_at=time.time(), skipped=tuple(skipped))


# ---------------------------------------------------------------- before and after
def same_error(a: FoundError, b: FoundError) -> bool:
    """The same error of two models: on the same image, of the same kind, about the same
    accepted instance (its id, or masks overlapping at MATCH_IOU where an id is unknown) or,
    for false positives, of the same category with predicted masks overlapping at
    MATCH_IOU."""
    if a.image_id != b.image_id or a.kind != b.kind:
        return False
    if a.kind == ErrorKind.FALSE_POSITIVE:
        return a.category == b.category and _overlap(a.predicted, b.predicted)
    if a.instance_id is not None and b.instance_id is not None:
        return a.instance_id == b.instance_id
    return _overlap(a.truth, b.truth)


def _overlap(a: Rle | None, b: Rle | None) -> bool:
    return a is not None and b is not None and iou_matrix([a], [b])[0, 0] >= MATCH_IOU


@dataclass(frozen=True)
class ErrorDiff:
    """What changed from one model's errors to another's, on the images both were found on."""

    before: str | None
    after: str | None
    image_ids: tuple[int, ...]
    fixed: tuple[FoundError, ...]  # errors of `before` that `after` does not make
    introduced: tuple[FoundError, ...]  # errors of `after` that `before` does not make

    def describe(self) -> str:
        n = len(self.image_ids)
        return (f"since {self.before or 'before'}: {len(self.fixed)} fixed, "
                f"{len(self.introduced)} new (on the {n} validation image"
                f"{'s' if n != 1 else ''} both were scored on)")


def error_diff(before: ErrorList, after: ErrorList) -> ErrorDiff:
    """The errors `after` fixed and introduced relative to `before` (`same_error`), counted
    on the images both lists were found on."""
    common = set(before.image_ids) & set(after.image_ids)
    old = [e for e in before.errors if e.image_id in common]
    new = [e for e in after.errors if e.image_id in common]
    # errors are only ever the same on one image and of one kind: compare within those
    # groups (all pairs took half a second for two lists of 2000 errors)
    old_by = _by_image_and_kind(old)
    new_by = _by_image_and_kind(new)
    fixed = tuple(e for e in old
                  if not any(same_error(e, n) for n in new_by.get((e.image_id, e.kind), ())))
    introduced = tuple(n for n in new
                       if not any(same_error(e, n) for e in old_by.get((n.image_id, n.kind), ())))
    return ErrorDiff(before.version, after.version, tuple(sorted(common)), fixed, introduced)


def _by_image_and_kind(errors: Sequence[FoundError]
                       ) -> dict[tuple[int, ErrorKind], list[FoundError]]:
    groups: dict[tuple[int, ErrorKind], list[FoundError]] = {}
    for e in errors:
        groups.setdefault((e.image_id, e.kind), []).append(e)
    return groups


# ---------------------------------------------------------------- kept per version
def write_errors(path: str | Path, found: ErrorList) -> None:
    """Write an error list as JSON (atomically; the folder is made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(found.to_dict(), separators=(",", ":")).encode("utf-8"))


def read_errors(path: str | Path) -> ErrorList:
    """Read an error list; ProjectError naming the file when it is not one."""
    try:
        return ErrorList.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProjectError(f"the error list {path} is unreadable: {exc}") from None


def save_errors(project: Project, version_name: str, found: ErrorList) -> Path:
    """Keep `found` as the error list of the version `version_name`; returns the file."""
    path = errors_path(project, version_name)
    write_errors(path, found)
    return path


def stored_errors(project: Project, version_name: str) -> ErrorList | None:
    """The error list kept for the version (None: never found)."""
    path = errors_path(project, version_name)
    if not path.is_file():
        return None
    return replace(read_errors(path), version=version_name)  # a staged run named none
