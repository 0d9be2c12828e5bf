"""Training data is what the user accepted: pending predictions on a reviewed image (a
model predicted it again later) never reach the training targets."""

from __future__ import annotations

import numpy as np
import torch

from mrcnn.masks import encode
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.dataset import ProjectDataset, project_labels


def test_only_accepted_instances_reach_the_targets(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=1, n_val=0, size=64)
    with Project.open(folder) as p:
        im = p.images()[0]
        assert im.status == "reviewed"
        accepted = p.instances(im.id, state="accepted")
        assert accepted
        pending_mask = np.zeros((im.height, im.width), dtype=bool)
        pending_mask[:5, :7] = True  # a 5x7 corner box, unlike any drawn shape
        cat = p.categories()[-1]
        p.replace_predictions(im.id, "some-model", [(cat.id, encode(pending_mask), 0.99)] * 2)
        assert len(p.instances(im.id, state="pending")) == 2
        assert p.image(im.id).status == "reviewed"
        ds = ProjectDataset(p, [im.id], labels=project_labels(p))
    assert ds.num_instances == len(accepted)
    _, target = ds[0]
    assert len(target["labels"]) == len(accepted) == len(target["masks"])
    areas = sorted(int(m.sum()) for m in target["masks"])
    assert areas == sorted(int(a.area) for a in accepted)
    assert not any(torch.equal(m.bool(), torch.from_numpy(pending_mask)) for m in
                   target["masks"])
