"""Click → mask with a SAM-family model the user has (SAM, SAM-HQ, MobileSAM, EfficientSAM
exports), run by ONNX Runtime (the optional extra `pip install -e ".[sam]"`); no torch.

A SAM model is two ONNX files:

- the **encoder** (run once per image, in the background): one float32 input
  (1, 3, S, S) — the image resized so its longer side is S, normalised with SAM's pixel mean
  and standard deviation, padded at the bottom and right — and the image embedding as its
  first output;
- the **decoder** (run per click, milliseconds): the inputs of segment-anything's ONNX export
  (`scripts/export_onnx_model.py`): `image_embeddings`, `point_coords` (1, N, 2) in the
  resized image's pixels, `point_labels` (1, N) (1 positive, 0 negative, 2 and 3 a box's
  corners, -1 padding), `mask_input` (1, 1, 4·h, 4·w) and `has_mask_input` (1,) (the previous
  mask's low-resolution logits, as context), `orig_im_size` (2,); outputs `masks` (1, 1, H,
  W) logits at the image's size, `iou_predictions`, `low_res_masks`.

Nothing is downloaded: the user picks the files (the window keeps their sha256). A file that
is not such a model is refused with `InteractiveModelError` naming the file and what is
wrong with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrcnn.errors import InteractiveModelError

#: SAM's pixel mean and standard deviation (RGB, 0-255).
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input",
                  "has_mask_input", "orig_im_size")
#: Image embeddings kept (the current image and the ones ahead).
EMBEDDINGS_KEPT = 4


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Embedding:
    """One image's embedding and how its pixels map onto the encoder's input."""

    values: np.ndarray  # the encoder's first output
    scale: float  # encoder pixels per image pixel
    size: tuple[int, int]  # the image's (height, width)


@dataclass(frozen=True)
class Click:
    """A click in image pixels: positive (adds) or negative (removes)."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class SamAnswer:
    """The decoder's mask for the clicks: (H, W) bool, its predicted IoU, and its
    low-resolution logits (context for the next click)."""

    mask: np.ndarray
    score: float
    low_res: np.ndarray


def _session(path: Path, role: str):
    import onnxruntime as ort

    if not path.is_file():
        raise InteractiveModelError(f"{role} {path}: no such file")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own error types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InteractiveModelError(f"{role} {path}: not an ONNX model ONNX Runtime can run "
                                    f"({first})") from exc


class SamModel:
    """A SAM-family encoder and decoder, checked when loaded; embeddings kept per key."""

    def __init__(self, encoder: str | Path, decoder: str | Path, *,
                 kept: int = EMBEDDINGS_KEPT) -> None:
        if not onnxruntime_available():
            raise InteractiveModelError(
                "SAM models need ONNX Runtime: pip install -e \".[sam]\" (or pip install "
                "onnxruntime)")
        self.encoder_path, self.decoder_path = Path(encoder), Path(decoder)
        self._encoder = _session(self.encoder_path, "encoder")
        self._decoder = _session(self.decoder_path, "decoder")
        inputs = self._encoder.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if not shape or len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int):
            raise InteractiveModelError(
                f"encoder {self.encoder_path}: expected one input of shape (1, 3, S, S), "
                f"found {[(i.name, i.shape) for i in inputs]}")
        self.side = int(shape[2])
        names = {i.name for i in self._decoder.get_inputs()}
        missing = [n for n in DECODER_INPUTS if n not in names]
        if missing:
            raise InteractiveModelError(
                f"decoder {self.decoder_path}: missing the inputs {', '.join(missing)} of "
                "segment-anything's ONNX export (is it the encoder, or another model?)")
        self._kept: OrderedDict[Hashable, Embedding] = OrderedDict()
        self._capacity = max(1, kept)

    # ---------------------------------------------------------------- the encoder
    def embed(self, image: np.ndarray) -> Embedding:
        """The encoder on an (H, W, 3) uint8 RGB image (the slow part: run it in the
        background)."""
        import cv2

        h, w = image.shape[:2]
        scale = self.side / max(h, w)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
        x = np.zeros((self.side, self.side, 3), np.float32)
        x[:rh, :rw] = (resized.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
        name = self._encoder.get_inputs()[0].name
        out = self._encoder.run(None, {name: x.transpose(2, 0, 1)[None]})[0]
        return Embedding(np.asarray(out, np.float32), scale, (h, w))

    def embedding(self, key: Hashable, image: np.ndarray | None) -> Embedding:
        """The kept embedding of `key`, else computed from `image` and kept (KeyError when
        it is neither kept nor given)."""
        hit = self._kept.get(key)
        if hit is None:
            if image is None:
                raise KeyError(key)
            hit = self.embed(image)
            self._kept[key] = hit
            while len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
        self._kept.move_to_end(key)
        return hit

    def has_embedding(self, key: Hashable) -> bool:
        return key in self._kept

    def mask_prompt(self, embedding: Embedding, mask: np.ndarray) -> np.ndarray:
        """An existing (H, W) mask as the decoder's mask input: low-resolution logits
        (1, 1, 4h, 4w) of the encoder's padded frame (+10 inside, -10 outside), so clicks
        refine that mask instead of starting over."""
        import cv2

        h, w = embedding.size
        side = self.side
        frame = np.zeros((side, side), np.float32)
        rh, rw = max(1, round(h * embedding.scale)), max(1, round(w * embedding.scale))
        frame[:rh, :rw] = cv2.resize(np.asarray(mask, np.float32), (rw, rh),
                                     interpolation=cv2.INTER_LINEAR)
        low = (4 * embedding.values.shape[-2], 4 * embedding.values.shape[-1])
        small = cv2.resize(frame, (low[1], low[0]), interpolation=cv2.INTER_AREA)
        return np.where(small >= 0.5, 10.0, -10.0).astype(np.float32)[None, None]

    # ---------------------------------------------------------------- the decoder
    def segment(self, embedding: Embedding, clicks: Sequence[Click], *,
                box: tuple[float, float, float, float] | None = None,
                previous: np.ndarray | None = None) -> SamAnswer:
        """The mask for positive/negative clicks (and a box, xyxy image pixels), with the
        previous answer's low-resolution logits as context when given."""
        if not clicks and box is None:
            raise InteractiveModelError("click on the object (or drag a box) first")
        points = [(c.x, c.y) for c in clicks]
        labels = [1.0 if c.positive else 0.0 for c in clicks]
        if box is not None:
            points += [(box[0], box[1]), (box[2], box[3])]
            labels += [2.0, 3.0]
        else:
            points.append((0.0, 0.0))
            labels.append(-1.0)
        coords = np.asarray(points, np.float32)[None] * embedding.scale
        h, w = embedding.size
        e = embedding.values
        low_side = (4 * e.shape[-2], 4 * e.shape[-1])
        mask_input = (np.asarray(previous, np.float32).reshape(1, 1, *low_side)
                      if previous is not None else np.zeros((1, 1, *low_side), np.float32))
        feeds = {"image_embeddings": e, "point_coords": coords,
                 "point_labels": np.asarray(labels, np.float32)[None],
                 "mask_input": mask_input,
                 "has_mask_input": np.asarray([1.0 if previous is not None else 0.0],
                                              np.float32),
                 "orig_im_size": np.asarray([h, w], np.float32)}
        names = [o.name for o in self._decoder.get_outputs()]
        outputs = dict(zip(names, self._decoder.run(None, feeds), strict=True))
        masks = outputs.get("masks", next(iter(outputs.values())))
        scores = outputs.get("iou_predictions", np.zeros((1, 1), np.float32))
        low = outputs.get("low_res_masks", mask_input)
        best = int(np.argmax(scores[0])) if np.size(scores) else 0
        mask = np.asarray(masks)[0, best] > 0.0
        if mask.shape != (h, w):
            raise InteractiveModelError(
                f"decoder {self.decoder_path}: its mask is {mask.shape}, not the image's "
                f"{(h, w)}")
        return SamAnswer(mask, float(np.asarray(scores).reshape(-1)[best])
                         if np.size(scores) else 0.0, np.asarray(low)[0:1, best:best + 1])
