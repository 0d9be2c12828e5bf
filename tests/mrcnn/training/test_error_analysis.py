"""The error list: false positives, missed instances and poor fits by the stated rule (score
>= 0.5, same category, greedy by mask IoU >= 0.5, a poor fit below 0.75); the before/after
diff; kept per version in errors/<version>.json (staged beside a staged checkpoint, moved when
it is registered, removed with its version)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn import masks
from mrcnn.errors import ProjectError
from mrcnn.store import versions
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.error_analysis import (
    ErrorKind,
    ErrorList,
    FoundError,
    TruthInstance,
    error_diff,
    errors_on,
    find_errors,
    iou_matrix,
    read_errors,
    save_errors,
    stored_errors,
    truth_images,
)

H = W = 64


def box(y0: int, x0: int, y1: int, x1: int) -> masks.Rle:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return masks.encode(m)


A = box(4, 4, 24, 24)  # 400 px
B = box(4, 34, 24, 54)
C = box(36, 4, 56, 24)
B_SHIFTED = box(8, 34, 28, 54)  # IoU with B: 320 / 480 = 0.667
A_SLIGHTLY = box(5, 4, 24, 24)  # IoU with A: 0.95
NOWHERE = box(40, 40, 60, 60)

TRUTH = (TruthInstance(1, "disc", A), TruthInstance(2, "square", B), TruthInstance(3, "ring", C))


def kinds(found) -> list[tuple[str, str, int | None]]:
    return [(str(e.kind), e.category, e.instance_id) for e in found]


def test_the_three_kinds_by_the_stated_rule():
    found = find_errors(7, TRUTH, [
        ("disc", A_SLIGHTLY, 0.9),  # a good match: no error
        ("square", B_SHIFTED, 0.8),  # matched at IoU 0.67: a poor fit
        ("disc", C, 0.7),  # over the ring, the wrong category: false positive + ring missed
        ("ring", NOWHERE, 0.3),  # below the score floor: not a detection
        ("ring", NOWHERE, 0.6),  # on the background: false positive
        ("disc", box(4, 4, 24, 20), 0.55),  # a second detection of the disc (IoU 0.8)
    ])
    assert kinds(found) == [("poor_fit", "square", 2), ("missed", "ring", 3),
                            ("false_positive", "disc", None), ("false_positive", "ring", None),
                            ("false_positive", "disc", None)]
    poor, missed, over_ring, background, second = found
    assert all(e.image_id == 7 for e in found)
    assert poor.iou == pytest.approx(320 / 480) and poor.score == 0.8
    assert poor.truth == B and poor.predicted == B_SHIFTED and poor.mask == B
    assert missed.iou == 0.0 and missed.score is None and missed.truth == C
    assert missed.predicted == C and missed.other_category == "disc"  # detected as a disc
    assert missed.describe() == "missed ring (detected as disc)"
    assert over_ring.mask == C and over_ring.other_category == "ring" and over_ring.score == 0.7
    assert over_ring.describe() == "false positive disc over a ring, score 0.70"
    assert background.truth is None and background.iou == 0.0
    assert background.mask == NOWHERE and background.other_category is None
    assert second.iou == pytest.approx(0.8) and "second detection" in second.describe()


def test_a_poor_fit_is_at_least_match_iou_and_below_good_fit():
    # IoU 0.5 exactly matches (poor fit); just below it does not (missed + false positive)
    half = box(4, 4, 24, 14)  # 200 px inside A: IoU 0.5
    assert kinds(find_errors(1, TRUTH[:1], [("disc", half, 0.9)])) == [
        ("poor_fit", "disc", 1)]
    less = box(4, 4, 24, 13)  # IoU 0.45
    assert kinds(find_errors(1, TRUTH[:1], [("disc", less, 0.9)])) == [
        ("missed", "disc", 1), ("false_positive", "disc", None)]
    three_quarters = box(4, 4, 24, 19)  # IoU 0.75: a good fit
    assert find_errors(1, TRUTH[:1], [("disc", three_quarters, 0.9)]) == []


def test_matching_is_greedy_by_iou_not_by_score():
    # the better-scoring detection overlaps less: the one with the highest IoU matches
    found = find_errors(1, TRUTH[:1], [("disc", box(4, 4, 24, 19), 0.95),
                                       ("disc", A_SLIGHTLY, 0.6)])
    assert kinds(found) == [("false_positive", "disc", None)]
    assert found[0].score == 0.95 and found[0].iou == pytest.approx(0.75)


def test_no_detections_and_no_truth():
    assert kinds(find_errors(1, TRUTH, [])) == [("missed", "disc", 1), ("missed", "square", 2),
                                                ("missed", "ring", 3)]
    assert kinds(find_errors(1, (), [("disc", A, 0.9)])) == [("false_positive", "disc", None)]
    assert find_errors(1, (), []) == []


def test_masks_of_another_size_never_overlap():
    other = masks.encode(np.ones((32, 32), bool))
    assert iou_matrix([other], [A]).tolist() == [[0.0]]
    assert iou_matrix([], [A]).shape == (0, 1)


def found_list(version, errors, image_ids=(1, 2)) -> ErrorList:
    return ErrorList(version, tuple(image_ids), tuple(errors))


def test_the_diff_names_what_was_fixed_and_what_is_new():
    missed_a = FoundError(1, ErrorKind.MISSED, "disc", 0.0, None, 1, A)
    missed_b = FoundError(1, ErrorKind.MISSED, "square", 0.0, None, 2, B)
    fp = FoundError(2, ErrorKind.FALSE_POSITIVE, "ring", 0.0, 0.7, None, None, NOWHERE)
    fp_again = FoundError(2, ErrorKind.FALSE_POSITIVE, "ring", 0.0, 0.8, None, None,
                          box(41, 40, 60, 60))  # the same false positive, a little moved
    poor_b = FoundError(1, ErrorKind.POOR_FIT, "square", 0.6, 0.9, 2, B, B_SHIFTED)
    elsewhere = FoundError(3, ErrorKind.MISSED, "ring", 0.0, None, 9, C)  # only after
    before = found_list("v1", [missed_a, missed_b, fp])
    after = found_list("v2", [missed_b, fp_again, poor_b, elsewhere], (1, 2, 3))
    diff = error_diff(before, after)
    assert diff.image_ids == (1, 2)  # compared on the images both were found on
    assert diff.fixed == (missed_a,)
    assert diff.introduced == (poor_b,)  # same instance, another kind: another error
    assert diff.describe() == ("since v1: 1 fixed, 1 new (on the 2 validation images both "
                               "were scored on)")
    # a false positive of another category is another error
    other = FoundError(2, ErrorKind.FALSE_POSITIVE, "disc", 0.0, 0.8, None, None, NOWHERE)
    assert error_diff(found_list("v1", [fp]), found_list("v2", [other])).fixed == (fp,)
    # without instance ids, the accepted masks say whether it is the same instance
    no_id = FoundError(1, ErrorKind.MISSED, "disc", 0.0, None, None, A_SLIGHTLY)
    assert error_diff(found_list("v1", [missed_a]), found_list("v2", [no_id])).fixed == ()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.sampled_from(list(ErrorKind)),
                          st.sampled_from(["disc", "ring"]), st.sampled_from([None, 1, 2]),
                          st.sampled_from([A, A_SLIGHTLY, B, NOWHERE]), st.booleans()),
                max_size=14))
def test_the_diff_is_the_rule_applied_to_every_pair(spec):
    """However many errors there are, the diff says what `same_error` says of every pair of
    errors (it only compares those on one image and of one kind, which is all it needs)."""
    from mrcnn.training.error_analysis import same_error

    lists: dict[bool, list[FoundError]] = {False: [], True: []}
    for image, kind, category, instance, mask, after in spec:
        lists[after].append(FoundError(image, kind, category, 0.3, 0.6, instance, mask, mask))
    before = found_list("v1", lists[False], (1, 2, 3))
    after = found_list("v2", lists[True], (1, 2, 3))
    diff = error_diff(before, after)
    assert diff.fixed == tuple(e for e in before.errors
                               if not any(same_error(e, n) for n in after.errors))
    assert diff.introduced == tuple(n for n in after.errors
                                    if not any(same_error(e, n) for e in before.errors))


@pytest.fixture
def project(tmp_path):
    folder = make_synthetic_project(tmp_path / "shapes", n_train=2, n_val=3, size=64, seed=1)
    with Project.open(folder) as p:
        yield p


def test_errors_on_the_validation_images_and_kept_per_version(project):
    images = truth_images(project)
    assert [im.image_id for im in images] == [
        im.id for im in project.images() if im.split == "val" and im.status == "reviewed"]
    first, second, third = images
    assert all(t.category in {"disc", "square", "ring", "triangle"} for t in first.instances)
    # the model finds the first image's instances exactly, nothing on the second, and the
    # third could not be read (no predictions): it is left out
    predictions = {first.image_id: [(t.category, t.rle, 0.9) for t in first.instances],
                   second.image_id: []}
    found = errors_on(images, predictions, version="v1", skipped=[("c.png", "truncated")])
    assert found.image_ids == (first.image_id, second.image_id)
    assert kinds(found.errors) == [("missed", t.category, t.instance_id)
                                   for t in second.instances]
    assert found.counts()[ErrorKind.MISSED] == len(second.instances)
    assert found.describe().startswith(f"v1 on 2 validation images: {len(second.instances)} "
                                       "missed, 0 false positives, 0 poor fits")
    assert "score ≥ 0.50" in found.rule() and "IoU 0.75" in found.rule()

    v1 = project.add_model_version("models/v1.pt", "r18", activate=True)
    assert stored_errors(project, "v1") is None
    path = save_errors(project, "v1", found)
    assert path == project.folder / "errors" / "v1.json"
    assert stored_errors(project, "v1") == found
    assert json.loads(path.read_text())["format"] == 1
    path.write_text("{not json")
    with pytest.raises(ProjectError, match="errors/v1.json is unreadable"):
        stored_errors(project, "v1")
    # deleting the version deletes its list: a later v1 is another model
    save_errors(project, "v1", found)
    project.activate_model_version(None)
    versions.delete_version(project, v1.id)
    assert not path.exists()


def test_a_staged_list_moves_with_its_checkpoint(project):
    found = ErrorList(None, (1,), (FoundError(1, ErrorKind.MISSED, "disc", 0.0, None, 1, A),))
    staged = versions.staging_path(project)
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"weights")
    from mrcnn.training.error_analysis import write_errors

    write_errors(versions.staged_errors_path(staged), found)
    v1 = versions.register_staged(project, staged, preset="r18", parent_id=None, metadata={})
    assert sorted(p.name for p in project.models_dir.iterdir()) == ["v1.pt"]
    kept = stored_errors(project, v1.name)
    assert kept.errors == found.errors and kept.version == "v1"  # named where it is kept
    # a run staged without a list leaves its version none (and no older file of the name)
    staged = versions.staging_path(project)
    staged.write_bytes(b"weights")
    versions.errors_path(project, "v2").write_text("stale")
    v2 = versions.register_staged(project, staged, preset="r18", parent_id=v1.id, metadata={})
    assert stored_errors(project, v2.name) is None
    versions.remove_staged(staged)  # nothing left to remove: no error
    assert read_errors(versions.errors_path(project, "v1")).errors == found.errors


# ---------------------------------------------------------------- written by training
def test_training_keeps_the_list_from_its_final_evaluation_without_predicting_again(
        project, monkeypatch, tmp_path):
    from mrcnn.training import evaluate
    from mrcnn.training.train import TrainConfig, train_project

    calls = []
    predict = evaluate.predict_images
    monkeypatch.setattr(evaluate, "predict_images",
                        lambda *a, **k: calls.append(a[2]) or predict(*a, **k))
    config = TrainConfig(preset="r18", size=64, max_iters=2, batch_size=2, warmup_iters=1,
                         device="cpu", amp=False, seed=0)
    val_ids = tuple(im.image_id for im in truth_images(project))
    version = train_project(project, config)  # from scratch: scored after training only
    assert calls == [list(val_ids)], "the val images are predicted once"
    found = stored_errors(project, version.name)
    assert found.version == "v1" and found.image_ids == val_ids
    instances = sum(len(im.instances) for im in truth_images(project))
    covered = {e.instance_id for e in found.errors if e.kind != ErrorKind.FALSE_POSITIVE}
    assert len(covered) <= instances  # each accepted instance is one error at most

    # a staged run writes its list beside the staged checkpoint
    staged = tmp_path / "staged.pt"
    assert train_project(project, config, stage_to=staged) is None
    assert staged.is_file()
    assert read_errors(versions.staged_errors_path(staged)).image_ids == val_ids
