"""Which model a user means, for a project: a model version's name ("v3"), a checkpoint
file, "coco", "active", "scratch", or nothing (the project's active version, else COCO
weights in the torch cache). Resolves the spec, loads the model and names its key
(`mrcnn.model.keys.model_key`). The command line's `predict` and `eval` use it.

torch is imported only when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mrcnn.errors import ProjectError
from mrcnn.io.download import Progress
from mrcnn.model.keys import model_key
from mrcnn.store.project import Project
from mrcnn.store.records import ModelVersion

if TYPE_CHECKING:
    from mrcnn.model.weights import LoadedModel

#: Specs that name no file and no model version.
KEYWORDS = ("coco", "active", "scratch")


def version_named(project: Project, spec: str | None) -> ModelVersion | None:
    """The model version `spec` names; None when it names none (no spec, a keyword or an
    existing file). Raises ProjectError when it is neither a version nor a file."""
    if not spec or spec in KEYWORDS or Path(spec).exists():
        return None
    version = next((v for v in project.model_versions() if v.name == spec), None)
    if version is None:
        names = ", ".join(v.name for v in project.model_versions()) or "none"
        raise ProjectError(f"{spec!r} is neither a model version of this project "
                           f"(versions: {names}) nor a checkpoint file")
    return version


def resolve_model(project: Project, spec: str | None, *, preset: str | None = None,
                  for_predict: bool, allow_download: bool = False,
                  progress: Progress | None = None) -> tuple[LoadedModel, str]:
    """Load the model `spec` names for `project`, and the key its predictions go under.

    `for_predict`: predicting maps the model's categories onto the project's by name, so
    any model can propose; otherwise (evaluating) the model must know the project's
    categories. Raises ProjectError, NoWeightsError, CheckpointError."""
    from mrcnn.model.weights import load_model

    version = version_named(project, spec)
    source = project.folder / version.path if version is not None else spec or "auto"
    project_cats = [c.name for c in project.categories()]
    categories = None if for_predict else project_cats or None
    loaded = load_model(project=project, preset=preset, source=source,
                        categories=categories, allow_download=allow_download,
                        progress=progress)
    if version is not None:
        loaded.version_id = version.id
        version_name = version.name
    elif loaded.version_id is not None:
        version_name = project.model_version(loaded.version_id).name
    else:
        version_name = None
    key = model_key(kind=loaded.kind, preset=loaded.preset, version_name=version_name,
                    path=loaded.path)
    return loaded, key
