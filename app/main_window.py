"""The main window. It only wires things: widgets ↔ controller ↔ background jobs.

The model side is `self.model` (app/controllers/model.py: which model, loaded once in a child
process) with `self.model.predictions` (app/controllers/prediction_scheduler.py: what is predicted
when)
and `self.model_view` (banner and status bar). Seams for more (fine-tune): `self.runner` has a
"model" lane, `self.model.session` holds the loaded model, the controller stores predictions
(pending instances, shown dashed, hatched and fainter by the canvas), and
`self.progress.track(job, title)` shows any job's progress with Cancel.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from app import dialogs, open_url_dialog
from app.actions import ACTIONS, build_actions, update_enabled
from app.canvas.canvas import CanvasView
from app.chrome import build_menus, build_toolbar
from app.controllers.commands import Feedback, ReviewCommands
from app.controllers.data_commands import DataCommands
from app.controllers.errors import ErrorsController
from app.controllers.finetune import FinetuneController
from app.controllers.model import ModelController, ModelOptions
from app.controllers.overview import OverviewController
from app.controllers.project import STATUS_LABELS, DocumentController, probe_folder
from app.controllers.refinement import RefinementController
from app.controllers.sam import SamController
from app.edit_wiring import install_edit_tools
from app.panels.image_list import ImageListWidget
from app.panels.instance_list import InstanceListWidget
from app.panels.model_widgets import ModelView
from app.panels.progress import JobProgressWidget
from app.panels.status_bar import ElidedLabel, StatusBar
from app.panels.thumbnails import ThumbnailCache
from app.panels.welcome import WelcomeWidget
from app.settings import UiState
from app.shortcuts import FieldKeyGuard, load_shortcuts, user_shortcuts_path
from app.text import plural
from app.worker import JobRunner
from mrcnn.errors import MrcnnError, ProjectLockedError
from mrcnn.store.scan import ScanReport

log = logging.getLogger(__name__)

SAVED_TEXT = "All changes saved"


class MainWindow(QMainWindow):
    """Image list (left), canvas (centre), instance list (right), review toolbar, menus.

    `ui_state` and `shortcuts_path` default to the user's settings and shortcut overrides,
    `model_options` to `ModelOptions()` and `model_session` to a new model process; tests
    pass their own."""

    def __init__(self, ui_state: UiState | None = None, shortcuts_path: Path | None = None,
                 model_options: ModelOptions | None = None, model_session=None):
        super().__init__()
        self.setWindowTitle("Mask R-CNN Studio")
        self.resize(1400, 900)
        self.status_bar = StatusBar(self)  # one whole message at a time
        self.setStatusBar(self.status_bar)
        self.ui = ui_state or UiState()
        self.runner = JobRunner(parent=self)
        self.controller = DocumentController(self)
        self.thumbnails = ThumbnailCache(self.runner, parent=self)
        self.shortcuts = load_shortcuts(
            [spec.name for spec in ACTIONS],
            user_path=shortcuts_path if shortcuts_path is not None else user_shortcuts_path())
        self.actions = build_actions(self, self.shortcuts)

        self.canvas = CanvasView(self.runner)
        self.welcome = WelcomeWidget()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.canvas)
        self.image_list = ImageListWidget(self.thumbnails)
        self.instance_list = InstanceListWidget()
        self.image_dock = self._dock("Images", self.image_list,
                                     Qt.DockWidgetArea.LeftDockWidgetArea)
        self.instance_dock = self._dock("Instances", self.instance_list,
                                        Qt.DockWidgetArea.RightDockWidgetArea)
        self.image_list.setMinimumWidth(250)
        self.instance_list.setMinimumWidth(330)
        controls = build_toolbar(self, self.actions)
        self.toolbar, self.opacity = controls.toolbar, controls.opacity
        self.threshold, self.threshold_value = controls.threshold, controls.threshold_value
        self.overview = OverviewController(self, self.controller)  # the Dataset dock
        self.recent_menu = build_menus(self, self.actions, [self.image_dock, self.instance_dock,
                                                            self.overview.dock])
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

        self.progress = JobProgressWidget()
        self.image_info = ElidedLabel(elide=Qt.TextElideMode.ElideMiddle)  # long file names
        self.zoom_label = QLabel()
        self.saved_label = QLabel(SAVED_TEXT)
        self.saved_label.setToolTip("Every change is written to the project the moment you "
                                    "make it; there is nothing to save.")
        self.feedback = Feedback(self)
        self.commands = ReviewCommands(self, self.controller, self.canvas, self.image_list,
                                       self.ui, self.feedback)
        self.data_commands = DataCommands(self, self.controller, self.runner, self.progress,
                                          self.ui, self.feedback)
        self.edits = install_edit_tools(self)  # mask correction tools (app/edit_wiring.py)
        self.model = ModelController(self, self.runner, self.progress, self.controller,
                                     self.image_list, self.ui, self.feedback, model_options,
                                     model_session)
        self.edits.commands.model = self.model  # Box → Mask asks it
        self.model_view = ModelView(self.model, self.feedback.say, self)
        self.banner, self.model_status = self.model_view.banner, self.model_view.status
        self.model_view.banner_dismissed.connect(self._on_banner_dismissed)
        self.edits.commands.on_current_category_changed = self._on_current_category_changed
        self.image_list.order_changed.connect(self._on_image_list_order_changed)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        bar = self.status_bar
        bar.add_permanent(self.progress)
        for widget in (self.model_status, self.image_info, self.zoom_label):
            bar.add_permanent(widget, yielding=True)  # a long message needs their room
        bar.add_permanent(self.saved_label)
        self.unreadable_dialog: dialogs.UnreadableFilesDialog | None = None
        self._connect()
        self._connect_model()
        # plain keys in a text or number field are typing, not shortcuts (app/shortcuts.py)
        self.key_guard = FieldKeyGuard(self, home=self.canvas)
        self.finetune = FinetuneController(self)  # Training and Model Versions docks
        self.refinement = RefinementController(self, self.finetune.versions)
        self.errors = ErrorsController(self)  # the Errors dock (app/controllers/errors.py)
        self.sam = SamController(self)  # Click → Mask's model (app/controllers/sam.py)
        self.edits.commands.sam = self.sam
        self.sam.restore()
        self.opacity.setValue(self.ui.mask_opacity())
        self.threshold.setValue(self.ui.score_threshold())
        self._on_threshold_changed(self.threshold.value())
        self.model_view.refresh()
        self.actions["toggle_predictions"].setChecked(True)
        self.welcome.set_recent(self.ui.recent_projects())
        if self.ui.geometry() is not None:
            self.restoreGeometry(self.ui.geometry())
        if self.ui.window_state() is not None:
            self.restoreState(self.ui.window_state())
        self._show_welcome(True)
        self._update_actions()
        for warning in self.shortcuts.warnings:
            self.feedback.say(warning, 10000)

    def _show_welcome(self, welcome: bool) -> None:
        """The empty state fills the window; the docks come with a project."""
        self.stack.setCurrentWidget(self.welcome if welcome else self.canvas)
        for dock in (self.image_dock, self.instance_dock):
            dock.setVisible(not welcome)
        if welcome:
            self.saved_label.setText("")

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}_dock")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a, c = self.actions, self.controller
        a["open_folder"].triggered.connect(self._on_open_folder_triggered)
        a["open_project"].triggered.connect(self._on_open_project_triggered)
        a["open_url"].triggered.connect(self._on_open_url_triggered)
        a["quit"].triggered.connect(self.close)
        a["next_image"].triggered.connect(lambda: self.image_list.go(+1))
        a["previous_image"].triggered.connect(lambda: self.image_list.go(-1))
        self.commands.connect(a)
        self.data_commands.connect(a)
        a["select_all_instances"].triggered.connect(self.canvas.select_all)
        a["clear_selection"].triggered.connect(self.canvas.clear_selection)
        a["toggle_predictions"].toggled.connect(self._on_toggle_predictions_toggled)
        a["zoom_in"].triggered.connect(self.canvas.zoom_in)
        a["zoom_out"].triggered.connect(self.canvas.zoom_out)
        a["zoom_fit"].triggered.connect(self.canvas.fit)
        a["zoom_actual"].triggered.connect(self.canvas.actual_size)
        a["focus_search"].triggered.connect(self._on_focus_search_triggered)
        a["show_shortcuts"].triggered.connect(self._on_show_shortcuts_triggered)
        a["unreadable_files"].triggered.connect(self._on_unreadable_files_triggered)
        self.opacity.valueChanged.connect(self._on_opacity_changed)
        self.welcome.open_folder_requested.connect(self._on_open_folder_triggered)
        self.welcome.open_project_requested.connect(self._on_open_project_triggered)
        self.welcome.recent_requested.connect(self.open_path)
        c.project_opened.connect(self._on_project_opened)
        c.project_closed.connect(self._on_project_closed)
        c.images_changed.connect(self._on_images_changed)
        c.image_status_changed.connect(self._on_image_status_changed)
        c.instances_changed.connect(self._on_instances_changed)
        self.image_list.current_image_changed.connect(self._on_image_list_current_changed)
        self.canvas.selection_changed.connect(self.instance_list.select_ids)
        self.canvas.selection_changed.connect(lambda _ids: self._update_actions())
        self.instance_list.selection_changed.connect(self._on_instance_list_selection_changed)
        self.instance_list.instance_activated.connect(self.canvas.center_on_instance)
        self.canvas.zoom_changed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.canvas.load_failed.connect(lambda _id, msg: self.feedback.report(msg))
        self.canvas.warned.connect(self.feedback.report)

    def _connect_model(self) -> None:
        self.model.connect(self.actions)
        self.threshold.valueChanged.connect(self._on_threshold_changed)
        self.instance_list.set_row_filter(self.canvas.shows)
        self.image_list.current_image_changed.connect(
            self.model.predictions.on_current_image_changed)

    # ---------------------------------------------------------------- opening
    def open_startup(self, path: str | None) -> None:
        """What `python main.py [PATH]` opens: PATH, else the last project, else nothing."""
        if path:
            self.open_path(path)
        elif (last := self.ui.last_project()) and Path(last).is_dir():
            self.open_path(last, quiet=True)

    def open_path(self, path: str | Path, *, quiet: bool = False) -> bool:
        """Open a project or a folder of images. Errors are shown, never raised."""
        try:
            self.controller.open_path(path)
        except ProjectLockedError as exc:
            if not dialogs.ask_open_read_only(self, str(exc)):
                self.feedback.report(str(exc))
                return False
            with self.feedback.guard("Cannot open project"):
                self.controller.open_path(path, read_only=True)
                return True
            return False
        except MrcnnError as exc:
            self.feedback.report(str(exc), box=not quiet, title="Cannot open")
            if quiet:
                self.ui.remove_recent(str(path))
            return False
        return True

    def _folder_to_start_in(self, kind: str) -> str:
        """Where a folder dialog opens: beside the open project's images folder, else the
        folder chosen last time, else the home folder (never the working directory)."""
        if self.controller.is_open:
            return str(self.controller.project.images_root.parent)
        return self.ui.last_dir(kind) or str(Path.home())

    def _on_open_folder_triggered(self) -> None:
        folder = dialogs.choose_folder(self, "Open a folder of images",
                                       self._folder_to_start_in("images"))
        if folder:
            self.ui.set_last_dir("images", Path(folder).parent)
            self.open_path(folder)

    def open_url(self, url: str, folder: str | Path | None = None) -> bool:
        """Open the project over the images under `url`, kept in the local `folder` (default:
        one per URL under the user's data folder). Errors are shown, never raised."""
        with self.feedback.guard("Cannot open URL"):
            self.controller.open_url(url, folder)
            return True
        return False

    def _on_open_url_triggered(self) -> None:
        chosen = open_url_dialog.ask_open_url(self, self.ui.last_url())
        if chosen is not None:
            url, folder = chosen
            self.ui.set_last_url(url)
            self.open_url(url, folder)

    def _on_open_project_triggered(self) -> None:
        folder = dialogs.choose_folder(self, "Open a project folder",
                                       self._folder_to_start_in("project"))
        if folder:
            self.ui.set_last_dir("project", Path(folder).parent)
            self.open_path(folder)

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        recent = self.ui.recent_projects()
        for folder in recent:
            menu.addAction(folder).triggered.connect(lambda _=False, f=folder: self.open_path(f))
        if recent:
            menu.addSeparator()
            menu.addAction("Clear Recent").triggered.connect(self.ui.clear_recent)
        else:
            menu.addAction("No recent projects").setEnabled(False)

    def _on_project_opened(self) -> None:
        c = self.controller
        self.ui.add_recent(c.project.folder)
        self.thumbnails.clear()
        self.canvas.forget()
        self._show_welcome(False)
        self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)  # keys are for the image
        self.setWindowTitle(f"{c.title} — Mask R-CNN Studio"
                            + (" (read-only)" if c.read_only else ""))
        self.saved_label.setText("Read-only" if c.read_only else SAVED_TEXT)
        self.model_view.project_opened(dismissed=self.ui.banner_dismissed(c.project.folder))
        # new instances get the category they got last here (never an id of another project)
        self.edits.commands.current_category = self.ui.current_category(c.project.folder)
        self.edits.categories.refresh()
        # the review goes on in the order chosen here last (Ctrl+Enter follows it)
        self.image_list.set_order(self.ui.list_order(c.project.folder))
        self.model.reset()
        self._reload_images()
        self._show_unreadable_count()
        if not c.read_only:
            self._start_scan()

    def _on_image_list_order_changed(self, order: str) -> None:
        if self.controller.is_open:
            self.ui.set_list_order(self.controller.project.folder, order)

    def _on_current_category_changed(self, category_id: int) -> None:
        if self.controller.is_open:
            self.ui.set_current_category(self.controller.project.folder, category_id)

    def _on_banner_dismissed(self, dismissed: bool) -> None:
        if self.controller.is_open:
            self.ui.set_banner_dismissed(self.controller.project.folder, dismissed)

    def _on_project_closed(self) -> None:
        self.model.reset()
        self.thumbnails.clear()
        self.canvas.forget()
        self.image_list.set_images([], {})
        self.instance_list.set_rows(None)
        self.welcome.set_recent(self.ui.recent_projects())
        self._show_welcome(True)
        self._show_unreadable_count()

    def _start_scan(self) -> None:
        folder, known = self.controller.scan_args()
        project = self.controller.project
        job = self.runner.submit(probe_folder, folder, known, lane="task", name="scanning")
        running = ScanReport(known=len(known))

        def batch(result) -> None:  # images under a URL, handed over as they are read
            if self.controller.project is project:
                with self.feedback.guard("Cannot add images"):
                    self.controller.add_scanned(result, running)

        def done(result) -> None:
            if self.controller.project is not project:
                return  # another project was opened meanwhile
            with self.feedback.guard("Cannot add images"):
                report = self.controller.add_scanned(result, running)
                self._show_unreadable_count()
                if not report.added and not report.skipped:
                    return
                msg = f"Found {plural(report.added, 'new image')} in {folder}"
                if report.skipped:
                    msg += (f", {plural(len(report.skipped), 'unreadable file')} skipped "
                            f"(e.g. {Path(report.skipped[0][0]).name}: "
                            f"{report.skipped[0][1]}; File ▸ Unreadable Files… lists them)")
                self.feedback.say(msg, 10000)

        job.yielded.connect(batch)
        job.succeeded.connect(done)
        job.failed.connect(self.feedback.report)
        self.progress.track(job, "Scanning images")

    def _reload_images(self) -> None:
        c = self.controller
        records = c.images()
        self.image_list.set_images(records, {r.id: c.image_source(r) for r in records})
        if self.image_list.current_id is None and records:
            self.image_list.select_image(self._where_we_left_off()
                                         or self.image_list.neighbor(None, +1) or records[0].id)
        elif not records:
            self.canvas.clear_image("No images in this folder yet")
            self.instance_list.set_rows(None)
        self._update_actions()

    def _where_we_left_off(self) -> int | None:
        path = self.ui.last_image(self.controller.project.folder)
        for r in self.image_list.model.records():
            if r.path == path:
                return r.id
        return None

    def _on_images_changed(self) -> None:
        self._reload_images()
        current = self.image_list.current_id
        if current is not None:
            self._on_instances_changed(current)

    # ---------------------------------------------------------------- current image
    def _on_image_list_current_changed(self, image_id: int) -> None:
        c = self.controller
        with self.feedback.guard("Cannot show image"):
            image = c.image(image_id)
            self.ui.set_last_image(c.project.folder, image.path)
            rows = c.instance_rows(image_id)
            self.canvas.show_image(image_id, c.image_source(image), rows)
            self.instance_list.set_rows(rows)
            self._update_image_info()
        self._update_actions()
        # after this key's effect is painted, unless another key came first
        QTimer.singleShot(0, lambda: self._prefetch_after(image_id))

    def _prefetch_after(self, image_id: int) -> None:
        c = self.controller
        if image_id != self.image_list.current_id or not c.is_open:
            return
        nxt = self.image_list.neighbor(image_id, +1)
        if nxt is not None:
            with self.feedback.guard("Cannot prefetch image"):
                self.canvas.prefetch(nxt, c.image_source(c.image(nxt)),
                                     c.instance_rows(nxt))

    def _on_instances_changed(self, image_id: int) -> None:
        if image_id != self.image_list.current_id:
            return
        rows = self.controller.instance_rows(image_id)
        self.canvas.update_instances(rows)
        self.instance_list.set_rows(rows)
        self._update_image_info()

    def _on_image_status_changed(self, image_id: int, status: str) -> None:
        self.image_list.update_status(image_id, status)
        self._update_image_info()

    def _update_image_info(self) -> None:
        image_id = self.image_list.current_id
        if image_id is None or not self.controller.is_open:
            self.image_info.setText("")
            return
        im = self.controller.image(image_id)
        self.image_info.setText(f"{Path(im.path).name} · {im.width}×{im.height} · "
                                f"{STATUS_LABELS.get(im.status, im.status)}")

    def _on_instance_list_selection_changed(self, ids: list[int]) -> None:
        self.canvas.select_ids(ids)
        self._update_actions()

    def _update_actions(self) -> None:
        c = self.controller
        update_enabled(self.actions, project=c.is_open, writable=not c.read_only,
                       image=c.is_open and self.image_list.current_id is not None)

    # ---------------------------------------------------------------- model
    def _on_threshold_changed(self, value: int) -> None:
        self.threshold_value.setText(f"{value / 100:.2f}")
        self.canvas.set_score_threshold(value / 100)
        self.instance_list.refilter()
        self.ui.set_score_threshold(value)

    def _on_toggle_predictions_toggled(self, show: bool) -> None:
        self.canvas.set_show_predictions(show)
        self.instance_list.refilter()

    # ---------------------------------------------------------------- view
    def _on_opacity_changed(self, value: int) -> None:
        self.canvas.set_fill_opacity(value / 100)
        self.ui.set_mask_opacity(value)

    def _on_focus_search_triggered(self) -> None:
        self.image_dock.show()
        self.image_list.search.setFocus()
        self.image_list.search.selectAll()

    def _on_show_shortcuts_triggered(self) -> None:
        dialogs.ShortcutsDialog(self.shortcuts, self).exec()

    def _show_unreadable_count(self) -> None:
        """File ▸ Unreadable Files (N)…, enabled when the last scan skipped some."""
        n = len(self.controller.scan_report.skipped)
        action = self.actions["unreadable_files"]
        action.setText(f"Unrea&dable Files ({n})…" if n else "Unrea&dable Files…")
        action.setProperty("ready", n > 0)
        self._update_actions()
        if self.unreadable_dialog is not None and self.unreadable_dialog.isVisible():
            self._on_unreadable_files_triggered()

    def _on_unreadable_files_triggered(self) -> None:
        if self.unreadable_dialog is None:
            self.unreadable_dialog = dialogs.UnreadableFilesDialog(self)
        c = self.controller
        folder = c.project.images_root if c.is_open else Path()
        self.unreadable_dialog.set_files(folder, c.scan_report.skipped)
        self.unreadable_dialog.show()
        self.unreadable_dialog.raise_()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.finetune.shutdown()  # stops a run, remembers the fine-tune options
        self.ui.save_window(self.saveGeometry(), self.saveState())
        self.ui.sync()
        self.canvas.clear_image()
        self.model.shutdown()
        self.runner.shutdown()
        self.controller.close()
        super().closeEvent(event)
