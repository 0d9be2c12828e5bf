"""Keypoint training targets: an instance's points sit in its category's slots of the one
keypoint head, zeros elsewhere and for instances without points; a mirror image swaps the
left/right slots and mirrors x; a crop moves the points (outside it: not labelled); and the
OKS keypoint AP of COCO scores them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrcnn.keypoints import KeypointSchema
from mrcnn.masks import encode
from mrcnn.model.convert import LabelMap
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import SHAPE_KEYPOINTS, make_synthetic_project
from mrcnn.training.build import build_data
from mrcnn.training.config import TrainConfig
from mrcnn.training.dataset import KeypointTargets, ProjectDataset, project_labels
from mrcnn.training.evaluate import evaluate_coco, ground_truth, prediction_results

TRI = KeypointSchema(("apex", "left_base", "right_base"))
SQUARE = KeypointSchema(("top_left", "top_right", "bottom_right", "bottom_left"))
LAYOUT = {"square": SQUARE.names, "triangle": TRI.names}  # slots 0-3 and 4-6


@pytest.fixture
def targets() -> KeypointTargets:
    labels = LabelMap(["disc", "square", "ring", "triangle"])
    return KeypointTargets.of({"square": SQUARE, "triangle": TRI}, LAYOUT, labels)


def test_slots_follow_the_layout(targets):
    assert targets.total == 7
    assert targets.by_label == {2: (0, 4, (1, 0, 3, 2)), 4: (4, 3, (0, 2, 1))}


def test_flip_swaps_left_and_right_slots_and_mirrors_x(targets):
    kp = torch.zeros((2, 7, 3))
    kp[0, 4:7] = torch.tensor([[50.0, 10, 2], [30, 40, 2], [70, 40, 1]])  # a triangle
    kp[1, 0:2] = torch.tensor([[10.0, 5, 2], [20, 5, 2]])  # a square's top corners
    out = targets.flipped(kp, torch.tensor([4, 2]), width=100)
    # apex stays apex; the left base is where the right one was, mirrored
    assert out[0, 4:7].tolist() == [[50, 10, 2], [30, 40, 1], [70, 40, 2]]
    assert out[1, 0:2].tolist() == [[80, 5, 2], [90, 5, 2]]
    assert not out[1, 2:].any() and not out[0, :4].any()  # v = 0 points stay zeros
    assert torch.equal(targets.flipped(out, torch.tensor([4, 2]), width=100), kp)


def test_rows_have_zeros_for_instances_without_points(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=6, n_val=0, size=64, keypoints=True)
    with Project.open(folder) as p:
        cats = {c.name: c.id for c in p.categories()}
        data = build_data(p, TrainConfig(preset="r18", size=64, flip=False))
        image = p.images()[0]
        mask = np.zeros((64, 64), bool)
        mask[2:9, 2:9] = True
        p.add_instance(image.id, cats["triangle"], encode(mask))  # a triangle without points
        ds = ProjectDataset(p, [im.id for im in p.images()], labels=project_labels(p),
                            keypoints=data.dataset.keypoints)
        instances = [inst for s in ds.samples for inst in s.instances]
    assert data.keypoints == {"square": SHAPE_KEYPOINTS["square"],
                              "triangle": SHAPE_KEYPOINTS["triangle"]}
    assert data.dataset.flip is False
    seen = {"with": 0, "without": 0}
    k = 0
    for index, sample in enumerate(ds.samples):
        _, target = ds[index]
        assert target["keypoints"].shape == (len(target["labels"]), 7, 3)
        assert target["keypoints"].dtype == torch.float32
        for inst, row in zip(sample.instances, target["keypoints"], strict=True):
            name = next(n for n, c in cats.items() if c == inst.category_id)
            if inst.keypoints is None:
                assert not row.any(), name
                seen["without"] += 1
                continue
            first = 0 if name == "square" else 4
            count = len(inst.keypoints)
            for j, (x, y, v) in enumerate(inst.keypoints):
                assert row[first + j].tolist() == pytest.approx([x, y, v] if v else [0, 0, 0])
            assert not torch.cat([row[:first], row[first + count:]]).any()
            seen["with"] += 1
            k += 1
    assert seen["with"] and seen["without"] > 1 and len(instances) == sum(seen.values())


def test_the_data_set_flips_with_the_keypoints(tmp_path, monkeypatch):
    folder = make_synthetic_project(tmp_path, n_train=4, n_val=0, size=64, keypoints=True)
    with Project.open(folder) as p:
        data = build_data(p, TrainConfig(preset="r18", size=64))
    ds = data.dataset
    assert ds.flip is True and ds.keypoints is not None
    index = next(i for i, s in enumerate(ds.samples) if any(x.keypoints for x in s.instances))
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(1.0))  # no flip
    image, target = ds[index]
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(0.0))  # flip
    mirrored, flipped = ds[index]
    assert torch.equal(mirrored, image.flip(-1))
    assert torch.equal(flipped["masks"], target["masks"].flip(-1))
    assert torch.equal(flipped["keypoints"],
                       ds.keypoints.flipped(target["keypoints"], target["labels"], 64))
    assert torch.allclose(flipped["boxes"][:, [2, 0]], 64 - target["boxes"][:, [0, 2]])


def test_a_crop_moves_the_points_and_drops_those_outside(targets):
    from mrcnn.store.records import Instance
    from mrcnn.training.dataset import crop_target

    mask = np.zeros((100, 100), bool)
    mask[40:80, 20:90] = True
    rle = encode(mask)
    inst = Instance(1, 1, 7, rle, rle.bbox, rle.area, "manual", None, None, "accepted",
                    ((55.0, 41.0, 2), (21.0, 79.0, 2), (89.0, 79.0, 1)))
    target = crop_target([inst], {7: 4}, (10, 30, 60, 80), targets)
    assert target["keypoints"][0, 4:7].tolist() == [[45, 11, 2], [11, 49, 2], [0, 0, 0]]


def test_oks_keypoint_ap_of_the_truth_is_one(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=0, n_val=3, size=64, keypoints=True)
    with Project.open(folder) as p:
        labels = project_labels(p)
        ids = [im.id for im in p.images()]
        gt = ground_truth(p, ids, labels, {k: tuple(v) for k, v in LAYOUT.items()})
    labelled = [a for a in gt["annotations"] if a["num_keypoints"]]
    assert labelled and all(len(a["keypoints"]) == 21 for a in gt["annotations"])
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                "segmentation": a["segmentation"], "score": 0.9,
                "keypoints": [c if (i % 3 != 2) else (1 if c else 0)
                              for i, c in enumerate(a["keypoints"])]}
               for a in gt["annotations"]]
    sigmas = [0.05] * 7
    metrics = evaluate_coco(gt, results, keypoint_sigmas=sigmas)
    assert metrics["keypoints"]["AP"] == pytest.approx(1.0)
    assert set(metrics["keypoints"]["per_class"]) <= {"square", "triangle"}
    # points far off score nothing
    off = [{**r, "keypoints": [c + 20 if i % 3 != 2 and c else c
                               for i, c in enumerate(r["keypoints"])]} for r in results]
    assert evaluate_coco(gt, off, keypoint_sigmas=sigmas)["keypoints"]["AP"] < 0.2
    # no keypoint sigmas (a model without a keypoint head): no keypoint AP
    assert "keypoints" not in evaluate_coco(gt, results)
    assert prediction_results({}) == []


def test_a_flip_in_the_transform_is_refused_with_keypoints(tmp_path, targets):
    from mrcnn.training.dataset import train_transform

    folder = make_synthetic_project(tmp_path, n_train=1, n_val=0, size=64, keypoints=True)
    with Project.open(folder) as p, pytest.raises(ValueError, match="flip"):
        ProjectDataset(p, [p.images()[0].id], labels=project_labels(p),
                       transform=train_transform(flip=True), keypoints=targets)
