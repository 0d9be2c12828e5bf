"""A bad COCO file is refused with a message that names the file, the record and the reason,
word for word as the user reads it; the edge values a valid file may hold are accepted."""

from __future__ import annotations

import copy
import json
import sys

import pytest

from mrcnn.coco.validate import parse_coco, read_coco_json
from mrcnn.errors import CocoFormatError

GOOD = {
    "images": [{"id": 1, "file_name": "a.png", "width": 1, "height": 1}],
    "categories": [{"id": 1, "name": "disc"}, {"id": 2, "name": "square"}],
    "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[0, 0]],
                     "bbox": [0, 0, 0, 0]}],
}


def edited(change) -> dict:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def put(*path_and_value):
    *path, key, value = path_and_value

    def change(data):
        target = data
        for p in path:
            target = target[p]
        target[key] = value
    return change


BAD = [
    (put("images", {}), "top level: 'images' must be a list, got an object"),
    (put("categories", "x"), "top level: 'categories' must be a list, got a string"),
    (put("annotations", None), "top level: 'annotations' must be a list, got null"),
    (put("annotations", 3), "top level: 'annotations' must be a list, got int"),
    (put("categories", 0, [1]), "categories[0]: must be an object, got a list"),
    (put("categories", 1, "name", " "), "categories[1] (id 2): 'name' must be a non-empty "
     "string"),
    (put("categories", 1, "name", " disc"), "categories[1] (id 2): duplicate category name "
     "' disc'"),
    (put("images", 0, "file_name", "a\x00.png"), "images[0] (id 1): 'file_name' contains a "
     "NUL character"),
    (put("images", 0, "width", 0), "images[0] (id 1): 'width' must be positive, got 0"),
    (put("images", 0, "height", -2), "images[0] (id 1): 'height' must be positive, got -2"),
    (put("images", 0, "status", "done"), "images[0] (id 1): 'status' must be one of new, "
     "predicted, in_review, reviewed, got 'done'"),
    (put("annotations", 0, "category_id", 9), "annotations[0] (id 7): category_id 9 is not in "
     "'categories'"),
    (put("annotations", 0, "category_id", "x"), "annotations[0] (id 7): 'category_id' must be "
     "an integer, got 'x'"),
    (put("images", 0, "width", "big"), "images[0] (id 1): 'width' must be an integer, got "
     "'big'"),
    (put("annotations", 0, "bbox", [0, 0, 1]), "annotations[0] (id 7): 'bbox' must be "
     "[x, y, width, height], got [0, 0, 1]"),
    (put("annotations", 0, "bbox", [0, 0, 1, True]), "annotations[0] (id 7): 'bbox' must be "
     "[x, y, width, height], got [0, 0, 1, True]"),
    (put("annotations", 0, "bbox", "0 0 1 1"), "annotations[0] (id 7): 'bbox' must be "
     "[x, y, width, height], got '0 0 1 1'"),
    (put("annotations", 0, "bbox", [0, -1, 1, 1]), "annotations[0] (id 7): 'bbox' has a "
     "negative value: [0, -1, 1, 1]"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_record_is_named_with_its_reason(change, message):
    with pytest.raises(CocoFormatError) as err:
        parse_coco(edited(change), "in.json")
    assert str(err.value) == f"in.json: {message}"


def test_edge_values_of_a_valid_file_are_taken():
    coco = parse_coco(edited(lambda d: None), "in.json")
    assert str(coco.path) == "in.json"
    assert [(im.id, im.file_name, im.width, im.height) for im in coco.images] == \
        [(1, "a.png", 1, 1)]  # a 1x1 image; a zero-size bbox
    assert coco.categories == {1: "disc", 2: "square"}
    assert [(a.id, a.image_id, a.category_id) for a in coco.annotations] == [(7, 1, 1)]
    no_crowd = parse_coco(edited(put("annotations", 0, "iscrowd", 0)), "in.json")
    assert no_crowd.annotations == coco.annotations
    with pytest.raises(CocoFormatError, match="'iscrowd' must be 0 or 1, got 2"):
        parse_coco(edited(put("annotations", 0, "iscrowd", 2)), "in.json")


def test_a_file_at_the_size_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(GOOD))
    size = path.stat().st_size
    assert read_coco_json(path, max_bytes=size) == GOOD
    with pytest.raises(CocoFormatError) as err:
        read_coco_json(path, max_bytes=size - 1)
    assert str(err.value) == (f"{path}: file is {size} bytes, above the {size - 1} bytes limit "
                              "for one COCO file; split it into smaller files")
    path.write_bytes(b"[1, 2]")
    with pytest.raises(CocoFormatError) as err:
        read_coco_json(path)
    assert str(err.value) == f"{path}: top level must be a JSON object, got a list"


@pytest.mark.parametrize(("limit", "text"), [
    (1024, "1.0 KiB"), (3 * 2**20 // 2, "1.5 MiB"), (2**30, "1.0 GiB"), (5 * 2**30, "5.0 GiB"),
])
def test_the_size_limit_is_said_in_readable_units(tmp_path, limit, text):
    path = tmp_path / "in.json"
    with path.open("wb") as f:
        f.truncate(limit + 1)  # sparse: refused from its size, never read
    with pytest.raises(CocoFormatError, match=rf"above the {text} limit") as err:
        read_coco_json(path, max_bytes=limit)
    assert "file is " in str(err.value)


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="no digit limit")
def test_a_number_too_long_to_convert_is_named(tmp_path):
    path = tmp_path / "in.json"
    digits = sys.get_int_max_str_digits() + 1
    path.write_text('{"images": [], "n": 1' + "0" * (digits - 1) + "}")
    with pytest.raises(CocoFormatError) as err:
        read_coco_json(path)
    assert str(err.value) == (f"{path}: unreadable JSON number (Exceeds the limit "
                              f"({digits - 1} digits) for integer string conversion: value has "
                              f"{digits} digits)")
