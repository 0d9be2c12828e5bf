"""The image status lifecycle as the user meets it: a model's predictions move only a new
image (to predicted) and never undo a person's work; "Mark Not Reviewed" moves only a reviewed
image; "not reviewed" means new, predicted or in review."""

from __future__ import annotations

import numpy as np
import pytest

from mrcnn.masks import encode
from mrcnn.store.project import Project
from mrcnn.store.records import ImageStatus
from mrcnn.store.status import after_unreviewing, is_unreviewed
from mrcnn.testing.synthetic import make_synthetic_project

STATUSES = ["new", "predicted", "in_review", "reviewed"]


def test_predictions_move_only_a_new_image(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=4, n_val=0, size=64)
    with Project.open(folder) as p:
        images = p.images()
        for im, status in zip(images, STATUSES, strict=True):
            p.set_image_status(im.id, status)
        mask = np.zeros((64, 64), dtype=bool)
        mask[2:9, 3:11] = True
        cat = p.categories()[0].id
        for im in images:
            p.replace_predictions(im.id, "model-a", [(cat, encode(mask), 0.9)])
        assert [p.image(im.id).status for im in images] == \
            ["predicted", "predicted", "in_review", "reviewed"]


@pytest.mark.parametrize(("status", "after"), [
    ("new", "new"), ("predicted", "predicted"), ("in_review", "in_review"),
    ("reviewed", "in_review"),
])
def test_mark_not_reviewed_moves_only_a_reviewed_image(status, after):
    assert after_unreviewing(status) is ImageStatus(after)


def test_not_reviewed_means_new_predicted_or_in_review():
    assert [is_unreviewed(s) for s in STATUSES] == [True, True, True, False]
