"""File ▸ Export… and File ▸ Import… in every format: the dialog follows the format chosen,
the work runs in the background, and what is written reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import image_id, open_folder, run_data_action

from app import dialogs
from app.dialogs import ExportDialog, ExportOptions, ImportDialog, ImportOptions
from mrcnn.coco.formats import FORMATS


def test_the_export_dialog_asks_for_a_folder_for_folder_formats(qtbot, tmp_path):
    images = tmp_path / "photos"
    dialog = ExportDialog(str(images / "annotations.json"), folder_default=str(tmp_path))
    qtbot.addWidget(dialog)
    assert [dialog.format.itemData(i) for i in range(dialog.format.count())] == list(FORMATS)
    assert not dialog.rle.isHidden()
    for i, f in enumerate(FORMATS.values()):
        dialog.format.setCurrentIndex(i)
        folder = f.output == "folder"
        assert dialog._where.text() == ("Folder" if folder else "File")
        # RLE or polygons is a COCO choice only
        assert dialog.rle.isHidden() == folder and dialog.polygon.isHidden() == folder
        path = Path(dialog.options().path)
        # a folder export goes beside the images folder, never inside it (a scan would
        # take the images YOLO and VOC copy for new ones)
        assert path == (tmp_path / f"export-{f.name}" if folder
                        else images / "annotations.json")
        assert dialog.options().format == f.name
        assert dialog.about.text() and "--" not in dialog.about.text()
    # a place the user typed is kept when the format changes
    dialog.path.setText(str(tmp_path / "mine" / "x"))
    dialog.format.setCurrentIndex(list(FORMATS).index("yolo-seg"))
    assert dialog.options().path == tmp_path / "mine" / "export-yolo-seg"


def test_the_import_dialog_names_what_each_format_reads(qtbot, tmp_path):
    dialog = ImportDialog(str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.path.setText(str(tmp_path / "data"))
    for i, f in enumerate(FORMATS.values()):
        dialog.format.setCurrentIndex(i)
        assert dialog._what.text() == ("COCO file" if f.source == "file" else "Folder")
        assert dialog.options() == ImportOptions(tmp_path / "data", None, "reviewed", f.name)


@pytest.mark.parametrize("fmt", ["voc", "labelme", "yolo-seg"])
def test_export_in_a_folder_format_and_import_it_back(fmt, qtbot, window, photos_dir, voc_coco,
                                                      monkeypatch, tmp_path, errors):
    w = window
    open_folder(qtbot, w, photos_dir)
    monkeypatch.setattr(dialogs, "ask_import_options",
                        lambda *_a: ImportOptions(voc_coco.path, None, "reviewed"))
    run_data_action(qtbot, w, "import_coco")
    project = w.controller.project
    voc = image_id(w, "voc.jpg")
    before = {(i.category_id, i.rle.counts) for i in project.instances(voc)}
    assert len(before) == 19

    out = tmp_path / f"export-{fmt}"
    monkeypatch.setattr(dialogs, "ask_export_options",
                        lambda *_a: ExportOptions(out, "rle", True, fmt))
    run_data_action(qtbot, w, "export_coco")
    assert errors == []
    assert out.is_dir()
    assert "Exported 19 instances on 1 image to" in w.statusBar().currentMessage()

    # Read back into the same project: every instance is already there (same category,
    # same mask), so nothing is added twice. VOC and YOLO read their own copy of the image:
    # the same file as the project's, so their labels land on the project's image, not on a
    # second copy of it. YOLO's polygons are not the masks themselves.
    images = {"voc": out / "JPEGImages", "yolo-seg": out / "images"}.get(fmt)
    monkeypatch.setattr(dialogs, "ask_import_options",
                        lambda *_a: ImportOptions(out, images, "reviewed", fmt))
    n_images = len(project.images())
    run_data_action(qtbot, w, "import_coco")
    assert errors == []
    message = w.statusBar().currentMessage()
    assert message.startswith("Imported ")
    assert len(project.images()) == n_images  # no second copy of voc.jpg
    if fmt in ("labelme", "voc"):  # exact masks: all duplicates
        assert "Imported 0 instances" in message and "19 duplicates skipped" in message
        assert {(i.category_id, i.rle.counts) for i in project.instances(voc)} == before
    else:  # polygons: new instances, on the project's own image
        got = {(i.category_id, i.rle.counts) for i in project.instances(voc)}
        assert before < got and len(got) >= 2 * 19 - 1
    if fmt != "labelme":  # labelme points at the project's own file
        assert "1 image(s) are already in the project under another path" in message


def test_a_bad_folder_is_reported_and_changes_nothing(qtbot, window, photos_dir, monkeypatch,
                                                      tmp_path, errors, helpers):
    w = window
    open_folder(qtbot, w, photos_dir)
    before = helpers.project_state(w.controller.project)
    bad = tmp_path / "labels"
    bad.mkdir()
    (bad / "voc.json").write_text("{not json")
    monkeypatch.setattr(dialogs, "ask_import_options",
                        lambda *_a: ImportOptions(bad, photos_dir, "reviewed", "labelme"))
    run_data_action(qtbot, w, "import_coco")
    assert len(errors) == 1 and errors[0][0] == "Cannot import labelme JSON"
    assert "voc.json" in errors[0][1]
    assert helpers.project_state(w.controller.project) == before


def test_an_export_never_replaces_another_projects_file_unasked(qtbot, make_window, photos_dir,
                                                                 tmp_path, monkeypatch):
    """The export place was one for all projects: exporting project B offered A's
    annotations.json and replaced it without a word. Now each project starts from its own
    (its last export, else beside its images), and an existing file this project did not
    write last is replaced only when the person says so."""
    import shutil

    other = tmp_path / "other photos"
    shutil.copytree(photos_dir, other)
    offered: list[str] = []
    answer: list[Path] = []

    def ask(_parent, default_path, _folder=None):
        offered.append(default_path)
        return ExportOptions(answer[-1], "rle", False, "coco")

    asked: list[str] = []
    replace = [False]

    def confirm(_parent, _title, text):
        asked.append(text)
        return replace[0]

    monkeypatch.setattr(dialogs, "ask_export_options", ask)
    monkeypatch.setattr(dialogs, "confirm", confirm)
    w = make_window()
    open_folder(qtbot, w, photos_dir)
    a_file = tmp_path / "a.json"
    answer.append(a_file)
    run_data_action(qtbot, w, "export_coco")
    assert a_file.is_file() and asked == []  # a new file: nothing to ask
    assert offered[-1] == str(photos_dir / "annotations.json")
    a_bytes = a_file.read_bytes()

    open_folder(qtbot, w, other)
    w.actions["export_coco"].trigger()  # B: its own place, not A's file
    assert offered[-1] == str(other / "annotations.json")
    assert asked and "a.json exists" in asked[-1]  # answered with A's file: asked first
    assert "nothing was written" in w.statusBar().currentMessage()
    assert a_file.read_bytes() == a_bytes

    open_folder(qtbot, w, photos_dir)
    n = len(asked)
    run_data_action(qtbot, w, "export_coco")  # A again, to its own last export: no question
    assert offered[-1] == str(a_file) and len(asked) == n
