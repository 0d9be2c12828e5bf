"""A simulated annotator: what a person does in the app to turn what it shows on one image
into correct instances, counted in actions and estimated seconds.

Pure functions on (H, W) bool masks (no store, no torch): `benchmarks/annotation_effort.py`
runs them on every image of a round. The geometry is the app's own: polygons are
rasterised by `mrcnn.editing.mask_tools.polygon_mask` (what the Polygon tool stores) and
Box → GrabCut is `image_tools.grabcut` (what the Box tool runs).

What the annotator does on one image, given the ground truth (GT) and the predictions the
app shows (pending predictions scoring at least the score slider's default):

1. Every shown prediction is paired greedily, by mask IoU, with at most one GT instance.
2. A pair at IoU >= `GOOD_IOU` (0.9) is kept: a wrong category is fixed (1 action, which also
   accepts it); the rest are accepted by one "Accept >= Threshold" (1 action per image).
3. A pair below `GOOD_IOU` is selected and corrected, or deleted (1 action) and its GT drawn
   anew, whichever costs the fewest actions (a tie: the fewest seconds, then brush before
   polygon before redrawing): correction by brush and eraser strokes (`brush_strokes`, below)
   or by polygon add/cut strokes on its largest errors until IoU >= 0.9 (`corrections`); +1
   to fix its category either way, and choosing the category of a redrawn one as in 5.
4. A shown prediction with no pair (a false positive or a duplicate) is deleted (1 action).
5. Every GT instance with no kept prediction is drawn with the cheapest tool that reaches
   IoU >= 0.9: a polygon with the fewest vertices that does (one click per vertex, +1 to
   close each ring; a hole or a second part is one more ring, drawn with Alt/Shift held), or
   Box → GrabCut (one drag) plus polygon add/cut corrections, or, when the app has a model
   loaded, Box → Mask (one drag: the model's mask for the box) plus the same corrections.
   Choosing the category costs 1 action when the project has more than one category (also
   after Box → Mask, whose model names one: a conservative count).
6. Mark Reviewed: 1 action per image.

The brush and eraser are counted from the error region, not simulated pixel by pixel:
`benchmarks/brush_model.py` has the model and its assumptions.

The annotator is an oracle: it knows which tool will be cheapest before trying it, so a
failed GrabCut attempt is never paid for. That makes the counts a lower bound for the tools
modelled; the magic wand is not modelled (it could only lower the counts), and a GrabCut
result is corrected with polygon strokes only.
Box → GrabCut is one action because the app's Box tool makes the instance when the drag
ends (no confirm step). Polygon vertices lie on the object's boundary (Douglas-Peucker keeps
boundary points), as a person clicks them; a cleverer placement could need a vertex less.
False positives are deleted, never left pending or hidden by moving the score slider.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from benchmarks.brush_model import (
    APP_BRUSH_RADIUS,
    brush_radius,
    brush_strokes,
    held_brush,
)
from mrcnn import masks
from mrcnn.editing import image_tools, mask_tools
from mrcnn.errors import MaskToolError

#: A prediction or a drawing is good enough when its mask IoU with the GT reaches this.
GOOD_IOU = 0.9
#: At most this many polygon add/cut corrections are tried on one mask before giving up.
MAX_CORRECTIONS = 6
#: Douglas-Peucker tolerance (px) of a correction polygon traced around an error region.
CORRECTION_EPSILON = 1.0

#: Seconds per action, and where each number comes from. Sources:
#: [Lin14] Lin et al. 2014, "Microsoft COCO": 22 worker-hours per 1,000 polygon instance
#:   segmentations, i.e. ~79 s per instance (large, complex objects, many vertices).
#: [Pap17] Papadopoulos et al. 2017, "Extreme clicking for efficient object annotation":
#:   ~7 s per box by extreme clicking; drawing a high-quality box the traditional way took
#:   ~35 s on ILSVRC (Su et al. 2012, cited there).
#: Everything marked "assumption" is ours, not measured.
SECONDS: dict[str, tuple[float, str]] = {
    "vertex": (1.5, "assumption: one polygon click; COCO's ~79 s per instance [Lin14] "
                    "implies more per vertex, with searching and checking included"),
    "close": (1.0, "assumption: close a polygon (click the first point / Enter)"),
    "category": (2.0, "assumption: choose a category from the list"),
    "box": (7.0, "one box drag, the fast end of measured box times (7 s [Pap17]; "
                 "35 s for a traditional high-quality box)"),
    "accept_all": (1.0, "assumption: one key (Accept >= Threshold)"),
    "delete": (2.0, "assumption: click a prediction, press Delete"),
    "select": (1.0, "assumption: click a prediction to correct it"),
    "brush": (3.0, "assumption: one brush stroke (press, drag along an edge, release): a "
                   "careful drag, about two polygon clicks"),
    "eraser": (3.0, "assumption: one eraser stroke, as a brush stroke"),
    "brush_size": (1.0, "assumption: resize the brush ([ / ] or Ctrl+wheel) for an object"),
    "review": (1.0, "assumption: Mark Reviewed (Ctrl+Enter), or a labelme user's save"),
    "check": (1.0, "assumption: look at one shown prediction (no action)"),
}
#: Kinds that cost time but are not actions (looking is not doing).
NOT_ACTIONS = frozenset({"check"})


@dataclass(frozen=True)
class Truth:
    """One ground-truth instance: category name and (H, W) bool mask."""

    category: str
    mask: np.ndarray


@dataclass(frozen=True)
class Shown:
    """One prediction the app shows: category name, (H, W) bool mask, score."""

    category: str
    mask: np.ndarray
    score: float = 1.0


#: How a GT instance was obtained (`Effort.outcomes`) when a shown prediction was paired
#: with it; a redrawn one is "redrawn (<tool>)", a missed one is drawn: its tool's name
#: ("polygon", "grabcut", "grabcut+fix", "outline").
ACCEPTED, CATEGORY_FIXED, BRUSH_FIX, POLYGON_FIX, REDRAWN = (
    "accepted", "category fixed", "brush fix", "polygon fix", "redrawn")


@dataclass
class Effort:
    """Actions by kind (see SECONDS) and how each GT instance was obtained (see ACCEPTED)."""

    counts: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    instances: int = 0
    images: int = 0

    @property
    def actions(self) -> int:
        return actions(self.counts)

    def seconds(self, model: Mapping[str, tuple[float, str]] = SECONDS) -> float:
        return sum(n * model[kind][0] for kind, n in self.counts.items() if n)

    def per_instance(self) -> float:
        return self.actions / self.instances if self.instances else 0.0

    def seconds_per_instance(self, model: Mapping[str, tuple[float, str]] = SECONDS) -> float:
        return self.seconds(model) / self.instances if self.instances else 0.0

    def paths(self) -> dict[str, int]:
        """Instances by path: a shown prediction accepted as it is (its category fixed or
        not), corrected with the brush, corrected with polygon strokes, redrawn; or drawn
        because nothing was shown for it."""
        o = self.outcomes
        redrawn = sum(n for k, n in o.items() if k.startswith(REDRAWN))
        as_is = o[ACCEPTED] + o[CATEGORY_FIXED]
        fixed = o[BRUSH_FIX] + o[POLYGON_FIX]
        return {"as-is": as_is, "brush": o[BRUSH_FIX], "polygon strokes": o[POLYGON_FIX],
                "redrawn": redrawn, "drawn": sum(o.values()) - as_is - fixed - redrawn}

    def __iadd__(self, other: Effort) -> Effort:
        self.counts.update(other.counts)
        self.outcomes.update(other.outcomes)
        self.instances += other.instances
        self.images += other.images
        return self


# ---------------------------------------------------------------- geometry
def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


@dataclass(frozen=True)
class Ring:
    """One polygon the annotator clicks: (N, 2) (x, y) points; a hole is cut (Alt held)."""

    points: np.ndarray
    hole: bool

    @property
    def cost(self) -> Counter[str]:
        return Counter(vertex=len(self.points), close=1)  # a click per vertex, one to close


def _rings(mask: np.ndarray) -> list[tuple[np.ndarray, bool, float]]:
    """The exact boundary rings of a mask: (points, is_hole, area), largest first."""
    outer, holes = masks.mask_to_polygons(mask)
    rings = [(np.asarray(p, np.float32).reshape(-1, 2), hole, 0.0)
             for group, hole in ((outer, False), (holes, True)) for p in group]
    sized = [(p, h, abs(float(cv2.contourArea(p)))) for p, h, _ in rings]
    return sorted(sized, key=lambda r: -r[2])


def _draw(rings: Sequence[Ring], shape: tuple[int, ...], start: np.ndarray | None = None
          ) -> np.ndarray:
    """The mask the app makes from these polygons, in order: an outer ring adds, a hole cuts."""
    out = np.zeros(shape[:2], bool) if start is None else start.copy()
    for ring in rings:
        region = mask_tools.polygon_mask(ring.points, out.shape)
        out = out & ~region if ring.hole else out | region
    return out


def min_polygon(mask: np.ndarray, *, target: float = GOOD_IOU, steps: int = 48
                ) -> list[Ring] | None:
    """The polygon drawing with the fewest clicks whose mask reaches IoU >= `target` with
    `mask`: each boundary ring simplified (Douglas-Peucker, `cv2.approxPolyDP`) at the
    tolerance that needs the fewest vertices, rings added largest first and only while
    needed (a tiny hole or speck is left out when IoU already reaches the target). None for
    an empty mask or one no polygon reaches (e.g. a one-pixel-wide line)."""
    mask = mask.astype(bool, copy=False)
    if not mask.any():
        return None
    rings = _rings(mask)
    h, w = mask.shape
    best: list[Ring] | None = None
    best_cost: int | None = None
    exact = [Ring(p, hole) for p, hole, _ in rings]
    for eps in [0.0, *np.geomspace(0.3, max(1.0, 0.25 * float(np.hypot(h, w))), steps)]:
        drawn: list[Ring] = []
        cur = np.zeros((h, w), bool)
        cost = 0
        for ring in exact:
            pts = ring.points if eps == 0 else cv2.approxPolyDP(
                ring.points.reshape(-1, 1, 2), float(eps), True).reshape(-1, 2)
            if len(pts) < 3:
                continue
            r = Ring(pts.astype(np.float64), ring.hole)
            drawn.append(r)
            cost += len(r.points) + 1
            if best_cost is not None and cost >= best_cost:
                break
            cur = _draw([r], cur.shape, cur)
            if mask_iou(cur, mask) >= target:
                best, best_cost = list(drawn), cost
                break
    return best


def actions(cost: Mapping[str, int]) -> int:
    """The number of actions in a cost (looking is not an action)."""
    return sum(n for kind, n in cost.items() if kind not in NOT_ACTIONS)


def polygon_cost(rings: Sequence[Ring] | None) -> Counter[str] | None:
    """Clicks to draw these polygons (vertices + one close per ring); None stays None."""
    if rings is None:
        return None
    return sum((r.cost for r in rings), Counter())


def corrections(start: np.ndarray, target: np.ndarray, *, goal: float = GOOD_IOU,
                max_steps: int = MAX_CORRECTIONS) -> Counter[str] | None:
    """Actions to bring `start` to IoU >= `goal` with `target` by polygon add/cut strokes
    (Shift / Alt held, one click per vertex, one to close), each traced around the largest
    remaining error region; nothing when it is already there, None when `max_steps` strokes
    do not get there."""
    cur = start.astype(bool, copy=True)
    target = target.astype(bool, copy=False)
    spent: Counter[str] = Counter()
    for _ in range(max_steps + 1):
        iou = mask_iou(cur, target)
        if iou >= goal:
            return spent
        errors = [(part, False) for part in mask_tools.split_components(target & ~cur)]
        errors += [(part, True) for part in mask_tools.split_components(cur & ~target)]
        if not errors or _ == max_steps:
            return None
        region, cut = max(errors, key=lambda e: int(e[0].sum()))
        outline = _rings(region)[0][0]
        pts = cv2.approxPolyDP(outline.reshape(-1, 1, 2), CORRECTION_EPSILON, True)
        pts = pts.reshape(-1, 2)
        if len(pts) < 3:
            return None
        ring = Ring(pts.astype(np.float64), cut)
        new = _draw([ring], cur.shape, cur)
        if mask_iou(new, target) <= iou:
            return None  # the stroke cannot help (the error is thinner than a polygon)
        cur = new
        spent += ring.cost
    return None


def grabcut_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The box a person drags around an object: its bounding box, a little loose (5% of its
    size, at least 2 px, each side), clipped to the image; pixel-corner (x0, y0, x1, y1)."""
    r = mask_tools.Rect.of_mask(mask)
    pad = max(2.0, 0.05 * max(r.width, r.height))
    h, w = mask.shape
    return (max(0.0, r.x0 - pad), max(0.0, r.y0 - pad), min(float(w), r.x1 + pad),
            min(float(h), r.y1 + pad))


def grabcut_cost(rgb: np.ndarray, mask: np.ndarray) -> Counter[str] | None:
    """Box → GrabCut (one drag) plus the polygon corrections it needs; None when GrabCut
    cannot run on this box or the corrections do not reach the goal."""
    try:
        found = image_tools.grabcut(rgb, grabcut_box(mask))
    except MaskToolError:
        return None
    fix = corrections(found, mask)
    return None if fix is None else Counter(box=1) + fix


# ---------------------------------------------------------------- one image
@dataclass(frozen=True)
class Drawing:
    """The cheapest way to draw one GT instance: tool name and its cost (category excluded)."""

    tool: str
    cost: Counter[str]

    @property
    def actions(self) -> int:
        return actions(self.cost)


#: The model's mask for a box a person drags (Box → Mask): box (x0, y0, x1, y1) -> mask.
BoxModel = Callable[[tuple[float, float, float, float]], np.ndarray]


def boxmask_cost(box_model: BoxModel, mask: np.ndarray) -> Counter[str] | None:
    """Box → Mask (one drag, the same box as GrabCut's) plus the polygon corrections it
    needs; None when they do not reach the goal."""
    fix = corrections(box_model(grabcut_box(mask)), mask)
    return None if fix is None else Counter(box=1) + fix


def cheapest_drawing(truth: Truth, rgb: np.ndarray | None, *, tools: Sequence[str],
                     box_model: BoxModel | None = None) -> Drawing:
    """The cheapest of `tools` ("polygon", "grabcut", "boxmask" with `box_model`) that
    draws `truth` to IoU >= 0.9. Falls back to the exact outline (every boundary corner
    clicked) when no tool gets there."""
    options: list[Drawing] = []
    if "polygon" in tools:
        poly = polygon_cost(min_polygon(truth.mask))
        if poly is not None:
            options.append(Drawing("polygon", poly))
    if "grabcut" in tools and rgb is not None:
        cut = grabcut_cost(rgb, truth.mask)
        if cut is not None:
            options.append(Drawing("grabcut" if actions(cut) == 1 else "grabcut+fix", cut))
    if "boxmask" in tools and box_model is not None:
        boxed = boxmask_cost(box_model, truth.mask)
        if boxed is not None:
            options.append(Drawing("boxmask" if actions(boxed) == 1 else "boxmask+fix",
                                   boxed))
    if not options:
        rings = [Ring(p.astype(np.float64), hole) for p, hole, _ in _rings(truth.mask)]
        return Drawing("outline", polygon_cost(rings) or Counter())
    return min(options, key=lambda d: d.actions)


@dataclass(frozen=True)
class Fix:
    """What the annotator does with a shown prediction paired below `GOOD_IOU`: its path
    (BRUSH_FIX, POLYGON_FIX or REDRAWN), the whole cost (selecting or deleting it and the
    category included), the brush radius held afterwards, and the redrawing, if redrawn."""

    path: str
    cost: Counter[str]
    radius: float
    drawing: Drawing | None = None

    @property
    def actions(self) -> int:
        return actions(self.cost)


def fix_options(pred: np.ndarray, truth: Truth, rgb: np.ndarray | None, *,
                tools: Sequence[str], wrong_category: bool, n_categories: int,
                held_radius: float = APP_BRUSH_RADIUS,
                box_model: BoxModel | None = None) -> list[Fix]:
    """Every way to turn `pred` into `truth`: select it and correct it with the brush and
    eraser, select it and correct it with polygon strokes (when they get there), or delete it
    and redraw the GT with the cheapest of `tools` (its category chosen when there are
    several)."""
    wrong = int(wrong_category)
    options = []
    radius, resize = held_brush(brush_radius(truth.mask), held_radius)
    strokes = brush_strokes(pred, truth.mask, radius=radius, goal=GOOD_IOU)
    if strokes is not None:
        options.append(Fix(BRUSH_FIX, Counter(select=1, brush_size=resize, category=wrong)
                           + strokes, radius))
    polygon = corrections(pred, truth.mask)
    if polygon is not None:
        options.append(Fix(POLYGON_FIX, Counter(select=1, category=wrong) + polygon,
                           held_radius))
    drawing = cheapest_drawing(truth, rgb, tools=tools, box_model=box_model)
    options.append(Fix(REDRAWN, Counter(delete=1, category=int(n_categories > 1))
                       + drawing.cost, held_radius, drawing))
    return options


def cheapest_fix(pred: np.ndarray, truth: Truth, rgb: np.ndarray | None, *,
                 tools: Sequence[str], wrong_category: bool, n_categories: int,
                 held_radius: float = APP_BRUSH_RADIUS,
                 box_model: BoxModel | None = None) -> Fix:
    """The cheapest of `fix_options`: the fewest actions, then the fewest seconds, then in
    the order brush, polygon, redraw."""
    options = fix_options(pred, truth, rgb, tools=tools, wrong_category=wrong_category,
                          n_categories=n_categories, held_radius=held_radius,
                          box_model=box_model)
    return min(options, key=lambda f: (f.actions, sum(n * SECONDS[k][0]
                                                      for k, n in f.cost.items())))


def _pairs(shown: Sequence[Shown], truth: Sequence[Truth]) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs (shown index, truth index, IoU), highest IoU first."""
    ious = [(mask_iou(s.mask, t.mask), i, j) for i, s in enumerate(shown)
            for j, t in enumerate(truth)]
    used_s: set[int] = set()
    used_t: set[int] = set()
    out = []
    for iou, i, j in sorted(ious, key=lambda x: (-x[0], x[1], x[2])):
        if iou <= 0 or i in used_s or j in used_t:
            continue
        used_s.add(i)
        used_t.add(j)
        out.append((i, j, iou))
    return out


def annotate_image(truth: Sequence[Truth], shown: Sequence[Shown], *, n_categories: int,
                   rgb: np.ndarray | None = None,
                   tools: Sequence[str] = ("polygon", "grabcut"),
                   box_model: BoxModel | None = None) -> Effort:
    """The actions that turn `shown` into `truth` on one image (see the module docstring);
    with `box_model` (the model the app has loaded) Box → Mask is one more drawing tool."""
    if box_model is not None and "boxmask" not in tools:
        tools = (*tools, "boxmask")
    effort = Effort(instances=len(truth), images=1)
    c = effort.counts
    choose = int(n_categories > 1)
    c["check"] += len(shown)
    accept_all = False
    paired: set[int] = set()
    kept: set[int] = set()
    radius = APP_BRUSH_RADIUS  # the brush the person holds
    for i, j, iou in _pairs(shown, truth):
        paired.add(i)
        t, s = truth[j], shown[i]
        wrong = int(s.category != t.category)
        if iou >= GOOD_IOU:
            kept.add(j)
            if wrong:
                c["category"] += 1
                effort.outcomes[CATEGORY_FIXED] += 1
            else:
                accept_all = True
                effort.outcomes[ACCEPTED] += 1
            continue
        fix = cheapest_fix(s.mask, t, rgb, tools=tools, wrong_category=bool(wrong),
                           n_categories=n_categories, held_radius=radius,
                           box_model=box_model)
        c.update(fix.cost)  # the deletion and the redrawing included
        kept.add(j)
        how = fix.path if fix.drawing is None else f"{REDRAWN} ({fix.drawing.tool})"
        effort.outcomes[how] += 1
        radius = fix.radius
    c["delete"] += len(shown) - len(paired)
    for j, t in enumerate(truth):
        if j in kept:
            continue
        drawing = cheapest_drawing(t, rgb, tools=tools, box_model=box_model)
        c.update(drawing.cost)
        c["category"] += choose
        effort.outcomes[drawing.tool] += 1
    c["accept_all"] += int(accept_all)
    c["review"] += 1
    effort.counts = +c  # drop the kinds never used
    return effort


def baseline_image(truth: Sequence[Truth], *, n_categories: int) -> Effort:
    """"Polygon only, no model" (what a labelme user does): every GT instance drawn with the
    fewest-click polygon reaching IoU >= 0.9, its category chosen when there is more than
    one, and the image saved once."""
    return annotate_image(truth, [], n_categories=n_categories, rgb=None, tools=("polygon",))
