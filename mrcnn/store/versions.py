"""Model versions as the user manages them: register a trained checkpoint, compare metrics,
decide which version is active, roll back, delete. Plain data, no torch, no Qt — the window
calls these while the model itself lives in other processes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mrcnn.errors import ProjectError
from mrcnn.store.project import Project
from mrcnn.store.records import ModelVersion

log = logging.getLogger(__name__)

#: How a newly trained version becomes active: only when it scores better than the version
#: that was active before ("if-better"), or in any case ("always").
ACTIVATE_POLICIES = ("if-better", "always")
#: The metric that decides "better": mask AP on the validation split.
DECIDING_METRIC = ("segm", "AP")


def staging_path(project: Project) -> Path:
    """A fresh file name under models/ for a training process to write its checkpoint to
    (hidden, so it is never taken for a version)."""
    return project.models_dir / f".staged-{os.getpid()}-{time.time_ns()}.pt"


#: The folder (inside the project folder) holding each version's error list, found on the
#: validation split (`mrcnn.training.error_analysis`): `errors/<version name>.json`.
ERRORS_DIRNAME = "errors"


def errors_path(project: Project, version_name: str) -> Path:
    """Where the error list of the version `version_name` is kept."""
    return project.folder / ERRORS_DIRNAME / f"{version_name}.json"


def staged_errors_path(staged: str | Path) -> Path:
    """Where a training process keeps the error list of a staged checkpoint (beside it);
    `register_staged` moves it to the version's `errors_path`."""
    return Path(staged).with_suffix(".errors.json")


def remove_staged(staged: str | Path) -> None:
    """Remove a staged checkpoint and its error list (a run that is not registered)."""
    Path(staged).unlink(missing_ok=True)
    staged_errors_path(staged).unlink(missing_ok=True)


def register_staged(project: Project, staged: str | Path, *, preset: str,
                    parent_id: int | None, metadata: dict,
                    activate: bool = True) -> ModelVersion:
    """Move a checkpoint written by `train --stage` to models/vN.pt and register it, as one
    unit: on any failure neither the row nor the models/vN.pt file remains (the staged file
    is removed too)."""
    staged = Path(staged)
    if not staged.is_file():
        raise ProjectError(f"the trained checkpoint {staged} is missing")
    target: Path | None = None
    try:
        with project.transaction():
            if parent_id is not None:
                try:
                    project.model_version(parent_id)
                except ProjectError:
                    parent_id = None  # deleted while training ran
            n = max((v.id for v in project.model_versions()), default=0) + 1
            rel = f"{project.models_dir.name}/v{n}.pt"
            target = project.folder / rel
            os.replace(staged, target)
            version = project.add_model_version(rel, preset, parent_id=parent_id,
                                                metadata=metadata, activate=activate)
            if version.name != f"v{n}":  # pragma: no cover - ids and names always agree
                raise ProjectError(f"model version named {version.name}, expected v{n}")
    except BaseException:
        if target is not None:
            target.unlink(missing_ok=True)
        remove_staged(staged)
        raise
    _keep_errors(project, staged_errors_path(staged), version.name)
    log.info("registered model version %s (%s)", version.name, rel)
    return version


def delete_version(project: Project, version_id: int) -> ModelVersion:
    """Delete a version that is not active: its record (see `Project.delete_model_version`)
    and then its checkpoint file."""
    version = project.delete_model_version(version_id)
    path = project.folder / version.path
    if path.parent == project.models_dir:  # never remove a file the user keeps elsewhere
        path.unlink(missing_ok=True)
    errors_path(project, version.name).unlink(missing_ok=True)  # a later vN is another model
    log.info("deleted model version %s", version.name)
    return version


def _keep_errors(project: Project, staged_errors: Path, name: str) -> None:
    """The staged error list becomes the version's (an older file of that name, left by a
    deleted version, goes). The version is registered already: a failure here is logged,
    and the version simply has no error list."""
    target = errors_path(project, name)
    try:
        if staged_errors.is_file():
            target.parent.mkdir(exist_ok=True)
            os.replace(staged_errors, target)
        else:
            target.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("the error list of %s was not kept: %s", name, exc)
        staged_errors.unlink(missing_ok=True)


def rollback_target(project: Project) -> ModelVersion | None:
    """The version "Roll back" activates: the active version's parent, else the newest
    version older than it; None when there is nothing to go back to."""
    versions = project.model_versions()
    active = next((v for v in versions if v.active), None)
    if active is None:
        return None
    if active.parent_id is not None:
        parent = next((v for v in versions if v.id == active.parent_id), None)
        if parent is not None:
            return parent
    older = [v for v in versions if v.id < active.id]
    return older[-1] if older else None


def metric(metrics: dict | None, kind: str = DECIDING_METRIC[0],
           name: str = DECIDING_METRIC[1]) -> float | None:
    """metrics[kind][name] as a float, None when missing or undefined (-1)."""
    value = ((metrics or {}).get(kind) or {}).get(name)
    if value is None or value < 0:
        return None
    return float(value)


def should_activate(policy: str, baseline: dict | None, new: dict | None) -> bool:
    """Whether a new version with metrics `new` replaces the one that scored `baseline`
    (None: there was none, or it could not be scored)."""
    if policy not in ACTIVATE_POLICIES:
        raise ValueError(f"unknown activation policy {policy!r}")
    if policy == "always":
        return True
    before, after = metric(baseline), metric(new)
    if before is None:
        return True
    return after is not None and after > before


#: Below either number, the validation AP is mostly noise (one image more or less moves it a
#: lot): the panels say so next to it.
NOISY_VAL_IMAGES = 5
NOISY_VAL_INSTANCES = 20


def scored_on(metrics: dict | None) -> tuple[int, int] | None:
    """(images, instances) the metrics were computed on; None when they do not say (older
    versions)."""
    scored = (metrics or {}).get("scored")
    if not isinstance(scored, dict):
        return None
    images, instances = scored.get("images"), scored.get("instances")
    if not isinstance(images, int) or not isinstance(instances, int):
        return None
    return images, instances


def describe_val(images: int | None, instances: int | None = None) -> str:
    """"val: 3 images, 24 instances" (what every AP is shown with); "" when unknown."""
    if images is None:
        return ""
    text = f"val: {images} image{'s' if images != 1 else ''}"
    if instances is not None:
        text += f", {instances} instance{'s' if instances != 1 else ''}"
    return text


def is_noisy(images: int | None, instances: int | None = None) -> bool:
    """Whether an AP measured on this much validation data is mostly noise."""
    if images is None:
        return False
    return images < NOISY_VAL_IMAGES or (instances is not None
                                         and instances < NOISY_VAL_INSTANCES)


def noise_warning(images: int | None, instances: int | None = None) -> str:
    """A warning to show next to an AP from a tiny validation set ("" when it is not)."""
    if not is_noisy(images, instances):
        return ""
    return (f"AP from {describe_val(images, instances).removeprefix('val: ')} is mostly "
            f"noise (under {NOISY_VAL_IMAGES} images or {NOISY_VAL_INSTANCES} instances): "
            "move more reviewed images to validation before trusting it")


@dataclass(frozen=True)
class MetricRow:
    """One line of a before/after table: `before` is None when there was no model."""

    label: str  # "segm AP", "bbox AP50", "segm AP · disc"
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def compare(before: dict | None, after: dict | None) -> list[MetricRow]:
    """Rows for a before/after table: segm and bbox AP and AP50 (and OKS keypoint AP and AP50
    where either side has a keypoint head), then per-class segm AP."""
    kinds = ["segm", "bbox"]
    if any("keypoints" in (m or {}) for m in (before, after)):
        kinds.append("keypoints")
    rows = [MetricRow(f"{kind} {name}", metric(before, kind, name), metric(after, kind, name))
            for kind in kinds for name in ("AP", "AP50")]
    names: list[str] = []
    for m in (before, after):
        for n in ((m or {}).get("segm") or {}).get("per_class", {}):
            if n not in names:
                names.append(n)
    for n in names:
        pick = [((m or {}).get("segm") or {}).get("per_class", {}).get(n) for m in (before, after)]
        rows.append(MetricRow(f"segm AP · {n}",
                              *(None if v is None or v < 0 else float(v) for v in pick)))
    return rows


@dataclass(frozen=True)
class VersionSummary:
    """What the versions panel shows of one version."""

    id: int
    name: str
    preset: str
    created_at: float
    active: bool
    parent: str | None
    train_images: int | None
    segm_ap: float | None
    bbox_ap: float | None
    iterations: int | None
    val_images: int | None = None  # what its AP was measured on (None: not recorded)
    val_instances: int | None = None
    #: what it was trained from: the parent version, "scratch" or "COCO" (`started_from`)
    started_from: str = ""
    keypoint_ap: float | None = None  # OKS keypoint AP (None: no keypoint head or no points)

    @property
    def val_text(self) -> str:
        """"val: 3 images, 24 instances", "" when unknown."""
        return describe_val(self.val_images, self.val_instances)

    @property
    def noisy(self) -> bool:
        return is_noisy(self.val_images, self.val_instances)


def started_from(metadata: dict | None, parent: str | None) -> str:
    """What a version was trained from, in a word: its parent version's name ("v1 (deleted)"
    once that is gone), "scratch", or "COCO" for pretrained weights (torchvision's COCO
    weights, or a checkpoint file given to `train --from`); "" when not recorded."""
    md = metadata or {}
    if parent:
        return parent
    if md.get("parent_version"):
        return f"{md['parent_version']} (deleted)"
    if "from_scratch" not in md:
        return ""
    return "scratch" if md["from_scratch"] else "COCO"


def summarize(project: Project) -> list[VersionSummary]:
    """Every model version, newest first, with the numbers the panel shows."""
    versions = project.model_versions()
    names = {v.id: v.name for v in versions}
    out = []
    for v in reversed(versions):
        md = v.metadata or {}
        after = (md.get("metrics") or {}).get("after")
        ids = md.get("training_image_ids")
        val_ids = md.get("val_image_ids")
        parent = names.get(v.parent_id) if v.parent_id is not None else None
        val_images, val_instances = scored_on(after) or (
            len(val_ids) if isinstance(val_ids, list) else None, None)
        out.append(VersionSummary(
            v.id, v.name, v.preset, v.created_at, v.active,
            parent,
            len(ids) if isinstance(ids, list) else None,
            metric(after, "segm", "AP"), metric(after, "bbox", "AP"), md.get("iterations"),
            val_images if after else None, val_instances if after else None,
            started_from(md, parent), metric(after, "keypoints", "AP")))
    return out
