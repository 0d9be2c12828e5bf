"""torchvision's COCO weights: their category names, where they sit in the torch cache, and
finding and downloading them.

COCO category names: torchvision's COCO models have 91 outputs, label 0 = background and
labels 1..90 = COCO's original category ids, of which ten are unused and named "N/A"
(`COCO_PLACEHOLDER`). `coco_categories` keeps those placeholders in place, so that name i is
label i + 1 exactly as in our own checkpoints; callers skip the placeholders when showing names.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torchvision.models.detection as tv_detection

from mrcnn.errors import DownloadError, NoWeightsError
from mrcnn.io.download import Progress, download_file, hash_prefix, url_file_name
from mrcnn.model.presets import DEFAULT_PRESET, get_preset
from mrcnn.model.weight_files import no_weights_message

log = logging.getLogger(__name__)

#: The name torchvision gives to the unused COCO label ids.
COCO_PLACEHOLDER = "N/A"


# ---------------------------------------------------------------- COCO weights on disk
def coco_weights_enum(preset: str):
    """torchvision's weights enum for a preset; NoWeightsError when it has no COCO weights."""
    p = get_preset(preset)
    if p.coco_weights is None:
        raise NoWeightsError(no_weights_message(
            f"the {preset} preset has no COCO weights", preset))
    return getattr(tv_detection, p.coco_weights)


def coco_categories(preset: str = DEFAULT_PRESET) -> list[str]:
    """The 90 COCO category names of a preset's COCO weights; name i is model label i + 1.

    "__background__" is dropped; the "N/A" placeholders stay in place so indices match the
    rows of the checkpoint. Raises NoWeightsError for a preset without COCO weights.
    """
    names = list(coco_weights_enum(preset).COCO_V1.meta["categories"])
    return names[1:] if names and names[0] == "__background__" else names


def coco_cache_path(preset: str = DEFAULT_PRESET) -> Path:
    """Where torchvision keeps (and we look for) a preset's COCO weights:
    `torch.hub.get_dir()/checkpoints/<torchvision's file name>` (honours TORCH_HOME)."""
    name = url_file_name(coco_weights_enum(preset).COCO_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def find_coco_weights(preset: str = DEFAULT_PRESET) -> Path | None:
    """The COCO weights file in the torch cache, or None (also for presets without COCO)."""
    if get_preset(preset).coco_weights is None:
        return None
    path = coco_cache_path(preset)
    return path if path.is_file() else None


# ---------------------------------------------------------------- download
def download_coco_weights(preset: str = DEFAULT_PRESET, *,
                          progress: Progress | None = None,
                          connect_timeout: float = 4.0,
                          read_timeout: float = 30.0,
                          url: str | None = None) -> Path:
    """Download a preset's COCO weights into the torch cache and return the file's path.

    Fails within `connect_timeout` seconds when the server cannot be reached; once data
    flows, a stall longer than `read_timeout` seconds fails. `progress(bytes_done,
    bytes_total_or_None)` is called per chunk and may raise to cancel. The file appears
    atomically, and only when its sha256 starts with the hash in the file name of `url`
    (torchvision's convention). `url` defaults to torchvision's. Raises NoWeightsError,
    whose message lists the other options.
    """
    dest = coco_cache_path(preset)
    url = url or coco_weights_enum(preset).COCO_V1.url
    expected = hash_prefix(url_file_name(url)) or hash_prefix(dest.name)
    log.info("downloading %s COCO weights from %s to %s", preset, url, dest)
    try:
        download_file(url, dest, sha256_prefix=expected, progress=progress,
                      connect_timeout=connect_timeout, read_timeout=read_timeout)
    except DownloadError as exc:
        raise NoWeightsError(no_weights_message(str(exc), preset)) from exc
    return dest
