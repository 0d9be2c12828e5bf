"""The platform's folders for this program's caches and data (what platformdirs would say,
without the dependency): XDG on Linux, ~/Library on macOS, %LOCALAPPDATA% on Windows."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR = "mrcnn-studio"


def user_cache_dir() -> Path:
    """Where this program's caches go (the image cache, under `images/`)."""
    if sys.platform == "win32":
        return _local_app_data() / APP_DIR / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP_DIR
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / APP_DIR


def user_data_dir() -> Path:
    """Where this program's data go (projects over URLs, under `projects/`)."""
    if sys.platform == "win32":
        return _local_app_data() / APP_DIR
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_DIR
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP_DIR


def _local_app_data() -> Path:
    return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
