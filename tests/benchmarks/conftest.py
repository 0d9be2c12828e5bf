"""The benchmarks folder is not a package on the path: put the repository root there so the
benchmark helpers (`benchmarks.annotator`, ...) import as they do when the scripts run."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
