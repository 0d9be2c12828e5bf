"""Reading images into RGB uint8 arrays, the one format the rest of the code sees: from a
local file, or from a `RemoteImage` (an image under a URL, read through the local cache).

Handles what real cameras and tools write: EXIF orientation, grayscale, palette, alpha,
CMYK, 16-bit, unicode paths. Every failure is an :class:`ImageReadError` naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, TiffImagePlugin, UnidentifiedImageError

from mrcnn.errors import ImageReadError
from mrcnn.io.remote import ImageLocation, RemoteImage

#: File name extensions we look for when scanning a folder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Pillow format names we decode.
_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP"}
#: Default guard against decompression bombs (pixels per image).
MAX_PIXELS = 150_000_000  # below Pillow's own bomb limit, so our message is the one shown
#: Percentiles used to scale high-bit-depth images to 8 bits (one shared normalisation).
PERCENTILES = (0.5, 99.5)
#: Background that transparent pixels are composited onto.
ALPHA_BACKGROUND = 255

_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What a header read tells about an image: displayed size (EXIF applied) and hash."""

    width: int
    height: int
    sha256: str
    format: str


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _location(path: ImageLocation) -> Path | RemoteImage:
    return path if isinstance(path, RemoteImage) else Path(path)


def _read_bytes(path: Path | RemoteImage) -> bytes:
    if isinstance(path, RemoteImage):
        return path.read_bytes()  # ImageReadError or RemoteStorageError naming the URL
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from None
    if not data:
        raise ImageReadError(path, "file is empty (0 bytes)")
    return data


def _open(path: Path | RemoteImage, data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Open lazily (header only) and check format and size before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageReadError(
            path, "not a recognised image (expected JPEG, PNG, BMP, TIFF or WebP)"
        ) from None
    except Image.DecompressionBombError as exc:  # Pillow's own limit, checked before ours
        raise ImageReadError(path, f"image is too large to open safely ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(path, f"corrupt header ({exc})") from None
    if im.format not in _FORMATS:
        raise ImageReadError(path, f"unsupported format {im.format}")
    if getattr(im, "n_frames", 1) > 1 and im.format not in ("MPO", "TIFF"):
        raise ImageReadError(path, f"animated {im.format} images are not supported")
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageReadError(path, f"invalid size {w}x{h}")
    if w * h > max_pixels:
        raise ImageReadError(
            path, f"{w}x{h} is {w * h:,} pixels, above the limit of {max_pixels:,}"
        )
    return im


def _format(path: Path | RemoteImage, im: Image.Image) -> str:
    """The format name of an image `_open` accepted (it refuses any without one)."""
    if im.format is None:
        raise ImageReadError(path, "unknown image format")
    return im.format


def _png_exif(data: bytes) -> bytes | None:
    """A PNG's eXIf chunk, found by walking the chunk headers (no pixel data is inflated)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"eXIf":
            return data[pos + 8 : pos + 8 + length]
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def _orientation(im: Image.Image, data: bytes) -> int:
    """The EXIF orientation the file declares (1 when absent or unreadable)."""
    try:
        if im.format == "PNG" and "exif" not in im.info:
            # Pillow's PNG getexif() decodes every pixel to look for an eXIf chunk after the
            # image data; find the chunk in the bytes and read the header fields only.
            raw = _png_exif(data)
            if raw is not None:
                im.info["exif"] = b"Exif\x00\x00" + raw
            exif = Image.Image.getexif(im)
        else:
            exif = im.getexif()
        value = int(exif.get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _displayed_size(im: Image.Image, orientation: int) -> tuple[int, int]:
    """(width, height) as displayed, from the header only."""
    w, h = im.size
    if isinstance(im, TiffImagePlugin.TiffImageFile):  # what Pillow opens every TIFF as
        # Recent Pillow versions report a TIFF's size already oriented: start from the stored
        # ImageWidth (256) and ImageLength (257) tags instead.
        w, h = im.tag_v2.get(256, w), im.tag_v2.get(257, h)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


@functools.cache
def _opencv_orients_tiff() -> bool:
    """Whether OpenCV applies a TIFF's orientation tag itself (some versions do, whatever the
    flags), so that such images are not turned twice."""
    try:
        buf = io.BytesIO()
        exif = Image.Exif()
        exif[_EXIF_ORIENTATION] = 2  # mirrored left-right
        Image.fromarray(np.array([[0, 65535]], np.uint16)).save(buf, "TIFF", exif=exif)
        arr = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception:
        return False
    return arr is not None and int(arr.flat[0]) == 65535


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W[, C]) array, as a viewer would."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1, :]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = np.rot90(arr, 2).swapaxes(0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def normalize_to_uint8(
    arr: np.ndarray, percentiles: tuple[float, float] = PERCENTILES
) -> np.ndarray:
    """Scale any numeric array to uint8 with a percentile stretch (used for >8-bit images)."""
    if arr.dtype == np.uint8:
        return arr
    a = arr.astype(np.float32)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros(arr.shape, np.uint8)
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:
        hi = lo + 1.0
    a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
    return np.clip((a - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def _composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + ALPHA_BACKGROUND * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _high_depth(data: bytes) -> np.ndarray | None:
    """Decode a >8-bit PNG/TIFF with OpenCV (Pillow drops bits of 16-bit colour images)."""
    buf = np.frombuffer(data, np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.dtype == np.uint8:
        return None
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            rgb = normalize_to_uint8(arr[..., 2::-1])
            alpha = normalize_to_uint8(arr[..., 3], (0.0, 100.0)) if arr.dtype != np.uint16 else (
                (arr[..., 3].astype(np.uint32) * 255 // 65535).astype(np.uint8)
            )
            return _composite(rgb, alpha)
        return normalize_to_uint8(arr[..., 2::-1])
    return np.repeat(normalize_to_uint8(arr)[..., None], 3, axis=2)


def _to_rgb(im: ImageFile.ImageFile, data: bytes, orientation: int) -> np.ndarray:
    """Decode to (H, W, 3) uint8 RGB as displayed, given the orientation the file declares."""
    mode = im.mode
    rawmode = im.tile[0][3] if im.tile and len(im.tile[0]) > 3 else ""
    rawmode = rawmode[0] if isinstance(rawmode, tuple) else str(rawmode)
    if im.format in ("PNG", "TIFF") and (";16" in rawmode or mode.startswith("I") or mode == "F"):
        arr = _high_depth(data)
        if arr is not None:
            if im.format == "TIFF" and _opencv_orients_tiff():
                return arr
            return apply_orientation(arr, orientation)
    im.load()
    if orientation != 1 and _orientation(im, data) == 1:
        orientation = 1  # Pillow applied it while loading (TIFF in recent Pillow versions)
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = normalize_to_uint8(np.asarray(im))
        return apply_orientation(np.repeat(gray[..., None], 3, axis=2), orientation)
    rgb: Image.Image = im
    if mode == "P":
        rgb = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("L", "RGB") and "transparency" in im.info:
        rgb = im.convert("RGBA")  # colour-key transparency (PNG tRNS)
    elif mode in ("LA", "PA", "La"):
        rgb = im.convert("RGBA")
    elif mode == "RGBa":
        rgb = im.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        rgb = im.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV
    arr = np.asarray(rgb)
    if arr.shape[2] == 4:
        arr = _composite(arr[..., :3], arr[..., 3])
    return apply_orientation(arr, orientation)


def read_image_info(path: ImageLocation, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Header-only read: displayed size (EXIF orientation applied), format and content hash.

    Does not decode pixels, so it is cheap enough to scan thousands of files.
    """
    p = _location(path)
    data = _read_bytes(p)
    im = _open(p, data, max_pixels)
    w, h = _displayed_size(im, _orientation(im, data))
    return ImageInfo(w, h, hashlib.sha256(data).hexdigest(), _format(p, im))


def _decode(path: Path | RemoteImage, *, max_pixels: int,
            draft_side: int | None = None) -> np.ndarray:
    """Open and decode to RGB uint8 (EXIF applied); JPEGs at reduced scale when `draft_side`
    still covers it. Every failure becomes an ImageReadError naming the file."""
    data = _read_bytes(path)
    im = _open(path, data, max_pixels)
    orientation = _orientation(im, data)
    try:
        if draft_side is not None and im.format in ("JPEG", "MPO"):
            im.draft(im.mode, (draft_side, draft_side))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _to_rgb(im, data, orientation)
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageReadError(path, f"corrupt or truncated image data ({exc})") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode the image") from None


def load_image(path: ImageLocation, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load an image as it should be displayed: (H, W, 3) uint8 RGB, EXIF orientation applied.

    Raises ImageReadError naming the file and the reason for anything unreadable.
    """
    return _decode(_location(path), max_pixels=max_pixels)


def load_thumbnail(path: ImageLocation, max_side: int, *,
                   max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A small RGB copy for display, longest side at most `max_side` pixels (never enlarged),
    as `load_image` shows the image (EXIF orientation applied).

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale when that still covers `max_side` (the
    decoder's draft mode), which makes a thumbnail of a 24-megapixel photo many times faster
    than decoding it whole. Raises ImageReadError like `load_image`.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    rgb = _decode(_location(path), max_pixels=max_pixels, draft_side=max_side)
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def verify_image(path: ImageLocation, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Check that an image decodes completely (truncation, corrupt data) and return its info.

    JPEGs are decoded at reduced scale, which still reads every byte of the compressed data.
    """
    p = _location(path)
    data = _read_bytes(p)
    im = _open(p, data, max_pixels)
    w, h = _displayed_size(im, _orientation(im, data))
    try:
        if im.format in ("JPEG", "MPO"):
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageReadError(p, f"corrupt or truncated image data ({exc})") from None
    return ImageInfo(w, h, hashlib.sha256(data).hexdigest(), _format(p, im))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
