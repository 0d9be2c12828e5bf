"""What the two index-PNG formats (mask PNGs, Pascal VOC) share: the overlap rule that paints
a project's instances into one index image, the VOC colour map, reading and writing index
PNGs with Pillow, turning an index image back into instances, and the unique file stems an
export names its images by.

The overlap rule: an index image holds one value per pixel, so where a project's instances
overlap one of them must give way. The smaller instance (fewer pixels) is drawn on top, so a
small object lying on a large one survives; at equal size the instance made first (lower
id) is on top. The pixels the others lose there are counted; an instance left with no pixel
at all is not numbered.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from mrcnn import masks
from mrcnn.coco.dataset import ExportReport
from mrcnn.errors import DatasetFormatError
from mrcnn.io.images import IMAGE_EXTENSIONS, MAX_PIXELS

OVERLAP_RULE = ("where instances overlap, the smaller instance (fewer pixels) is drawn on "
                "top, so small objects on large ones survive; at equal size the one made "
                "first (lower instance id) is on top")
#: Pillow modes that hold one index per pixel (bilevel, 8-bit grey, palette, 16/32-bit grey).
INDEX_MODES = ("1", "L", "P", "I;16", "I;16L", "I;16B", "I")


# ---------------------------------------------------------------- painting (export)
@dataclass
class Painted:
    """Instances painted into one index image by the overlap rule.

    `index` (H, W) int64: 0 is background, value k the instance at `shown[k - 1]` (a
    position in the list painted, in that list's order); instances that lost every pixel
    to others are in `hidden`. `lost_pixels` is what all instances together lost."""

    index: np.ndarray
    shown: list[int] = field(default_factory=list)
    hidden: list[int] = field(default_factory=list)
    lost_pixels: int = 0


def report_overlaps(report: ExportReport, lost: int, hidden: int, *,
                    hidden_where: str) -> None:
    """Say in an export's report what the overlap rule cost: pixels that went to the
    instance on top, and instances wholly under smaller ones (`hidden_where`: where they
    are missing, "the PNGs")."""
    if lost:
        report.losses["pixels lost to overlaps"] = lost
        report.notes.append(f"{lost} pixels of overlapping instances went to the instance "
                            "on top")
    if hidden:
        report.losses["instances hidden by overlaps"] = hidden
        report.notes.append(f"{hidden} instances lay wholly under smaller ones and are not "
                            f"in {hidden_where}")


def paint(instance_masks: Sequence[np.ndarray], ids: Sequence[int], height: int, width: int
          ) -> Painted:
    """Paint (H, W) bool masks into one index image by the overlap rule (module docstring);
    values are given in the order of `instance_masks`, skipping instances left empty."""
    areas = [int(m.sum()) for m in instance_masks]
    owner = np.zeros((height, width), np.int64)  # position + 1 of the instance on top
    # Largest first, so each smaller one is painted over it; at equal size the lower id
    # is painted last (on top).
    for i in sorted(range(len(instance_masks)), key=lambda i: (-areas[i], -ids[i])):
        owner[instance_masks[i]] = i + 1
    visible = np.bincount(owner.ravel(), minlength=len(instance_masks) + 1)[1:]
    shown = [i for i in range(len(instance_masks)) if visible[i] > 0]
    lut = np.zeros(len(instance_masks) + 1, np.int64)
    for value, i in enumerate(shown, start=1):
        lut[i + 1] = value
    return Painted(lut[owner], shown,
                   [i for i in range(len(instance_masks)) if areas[i] and not visible[i]],
                   sum(areas) - int(visible.sum()))


def voc_colormap(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: the Pascal VOC devkit's colour map (`VOClabelcolormap.m`), the bits of
    each index interleaved into red, green and blue: 1 = (128, 0, 0), 2 = (0, 128, 0),
    255 (void) = (224, 224, 192)."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def index_image(index: np.ndarray, *, palette: bool = False, wide: bool = False
                ) -> Image.Image:
    """An index array as a Pillow image: 8-bit grey ("L") up to 255, 16-bit grey ("I;16")
    above or where `wide` asks; with `palette`, mode "P" with the VOC colour map (values
    must be at most 255)."""
    top = int(index.max()) if index.size else 0
    if top > 65535 or (palette and (top > 255 or wide)):
        raise ValueError(f"index {top} does not fit the PNG")
    if top > 255 or wide:
        return Image.fromarray(np.ascontiguousarray(index, dtype=np.uint16))
    im = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8))
    if palette:
        im.putpalette(voc_colormap().tobytes())  # makes it mode "P", the values kept
    return im


def write_index_png(path: Path, index: np.ndarray, *, palette: bool = False,
                    wide: bool = False) -> int:
    """Write an index PNG (see `index_image`); returns a checksum of the values, which
    `check_written` compares after reading the file back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    index_image(index, palette=palette, wide=wide).save(path, "PNG")
    return checksum(index)


def checksum(index: np.ndarray) -> int:
    data = np.ascontiguousarray(index, dtype=np.int64)
    return zlib.crc32(data.tobytes(), zlib.crc32(repr(data.shape).encode()))


def check_written(root: Path, written: dict[str, int]) -> None:
    """Read back every PNG an export wrote (relative path → checksum) and compare: a file
    that does not decode to the values meant refuses the export."""
    for rel, expected in written.items():
        got = read_index_png(root / rel, rel).astype(np.int64)
        if checksum(got) != expected:
            raise DatasetFormatError(f"{rel}: the written PNG does not read back as written; "
                                     "nothing was exported")


# ---------------------------------------------------------------- reading (import)
def read_index_png(path: Path, where: str, *, size: tuple[int, int] | None = None,
                   image: str = "") -> np.ndarray:
    """(H, W) index values (uint8, uint16 or int32) of a PNG holding one index per pixel
    (grey; palette: the palette's indices; 16-bit grey). Refused, naming `where`: a file
    that is missing, not a PNG, truncated, too large, of another size than `size` ((height,
    width) of `image`, checked before any pixel is decoded), or with colour or alpha
    channels."""
    if not path.is_file():
        raise DatasetFormatError(f"{where}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.format != "PNG":
                    raise DatasetFormatError(f"{where}: not a PNG file ({im.format} data)")
                if size is not None and (im.height, im.width) != size:
                    raise DatasetFormatError(
                        f"{where}: the mask PNG is {im.width}x{im.height} but its image "
                        f"{image} is {size[1]}x{size[0]}")
                if im.width * im.height > MAX_PIXELS:
                    raise DatasetFormatError(f"{where}: {im.width}x{im.height} is too large")
                if im.mode not in INDEX_MODES:
                    raise DatasetFormatError(
                        f"{where}: the PNG has colour or alpha channels (mode {im.mode}); an "
                        "index PNG is required: 8-bit grey, palette or 16-bit grey, one "
                        "index per pixel")
                im.load()
                arr = np.asarray(im)
    except DatasetFormatError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise DatasetFormatError(f"{where}: cannot read the PNG ({exc})") from None
    if arr.ndim != 2:
        raise DatasetFormatError(f"{where}: expected one index per pixel, got shape "
                                 f"{arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.int32)
        if arr.size and int(arr.min()) < 0:
            raise DatasetFormatError(f"{where}: negative index {int(arr.min())}")
    return np.ascontiguousarray(arr)


def index_masks(index: np.ndarray, skip: Iterable[int] = (0,)) -> dict[int, masks.Rle]:
    """Each value of an index image (except `skip`) → its mask as RLE, by value."""
    values = [int(v) for v in np.unique(index) if int(v) not in set(skip)]
    return {v: masks.encode(index == v) for v in values}


def majority(under: np.ndarray, skip: Iterable[int] = (0,)) -> int | None:
    """The most frequent value in `under` other than `skip` (ties: the lowest), or None."""
    counts = np.bincount(under.ravel())
    for v in skip:
        if v < counts.size:
            counts[v] = 0
    return int(counts.argmax()) if counts.size and counts.max() > 0 else None


def components(binary: np.ndarray) -> list[np.ndarray]:
    """The 8-connected parts of a (H, W) bool mask, in the order of their first pixel."""
    import cv2

    n, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    return [labels == k for k in range(1, n)]


def read_names(path: Path) -> list[str]:
    """Class names, one a line, index = line number (line 0 is the background); a first
    line `__ignore__` (labelme's labels.txt) is dropped. Blank lines at the end are."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{where}: cannot read the class names ({exc})") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if names and names[0] == "__ignore__":
        names = names[1:]
    if len(names) < 2:
        raise DatasetFormatError(f"{where}: expected the background on the first line, then "
                                 "one class name a line")
    for i, name in enumerate(names):
        if not name:
            raise DatasetFormatError(f"{where}: line for class {i} is blank")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise DatasetFormatError(f"{where}: class name {sorted(dupes)[0]!r} appears twice")
    return names


# ---------------------------------------------------------------- names
def unique_stems(names: Sequence[str], *, flat_separator: str | None = None) -> list[str]:
    """One stem per image name for an export's files: the name without its extension (with
    `flat_separator`, its folders joined by it); where two names give the same stem (also
    ignoring case, for file systems that do), the later ones get `_2`, `_3`, ..."""
    taken: set[str] = set()
    out = []
    for name in names:
        p = PurePosixPath(name)
        stem = str(p.with_suffix("")) if p.suffix else str(p)
        if flat_separator is not None:
            stem = stem.replace("/", flat_separator)
        candidate, k = stem, 1
        while candidate.casefold() in taken:
            k += 1
            candidate = f"{stem}_{k}"
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def find_image(images_dir: Path, stem: str, where: str, *, prefer: str | None = None
               ) -> str:
    """The image file `<stem>.<image extension>` under `images_dir`, as a POSIX name relative
    to it (`prefer`, a name, wins where several match). Refused when none or several do."""
    folder = images_dir / PurePosixPath(stem).parent
    base = PurePosixPath(stem).name
    found = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and p.stem == base and p.suffix.lower() in IMAGE_EXTENSIONS
                   ) if folder.is_dir() else []
    parent = str(PurePosixPath(stem).parent)
    names = [f"{parent}/{n}" if parent != "." else n for n in found]
    if prefer is not None and prefer in names:
        return prefer
    if not names:
        extensions = "|".join(e[1:] for e in IMAGE_EXTENSIONS)
        raise DatasetFormatError(f"{where}: no image {stem}.<{extensions}> in the images "
                                 f"folder {images_dir}")
    if len(names) > 1:
        raise DatasetFormatError(f"{where}: several images match it in {images_dir} "
                                 f"({', '.join(names)}); keep one")
    return names[0]
