"""The generated shapes project: what the learning test and the benchmarks train on."""

from __future__ import annotations

import numpy as np
import pytest

from mrcnn.errors import ProjectError
from mrcnn.io.images import load_image
from mrcnn.masks import mask_to_polygons
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import LONG_TAIL, SHAPES, draw_image, make_synthetic_project


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    path = make_synthetic_project(folder, n_train=12, n_val=5, size=64, seed=3)
    with Project.open(path, read_only=True) as project:
        yield folder, project


def test_project_has_reviewed_images_with_exact_split(synthetic):
    folder, project = synthetic
    images = project.images()
    assert len(images) == 17
    assert all(im.status == "reviewed" for im in images)
    assert sum(im.split == "val" for im in images) == 5
    assert sum(im.split == "train" for im in images) == 12
    assert [c.name for c in project.categories()] == list(SHAPES)
    for im in images:
        rgb = load_image(project.image_path(im))
        assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
        assert project.image_path(im).parent == folder / "images"


def test_instances_are_accepted_manual_visible_masks(synthetic):
    _, project = synthetic
    used = set()
    for im in project.images():
        insts = project.instances(im.id)
        assert 1 <= len(insts) <= 5
        assert all(i.state == "accepted" and i.source == "manual" for i in insts)
        union = np.zeros((im.height, im.width), int)
        for i in insts:
            union += i.rle.decode()
            used.add(i.category_id)
        assert union.max() == 1, "visible masks of one image never overlap"
    assert len(used) == len(SHAPES)


def test_rings_have_holes_and_discs_do_not(synthetic):
    _, project = synthetic
    ring = project.category_by_name("ring").id
    disc = project.category_by_name("disc").id
    holes = {ring: [], disc: []}
    for i in project.instances():
        if i.category_id in holes:
            holes[i.category_id].append(bool(mask_to_polygons(i.rle.decode())[1]))
    assert holes[ring] and sum(holes[ring]) >= len(holes[ring]) // 2
    assert holes[disc] and not any(holes[disc])


def test_same_seed_same_images_other_seed_other_images():
    a = draw_image(np.random.default_rng(7), 64)
    b = draw_image(np.random.default_rng(7), 64)
    c = draw_image(np.random.default_rng(8), 64)
    assert np.array_equal(a[0], b[0])
    assert [(x.name, x.mask.tobytes()) for x in a[1]] == [(x.name, x.mask.tobytes()) for x in b[1]]
    assert not np.array_equal(a[0], c[0])


def test_some_shapes_overlap_a_little():
    rng = np.random.default_rng(0)
    touching = 0
    for _ in range(30):
        _, insts = draw_image(rng, 128)
        for k, a in enumerate(insts):
            grown = np.zeros_like(a.mask)
            ys, xs = np.nonzero(a.mask)
            grown[np.clip(ys + 1, 0, 127), xs] = True
            grown[ys, np.clip(xs + 1, 0, 127)] = True
            touching += sum(bool((grown & b.mask).any()) for b in insts[k + 1:])
    assert touching >= 3


def test_set_image_split(tmp_path, new_project, make_dataset):
    ds = make_dataset()
    project = new_project(ds.images_dir)
    from mrcnn.store.scan import scan_folder

    scan_folder(project)
    im = project.images()[0]
    other = "val" if im.split == "train" else "train"
    project.set_image_split(im.id, other)
    assert project.image(im.id).split == other
    with pytest.raises(ProjectError, match="split"):
        project.set_image_split(im.id, "test")
    with pytest.raises(ProjectError, match="no image"):
        project.set_image_split(10_000, "val")


def test_small_objects_are_10_to_20_px_and_many_per_image(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=2, n_val=1, size=192, seed=1,
                                    objects="small")
    with Project.open(folder, read_only=True) as project:
        for im in project.images():
            instances = project.instances(im.id, state="accepted")
            assert 12 <= len(instances) <= 30
            sides = [max(i.bbox[2], i.bbox[3]) for i in instances]
            assert 8 <= np.median(sides) <= 20 and max(sides) <= 26
    with pytest.raises(ValueError, match="small"):
        make_synthetic_project(tmp_path / "x", objects="tiny")


def test_long_tail_draws_categories_common_to_rare_and_leaves_the_default_data_alone():
    rng = np.random.default_rng(5)
    counts = dict.fromkeys(SHAPES, 0)
    for _ in range(150):
        _, instances = draw_image(rng, 48, category_p=LONG_TAIL)
        for inst in instances:
            counts[inst.name] += 1
    # common to rare, in SHAPES order, each share near its chance
    shares = [counts[n] / sum(counts.values()) for n in SHAPES]
    assert shares == sorted(shares, reverse=True)
    assert shares[0] > 0.45 and 0.02 < shares[-1] < 0.12
    # the plain shapes are drawn exactly as before the option existed
    a = draw_image(np.random.default_rng(9), 48)
    b = draw_image(np.random.default_rng(9), 48, category_p=None)
    assert np.array_equal(a[0], b[0]) and [i.name for i in a[1]] == [i.name for i in b[1]]


def test_long_tail_project_is_made_and_bad_kinds_are_named(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=3, n_val=1, size=64, seed=2,
                                    objects="long-tail")
    with Project.open(folder, read_only=True) as project:
        assert [c.name for c in project.categories()] == list(SHAPES)
        assert len(project.images("reviewed")) == 4
    with pytest.raises(ValueError, match="long-tail"):
        make_synthetic_project(tmp_path / "x", objects="rare")
