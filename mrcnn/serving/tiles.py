"""Tiled prediction's rules, torch-free: when an image is tiled, the tile grid, detections
kept as mask crops, and the merge of the tiles' detections into one set per image.

An image much larger than the model's input loses its small objects when it is resized to
that input. Tiled prediction (`mrcnn.serving.tiled_predict`) predicts overlapping tiles at
the image's own resolution, and the whole image once, resized as usual, for objects larger
than a tile; this module decides and merges:

- **When** (`tile_size_for`): "auto" tiles an image whose longer side is more than
  `AUTO_FACTOR` (2) times the model's longest input side (`max_size`: 1333 px for the r50
  presets) and more than `AUTO_MIN_SIDE` (2666 px: twice the r50 presets' longest input), with
  tiles of the model's shorter input side (`min_size`: 800 px), which the model takes at
  scale 1. The floor keeps ordinary photos whole under models with small inputs (the CPU
  recipe's 256 px r18), which were trained on them whole, resized; training crops images by
  the same rule (`mrcnn.training.dataset.TrainingCrops`), so a model sees objects at the
  scale it will be asked about. A size in pixels tiles every image larger than that size;
  "off" never.
- **Grid** (`tile_grid`): along each side, the fewest tiles of the tile size that overlap
  their neighbours by at least `OVERLAP` (20%) of it, spread evenly from edge to edge (the
  first starts at 0, the last ends at the image edge). So an object at most that overlap
  across (160 px for 800-px tiles) lies whole inside at least one tile, and one at most
  that overlap less 2 x `EDGE_PX` (154 px) is seen whole, not cut, by one.
- **Cut**: a tile's detection whose mask comes within `EDGE_PX` pixels of a tile edge that is
  not an image edge is cut: that tile sees only part of it.
- **Merge** (`merge`), same class only:
  1. Two detections of different tiles are the same object when, inside the area both tiles
     see, their masks overlap by at least `MATCH` (half) of the smaller of the two's masks
     there. Linked detections form one object: the best-scoring detection that is not cut
     when a tile saw the object whole (the cut views are dropped), else the union of the cut
     views' masks (an object larger than the overlap, cut by every tile it lies in).
  2. A detection of the whole-image pass is dropped when objects the tiles saw whole cover at
     least `MATCH` of its mask (the tiles saw them at full resolution: the same objects, or
     small ones the resized pass ran together). Otherwise it is kept, and the tiles' cut
     views with at least `MATCH` of their mask inside it are the same object seen in parts:
     they are dropped, and their union, seen at full resolution, becomes its mask when it
     covers at least `REFINE` of the pass's coarser one. Objects a tile saw whole are never
     dropped for the pass's sake: small objects are what tiling is for.
  Detections are never merged across classes, and two touching objects (masks that meet but
  hardly overlap) stay two.
- **Memory**: each detection's mask is a crop with its offset (`Piece`), and a merged
  image's masks are a `CropMasks`, which pastes one full-size mask at a time when read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from pycocotools import mask as cocomask

from mrcnn.masks import Rle, encode

#: A tiles setting: "auto", "off", or a tile size in pixels.
TileSetting = str | int
TILES_AUTO = "auto"
TILES_OFF = "off"
#: "auto" tiles an image whose longer side exceeds this many times the model's longest input...
AUTO_FACTOR = 2.0
#: ...and this many pixels (twice 1333, the r50 presets' longest input side).
AUTO_MIN_SIDE = 2666
#: Neighbouring tiles overlap by at least this fraction of the tile size.
OVERLAP = 0.2
#: The smallest tile size a setting may name, in pixels.
MIN_TILE = 32
#: A detection within this many pixels of a tile edge that is not an image edge is cut (a
#: model's mask of a cut object may stop a pixel or two short of the tile's edge).
EDGE_PX = 3
#: Same object: masks overlapping by at least this fraction of the smaller one (see `merge`).
MATCH = 0.5
#: The tiles' union replaces a whole-image detection's mask when it covers this much of it.
REFINE = 0.7
#: The `Piece.tile` of a detection of the whole-image pass.
WHOLE = -1


def parse_tiles(value: str | int) -> TileSetting:
    """"auto", "off" or a tile size (an int of at least MIN_TILE, or its digits); ValueError
    naming the choices otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in (TILES_AUTO, TILES_OFF):
            return text
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= MIN_TILE:
        return value
    raise ValueError(f"tiles must be 'auto', 'off' or a tile size in pixels (at least "
                     f"{MIN_TILE}), not {value!r}")


def tile_size_for(setting: TileSetting, height: int, width: int, *, input_short: int,
                  input_long: int) -> int | None:
    """The tile size an image of height x width is predicted in, or None for the whole image
    at once. `input_short` / `input_long`: the model's input size (the shorter side it
    resizes to, the cap on the longer side)."""
    setting = parse_tiles(setting)
    longer = max(height, width)
    if setting == TILES_OFF:
        return None
    if setting == TILES_AUTO:
        return input_short if longer > max(AUTO_FACTOR * input_long, AUTO_MIN_SIDE) else None
    assert isinstance(setting, int)
    return setting if longer > setting else None


def overlap_for(tile: int) -> int:
    """The least overlap of neighbouring tiles of this size, in pixels."""
    return min(tile - 1, max(1, round(OVERLAP * tile)))


@dataclass(frozen=True)
class Tile:
    """A rectangle of the image, [x0, x1) x [y0, y1) in pixels."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def intersection(self, other: Tile) -> Tile | None:
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        return Tile(x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where the tiles along one side of `length` pixels start: the fewest tiles of `tile`
    pixels overlapping by at least `overlap`, spread evenly (the last ends at `length`)."""
    if not 0 <= overlap < tile:
        raise ValueError(f"the overlap ({overlap}) must be at least 0 and less than the tile "
                         f"size ({tile})")
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    # floor(i * span / (n - 1)): steps of at most tile - overlap (an integer), even after
    # rounding, since floor(x + k) = floor(x) + k
    return [i * (length - tile) // (n - 1) for i in range(n)]


def tile_grid(height: int, width: int, tile: int, overlap: int | None = None) -> list[Tile]:
    """The tiles of an image, row by row: `tile` pixels square (less along a side shorter
    than that), neighbours overlapping by at least `overlap` (None: `overlap_for(tile)`)."""
    overlap = overlap_for(tile) if overlap is None else overlap
    ys = axis_starts(height, tile, overlap)
    xs = axis_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    return [Tile(x, y, x + tw, y + th) for y in ys for x in xs]


# ---------------------------------------------------------------- detections as crops
@dataclass(frozen=True)
class Piece:
    """One detection, its mask kept as a crop: `mask` (h, w) bool with its top-left pixel
    at (x0, y0) of the image. `box` is xyxy in image pixels; `tile` the index of the tile
    it was seen in (WHOLE: the whole-image pass); `cut` whether that tile sees only part of
    it (see the module's rules)."""

    label: int
    score: float
    box: tuple[float, float, float, float]
    x0: int
    y0: int
    mask: np.ndarray
    tile: int = WHOLE
    cut: bool = False
    area: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", int(np.count_nonzero(self.mask)))

    @property
    def x1(self) -> int:
        return self.x0 + self.mask.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.mask.shape[0]


def tight(mask: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """(x, y, the mask cropped to its pixels' bounding box), None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(x0), int(y0), np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=bool)


def tile_pieces(index: int, tile: Tile, boxes: np.ndarray, labels: np.ndarray,
                scores: np.ndarray, masks: np.ndarray | Sequence[np.ndarray], *, height: int,
                width: int, edge_px: int = EDGE_PX) -> list[Piece]:
    """A tile's detections (boxes (N, 4) xyxy, labels (N,), scores (N,), masks (N, th, tw)
    bool, all in the tile's pixels) as pieces in the pixels of the image (height x width);
    empty masks are left out."""
    out = []
    for box, label, score, mask in zip(boxes, labels, scores, masks, strict=True):
        crop = tight(mask)
        if crop is None:
            continue
        x, y, m = crop
        cut = ((tile.x0 > 0 and x < edge_px) or (tile.y0 > 0 and y < edge_px)
               or (tile.x1 < width and x + m.shape[1] > tile.width - edge_px)
               or (tile.y1 < height and y + m.shape[0] > tile.height - edge_px))
        b = [float(v) for v in box]
        out.append(Piece(int(label), float(score),
                         (b[0] + tile.x0, b[1] + tile.y0, b[2] + tile.x0, b[3] + tile.y0),
                         tile.x0 + x, tile.y0 + y, m, index, bool(cut)))
    return out


def whole_pieces(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                 masks: np.ndarray | Sequence[np.ndarray], *, height: int, width: int
                 ) -> list[Piece]:
    """Detections on the image resized to (h, w) (masks (N, h, w) bool) as pieces in the
    pixels of the image itself (height x width): each mask's crop is scaled up on its own
    (bilinear, threshold 0.5), never the whole stack."""
    out = []
    for box, label, score, mask in zip(boxes, labels, scores, masks, strict=True):
        h, w = mask.shape
        sx, sy = width / w, height / h
        crop = tight(mask)
        if crop is None:
            continue
        x, y, m = crop
        # one pixel of margin so the interpolation sees the edge fall off
        px0, py0 = max(0, x - 1), max(0, y - 1)
        px1, py1 = min(w, x + m.shape[1] + 1), min(h, y + m.shape[0] + 1)
        small = mask[py0:py1, px0:px1].astype(np.float32)
        fx0, fy0 = math.floor(px0 * sx), math.floor(py0 * sy)
        fx1, fy1 = min(width, math.ceil(px1 * sx)), min(height, math.ceil(py1 * sy))
        big = cv2.resize(small, (fx1 - fx0, fy1 - fy0), interpolation=cv2.INTER_LINEAR) >= 0.5
        crop = tight(big)
        if crop is None:
            continue
        bx, by, bm = crop
        b = [float(v) for v in box]
        out.append(Piece(int(label), float(score), (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy),
                         fx0 + bx, fy0 + by, bm, WHOLE, False))
    return out


def intersection(a: Piece, b: Piece) -> int:
    """Pixels in both masks."""
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1, y1 = min(a.x1, b.x1), min(a.y1, b.y1)
    if x0 >= x1 or y0 >= y1:
        return 0
    return int(np.count_nonzero(a.mask[y0 - a.y0:y1 - a.y0, x0 - a.x0:x1 - a.x0]
                                & b.mask[y0 - b.y0:y1 - b.y0, x0 - b.x0:x1 - b.x0]))


def area_inside(piece: Piece, rect: Tile) -> int:
    """Pixels of the mask inside `rect`."""
    x0, y0 = max(piece.x0, rect.x0), max(piece.y0, rect.y0)
    x1, y1 = min(piece.x1, rect.x1), min(piece.y1, rect.y1)
    if x0 >= x1 or y0 >= y1:
        return 0
    return int(np.count_nonzero(piece.mask[y0 - piece.y0:y1 - piece.y0,
                                           x0 - piece.x0:x1 - piece.x0]))


def union(pieces: Sequence[Piece]) -> Piece:
    """One piece whose mask is the union of the pieces' masks (label of the first, best
    score, box the mask's, tile WHOLE, not cut)."""
    x0, y0 = min(p.x0 for p in pieces), min(p.y0 for p in pieces)
    x1, y1 = max(p.x1 for p in pieces), max(p.y1 for p in pieces)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for p in pieces:
        mask[p.y0 - y0:p.y1 - y0, p.x0 - x0:p.x1 - x0] |= p.mask
    crop = tight(mask)
    assert crop is not None  # pieces are never empty
    x, y, m = crop
    gx, gy = x0 + x, y0 + y
    return Piece(pieces[0].label, max(p.score for p in pieces),
                 (float(gx), float(gy), float(gx + m.shape[1]), float(gy + m.shape[0])),
                 gx, gy, m, WHOLE, False)


def _rects(pieces: Sequence[Piece]) -> np.ndarray:
    return np.array([(p.x0, p.y0, p.x1, p.y1) for p in pieces], np.int64).reshape(-1, 4)


def _touching(rects: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Which of `rects` (N, 4) intersect `rect` (4,)."""
    return ((rects[:, 0] < rect[2]) & (rect[0] < rects[:, 2])
            & (rects[:, 1] < rect[3]) & (rect[1] < rects[:, 3]))


def _link_tiles(pieces: Sequence[Piece], tiles: Sequence[Tile]) -> list[list[Piece]]:
    """The tiles' pieces grouped into objects (rule 1 of the module's merge)."""
    parent = list(range(len(pieces)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rects = _rects(pieces)
    labels = np.array([p.label for p in pieces], np.int64)
    tile_of = np.array([p.tile for p in pieces], np.int64)
    for i, a in enumerate(pieces):
        near = _touching(rects, rects[i]) & (labels == a.label) & (tile_of != a.tile)
        near[:i + 1] = False
        for j in np.flatnonzero(near).tolist():
            b = pieces[j]
            shared = tiles[a.tile].intersection(tiles[b.tile])
            if shared is None:
                continue
            smaller = min(area_inside(a, shared), area_inside(b, shared))
            if smaller and intersection(a, b) >= MATCH * smaller:
                parent[find(j)] = find(i)
    groups: dict[int, list[Piece]] = {}
    for i, p in enumerate(pieces):
        groups.setdefault(find(i), []).append(p)
    return list(groups.values())


def merge(pieces: Sequence[Piece], tiles: Sequence[Tile]) -> list[Piece]:
    """One piece per object from the tiles' pieces (`tile` indexes `tiles`) and the
    whole-image pass's (`tile` WHOLE), best score first. The rules are the module's."""
    from_tiles = [p for p in pieces if p.tile != WHOLE]
    objects: list[tuple[Piece, bool]] = []  # (object, seen whole by a tile)
    for group in _link_tiles(from_tiles, tiles):
        whole = [p for p in group if not p.cut]
        if whole:
            objects.append((max(whole, key=lambda p: p.score), True))
        else:
            objects.append((group[0] if len(group) == 1 else union(group), False))
    alive = [True] * len(objects)
    rects = _rects([o for o, _ in objects])
    labels = np.array([o.label for o, _ in objects], np.int64)
    kept: list[Piece] = []
    passes = sorted((p for p in pieces if p.tile == WHOLE), key=lambda p: -p.score)
    for w in passes:
        near = [k for k in np.flatnonzero(_touching(rects, np.array([w.x0, w.y0, w.x1, w.y1]))
                                          & (labels == w.label)) if alive[k]]
        overlaps = {k: intersection(w, objects[k][0]) for k in near}
        if sum(v for k, v in overlaps.items() if objects[k][1]) >= MATCH * w.area:
            continue  # the tiles saw it (or the small objects it ran together) whole
        inside = [k for k in near
                  if not objects[k][1] and overlaps[k] >= MATCH * objects[k][0].area]
        if inside:
            parts = union([objects[k][0] for k in inside])
            if intersection(parts, w) >= REFINE * w.area:
                w = Piece(w.label, w.score, parts.box, parts.x0, parts.y0, parts.mask)
            for k in inside:
                alive[k] = False
        kept.append(w)
    kept += [o for (o, _), live in zip(objects, alive, strict=True) if live]
    return sorted(kept, key=lambda p: -p.score)


# ---------------------------------------------------------------- masks kept as crops
def mask_rles(stack: np.ndarray | CropMasks) -> Iterator[Rle | None]:
    """Each mask of a prediction's (N, H, W) stack as RLE, None for an empty one: made from
    the crops of a `CropMasks` (a second or more faster per mask of a large image than
    pasting and encoding it), else encoded."""
    if isinstance(stack, CropMasks):
        for i in range(len(stack)):
            yield stack.rle(i)
        return
    for mask in stack:
        yield encode(mask) if mask.any() else None



class CropMasks:
    """An (N, H, W) stack of bool masks kept as crops: what tiled prediction gives for an
    image too large to hold every detection's full-size mask at once. It reads like the
    array where predictions are read: `len`, `shape`, iteration and an integer index give
    full (H, W) masks, pasted one at a time; a slice, boolean or index array keeps a subset
    (a `CropMasks` too); `np.asarray` pastes them all (large: only for small images)."""

    ndim = 3
    dtype = np.dtype(bool)

    def __init__(self, height: int, width: int, crops: Sequence[tuple[int, int, np.ndarray]]):
        self.height, self.width = int(height), int(width)
        self.crops = list(crops)  # (x0, y0, (h, w) bool)

    @classmethod
    def of(cls, height: int, width: int, pieces: Sequence[Piece]) -> CropMasks:
        return cls(height, width, [(p.x0, p.y0, p.mask) for p in pieces])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.crops), self.height, self.width)

    def __len__(self) -> int:
        return len(self.crops)

    def paste(self, i: int) -> np.ndarray:
        """Mask i at full size, (H, W) bool."""
        x0, y0, m = self.crops[i]
        out = np.zeros((self.height, self.width), bool)
        out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self.crops)):
            yield self.paste(i)

    def rle(self, i: int) -> Rle:
        """Mask i as the compressed RLE of the full-size mask, made from its crop (no
        full-size mask: COCO's RLE runs down the columns, so only the crop's columns are
        laid out at full height)."""
        x0, y0, m = self.crops[i]
        h, w = m.shape
        strip = np.zeros((w, self.height), np.uint8)  # the crop's columns, full height
        strip[:, y0:y0 + h] = m.T
        flat = strip.ravel()
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
        if flat[0]:
            runs.insert(0, 0)  # COCO's runs start with background
        runs[0] += x0 * self.height  # the columns left of the crop...
        after = (self.width - x0 - w) * self.height  # ...and right of it
        if len(runs) % 2:  # ends in background
            runs[-1] += after
        elif after:
            runs.append(after)
        coded = cocomask.frPyObjects({"size": [self.height, self.width], "counts": runs},
                                     self.height, self.width)
        return Rle(self.height, self.width, coded["counts"].decode("ascii"))

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.paste(int(key))
        if isinstance(key, slice):
            return CropMasks(self.height, self.width, self.crops[key])
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return CropMasks(self.height, self.width, [self.crops[int(i)] for i in index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        for i in range(len(self.crops)):
            x0, y0, m = self.crops[i]
            out[i, y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
        return out if dtype is None else out.astype(dtype)
