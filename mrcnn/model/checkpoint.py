"""Checkpoint files: a dict of plain data and tensors, loadable with `weights_only=True`.

Layout: {"format": FORMAT, "preset": str, "categories": [str, ...] (index i = label i + 1),
         "state_dict": {name: tensor}, "metadata": {plain JSON-able values}}
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import torch

from mrcnn.errors import CheckpointError
from mrcnn.io.atomic import write_atomic

FORMAT = "mrcnn-studio/1"


def save_checkpoint(path: str | Path, *, state_dict: dict, preset: str, categories: list[str],
                    metadata: dict | None = None) -> None:
    """Write atomically: a crash or a full disk never leaves a half-written checkpoint."""
    payload = {
        "format": FORMAT,
        "preset": preset,
        "categories": list(categories),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "metadata": metadata or {},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue())


def load_state(path: str | Path) -> dict:
    """Load any torch file with `weights_only=True`; anything needing pickle code is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is not a readable checkpoint (file is empty, 0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:  # not a pickle torch can read at all (JSON, text, a bare pickle...)
            raise CheckpointError(
                f"{path} is not a readable checkpoint (not a PyTorch file)") from None
        raise CheckpointError(
            f"refused to load {path}: it contains Python objects ({found.group(1)}), not "
            "plain tensors (weights_only=True)") from None
    except Exception as exc:  # garbage makes the unpickler fail in many ways (KeyError, ...)
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def load_checkpoint(path: str | Path) -> dict:
    """Load one of our checkpoints (see module docstring) and check its layout."""
    return check_checkpoint(load_state(path), path)


def check_checkpoint(data: object, path: str | Path) -> dict:
    """Check the layout of already-loaded checkpoint data; return it, or raise CheckpointError."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a Mask R-CNN Studio checkpoint")
    for key, kind in (("preset", str), ("categories", list), ("state_dict", dict)):
        if not isinstance(data.get(key), kind):
            raise CheckpointError(f"{path}: missing or invalid {key!r}")
    if not all(isinstance(c, str) for c in data["categories"]):
        raise CheckpointError(f"{path}: category names must be strings")
    return data
