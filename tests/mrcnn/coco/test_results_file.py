"""Writing a prediction results file: whole or not at all."""

from __future__ import annotations

import errno
import json
import os

import pytest

from mrcnn.coco.io import write_results
from mrcnn.errors import CocoFormatError
from mrcnn.io import atomic

RESULT = {"image_id": 101, "category_id": 7, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5,
          "segmentation": {"size": [4, 4], "counts": "04L4"}}


def test_results_are_written_as_a_json_list(tmp_path):
    write_results(tmp_path / "r.json", [RESULT])
    assert json.loads((tmp_path / "r.json").read_text()) == [RESULT]


def test_a_failed_write_keeps_the_earlier_file_and_leaves_nothing_behind(tmp_path,
                                                                         monkeypatch):
    out = tmp_path / "r.json"
    out.write_text("[]")

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    with pytest.raises(CocoFormatError, match="No space left on device.*nothing was written"):
        write_results(out, [RESULT])
    assert out.read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write anywhere")
def test_a_folder_without_write_permission_is_refused_before_writing(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(CocoFormatError, match="not writable"):
            write_results(folder / "r.json", [RESULT])
    finally:
        folder.chmod(0o755)
    assert not list(folder.iterdir())
