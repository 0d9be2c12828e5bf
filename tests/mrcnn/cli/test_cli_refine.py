"""`python -m mrcnn refine-check`: measures mask refinement on the validation split, keeps the
decision in the project and prints it (the rule: `mrcnn.serving.refinement`)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mrcnn import masks
from mrcnn.cli.main import main
from mrcnn.serving.refinement import refinement_for, stored_refinement, validation_image_ids
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def run_here(*args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def spilled(mask: np.ndarray) -> np.ndarray:
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8))
    return cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 2) > 0.5


def store_predictions(folder, how) -> None:
    """Register v1 (active) and store, on each val image, `how(accepted mask)` as v1's
    prediction of each accepted instance."""
    with Project.open(folder) as project:
        version = project.add_model_version("models/v1.pt", "r18", activate=True)
        for image_id in validation_image_ids(project):
            items = [(i.category_id, masks.encode(how(masks.decode(i.rle))), 0.9)
                     for i in project.instances(image_id, state="accepted")]
            project.replace_predictions(image_id, "v1", items, model_version_id=version.id)


@pytest.fixture
def folder(tmp_path):
    return make_synthetic_project(tmp_path / "shapes", n_train=1, n_val=3, size=96)


def test_spilled_predictions_turn_it_on_and_the_project_keeps_it(folder, capsys):
    store_predictions(folder, spilled)
    code, out, _err = run_here("refine-check", folder, "--stored", "--json", capsys=capsys)
    assert code == 0
    data = json.loads(out)
    assert data["on"] and data["model_key"] == "v1" and data["gain"] >= 0.005
    assert data["line"].startswith("Mask refinement: on (")
    with Project.open(folder, read_only=True) as project:
        assert stored_refinement(project).on
        assert refinement_for(project, "v1") == data["method"]


def test_exact_predictions_leave_it_off(folder, capsys):
    store_predictions(folder, lambda m: m)
    code, out, _err = run_here("refine-check", folder, "--stored", capsys=capsys)
    assert code == 0
    assert out.startswith("Mask refinement: off (")
    assert "as predicted" in out
    with Project.open(folder, read_only=True) as project:
        assert refinement_for(project, "v1") is None


def test_stored_needs_a_model_version(folder, capsys):
    code, _out, err = run_here("refine-check", folder, "--stored", capsys=capsys)
    assert code == 1
    assert "--stored measures a model version" in err


def test_without_validation_images_it_says_so(tmp_path, capsys):
    folder = make_synthetic_project(tmp_path / "shapes", n_train=2, n_val=0, size=64)
    code, _out, err = run_here("refine-check", folder, "--stored", capsys=capsys)
    assert code == 1
    assert "no reviewed images in the validation split" in err


def test_a_model_is_run_in_memory_and_nothing_is_stored_but_the_decision(tmp_path, capsys):
    """Without --stored the model (a random r18 checkpoint here) predicts the val images;
    its predictions are measured, not stored."""
    import torch

    from mrcnn.model.checkpoint import save_checkpoint
    from mrcnn.model.presets import build_model

    folder = make_synthetic_project(tmp_path / "shapes", n_train=1, n_val=2, size=64)
    with Project.open(folder, read_only=True) as project:
        names = [c.name for c in project.categories()]
    torch.manual_seed(0)
    ck = tmp_path / "model.pt"
    save_checkpoint(ck, state_dict=build_model(preset="r18", num_classes=len(names) + 1,
                                               min_size=64).state_dict(),
                    preset="r18", categories=names)
    code, out, err = run_here("refine-check", folder, "--model", ck, "--device", "cpu",
                              "--json", capsys=capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["model_key"].startswith("file-") and data["images"] == 2
    with Project.open(folder, read_only=True) as project:
        assert stored_refinement(project).model_key == data["model_key"]
        assert project.instances(state="pending") == []
