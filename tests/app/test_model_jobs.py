"""The model lane's Box → Mask job: the model's answer, refined with image edges when the
project's refinement is on for that model (as its predictions are), never when it is off."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.controllers.model_jobs import box_mask_job
from mrcnn import masks
from mrcnn.editing.refine import mask_iou
from mrcnn.serving.session import BoxAnswer

H, W = 80, 100


def disc(r: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W] + 0.5
    return (xx - 50) ** 2 + (yy - 40) ** 2 <= r * r


class Ctx:
    def check(self) -> None:
        pass


class RoughModel:
    """Answers every box with a mask that falls 3 px short of the object's edge."""

    def box_mask(self, image_id, path, box) -> BoxAnswer:
        return BoxAnswer(image_id, "v1", "disc", masks.encode(disc(15)), 0.9, box, True, 0.01)


def test_the_answer_is_refined_only_when_the_project_says_so(tmp_path):
    rgb = np.full((H, W, 3), 50, np.uint8)
    rgb[disc(18)] = (230, 60, 40)  # a crisp object of radius 18
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    box = (30.0, 20.0, 70.0, 60.0)

    raw = box_mask_job(Ctx(), RoughModel(), 1, str(path), box, None)
    refined = box_mask_job(Ctx(), RoughModel(), 1, str(path), box, "guided")

    truth = disc(18)
    assert np.array_equal(raw.rle.decode(), disc(15))  # off: the model's answer as it is
    before, after = mask_iou(raw.rle.decode(), truth), mask_iou(refined.rle.decode(), truth)
    assert after > before + 0.1  # moved toward the object's edge
    assert (refined.category, refined.score, refined.cached) == ("disc", 0.9, True)
