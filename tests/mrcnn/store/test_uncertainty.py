"""The review queue's uncertainty: borderline scores first, confident images later,
unpredicted images last, reviewed images never."""

from __future__ import annotations

import pytest

from mrcnn.store import review_queue as uncertainty
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project


def test_detection_and_image_uncertainty():
    u = uncertainty.detection_uncertainty
    assert u(0.5) == 1.0 and u(0.0) == 0.0 and u(1.0) == 0.0 and u(1.5) == 0.0
    assert u(0.9) == pytest.approx(0.2) and u(0.1) == pytest.approx(0.2)
    img = uncertainty.image_uncertainty
    assert img([]) == uncertainty.EMPTY
    assert img([0.99, 0.98]) < img([0.99, 0.55])
    # many confident detections do not dilute one borderline one; more borderline ones
    # break a tie
    assert img([0.5] + [0.99] * 20) > img([0.9, 0.9])
    assert img([0.5, 0.45]) > img([0.5, 0.99]) > img([0.55])


def test_review_queue_orders_unreviewed_images(tmp_path):
    folder = make_synthetic_project(tmp_path, n_train=5, n_val=1, size=64)
    with Project.open(folder) as p:
        ims = p.images()
        for im in ims[:5]:
            p.set_image_status(im.id, "new")
        rle = p.instances(ims[0].id)[0].rle
        cat = p.categories()[0].id
        scores = {ims[0].id: [0.97, 0.95], ims[1].id: [0.6, 0.98], ims[2].id: [],
                  ims[3].id: [0.3]}
        for image_id, ss in scores.items():
            other = p.image(image_id)
            mask = rle if (rle.height, rle.width) == (other.height, other.width) else None
            p.replace_predictions(image_id, "v1", [(cat, mask, s) for s in ss])
        u = uncertainty.uncertainties(p)
        assert set(u) == {im.id for im in ims[:5]}  # the reviewed one is not queued
        assert u[ims[4].id] is None  # never predicted
        assert u[ims[2].id] == uncertainty.EMPTY
        assert uncertainty.review_queue(p) == [ims[1].id, ims[3].id, ims[2].id, ims[0].id,
                                               ims[4].id]


def test_a_measured_uncertainty_is_kept_with_the_predictions_and_orders_the_queue(tmp_path):
    """What the model measured when it predicted (the mirror-consistency uncertainty) wins
    over the score margin; predicting the image again replaces it; reopening keeps it."""
    folder = make_synthetic_project(tmp_path, n_train=4, n_val=1, size=64)
    with Project.open(folder) as p:
        ims = p.images()[:4]
        for im in ims:
            p.set_image_status(im.id, "new")
        cat = p.categories()[0].id
        rle = p.instances(ims[0].id)[0].rle
        # a borderline score (margin: very uncertain) but a consistent model (measured: sure)
        p.replace_predictions(ims[0].id, "v1", [(cat, rle, 0.5)], uncertainty=0.05)
        # confident scores (margin: sure) but the mirror image disagrees (measured: unsure)
        p.replace_predictions(ims[1].id, "v1", [(cat, rle, 0.99)], uncertainty=0.8)
        p.replace_predictions(ims[2].id, "v1", [(cat, rle, 0.9)])  # not measured: margin
        assert p.image_uncertainties() == {ims[0].id: 0.05, ims[1].id: 0.8}
        queue = uncertainty.review_queue(p)
        assert queue[:3] == [ims[1].id, ims[2].id, ims[0].id]
        assert queue[3] == ims[3].id  # never predicted: last
        p.replace_predictions(ims[1].id, "v2", [(cat, rle, 0.99)], uncertainty=0.01)
        assert p.image_uncertainties()[ims[1].id] == 0.01
    with Project.open(folder, read_only=True) as p:
        assert p.image_uncertainties()[ims[1].id] == 0.01
