"""The model a training run starts from: the active version, a named version or checkpoint
file, torchvision's COCO weights, or nothing (scratch) — laid out for the project's
categories, keeping the class rows of the categories it already knew (matched by name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mrcnn.errors import CategoryMismatchError, ProjectError, TrainingError
from mrcnn.model.class_rows import remap_categories
from mrcnn.model.coco_weights import find_coco_weights
from mrcnn.model.keypoint_head import keypoint_layout_of
from mrcnn.model.presets import (
    DEFAULT_MASK_RESOLUTION,
    DEFAULT_PRESET,
    anchors_of,
    build_model,
    mask_resolution_of,
)
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project
from mrcnn.training.launcher import start_problem

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class StartModel:
    """What training starts from: `model` (None: build `preset` from scratch), its preset,
    and the model version it comes from (`parent_id`, None for COCO weights, files and
    scratch)."""

    model: nn.Module | None
    preset: str
    parent_id: int | None


def resolve_source(project: Project, source: str, *, preset: str | None = None) -> str:
    """`source` with "auto" decided: the active version when there is one, else COCO weights
    when cached for `preset` (default DEFAULT_PRESET; never for r18, which has none), else
    "scratch"."""
    if source != "auto":
        return source
    if project.active_model_version() is not None:
        return "active"
    preset = preset or DEFAULT_PRESET
    if preset != "r18" and find_coco_weights(preset) is not None:
        return "coco"
    return "scratch"


def choose_start_model(project: Project, *, source: str = "auto", preset: str | None = None,
                       allow_download: bool = False,
                       mask_resolution: int = DEFAULT_MASK_RESOLUTION) -> StartModel:
    """The starting model for training on `project`.

    source: "auto" (see `resolve_source`) | "active" | "coco" | "scratch" | a version name
        ("v2") | a checkpoint file.
    preset: the architecture; None: the starting model's (DEFAULT_PRESET from scratch).
    allow_download: fetch torchvision's COCO weights when they are not cached.
    mask_resolution: the mask side (28 or 56) of a model started from COCO weights (at 56
        their mask head's second upsampling stage starts fresh); a version or a file keeps
        its own, and one built from scratch takes `TrainConfig.mask_resolution`.

    A model trained on other categories (added, renamed, removed or reordered since) is
    re-laid for the project's categories by `fit_to_categories`. Raises TrainingError for a
    combination that cannot run (`mrcnn.training.launcher.start_problem`: r18 from COCO,
    COCO weights not on this machine, another preset than the active version's), ProjectError
    for a source that is none of the above, and whatever `load_model` raises.
    """
    problem = start_problem(project, preset, source, allow_download=allow_download)
    if problem:
        raise TrainingError(f"cannot train {preset or 'a model'} from {source!r}: {problem}")
    source = resolve_source(project, source, preset=preset)
    if source == "scratch":
        return StartModel(None, preset or DEFAULT_PRESET, None)
    cats = [c.name for c in project.categories()]
    version = next((v for v in project.model_versions() if v.name == source), None)
    where: str | Path = source
    if version is not None:
        where = project.folder / version.path
    elif source not in ("active", "coco") and not Path(source).exists():
        raise ProjectError(f"--from {source!r}: not 'active', 'coco', 'scratch', a model "
                           "version or a checkpoint file")
    # COCO weights have no resolution of their own; a trained model keeps the one it has
    kwargs = {"mask_resolution": mask_resolution} if source == "coco" else {}
    try:
        loaded = load_model(project=project, preset=preset, source=where, categories=cats,
                            allow_download=allow_download, build_kwargs=kwargs)
    except CategoryMismatchError:  # categories added, renamed or removed since: adapt
        loaded = load_model(project=project, preset=preset, source=where, build_kwargs=kwargs)
    model = fit_to_categories(loaded.model, loaded.preset, loaded.categories, cats)
    parent = version.id if version is not None else loaded.version_id
    return StartModel(model, loaded.preset, parent)


def fit_to_categories(model: nn.Module, preset: str, known: list[str],
                      wanted: list[str]) -> nn.Module:
    """`model` (of `preset`, trained on the categories `known`) with its class rows laid out
    for `wanted`: rows of categories in both are kept (matched by name), new ones start
    fresh. The same model when nothing changes (or `wanted` is empty). The anchors and the
    mask resolution stay the model's own (its RPN and mask head were trained with them), and
    so does its keypoint head (re-laid for the project's keypoint schemas when training
    starts: `mrcnn.training.build.build_start_model`)."""
    if not wanted or known == wanted:
        return model
    state, kept = remap_categories(model.state_dict(), preset, known, wanted)
    fitted = build_model(preset=preset, num_classes=len(wanted) + 1, anchors=anchors_of(model),
                         mask_resolution=mask_resolution_of(model),
                         keypoints=keypoint_layout_of(model))
    fitted.load_state_dict(state)
    log.info("starting model re-laid for the project's categories; kept the rows of: %s",
             ", ".join(kept) or "none")
    return fitted
