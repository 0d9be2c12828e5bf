"""`python -m mrcnn import-coco` of a file with keypoints says what it mended (a wrong
`num_keypoints` from another tool is recomputed, not silently)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from test_cli import run_here

from mrcnn.store.project import Project


def test_import_prints_the_notes_of_what_it_recomputed(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((100, 120, 3), 90, np.uint8)).save(images / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 120, "height": 100}],
        "categories": [{"id": 1, "name": "triangle",
                        "keypoints": ["tip", "left_base", "right_base"],
                        "skeleton": [[1, 2], [2, 3]]}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": [[10, 10, 60, 10, 60, 70, 10, 70]],
                         "area": 3000, "bbox": [10, 10, 50, 60],
                         "keypoints": [20, 15, 2, 12, 60, 1, 0, 0, 0], "num_keypoints": 3}]}
    path = images / "kp.json"
    path.write_text(json.dumps(coco))
    project = tmp_path / "proj"
    assert run_here("new", project, "--images", images, capsys=capsys)[0] == 0
    code, out, err = run_here("import-coco", project, path, capsys=capsys)
    assert code == 0, err
    assert "note:" in out and "num_keypoints" in out and "(id 7)" in out
    with Project.open(project, read_only=True) as p:
        (inst,) = p.instances()
        assert inst.keypoints == ((20.0, 15.0, 2), (12.0, 60.0, 1), (0.0, 0.0, 0))
        assert p.category_by_name("triangle").keypoints.names == ("tip", "left_base",
                                                                   "right_base")
