"""Where a model's weights come from, and loading them safely.

Order for `load_model(source="auto")`: the project's active model version; torchvision's COCO
weights when already in the torch cache; a download when allowed and the machine is online;
else `NoWeightsError`, whose message lists what the user can do. A file the user names
(`source=PATH`) always wins, because the caller asks for it explicitly.

Every file is read with `weights_only=True` (see `mrcnn.model.checkpoint`): a file that needs
pickled Python code is refused, never run.

torchvision's COCO weights themselves (category names, the torch cache, the download) are
`mrcnn.model.coco_weights`; here they are loaded and adapted to a project's categories.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from mrcnn.errors import (
    CategoryMismatchError,
    CheckpointError,
    NoWeightsError,
    ProjectError,
)
from mrcnn.io.download import Progress
from mrcnn.model.checkpoint import check_checkpoint, load_state
from mrcnn.model.class_rows import copy_class_rows
from mrcnn.model.coco_weights import (
    COCO_PLACEHOLDER,
    coco_categories,
    coco_weights_enum,
    download_coco_weights,
    find_coco_weights,
)
from mrcnn.model.convert import LabelMap
from mrcnn.model.keypoint_head import check_layout, with_keypoint_layout
from mrcnn.model.presets import (
    DEFAULT_MASK_RESOLUTION,
    DEFAULT_PRESET,
    PRESETS,
    Anchors,
    build_model,
    check_mask_resolution,
    get_preset,
    mask_resolution_in,
    with_upsampling_stage,
)
from mrcnn.model.weight_files import no_weights_message

if TYPE_CHECKING:
    from mrcnn.store.project import Project

log = logging.getLogger(__name__)

#: Keyword sources of `load_model`; any other string is a file path.
SOURCES = ("auto", "active", "coco", "scratch")

_NBT = "num_batches_tracked"
_CLS = "roi_heads.box_predictor.cls_score.weight"
#: Predictor tensors with one block of rows per class: name -> rows per class.


# ---------------------------------------------------------------- state dicts
def _plain_state(data: object, origin: str) -> dict[str, torch.Tensor]:
    """A {name: tensor} dict from a loaded file: a bare state dict, or one under "model" /
    "state_dict" (torchvision reference scripts and Lightning-style files)."""
    if isinstance(data, Mapping):
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            return dict(data)
        for key in ("model", "state_dict"):
            inner = data.get(key)
            if isinstance(inner, Mapping) and inner and all(
                    isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
    raise CheckpointError(f"{origin} holds neither a Mask R-CNN Studio checkpoint nor a "
                          "state dict of tensors")


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def _few(keys: Sequence[str], n: int = 3) -> str:
    more = f", ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _fit_state(state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], *,
               preset: str, origin: str) -> dict[str, torch.Tensor]:
    """`state` made loadable with strict=True into a model whose state dict is `reference`,
    or CheckpointError naming the preset and a few mismatched keys.

    BatchNorm's `num_batches_tracked` counters are not weights: missing ones are filled in
    and extra ones dropped (torchvision's R50 v1 COCO file has none, our builds have them).
    Floating tensors take the model's dtype.
    """
    fitted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(_NBT) and key not in reference:
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{origin}: {key} is not a tensor")
        fitted[key] = value
    for key in reference:
        if key.endswith(_NBT) and key not in fitted:
            fitted[key] = torch.zeros((), dtype=torch.long)
    missing = sorted(reference.keys() - fitted.keys())
    unexpected = sorted(fitted.keys() - reference.keys())
    wrong = sorted(k for k in reference.keys() & fitted.keys()
                   if fitted[k].shape != reference[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
        if wrong:
            shown = [f"{k}: {_shape(fitted[k])} in the file, {_shape(reference[k])} expected"
                     for k in wrong]
            parts.append(f"{len(wrong)} keys with other shapes ({_few(shown)})")
        raise CheckpointError(
            f"{origin} does not fit the {preset} architecture: {'; '.join(parts)}. "
            "Was it made for another preset?")
    for key, ref in reference.items():
        value = fitted[key]
        if value.is_floating_point() and value.dtype != ref.dtype:
            fitted[key] = value.to(ref.dtype)
    return fitted


def _num_classes_in(state: Mapping[str, torch.Tensor], origin: str) -> int:
    weight = state.get(_CLS)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise CheckpointError(f"{origin} is not a Mask R-CNN state dict (no {_CLS})")
    return int(weight.shape[0])


def _meta_reference(preset: str, num_classes: int,
                    mask_resolution: int = DEFAULT_MASK_RESOLUTION) -> dict[str, torch.Tensor]:
    """A preset's state dict shapes, without allocating or initialising any weights."""
    with torch.device("meta"):
        return build_model(preset=preset, num_classes=num_classes,
                           mask_resolution=mask_resolution).state_dict()


def _has_meta_tensors(model: nn.Module) -> bool:
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_meta:
            return True
    for module in model.modules():
        for value in vars(module).values():
            values = value if isinstance(value, list | tuple) else (value,)
            if any(isinstance(v, torch.Tensor) and v.is_meta for v in values):
                return True
    return False


def _instantiate(preset: str, num_classes: int, state: Mapping[str, torch.Tensor], *,
                 origin: str, build_kwargs: Mapping[str, Any]) -> nn.Module:
    """A model of `preset` holding exactly `state` (checked first), in eval mode on the CPU.

    The model is built on the meta device and the tensors assigned, which skips the random
    initialisation every weight would overwrite anyway."""
    with torch.device("meta"):
        model = build_model(preset=preset, num_classes=num_classes, **build_kwargs)
    fitted = _fit_state(state, model.state_dict(), preset=preset, origin=origin)
    model.load_state_dict(fitted, strict=True, assign=True)
    if _has_meta_tensors(model):  # pragma: no cover - guards against torchvision changes
        log.debug("meta-device build left tensors behind; building %s normally", preset)
        model = build_model(preset=preset, num_classes=num_classes, **build_kwargs)
        model.load_state_dict(fitted, strict=True)
    return model.eval()


def _infer_preset(state: Mapping[str, torch.Tensor], origin: str) -> str:
    """The preset whose architecture a plain state dict fits."""
    num_classes = _num_classes_in(state, origin)
    resolution = mask_resolution_in(state)
    for name in PRESETS:
        try:
            _fit_state(state, _meta_reference(name, num_classes, resolution), preset=name,
                       origin=origin)
        except CheckpointError:
            continue
        return name
    raise CheckpointError(f"{origin} fits none of the presets ({', '.join(PRESETS)}); "
                          "is it a torchvision Mask R-CNN state dict?")


# ---------------------------------------------------------------- COCO adaptation
def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def adapt_coco_state(coco_state: Mapping[str, torch.Tensor], preset: str,
                     project_names: Sequence[str], *,
                     mask_resolution: int = DEFAULT_MASK_RESOLUTION,
                     ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """COCO weights reshaped for a project's categories.

    Everything but the class-specific predictor rows comes from `coco_state`. For each project
    name equal to a COCO name (case-insensitive; "_" and "-" count as spaces) the class score
    row, the 4 box regression rows and the mask logit channel are COCO's; the background row
    is kept too; other categories start from a fresh `build_model` initialisation. COCO's
    mask head is 28 x 28: at mask_resolution 56 its second upsampling stage starts fresh.

    Returns (state dict loadable with strict=True into `build_model(preset=preset,
    num_classes=len(project_names) + 1, mask_resolution=mask_resolution)`, matched project
    names).
    """
    if not project_names:
        raise ValueError("adapt_coco_state needs at least one project category")
    coco_names = coco_categories(preset)
    origin = f"COCO weights for {preset}"
    state = _fit_state(coco_state, _meta_reference(preset, len(coco_names) + 1),
                       preset=preset, origin=origin)
    fresh = build_model(preset=preset, num_classes=len(project_names) + 1).state_dict()
    coco_label = {_norm(n): i + 1 for i, n in enumerate(coco_names) if n != COCO_PLACEHOLDER}
    pairs = [(0, 0)]  # (project label, COCO label); background first
    matched = []
    for i, name in enumerate(project_names):
        label = coco_label.get(_norm(name))
        if label is not None:
            pairs.append((i + 1, label))
            matched.append(name)
    copy_class_rows(state, fresh, pairs)
    if check_mask_resolution(mask_resolution) == 56:
        state = with_upsampling_stage(state)
    log.info("COCO weights adapted to %d categories; kept COCO rows for: %s",
             len(project_names), ", ".join(matched) or "none")
    return state, matched


# ---------------------------------------------------------------- loading
@dataclass
class LoadedModel:
    """A model ready to run, and where its weights came from.

    `categories[i]` is the name of model label i + 1 (0 = background). A COCO model run
    directly has COCO's 90 names, "N/A" placeholders included (never predicted in practice).
    """

    model: nn.Module  # eval mode, on the CPU
    preset: str
    categories: list[str]
    source: str  # for people: "v3 (project)", "COCO weights (torch cache)", "file x.pt", ...
    version_id: int | None = None  # the project's model version, when loaded from one
    kind: str = "checkpoint"  # "version" | "checkpoint" | "coco" | "scratch"
    path: Path | None = None  # the weights file read, if any
    metadata: dict = field(default_factory=dict)  # the checkpoint's plain metadata
    matched: list[str] = field(default_factory=list)  # categories that kept COCO rows

    @property
    def num_classes(self) -> int:
        """Categories + background."""
        return len(self.categories) + 1

    def label_map(self) -> LabelMap:
        """Model label <-> category name."""
        return LabelMap(self.categories)


def load_model(*, project: Project | None = None, preset: str | None = None,
               source: str | os.PathLike = "auto", categories: Sequence[str] | None = None,
               allow_download: bool = False, progress: Progress | None = None,
               build_kwargs: Mapping[str, Any] | None = None) -> LoadedModel:
    """Load a model from the first source that has weights.

    Args:
        project: the open project (needed for "active"; consulted first by "auto").
        preset: the architecture required. For a file or a version, a different one is an
            error; for "coco"/"scratch"/"auto" it picks the weights (default "r50v2").
            A plain torchvision state dict without a preset is matched against all presets.
        source: a file path (our checkpoint, or a plain torchvision state dict), "active"
            (the project's active model version), "coco" (torchvision's COCO weights),
            "scratch" (random init) or "auto" (active version, else COCO weights in the
            torch cache, else a download when `allow_download`, else NoWeightsError).
        categories: the project's category names. A checkpoint must have the same set
            (CheckpointError names the missing and extra ones); COCO weights are adapted to
            them (`adapt_coco_state`); None or empty runs the COCO model with COCO's names.
            "scratch" needs them.
        allow_download: whether "coco"/"auto" may download COCO weights.
        progress: download progress, `progress(bytes_done, bytes_total_or_None)`.
        build_kwargs: passed to `build_model` (e.g. box_score_thresh, min_size). A
            checkpoint is rebuilt with the anchors, mask resolution and keypoint layout its
            metadata names
            (those it was trained with) and run at its trained input size, unless these say
            otherwise (mask_resolution=56 for a 28 x 28 checkpoint or COCO weights: the new
            upsampling stage starts fresh).

    Raises NoWeightsError when there are no weights, CheckpointError when a file is unsafe,
    unreadable, of another architecture or for other categories.
    """
    kwargs = dict(build_kwargs or {})
    cats = list(categories) if categories is not None else None
    if preset is not None:
        get_preset(preset)
    if isinstance(source, str) and source in SOURCES:
        if source == "scratch":
            return _scratch(preset or DEFAULT_PRESET, cats, kwargs)
        if source == "active":
            return _active(project, preset, cats, kwargs)
        if source == "coco":
            return _coco(preset or DEFAULT_PRESET, cats, kwargs, allow_download, progress)
        if project is not None and project.active_model_version() is not None:
            return _active(project, preset, cats, kwargs)
        return _coco(preset or DEFAULT_PRESET, cats, kwargs, allow_download, progress,
                     why_missing="the project has no model version yet and torchvision's "
                                 "COCO weights are not in the torch cache")
    path = Path(source)
    return _from_file(path, preset=preset, categories=cats, build_kwargs=kwargs,
                      source=f"file {path.name}", kind="checkpoint")


def _scratch(preset: str, cats: list[str] | None, kwargs: dict) -> LoadedModel:
    if not cats:
        raise ProjectError("a model from scratch (random init) needs the project's "
                           "categories: add at least one category first")
    model = build_model(preset=preset, num_classes=len(cats) + 1, **kwargs).eval()
    log.info("built a randomly initialised %s model for %d categories", preset, len(cats))
    return LoadedModel(model, preset, cats, "random init", kind="scratch")


def _active(project: Project | None, preset: str | None, cats: list[str] | None,
            kwargs: dict) -> LoadedModel:
    if project is None:
        raise ValueError('source="active" needs a project')
    version = project.active_model_version()
    if version is None:
        raise NoWeightsError(no_weights_message(
            "the project has no active model version", preset or DEFAULT_PRESET))
    return _from_file(Path(project.folder) / version.path, preset=preset, categories=cats,
                      build_kwargs=kwargs, source=f"{version.name} (project)",
                      kind="version", version_id=version.id)


def _coco(preset: str, cats: list[str] | None, kwargs: dict, allow_download: bool,
          progress: Progress | None, why_missing: str | None = None) -> LoadedModel:
    path = find_coco_weights(preset)
    where = "torch cache"
    if path is None:
        coco_weights_enum(preset)  # NoWeightsError for presets without COCO weights
        if not allow_download:
            raise NoWeightsError(no_weights_message(
                why_missing or "torchvision's COCO weights are not in the torch cache", preset))
        path = download_coco_weights(preset, progress=progress)
        where = "downloaded"
    origin = f"COCO weights {path}"
    state = _plain_state(load_state(path), origin)
    return _coco_model(state, preset, cats, kwargs, source=f"COCO weights ({where})",
                       path=path, origin=origin)


def _coco_model(state: dict, preset: str, cats: list[str] | None, kwargs: dict, *,
                source: str, path: Path, origin: str) -> LoadedModel:
    resolution = kwargs.get("mask_resolution", DEFAULT_MASK_RESOLUTION)
    kwargs = dict(kwargs)
    layout = kwargs.pop("keypoints", None)  # COCO's Mask R-CNN has no keypoint head: added
    if cats:
        adapted, matched = adapt_coco_state(state, preset, cats, mask_resolution=resolution)
        model = _instantiate(preset, len(cats) + 1, adapted, origin=origin, build_kwargs=kwargs)
        if layout:
            with_keypoint_layout(model, layout, preset).eval()
        return LoadedModel(model, preset, cats, source, kind="coco", path=path, matched=matched)
    names = coco_categories(preset)
    if check_mask_resolution(resolution) == 56:
        state = with_upsampling_stage(state)
    model = _instantiate(preset, len(names) + 1, state, origin=origin, build_kwargs=kwargs)
    log.info("loaded %s for %s with COCO's categories", source, preset)
    return LoadedModel(model, preset, names, source, kind="coco", path=path)


def _with_trained_anchors(build_kwargs: dict, metadata: dict, origin: str) -> dict:
    """`build_kwargs` with the anchors the model was trained with (metadata "anchors"; a
    checkpoint without them used its preset's), unless the caller chose some."""
    data = metadata.get("anchors")
    if data is None or "anchors" in build_kwargs:
        return build_kwargs
    try:
        anchors = Anchors.from_dict(data)
    except ValueError as exc:
        raise CheckpointError(f"{origin}: invalid anchors in its metadata ({exc})") from None
    return {**build_kwargs, "anchors": anchors}


def _with_trained_keypoints(build_kwargs: dict, metadata: dict, origin: str) -> dict:
    """`build_kwargs` with the keypoint head's layout the model was trained with (metadata
    "keypoints"; none: no keypoint head), unless the caller chose one."""
    data = metadata.get("keypoints")
    if not data or "keypoints" in build_kwargs:
        return build_kwargs
    try:
        layout = check_layout(data)
    except ValueError as exc:
        raise CheckpointError(f"{origin}: invalid keypoint layout in its metadata "
                              f"({exc})") from None
    return {**build_kwargs, "keypoints": layout}


def _with_trained_mask_resolution(build_kwargs: dict, metadata: dict,
                                  state: Mapping[str, torch.Tensor], origin: str) -> dict:
    """`build_kwargs` with the mask resolution the model was trained with (metadata
    "mask_resolution"; without it, the one its state dict holds), unless the caller chose
    one."""
    if "mask_resolution" in build_kwargs:
        return build_kwargs
    value = metadata.get("mask_resolution", mask_resolution_in(state))
    try:
        resolution = check_mask_resolution(value)
    except ValueError as exc:
        raise CheckpointError(f"{origin}: invalid mask_resolution in its metadata "
                              f"({exc})") from None
    return {**build_kwargs, "mask_resolution": resolution}


def _state_for_resolution(state: Mapping[str, torch.Tensor], build_kwargs: Mapping[str, Any],
                          origin: str) -> Mapping[str, torch.Tensor]:
    """`state` for a model built with `build_kwargs`: a 28 x 28 model asked for at 56 gets a
    fresh second upsampling stage; a 56 x 56 one cannot be cut down to 28 (CheckpointError)."""
    wanted = build_kwargs.get("mask_resolution", DEFAULT_MASK_RESOLUTION)
    held = mask_resolution_in(state)
    if wanted == held:
        return state
    if held == 56:
        raise CheckpointError(f"{origin} predicts {held} x {held} masks; it cannot be "
                              f"loaded as a {wanted} x {wanted} model")
    log.info("%s: %d x %d mask head widened to %d x %d (the new upsampling stage starts "
             "fresh)", origin, held, held, wanted, wanted)
    return with_upsampling_stage(state)


def _use_trained_size(model: nn.Module, metadata: dict, build_kwargs: dict) -> None:
    """Run a model at the input size it was trained at (unless the caller chose one)."""
    size, max_size = metadata.get("size"), metadata.get("max_size")
    if "min_size" in build_kwargs or not isinstance(size, int) or size <= 0:
        return
    # nn.Module's attribute access is typed Tensor | Module; torchvision's transform is untyped
    transform = cast(GeneralizedRCNNTransform, model.get_submodule("transform"))
    transform.min_size = (size,)
    if isinstance(max_size, int) and max_size >= size:
        transform.max_size = max_size


def _check_categories(found: list[str], wanted: list[str], origin: str) -> None:
    missing = [c for c in wanted if c not in found]
    extra = [c for c in found if c not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(repr(c) for c in missing)}")
        if extra:
            parts.append(f"extra {', '.join(repr(c) for c in extra)}")
        raise CategoryMismatchError(f"{origin} was trained for other categories than the "
                                    f"project's: "
                              f"{'; '.join(parts)}")


def _from_file(path: Path, *, preset: str | None, categories: list[str] | None,
               build_kwargs: dict, source: str, kind: str,
               version_id: int | None = None) -> LoadedModel:
    data = load_state(path)
    origin = str(path)
    if isinstance(data, Mapping) and "format" in data:
        ck = check_checkpoint(data, path)
        ck_preset = ck["preset"]
        if ck_preset not in PRESETS:
            raise CheckpointError(f"{path} is for an unknown preset {ck_preset!r}")
        if preset is not None and preset != ck_preset:
            raise CheckpointError(f"{path} holds a {ck_preset} model, not {preset}")
        names = list(ck["categories"])
        rows = _num_classes_in(ck["state_dict"], origin)
        if rows != len(names) + 1:
            raise CheckpointError(f"{path} names {len(names)} categories but its predictor "
                                  f"has {rows - 1}")
        if categories is not None:
            _check_categories(names, categories, origin)
        found = ck.get("metadata")
        metadata: dict = found if isinstance(found, dict) else {}
        kwargs = _with_trained_mask_resolution(
            _with_trained_keypoints(_with_trained_anchors(build_kwargs, metadata, origin),
                                    metadata, origin),
            metadata, ck["state_dict"], origin)
        model = _instantiate(ck_preset, rows,
                             _state_for_resolution(ck["state_dict"], kwargs, origin),
                             origin=origin, build_kwargs=kwargs)
        _use_trained_size(model, metadata, build_kwargs)
        log.info("loaded %s (%s, %d categories)", source, ck_preset, len(names))
        return LoadedModel(model, ck_preset, names, source, version_id=version_id, kind=kind,
                           path=path, metadata=metadata)
    state = _plain_state(data, origin)
    rows = _num_classes_in(state, origin)
    preset = preset or _infer_preset(state, origin)
    p = get_preset(preset)
    if p.coco_weights is not None and rows == len(coco_categories(preset)) + 1:
        # torchvision's own COCO file (or one shaped like it), picked by the user
        return _coco_model(state, preset, categories, build_kwargs, source=source,
                           path=path, origin=origin)
    if categories:
        if len(categories) != rows - 1:
            raise CheckpointError(f"{path} predicts {rows - 1} categories, the project has "
                                  f"{len(categories)}")
        names = list(categories)
    else:
        names = [f"class {i}" for i in range(1, rows)]
    kwargs = _with_trained_mask_resolution(build_kwargs, {}, state, origin)
    model = _instantiate(preset, rows, _state_for_resolution(state, kwargs, origin),
                         origin=origin, build_kwargs=kwargs)
    log.info("loaded %s as a plain %s state dict", source, preset)
    return LoadedModel(model, preset, names, source, version_id=version_id, kind=kind,
                       path=path)
