"""Where weight files live and what to say when there are none — without importing torch,
so that the GUI process (which never imports torch) and the model code share one text.

`mrcnn.model.coco_weights` checks these names against torchvision's own (a test pins them equal)."""

from __future__ import annotations

import os
from pathlib import Path

#: torchvision's COCO weight files by preset, as named in the torch cache.
COCO_WEIGHT_FILES = {"r50v2": "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
                     "r50": "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"}
#: The preset whose COCO weights are looked for (mrcnn.model.presets.DEFAULT_PRESET; a test checks).
DEFAULT_COCO_PRESET = "r50v2"


def torch_hub_dir() -> Path:
    """`torch.hub.get_dir()` without importing torch: $TORCH_HOME/hub, where TORCH_HOME
    defaults to $XDG_CACHE_HOME/torch (~/.cache/torch)."""
    home = os.getenv("TORCH_HOME",
                     os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def coco_file_path(preset: str = DEFAULT_COCO_PRESET) -> Path | None:
    """Where a preset's COCO weights belong in the torch cache (None: it has none)."""
    name = COCO_WEIGHT_FILES.get(preset)
    return torch_hub_dir() / "checkpoints" / name if name else None


def cached_coco_weights(preset: str = DEFAULT_COCO_PRESET) -> Path | None:
    """The preset's COCO weights file when it is in the torch cache."""
    path = coco_file_path(preset)
    return path if path is not None and path.is_file() else None


def no_weights_message(reason: str, preset: str = DEFAULT_COCO_PRESET) -> str:
    """What NoWeightsError says: the reason, then every way to get a working model."""
    lines = [f"No model weights: {reason}.", "What you can do:",
             "  - pick a checkpoint file (.pt) of your own;"]
    path = coco_file_path(preset)
    if path is not None:
        lines += [f"  - copy torchvision's file {path.name} into {path.parent} "
                  f"(exact path: {path});",
                  "  - connect this machine to the internet and ask for COCO weights again;"]
    else:
        lines.append(f"  - choose a preset with COCO weights ({', '.join(COCO_WEIGHT_FILES)});")
    lines.append("  - label a few images by hand and train a model from scratch.")
    return "\n".join(lines)
