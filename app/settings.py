"""UI state kept between runs: recent projects, window geometry, view preferences.

This is not project data (that lives in the project's database); losing it loses nothing
but convenience.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from mrcnn.serving.tiles import TILES_AUTO, TileSetting, parse_tiles

ORGANIZATION = "MaskRCNNStudio"
APPLICATION = "Mask R-CNN Studio"
MAX_RECENT = 10


class UiState:
    """Typed access to the QSettings the window uses."""

    def __init__(self, settings: QSettings | None = None):
        self._s = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)

    @classmethod
    def at(cls, path: str | Path) -> UiState:
        """UI state stored in an INI file at `path` (tests, portable installs)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    # recent projects (project folders), most recent first
    def recent_projects(self) -> list[str]:
        value = self._s.value("recent_projects", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        recent = [folder] + [r for r in self.recent_projects() if r != folder]
        self._s.setValue("recent_projects", recent[:MAX_RECENT])

    def remove_recent(self, folder: str | Path) -> None:
        folder = str(folder)
        self._s.setValue("recent_projects", [r for r in self.recent_projects() if r != folder])

    def clear_recent(self) -> None:
        self._s.setValue("recent_projects", [])

    def last_project(self) -> str | None:
        recent = self.recent_projects()
        return recent[0] if recent else None

    # where the user was in each project (image path as the project names it)
    def last_image(self, project: str | Path) -> str | None:
        return self._json_dict("last_images").get(str(Path(project).resolve()))

    def set_last_image(self, project: str | Path, image_path: str) -> None:
        self._set_for_project("last_images", project, image_path)

    # window
    def geometry(self) -> QByteArray | None:
        v = self._s.value("window/geometry")
        return v if isinstance(v, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        v = self._s.value("window/state")
        return v if isinstance(v, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._s.setValue("window/geometry", geometry)
        self._s.setValue("window/state", state)

    # view preferences
    def mask_opacity(self) -> int:
        try:
            return max(0, min(100, int(self._s.value("view/mask_opacity", 45))))
        except (TypeError, ValueError):
            return 45

    def set_mask_opacity(self, value: int) -> None:
        self._s.setValue("view/mask_opacity", int(value))

    def score_threshold(self) -> int:
        """Pending predictions scoring below this percentage are hidden (0–100)."""
        try:
            return max(0, min(100, int(self._s.value("view/score_threshold", 50))))
        except (TypeError, ValueError):
            return 50

    def set_score_threshold(self, value: int) -> None:
        self._s.setValue("view/score_threshold", int(value))

    def tiles(self) -> TileSetting:
        """Tiled prediction of large images (Model ▸ Tiled Prediction for Large Images):
        "auto" (the default), "off", or a tile size in pixels."""
        try:
            return parse_tiles(str(self._s.value("model/tiles", TILES_AUTO)))
        except ValueError:
            return TILES_AUTO

    def set_tiles(self, value: TileSetting) -> None:
        self._s.setValue("model/tiles", str(parse_tiles(value)))

    def finetune_choices(self) -> dict:
        """The fine-tune options last used (plain data; mrcnn.training.launcher.restore checks
        it)."""
        return self._json_dict("finetune/options")

    def set_finetune_choices(self, choices: dict) -> None:
        self._s.setValue("finetune/options", json.dumps(choices))

    def sam_model(self) -> dict:
        """The SAM-family model the user picked: {"encoder", "decoder", "encoder_sha256",
        "decoder_sha256"} (empty: none)."""
        return self._json_dict("interactive/sam")

    def set_sam_model(self, files: dict) -> None:
        self._s.setValue("interactive/sam", json.dumps(files))

    def last_url(self) -> str:
        """The URL of images opened last (File ▸ Open URL…)."""
        return str(self._s.value("remote/last_url", "") or "")

    def set_last_url(self, url: str) -> None:
        self._s.setValue("remote/last_url", url)

    def banner_dismissed(self, project: str | Path) -> bool:
        """Whether the no-weights banner was dismissed ("Label by Hand") in this project."""
        return bool(self._json_dict("banner_dismissed").get(str(Path(project).resolve())))

    def set_banner_dismissed(self, project: str | Path, dismissed: bool) -> None:
        self._set_for_project("banner_dismissed", project, True if dismissed else None)

    def model_file(self, project: str | Path) -> str | None:
        """The checkpoint file last loaded by hand in this project (Model ▸ Load Model
        Checkpoint…), if any: the project opens with it again while it has no active
        version."""
        value = self._json_dict("model_files").get(str(Path(project).resolve()))
        return value if isinstance(value, str) else None

    def set_model_file(self, project: str | Path, path: str | None) -> None:
        self._set_for_project("model_files", project, path)

    def current_category(self, project: str | Path) -> int | None:
        """The category new instances got last in this project (its id), if any."""
        value = self._json_dict("current_categories").get(str(Path(project).resolve()))
        return value if isinstance(value, int) else None

    def set_current_category(self, project: str | Path, category_id: int | None) -> None:
        self._set_for_project("current_categories", project, category_id)

    def last_export(self, project: str | Path) -> str | None:
        """Where this project was exported to last (a file or a folder), if anywhere."""
        value = self._json_dict("last_exports").get(str(Path(project).resolve()))
        return value if isinstance(value, str) else None

    def set_last_export(self, project: str | Path, path: str | Path) -> None:
        self._set_for_project("last_exports", project, str(path))

    def list_order(self, project: str | Path) -> str:
        """The image list's order last chosen in this project ("file" unless another)."""
        value = self._json_dict("list_orders").get(str(Path(project).resolve()))
        return value if isinstance(value, str) else "file"

    def set_list_order(self, project: str | Path, order: str) -> None:
        self._set_for_project("list_orders", project, None if order == "file" else order)

    def _set_for_project(self, key: str, project: str | Path, value: object) -> None:
        """Keep `value` for `project` in the JSON dict `key` (None: forget it); the
        MAX_RECENT projects set most recently are kept."""
        projects = self._json_dict(key)
        folder = str(Path(project).resolve())
        projects.pop(folder, None)
        if value is not None:
            projects[folder] = value
        self._s.setValue(key, json.dumps(dict(list(projects.items())[-MAX_RECENT:])))

    def last_dir(self, key: str) -> str:
        return str(self._s.value(f"dirs/{key}", "") or "")

    def set_last_dir(self, key: str, folder: str | Path) -> None:
        self._s.setValue(f"dirs/{key}", str(folder))

    def _json_dict(self, key: str) -> dict:
        """A dict kept as JSON ({} when missing or unreadable)."""
        try:
            value = json.loads(str(self._s.value(key, "{}") or "{}"))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def sync(self) -> None:
        self._s.sync()
