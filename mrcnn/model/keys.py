"""The model key: the name a model's stored predictions go under. Torch-free, so that the
command line, the model session and the window (which never imports torch) share one rule.

Predictions are stored per (image, model key), so the same weights never predict the same
image twice. A key is:

- the model version's name ("v3") for a project's model version;
- "coco-<preset>" for torchvision's COCO weights;
- "file-<first 16 hex digits of the file's sha256>" for any other checkpoint file;
- "scratch" for random weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_key(path: str | Path) -> str:
    """"file-<first 16 hex digits of the file's sha256>": the key of a checkpoint file that
    is no model version of the project."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "file-" + h.hexdigest()[:16]


def model_key(*, kind: str, preset: str, version_name: str | None = None,
              path: str | Path | None = None) -> str:
    """The key a model's predictions are stored under (see the module docstring).

    `kind` is the loaded model's kind ("version", "checkpoint", "coco", "scratch"),
    `version_name` the project's name for its weights (if they are a model version), `path`
    the checkpoint file the weights came from (None for COCO weights and scratch)."""
    if version_name:
        return version_name
    if kind == "coco":
        return f"coco-{preset}"
    if path is not None:
        return file_key(path)
    return "scratch"
