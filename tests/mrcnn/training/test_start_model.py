"""Choosing the model a run starts from, and scoring the version it is compared with."""

from __future__ import annotations

import pytest
import torch

from mrcnn.errors import ProjectError, TrainingError
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.presets import DEFAULT_PRESET, build_model
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.evaluate import score_baseline
from mrcnn.training.start_model import choose_start_model, fit_to_categories, resolve_source


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no cached COCO weights
    folder = make_synthetic_project(tmp_path, n_train=2, n_val=1, size=64)
    with Project.open(folder) as p:
        yield p


def add_version(project: Project, categories: list[str]) -> int:
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=len(categories) + 1)
    project.models_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(project.models_dir / "v1.pt", state_dict=model.state_dict(), preset="r18",
                    categories=categories)
    return project.add_model_version("models/v1.pt", "r18", activate=True).id


def test_auto_is_scratch_without_an_active_version_or_coco_weights(project):
    assert resolve_source(project, "auto") == "scratch"
    assert resolve_source(project, "auto", preset="r18") == "scratch"
    assert resolve_source(project, "coco") == "coco"
    start = choose_start_model(project)
    assert (start.model, start.preset, start.parent_id) == (None, DEFAULT_PRESET, None)
    assert choose_start_model(project, source="scratch", preset="r18").preset == "r18"


def test_combinations_that_cannot_run_are_refused_with_the_reason(project):
    with pytest.raises(TrainingError, match="r18 has no COCO weights"):
        choose_start_model(project, source="coco", preset="r18", allow_download=True)
    with pytest.raises(TrainingError, match="COCO weights for r50v2 are not on this machine"):
        choose_start_model(project, source="coco")
    add_version(project, [c.name for c in project.categories()])
    with pytest.raises(TrainingError, match="the active version is an r18 model, not r50"):
        choose_start_model(project, source="active", preset="r50")


def test_auto_is_the_active_version_laid_out_for_the_projects_categories(project):
    cats = [c.name for c in project.categories()]
    version_id = add_version(project, list(reversed(cats)))  # same names, other order
    assert resolve_source(project, "auto") == "active"
    for source in ("auto", "active", "v1"):
        start = choose_start_model(project, source=source)
        assert start.preset == "r18" and start.parent_id == version_id
        assert start.model.roi_heads.box_predictor.cls_score.out_features == len(cats) + 1


def test_an_unknown_source_is_a_project_error(project):
    with pytest.raises(ProjectError, match="'v9'.*a model version or a checkpoint file"):
        choose_start_model(project, source="v9")


def test_fit_to_categories_keeps_the_rows_of_known_categories_by_name():
    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=3)
    assert fit_to_categories(model, "r18", ["a", "b"], ["a", "b"]) is model
    fitted = fit_to_categories(model, "r18", ["a", "b"], ["b", "c", "a"])
    old = model.roi_heads.box_predictor.cls_score.weight
    new = fitted.roi_heads.box_predictor.cls_score.weight
    assert new.shape[0] == 4
    assert torch.equal(new[1], old[2]) and torch.equal(new[3], old[1])  # b and a kept


def test_baseline_is_scored_unless_it_is_the_starting_model(project):
    assert score_baseline(project, "v1") is None  # no such version
    version_id = add_version(project, [c.name for c in project.categories()])
    assert score_baseline(project, "v1", starting_id=version_id) is None
    event = score_baseline(project, "v1")
    assert (event.stage, event.version, event.iteration, event.error) == (
        "baseline", "v1", 0, None)
    assert set(event.metrics) == {"bbox", "segm", "scored"}
