"""The edit document: every edit undoable and redoable, exactly, durably, in bounded memory.

The property test makes 200 random edits (every kind of command) on a project image, undoes
them all and compares the project, reopened from disk, with the original; then redoes them all
and compares with the final state. The SIGKILL test is in test_edits_crash.py; shared helpers
in edit_helpers.py.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from edit_helpers import (
    OPS,
    OTHER_SHAPE,
    SHAPE,
    _box,
    counting_transactions,
    disk_snapshot,
    random_edit,
    snapshot,
    synthetic_rgb,
)

from mrcnn.editing import codec as edit_codec
from mrcnn.editing import mask_tools as mt
from mrcnn.editing.document import DocumentChange, ImageDocument, MaskEdit
from mrcnn.editing.history import STEP_OVERHEAD_BYTES
from mrcnn.editing.mask_tools import Rect
from mrcnn.errors import EditError, HistoryError, ProjectError
from mrcnn.masks import encode
from mrcnn.store.project import Project


# ---------------------------------------------------------------- the property test
def test_200_random_edits_undo_to_the_original_and_redo_to_the_final_state_exactly(proj):
    project, image_a, _b = proj
    folder = project.folder
    original = disk_snapshot(folder)
    doc = ImageDocument(project, image_a)
    rng = random.Random(2024)
    rgb = synthetic_rgb(*SHAPE)
    kinds: set[str] = set()
    n = 0
    while doc.history.undo_count < 200:
        n += 1
        op = random_edit(doc, rng, rgb, n)
        if op:
            kinds.add(op)
    assert kinds >= set(OPS) - {"reject"} or kinds >= set(OPS) - {"accept"}, set(OPS) - kinds
    assert doc.history.evicted == 0
    final = disk_snapshot(folder)
    assert final != original

    for _ in range(200):
        assert doc.undo() is not None
    assert doc.undo() is None and not doc.can_undo
    assert disk_snapshot(folder) == original

    for _ in range(200):
        assert doc.redo() is not None
    assert doc.redo() is None and not doc.can_redo
    assert disk_snapshot(folder) == final
    project.close()
    with Project.open(folder) as reopened:
        assert snapshot(reopened) == final
        assert reopened.integrity_check() == "ok"


# ---------------------------------------------------------------- memory
def test_a_mask_edit_keeps_only_the_changed_region(tmp_path, new_project):
    (tmp_path / "img").mkdir()
    p = new_project(tmp_path / "img")
    shape = (1000, 1500)
    img = p.add_image(tmp_path / "img" / "big.png", shape[1], shape[0], "c" * 64)
    cat = p.add_category("thing").id
    base = _box(shape, 100, 900, 100, 1400)
    iid = p.add_instance(img.id, cat, encode(base)).id
    doc = ImageDocument(p, img.id)
    step = doc.apply(iid, mt.brush, [(50, 50), (70, 60)], 10, label="brush")
    rect = step.rect
    assert rect == mt.stroke_rect([(50, 50), (70, 60)], 10, shape) == Rect(40, 40, 80, 70)
    assert step.nbytes <= 2 * ((rect.area + 7) // 8)  # before + after, one bit a pixel
    assert doc.history.nbytes == step.nbytes + STEP_OVERHEAD_BYTES
    assert doc.history.nbytes < base.size // 1000
    assert np.array_equal(doc.mask(iid), mt.brush(base, [(50, 50), (70, 60)], 10))


def test_a_tiny_budget_evicts_the_oldest_steps_and_undo_stops_cleanly(tmp_path, new_project):
    (tmp_path / "img").mkdir()
    p = new_project(tmp_path / "img")
    img = p.add_image(tmp_path / "img" / "x.png", 120, 80, "d" * 64)
    cat = p.add_category("thing").id
    mask = _box((80, 120), 30, 50, 40, 80)
    iid = p.add_instance(img.id, cat, encode(mask)).id
    budget = 4 * (STEP_OVERHEAD_BYTES + 200)
    doc = ImageDocument(p, img.id, budget_bytes=budget)
    states = [mask]
    for k in range(30):
        points = [(5 + 3.7 * k, 10 + 2 * (k % 7)), (8 + 3.7 * k, 60 - k)]
        doc.apply(iid, mt.brush, points, 3, label="brush")
        states.append(mt.brush(states[-1], points, 3))
        assert doc.history.nbytes <= budget
    kept = doc.history.undo_count
    assert doc.history.evicted == 30 - kept and 1 <= kept < 30
    undone = 0
    while doc.undo() is not None:
        undone += 1
    assert undone == kept and not doc.can_undo
    assert np.array_equal(doc.mask(iid), states[30 - kept])
    while doc.redo() is not None:
        pass
    assert np.array_equal(p.instance(iid).rle.decode(), states[-1])


def test_a_step_bigger_than_the_budget_is_still_undoable(tmp_path, new_project):
    (tmp_path / "img").mkdir()
    p = new_project(tmp_path / "img")
    img = p.add_image(tmp_path / "img" / "x.png", 200, 200, "e" * 64)
    cat = p.add_category("thing").id
    iid = p.add_instance(img.id, cat, encode(_box((200, 200), 0, 5, 0, 5))).id
    doc = ImageDocument(p, img.id, budget_bytes=100)
    doc.apply(iid, mt.brush, [(10, 10)], 2)
    doc.apply(iid, mt.brush, [(100, 100), (190, 190)], 9)
    assert doc.history.undo_count == 1 and doc.undo_label == "brush"
    doc.undo()
    assert doc.mask(iid).sum() == 25 + mt.brush(np.zeros((200, 200), bool), [(10, 10)], 2).sum()


def test_the_documents_fast_rle_helpers_match_the_masks_module():
    rng = np.random.default_rng(3)
    for shape in ((1, 1), (7, 3), (64, 200)):
        for p in (0.0, 0.4, 1.0):
            m = rng.random(shape) < p
            rle = encode(m)
            assert edit_codec.encode(m) == rle == edit_codec.encode(m.astype(np.uint8) * 7)
            assert edit_codec.encode_transposed(np.ascontiguousarray(m.T).view(np.uint8)) == rle
            back = edit_codec.decode(rle)
            assert back.flags.c_contiguous and back.dtype == bool
            assert np.array_equal(back, m)


# ---------------------------------------------------------------- each command
def test_mask_edits_undo_redo_and_announce(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    seen: list[DocumentChange] = []
    unsubscribe = doc.subscribe(seen.append)
    iid = doc.instances()[0].id
    before = doc.mask(iid).copy()
    assert doc.apply(iid, mt.fill_holes) is not None
    filled = mt.fill_holes(before)
    assert np.array_equal(project.instance(iid).rle.decode(), filled)
    # the first edit by a person puts the image in review (mrcnn/store/status.py)
    assert seen[-1] == DocumentChange("do", "fill holes", changed=frozenset({iid}),
                                      can_undo=True, can_redo=False, status="in_review")
    assert doc.apply(iid, mt.fill_holes) is None  # nothing left to fill: no step
    doc.undo()
    assert np.array_equal(project.instance(iid).rle.decode(), before)
    assert seen[-1].action == "undo" and seen[-1].can_redo
    doc.redo()
    assert np.array_equal(project.instance(iid).rle.decode(), filled)
    unsubscribe()
    doc.undo()
    assert len(seen) == 3


def test_erasing_an_instance_away_deletes_it_and_undo_restores_it(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    inst = doc.instances(state="pending")[0]
    change = doc.execute(lambda t: MaskEdit(t, inst.id, np.zeros(SHAPE, bool), label="erase"))
    assert change.removed == {inst.id}
    with pytest.raises(ProjectError):
        project.instance(inst.id)
    assert doc.undo().added == {inst.id}
    assert project.instance(inst.id) == inst


def test_delete_and_reject_restore_the_same_ids_and_provenance(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    before = snapshot(project)
    insts = doc.instances()
    accepted = [i.id for i in insts if i.state == "accepted"]
    pending = [i.id for i in insts if i.state == "pending"]
    with pytest.raises(EditError):
        doc.reject_predictions(accepted[:1])
    doc.reject_predictions(pending[:2])
    doc.delete_instances(accepted[:2] + pending[2:])
    assert {i.id for i in doc.instances()} == set(accepted[2:])
    doc.undo()
    doc.undo()
    assert snapshot(project) == before
    doc.redo()
    doc.redo()
    assert {i.id for i in doc.instances()} == set(accepted[2:])


def test_an_id_taken_meanwhile_is_followed_by_every_step(proj):
    """The newest instance is deleted; a background prediction on another image takes its id;
    undo restores it under a new id, and an older step on it still undoes correctly."""
    project, image_a, image_b = proj
    doc = ImageDocument(project, image_a)
    original = _box(SHAPE, 3, 20, 40, 70)
    newest = doc.add_instance(original, project.categories()[0].id)
    assert newest == max(i.id for i in project.instances())
    doc.apply(newest, mt.brush, [(1, 1), (30, 3)], 2)
    doc.delete_instances([newest])
    intruder = project.add_instance(image_b, project.categories()[0].id,
                                    encode(_box(OTHER_SHAPE, 0, 3, 0, 3)))
    assert intruder.id == newest
    restored = doc.undo()
    (new_id,) = restored.added
    assert new_id != newest and project.instance(new_id).image_id == image_a
    doc.undo()  # the brush stroke, on the instance under its new id
    assert np.array_equal(project.instance(new_id).rle.decode(), original)
    assert project.instance(newest) == intruder
    doc.undo()  # the add
    with pytest.raises(ProjectError):
        project.instance(new_id)
    for _ in range(3):
        doc.redo()
    with pytest.raises(ProjectError):
        project.instance(new_id)
    assert project.instance(newest) == intruder


def test_split_and_merge_undo_exactly(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    before = snapshot(project)
    two = next(i for i in doc.instances() if len(mt.split_components(i.rle.decode())) == 2)
    ids = doc.split_instance(two.id)
    assert len(ids) == 2 and ids[0] == two.id
    big, small = (project.instance(i) for i in ids)
    assert (big.area, small.area) == (300, 100)
    assert (small.category_id, small.source, small.state) == (
        two.category_id, two.source, two.state)
    assert doc.split_instance(ids[0]) == [ids[0]]  # one part: nothing to split
    kept = doc.merge_instances([ids[1], ids[0]])
    assert kept == ids[0] and np.array_equal(project.instance(kept).rle.decode(),
                                             two.rle.decode())
    with pytest.raises(ProjectError):
        project.instance(ids[1])
    doc.undo()
    doc.undo()
    assert snapshot(project) == before
    with pytest.raises(EditError):
        doc.merge_instances([two.id])


def test_merge_keeps_the_largest_instance_its_id_and_category_whatever_the_order(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    before = snapshot(project)
    dog, cat, bird = (project.category_by_name(n).id for n in ("dog", "cat", "bird"))
    small_mask, large_mask = _box(SHAPE, 0, 4, 0, 4), _box(SHAPE, 0, 10, 80, 90)
    small = doc.add_instance(small_mask, dog)
    large = doc.add_instance(large_mask, cat)
    assert doc.merge_instances([small, large]) == large  # not the first given
    merged = project.instance(large)
    assert merged.category_id == cat and merged.area == 116
    assert np.array_equal(merged.rle.decode(), small_mask | large_mask)
    with pytest.raises(ProjectError):
        project.instance(small)
    doc.undo()
    # of equally large instances, the first given is kept (with its category)
    twin = doc.add_instance(_box(SHAPE, 62, 72, 80, 90), bird)
    assert project.instance(twin).area == project.instance(large).area
    assert doc.merge_instances([twin, large]) == twin
    assert project.instance(twin).category_id == bird
    for _ in range(4):
        doc.undo()
    assert snapshot(project) == before


def test_accept_and_category_changes_undo(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    before = snapshot(project)
    pending = [i.id for i in doc.instances(state="pending")]
    doc.accept_instances(pending)
    assert not doc.instances(state="pending")
    assert doc.accept_instances(pending) is None
    bird = project.category_by_name("bird").id
    ids = [i.id for i in doc.instances()]
    doc.set_category(ids, bird)
    assert {project.instance(i).category_id for i in ids} == {bird}
    doc.undo()
    doc.undo()
    assert snapshot(project) == before
    with pytest.raises(EditError):
        doc.set_category(ids[:1], 999)


def test_moving_an_image_to_validation_is_one_undoable_step(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    seen = []
    doc.subscribe(seen.append)
    was, status = project.image(image_a).split, project.image(image_a).status
    other = "val" if was == "train" else "train"
    assert doc.move_to_split(other) is not None
    assert project.image(image_a).split == other == doc.split
    assert project.image(image_a).status == status  # only the split moves
    assert seen[-1].split == other and seen[-1].status is None
    assert doc.undo_label == ("move to validation" if other == "val" else "move to training")
    assert doc.move_to_split(other) is None  # there already: nothing recorded
    doc.undo()
    assert project.image(image_a).split == was and seen[-1].split == was
    doc.redo()
    assert project.image(image_a).split == other
    project.set_image_split(image_a, was)  # changed behind the history's back
    with pytest.raises(HistoryError):
        doc.undo()
    assert project.image(image_a).split == was


def test_category_rename_merge_and_new_are_project_wide_and_undoable(proj):
    project, image_a, image_b = proj
    doc = ImageDocument(project, image_a)
    seen: list[DocumentChange] = []
    doc.subscribe(seen.append)
    before = snapshot(project)
    dog, cat = project.category_by_name("dog"), project.category_by_name("cat")
    cats = [i for i in project.instances() if i.category_id == cat.id]
    assert {i.image_id for i in cats} == {image_a, image_b}
    doc.rename_category(dog.id, "hound")
    change = doc.merge_categories(cat.id, dog.id)
    assert change is not None and seen[-1].categories_changed
    assert [c.name for c in project.categories()] == ["hound", "bird"]
    assert {project.instance(i.id).category_id for i in cats} == {dog.id}
    assert seen[-1].changed == {i.id for i in cats if i.image_id == image_a}
    fish = doc.add_category("fish")
    assert doc.add_category("fish") == fish and doc.history.undo_count == 3
    doc.undo()
    doc.undo()
    doc.undo()
    assert snapshot(project) == before
    doc.redo()
    doc.redo()
    doc.redo()
    assert [c.name for c in project.categories()] == ["hound", "bird", "fish"]
    with pytest.raises(EditError):
        doc.merge_categories(dog.id, dog.id)


def test_an_outside_change_makes_undo_fail_cleanly_and_clear_the_history(proj):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    seen: list[DocumentChange] = []
    doc.subscribe(seen.append)
    pending = doc.instances(state="pending")[0]
    doc.apply(pending.id, mt.brush, [(3, 3)], 4)
    project.delete_instances([pending.id])  # changed behind the history's back
    before = snapshot(project)
    with pytest.raises(HistoryError):
        doc.undo()
    assert snapshot(project) == before
    assert not doc.can_undo and not doc.can_redo and seen[-1].action == "reset"


def test_each_do_undo_redo_is_one_transaction_and_a_failure_changes_nothing(proj, monkeypatch):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    ids = [i.id for i in doc.instances()][:3]
    with counting_transactions(project, monkeypatch) as seen:
        doc.merge_instances(ids)
        assert len(seen) == 1
        doc.undo()
        assert len(seen) == 2
        doc.redo()
        assert len(seen) == 3
    doc.undo()
    largest = max(ids, key=lambda i: project.instance(i).area)  # what the merge keeps
    before = snapshot(project)
    real = project.delete_instances

    def failing(instance_ids):
        raise ProjectError("disk full")

    monkeypatch.setattr(project, "delete_instances", failing)
    with pytest.raises(ProjectError):
        doc.merge_instances(ids)
    monkeypatch.setattr(project, "delete_instances", real)
    assert snapshot(project) == before
    assert doc.redo_label == "merge"  # the failed merge left the history as it was
    assert np.array_equal(doc.mask(largest), project.instance(largest).rle.decode())
    doc.redo()
    assert {i.id for i in doc.instances()} & set(ids) == {largest}


def test_bad_edits_are_refused_with_typed_errors(proj):
    project, image_a, image_b = proj
    doc = ImageDocument(project, image_a)
    foreign = project.instances(image_b)[0].id
    with pytest.raises(EditError):
        doc.mask(foreign)
    with pytest.raises(EditError):
        doc.edit_mask(doc.instances()[0].id, np.zeros((3, 3), bool))
    with pytest.raises(EditError):
        doc.add_instance(np.zeros(SHAPE, bool), project.categories()[0].id)
    with pytest.raises(EditError):
        doc.mask(12345)
    assert doc.history.undo_count == 0


def test_observer_errors_do_not_break_editing(proj, caplog):
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)

    def broken(change):
        raise RuntimeError("widget gone")

    doc.subscribe(broken)
    iid = doc.instances()[0].id
    doc.edit_mask(iid, mt.brush(doc.mask(iid), [(50, 50)], 3), rect=Rect(40, 40, 60, 60))
    assert doc.can_undo and "widget gone" in caplog.text


def test_a_live_brush_gesture_commits_one_step_from_its_dirty_rectangle(proj):
    """What the canvas does: paint segments into a working copy, then commit once."""
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    iid = doc.instances()[0].id
    shown = doc.mask(iid)
    before = shown.copy()
    points = [(2.0, 60.0), (20.5, 66.2), (50.0, 70.0), (90.0, 40.0)]
    work, dirty = shown.copy(), Rect(0, 0, 0, 0)
    for a, b in zip(points[:-1], points[1:], strict=True):
        dirty = dirty.union(mt.paint_stroke(work, [a, b], 4))
    step = doc.edit_mask(iid, work, rect=dirty, label="brush")
    expected = mt.brush(before, points, 4)
    assert step.rect.intersect(dirty) == step.rect and doc.history.undo_count == 1
    assert np.array_equal(project.instance(iid).rle.decode(), expected)
    assert np.array_equal(doc.mask(iid), expected) and not doc.mask(iid).flags.writeable
    assert np.array_equal(shown, expected)  # the document's own copy follows its edits
    doc.undo()
    assert np.array_equal(doc.mask(iid), before)


def test_the_store_helpers_refuse_what_would_corrupt_the_project(proj):
    project, image_a, _b = proj
    dog, cat = project.category_by_name("dog"), project.category_by_name("cat")
    with pytest.raises(ProjectError):
        project.delete_category(dog.id)  # still used
    with pytest.raises(ProjectError):
        project.restore_category(dog)  # id taken
    with pytest.raises(ProjectError):
        project.merge_categories(dog.id, dog.id)
    with pytest.raises(ProjectError):
        project.merge_categories(dog.id, 999)
    with pytest.raises(ProjectError):
        project.set_instances_state([999], "pending")
    inst = project.instances(image_a)[0]
    with pytest.raises(ProjectError):
        project.restore_instance(replace(inst, state="maybe"))
    moved = project.merge_categories(cat.id, dog.id)
    assert moved and all(project.instance(i).category_id == dog.id for i in moved)
    project.restore_category(cat)
    assert project.categories()[1] == cat
    project.set_instances_category(moved, cat.id)
    assert all(project.instance(i).category_id == cat.id for i in moved)


def test_a_corrected_prediction_is_accepted_and_survives_new_predictions(proj):
    """Painting on (or relabelling) a pending prediction makes it human work in the same
    step: a new model run replaces only the untouched predictions; undo gives back the
    prediction as it was, pending."""
    project, image_a, _b = proj
    doc = ImageDocument(project, image_a)
    first, second, *_ = doc.instances(state="pending")
    old_mask = doc.mask(first.id).copy()
    doc.apply(first.id, mt.brush, [(3, 3)], 4)
    assert doc.instance(first.id).state == "accepted"
    other = next(c for c in project.categories() if c.id != second.category_id)
    doc.set_category([second.id], other.id)
    assert doc.instance(second.id).state == "accepted"
    corrected = doc.mask(first.id).copy()
    project.replace_predictions(image_a, "another-model", [])  # re-predict: nothing new
    assert {i.id for i in project.instances(image_a)} >= {first.id, second.id}
    assert np.array_equal(doc.mask(first.id), corrected)
    doc.undo()
    doc.undo()
    assert doc.instance(first.id).state == "pending"
    assert np.array_equal(doc.mask(first.id), old_mask)
    assert doc.instance(second.id).state == "pending"
    assert doc.instance(second.id).category_id == second.category_id


# ---------------------------------------------------------------- the image's status
def test_editing_puts_the_image_in_review_and_review_is_an_undoable_step(proj):
    """A script editing through the document moves the status as the window does; marking
    reviewed (and not reviewed) is a step: undo brings the previous status back."""
    project, image_a, _b = proj
    project.set_image_status(image_a, "predicted")
    doc = ImageDocument(project, image_a)
    iid = doc.instances()[0].id
    doc.apply(iid, mt.fill_holes)
    assert project.image(image_a).status == "in_review"
    change = doc.mark_reviewed()
    assert change is not None and project.image(image_a).status == "reviewed"
    assert doc.mark_reviewed() is None  # already reviewed: no step
    assert doc.undo_label == "mark reviewed"
    undone = doc.undo()
    assert undone is not None and undone.status == "in_review"
    assert project.image(image_a).status == "in_review"
    doc.redo()
    assert project.image(image_a).status == "reviewed"
    doc.mark_not_reviewed()
    assert project.image(image_a).status == "in_review"
    doc.undo()
    assert project.image(image_a).status == "reviewed"
    # editing a reviewed image keeps it reviewed (the window says it changes training data)
    mask = doc.mask(iid).copy()
    mask[:3, :3] = ~mask[:3, :3]
    assert doc.edit_mask(iid, mask) is not None
    assert project.image(image_a).status == "reviewed"
    # a second process sees the same (each step is durable when it returns)
    with Project.open(project.folder, read_only=True) as other:
        assert other.image(image_a).status == "reviewed"
