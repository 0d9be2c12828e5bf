"""`train --baseline coco`: the COCO model the window predicts with is scored as the baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mrcnn.testing.synthetic import make_synthetic_project


@pytest.mark.slow
def test_train_scores_cached_coco_weights_as_the_baseline(tmp_path, stand_in_coco_home):
    project = make_synthetic_project(tmp_path, n_train=2, n_val=2, size=64)
    r = subprocess.run(
        [sys.executable, "-m", "mrcnn", "train", str(project), "--from", "scratch", "--preset",
         "r18", "--max-iters", "1", "--size", "64", "--baseline", "coco", "--json"],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TORCH_HOME=str(stand_in_coco_home)))
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    baseline = [e for e in events if e["event"] == "eval" and e["stage"] == "baseline"]
    assert len(baseline) == 1 and baseline[0]["version"] == "COCO weights"
    assert "error" not in baseline[0] and baseline[0]["metrics"]["scored"]["images"] == 2
    assert events[-1]["event"] == "done"
