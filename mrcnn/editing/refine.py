"""Masks that follow the image: refining a predicted mask with image evidence, and the rule that
decides whether the refinement helps a project's model. Pure functions on numpy arrays (cv2),
no store, no torch.

A model's 28x28 mask head is coarse; its masks often spill over or fall short of the object's
edge by a few pixels. `refine_mask` moves the boundary onto the image's edges near it, looking
only at a padded crop around the mask (fast on big images):

- ``"grabcut"``: GrabCut seeded by the mask: its eroded core is sure foreground, the rest of
  it probable foreground, a band around it probable background, farther out sure background.
- ``"guided"``: an edge-aware (colour-guided, He et al. 2010) filter of the mask, thresholded
  at one half: the boundary snaps to colour edges within the filter's radius (twice the band).

It never returns an empty mask, nor one that differs wildly from its input (IoU < 0.5 with it):
then the input comes back unchanged. Whether refining helps depends on the images and the model
(on a textured or low-contrast scene GrabCut leaks): `decide_refinement` measures it on
validation instances and turns it on only when it raises their mean IoU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import cv2
import numpy as np

from mrcnn.editing.image_tools import check_image, grabcut_labels
from mrcnn.editing.mask_tools import Rect, _check_mask
from mrcnn.errors import MaskToolError

Method = Literal["grabcut", "guided"]
METHODS: tuple[Method, ...] = get_args(Method)
#: How a method is named to a person.
METHOD_NAMES: dict[str, str] = {"grabcut": "GrabCut", "guided": "edge-aware filter"}

#: A refined mask whose IoU with its input falls below this is discarded (the input is kept).
MIN_KEEP_IOU = 0.5
#: Mean-IoU gain on validation instances that refinement must bring to be turned on.
MIN_GAIN = 0.005
#: The band (px) the boundary may move by: a tenth of the object's size, within these bounds.
BAND_MIN, BAND_MAX = 2, 20


def refinement_band(area: int) -> int:
    """How far (px) refinement lets a mask of `area` pixels move its boundary: about a tenth
    of its size (sqrt of the area), at least BAND_MIN and at most BAND_MAX."""
    return int(np.clip(round(0.1 * np.sqrt(max(area, 0))), BAND_MIN, BAND_MAX))


def refinement_crop(mask: np.ndarray, band: int | None = None) -> Rect:
    """The only part of the image `refine_mask` looks at: the mask's bounding box padded by
    twice the band plus 2 px (room for the background ring GrabCut learns from), clipped to
    the image. EMPTY for an empty mask."""
    mask = _check_mask(mask)
    box = Rect.of_mask(mask)
    if box.empty:
        return box
    b = refinement_band(int(mask[box.slices].sum())) if band is None else int(band)
    pad = 2 * b + 2
    return Rect(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad).clip(mask.shape)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape (1.0 when both are empty)."""
    if a.shape != b.shape:
        raise MaskToolError(f"masks differ in shape: {a.shape} vs {b.shape}")
    rect = Rect.of_mask(a).union(Rect.of_mask(b))
    if rect.empty:
        return 1.0
    ca, cb = a[rect.slices], b[rect.slices]
    return float(np.count_nonzero(ca & cb)) / float(np.count_nonzero(ca | cb))


def refine_mask(image_rgb: np.ndarray, mask: np.ndarray, *, method: Method = "grabcut",
                band: int | None = None, iterations: int = 3) -> np.ndarray:
    """The mask with its boundary moved onto nearby image edges; an (H, W) bool mask.

    `image_rgb` is (H, W, 3) uint8 RGB (or (H, W) grey) and `mask` (H, W); only
    `refinement_crop(mask, band)` of them is processed. `band` (px, default from the mask's
    size: `refinement_band`) is how far the boundary may move; `iterations` is GrabCut's.
    Returns a copy of `mask` when refinement cannot run, would empty it, or would change it
    wildly (IoU < MIN_KEEP_IOU with it)."""
    image = check_image(image_rgb)
    mask = _check_mask(mask)
    if image.shape[:2] != mask.shape:
        raise MaskToolError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    if method not in METHODS:
        raise MaskToolError(f"unknown refinement {method!r}; expected one of {METHODS}")
    crop = refinement_crop(mask, band)
    if crop.empty:
        return mask.copy()
    seed = mask[crop.slices]
    b = refinement_band(int(seed.sum())) if band is None else max(1, int(band))
    pixels = image[crop.slices]
    if method == "grabcut":
        refined = _grabcut_refine(pixels, seed, b, iterations)
    else:
        refined = _guided_refine(pixels, seed, b)
    if refined is None or not refined.any() or mask_iou(refined, seed) < MIN_KEEP_IOU:
        return mask.copy()
    out = mask.copy()
    out[crop.slices] = refined
    return out


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _grabcut_refine(pixels: np.ndarray, seed: np.ndarray, band: int,
                    iterations: int) -> np.ndarray | None:
    """GrabCut on the crop, seeded by the mask; None when it cannot run."""
    m = seed.astype(np.uint8)
    core = cv2.erode(m, _disc(band)).astype(bool)
    near = cv2.dilate(m, _disc(band)).astype(bool)
    labels = np.full(seed.shape, cv2.GC_BGD, np.uint8)
    labels[near] = cv2.GC_PR_BGD
    labels[seed] = cv2.GC_PR_FGD
    labels[core] = cv2.GC_FGD
    if not (labels == cv2.GC_BGD).any():
        return None  # the mask fills the image: no background to learn from
    try:
        found = grabcut_labels(pixels, labels, iterations=iterations)
    except MaskToolError:
        return None
    return _parts_touching(found, seed)


def _parts_touching(found: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected parts of `found` that overlap `seed` (stray blobs elsewhere go)."""
    n, parts = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    if n <= 2:
        return found
    keep = np.zeros(n, bool)
    keep[np.unique(parts[seed & found])] = True
    keep[0] = False
    return keep[parts]


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int,
                  eps: float = 1e-3) -> np.ndarray:
    """He et al.'s guided filter: `src` (h, w) float smoothed so that its edges follow those
    of `guide` ((h, w, 3) or (h, w) float, values about 0..1); windows of (2r+1)^2 pixels,
    `eps` the regularisation (larger: smoother, less edge-following). (h, w) float32."""
    g = guide.astype(np.float32)
    if g.ndim == 2:
        g = g[:, :, None]
    p = src.astype(np.float32)
    r = max(1, int(radius))
    k = g.shape[2]
    mean_i = np.stack([_box(g[:, :, c], r) for c in range(k)], axis=2)
    mean_p = _box(p, r)
    cov_ip = np.stack([_box(g[:, :, c] * p, r) for c in range(k)], axis=2) - mean_i * mean_p[
        :, :, None]
    sigma = np.empty(g.shape[:2] + (k, k), np.float32)
    for i in range(k):
        for j in range(i, k):
            v = _box(g[:, :, i] * g[:, :, j], r) - mean_i[:, :, i] * mean_i[:, :, j]
            sigma[:, :, i, j] = sigma[:, :, j, i] = v
    sigma += eps * np.eye(k, dtype=np.float32)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(axis=2)
    mean_a = np.stack([_box(np.ascontiguousarray(a[:, :, c]), r) for c in range(k)], axis=2)
    return ((mean_a * g).sum(axis=2) + _box(b, r)).astype(np.float32)


def _guided_refine(pixels: np.ndarray, seed: np.ndarray, band: int) -> np.ndarray:
    """The mask filtered with the crop's colours as guide, thresholded at one half."""
    soft = guided_filter(pixels.astype(np.float32) / 255.0, seed.astype(np.float32),
                         radius=2 * band)
    return _parts_touching(soft >= 0.5, seed)


# ---------------------------------------------------------------- the decision
#: One validation instance: (image RGB, the model's mask matched to it, the accepted mask).
RefinementPair = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RefinementDecision:
    """Whether refining predicted masks raises their IoU with what a person accepted, measured
    on validation instances: plain data, what the window and `refine-check` show."""

    on: bool
    method: str | None  # the best method measured (None: nothing was measured)
    instances: int  # validation instances measured (accepted ones a prediction matched)
    iou_before: float  # mean IoU of the predicted masks as they are
    iou_after: float  # mean IoU after refinement with `method`
    #: mean IoU after refinement, by every method measured
    by_method: dict[str, float] = field(default_factory=dict)
    model_key: str | None = None  # the model whose predictions were measured
    images: int = 0  # validation images measured

    @property
    def gain(self) -> float:
        return self.iou_after - self.iou_before

    def describe(self) -> str:
        """One line for a person, e.g. 'Mask refinement: on (GrabCut, +0.021 mean IoU on 14
        validation instances)'."""
        if not self.instances or self.method is None:
            return ("Mask refinement: off (no validation instance matched a prediction to "
                    "measure it on)")
        sign = "+" if self.gain >= 0 else "\u2212"
        name = METHOD_NAMES.get(self.method, self.method)
        state = "on" if self.on else "off"
        return (f"Mask refinement: {state} ({name}, {sign}{abs(self.gain):.3f} mean IoU on "
                f"{self.instances} validation instance{'s' * (self.instances != 1)})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RefinementDecision:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def decide_refinement(pairs: Iterable[RefinementPair], *,
                      methods: Sequence[Method] = METHODS, min_gain: float = MIN_GAIN,
                      model_key: str | None = None, images: int = 0) -> RefinementDecision:
    """Measure each method on (image, predicted mask, accepted mask) triples: the mean IoU of
    the predicted masks with the accepted ones, as they are and refined. On, with the best
    method, only when it raises the mean IoU by at least `min_gain`."""
    before: list[float] = []
    after: dict[str, list[float]] = {m: [] for m in methods}
    for image, predicted, truth in pairs:
        predicted = _check_mask(predicted)
        truth = _check_mask(truth)
        before.append(mask_iou(predicted, truth))
        for m in methods:
            after[m].append(mask_iou(refine_mask(image, predicted, method=m), truth))
    if not before or not methods:
        return RefinementDecision(False, None, 0, 0.0, 0.0, {}, model_key, images)
    mean_before = float(np.mean(before))
    by_method = {m: float(np.mean(v)) for m, v in after.items()}
    best = max(methods, key=lambda m: by_method[m])
    on = by_method[best] - mean_before >= min_gain
    return RefinementDecision(on, best, len(before), mean_before, by_method[best], by_method,
                              model_key, images)
