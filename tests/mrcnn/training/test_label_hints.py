"""Label suspects: accepted instances a confident prediction disagrees with (another category,
no accepted instance under a detection, no detection for an instance), ranked. The rule on
hand-made masks, and the acceptance: wrong categories and a dropped instance planted in the
reviewed images of a project whose model has learned (the shared `trained_shapes`) are found
ahead of every correct instance."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mrcnn import masks
from mrcnn.testing.synthetic import SHAPES
from mrcnn.training.error_analysis import TruthImage, TruthInstance
from mrcnn.training.label_hints import (
    UNSUPPORTED_WEIGHT,
    SuspectKind,
    find_suspects,
    rank_suspects,
)

H = W = 64


def box(y0: int, x0: int, y1: int, x1: int) -> masks.Rle:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return masks.encode(m)


A, B, C, D = box(2, 2, 20, 20), box(2, 30, 20, 48), box(30, 2, 48, 20), box(30, 30, 48, 48)
E = box(50, 50, 62, 62)
A_OVER = box(3, 2, 20, 20)  # nearly A


def test_the_three_kinds_and_their_scores():
    truth = [TruthInstance(1, "disc", A),  # the model sees a square there: wrong category
             TruthInstance(2, "ring", B),  # supported: no suspect
             TruthInstance(3, "disc", C)]  # nothing detected there: unsupported
    found = find_suspects(5, truth, [
        ("square", A, 0.9), ("disc", A, 0.4),  # the disc: below the floor, some support
        ("ring", B, 0.95),
        ("triangle", D, 0.8), ("triangle", box(31, 30, 48, 48), 0.7),  # one object, twice
        ("disc", E, 0.3),  # not confident: nothing
    ])
    by_kind = {s.kind: s for s in found}
    assert sorted(by_kind) == sorted(SuspectKind) and len(found) == 3
    wrong = by_kind[SuspectKind.WRONG_CATEGORY]
    assert (wrong.image_id, wrong.instance_id, wrong.category, wrong.suggested) == (
        5, 1, "disc", "square")
    assert wrong.confidence == 0.9 and wrong.iou == 1.0
    assert wrong.score == pytest.approx(0.9 * (1 - 0.4))  # x (1 - the label's support)
    assert wrong.mask == A and wrong.detection == A
    assert wrong.describe() == "labelled disc, the model sees a square (0.90)"
    unlabelled = by_kind[SuspectKind.UNLABELLED]
    assert unlabelled.instance_id is None and unlabelled.suggested == "triangle"
    assert unlabelled.score == pytest.approx(0.8) and unlabelled.mask == D
    unsupported = by_kind[SuspectKind.UNSUPPORTED]
    assert unsupported.instance_id == 3 and unsupported.score == UNSUPPORTED_WEIGHT
    assert unsupported.detection is None


def test_a_model_sure_of_another_category_outranks_one_that_hesitates():
    truth = [TruthInstance(1, "disc", A)]
    sure = find_suspects(1, truth, [("square", A, 0.85)])
    hesitant = find_suspects(1, truth, [("square", A, 0.9), ("disc", A_OVER, 0.45)])
    assert sure[0].score == pytest.approx(0.85)
    assert hesitant[0].score == pytest.approx(0.9 * 0.55)
    assert hesitant[0].score < sure[0].score
    # a weak prediction of the label's category elsewhere is no support
    elsewhere = find_suspects(1, truth, [("square", A, 0.9), ("disc", D, 0.45)])
    assert [s.kind for s in elsewhere] == [SuspectKind.WRONG_CATEGORY]
    assert elsewhere[0].score == pytest.approx(0.9)


def test_partial_overlaps_weigh_the_score():
    # a detection half over an accepted instance of its category: that instance is
    # unsupported at 1 - IoU, and the detection an unlabelled object at score x (1 - IoU)
    truth = [TruthInstance(1, "disc", A)]
    half = box(2, 11, 20, 29)  # IoU with A: 162 / 486
    found = {s.kind: s for s in find_suspects(1, truth, [("disc", half, 0.9)])}
    iou = 162 / 486
    assert found[SuspectKind.UNSUPPORTED].score == pytest.approx(UNSUPPORTED_WEIGHT * (1 - iou))
    assert found[SuspectKind.UNSUPPORTED].detection == half
    assert found[SuspectKind.UNLABELLED].score == pytest.approx(0.9 * (1 - iou))


def test_ranked_over_images_highest_first():
    images = [TruthImage(1, "a.png", "a.png", (TruthInstance(1, "disc", A),)),
              TruthImage(2, "b.png", "b.png", (TruthInstance(2, "disc", A),)),
              TruthImage(3, "c.png", "c.png", (TruthInstance(3, "disc", A),))]
    ranked = rank_suspects(images, {1: [("square", A, 0.7)], 2: [("square", A, 0.95)], 3: []})
    assert [(s.image_id, s.kind) for s in ranked] == [
        (2, SuspectKind.WRONG_CATEGORY), (1, SuspectKind.WRONG_CATEGORY),
        (3, SuspectKind.UNSUPPORTED)]
    assert rank_suspects(images, {}) == []  # images the model did not predict: nothing


# ---------------------------------------------------------------- acceptance
def test_planted_label_errors_are_found_ahead_of_correct_instances(trained_shapes, tmp_path):
    from mrcnn.model.weights import load_model
    from mrcnn.store.project import Project
    from mrcnn.training.error_analysis import iou_matrix, reviewed_ids, truth_images
    from mrcnn.training.evaluate import detect_images

    root = tmp_path / "copy"
    shutil.copytree(trained_shapes.project.parent, root)
    folder = root / trained_shapes.project.name
    with Project.open(folder) as project:
        loaded = load_model(project=project, source="auto")
        images = truth_images(project, reviewed_ids(project, None))
        predictions = detect_images(loaded.model, loaded.categories, images, device=None)
        clean = rank_suspects(images, predictions)
        # plant errors on instances the model recognises (a suspect needs a model that
        # disagrees): three wrong categories and one dropped instance, on four images
        cats = {c.name: c.id for c in project.categories()}

        def recognised(im, t) -> bool:
            dets = [d for d in predictions[im.image_id] if d[0] == t.category and d[2] >= 0.9]
            return bool(dets) and iou_matrix([d[1] for d in dets], [t.rle]).max() >= 0.75

        supported = [(im, t) for im in images for t in im.instances
                     if recognised(im, t)
                     and not any(s.instance_id == t.instance_id for s in clean)]
        chosen, used = [], set()
        for im, t in supported:
            if im.image_id not in used:
                chosen.append((im, t))
                used.add(im.image_id)
            if len(chosen) == 4:
                break
        relabelled = {}
        for _im, t in chosen[:3]:
            wrong = SHAPES[(SHAPES.index(t.category) + 1) % len(SHAPES)]
            project.set_instances_category([t.instance_id], cats[wrong])
            relabelled[t.instance_id] = wrong
        dropped_image, dropped = chosen[3]
        project.delete_instances([dropped.instance_id])
        planted_images = truth_images(project, reviewed_ids(project, None))
    ranked = rank_suspects(planted_images, predictions)

    def planted(s) -> bool:
        return s.instance_id in relabelled or (
            s.kind == SuspectKind.UNLABELLED and s.image_id == dropped_image.image_id
            and masks.decode(s.mask)[masks.decode(dropped.rle)].mean() > 0.5)

    found = [s for s in ranked if planted(s)]
    assert {s.instance_id for s in found if s.instance_id} == set(relabelled)
    assert [s.kind for s in found].count(SuspectKind.UNLABELLED) == 1
    for s in found:
        if s.instance_id is not None:
            assert s.kind == SuspectKind.WRONG_CATEGORY
            assert s.category == relabelled[s.instance_id] and s.suggested != s.category
    # every planted error ranks ahead of every suspect about a correct accepted instance
    # (the model's own false positives, suspects about no instance, may come between)
    last_planted = max(ranked.index(s) for s in found)
    first_correct = min((i for i, s in enumerate(ranked)
                         if s.instance_id is not None and not planted(s)), default=len(ranked))
    assert last_planted < first_correct, [(s.kind, round(s.score, 2), planted(s))
                                          for s in ranked[:12]]


@pytest.fixture
def one_image_project(tmp_path):
    """A project with one 64 x 64 image (no instances needed: the rule reads masks)."""
    from PIL import Image

    from mrcnn.store.project import Project
    from mrcnn.store.scan import scan_folder

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(images / "a.png")
    project = Project.create(tmp_path / "project", images)
    scan_folder(project)
    yield project
    project.close()


def test_a_label_found_right_is_left_out_until_its_category_or_outline_changes(
        one_image_project):
    from mrcnn.store.project import Project
    from mrcnn.training.label_hints import mark_right, split_answered

    p = one_image_project
    (image,) = p.images()
    truth = [TruthInstance(1, "disc", A), TruthInstance(2, "ring", B)]
    seen = [("square", A_OVER, 0.9), ("disc", C, 0.8)]  # A another category; C unlabelled
    found = find_suspects(image.id, truth, seen)
    wrong = next(s for s in found if s.kind == SuspectKind.WRONG_CATEGORY)
    unlabelled = next(s for s in found if s.kind == SuspectKind.UNLABELLED)
    mark_right(p, wrong)
    mark_right(p, unlabelled)
    folder = p.folder
    p.close()
    with Project.open(folder) as p:  # kept in the project
        checks = p.suspect_checks()
        assert len(checks) == 2

        def still_open(truth, seen):
            return {(s.kind, s.category) for s in
                    split_answered(find_suspects(image.id, truth, seen), checks)[0]}

        assert still_open(truth, seen) == {(SuspectKind.UNSUPPORTED, "ring")}
        # another model: A is a triangle now, the object at C a square; both stay answered
        assert still_open(truth, [("triangle", A, 0.95), ("square", C, 0.7)]) == {
            (SuspectKind.UNSUPPORTED, "ring")}
        # the person relabels A, or redraws it: a new question
        assert (SuspectKind.WRONG_CATEGORY, "ring") in still_open(
            [TruthInstance(1, "ring", A), TruthInstance(2, "ring", B)], seen)
        half = box(2, 2, 20, 11)
        assert (SuspectKind.WRONG_CATEGORY, "disc") in still_open(
            [TruthInstance(1, "disc", half), TruthInstance(2, "ring", B)],
            [("square", half, 0.9), ("disc", C, 0.8)])
        # an object the model sees elsewhere is not answered by the check at C
        assert (SuspectKind.UNLABELLED, "disc") in still_open(truth, seen + [("disc", D, 0.8)])
        # taken back: listed again
        p.remove_suspect_check(checks[0].id)
        assert (SuspectKind.WRONG_CATEGORY, "disc") in {
            (s.kind, s.category) for s in
            split_answered(find_suspects(image.id, truth, seen), p.suspect_checks())[0]}
