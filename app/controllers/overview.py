"""The Dataset dock: the data set overview of the open project (`mrcnn.store.overview`), kept
up to date while the dock is visible. Any change to images, categories or instances marks it
stale; it is recounted once the changes pause (a few SQL queries: milliseconds for thousands
of instances, under 0.2 s for 100,000 on two cores, see benchmarks/store_scale.py), and only
when the dock is visible (else when it is shown next)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow

from app.controllers.project import DocumentController
from app.panels.overview import OverviewPanel
from mrcnn.store.overview import dataset_overview

#: How long changes must pause before the overview is recounted (a run of edits, a scan
#: adding images in batches, predicting many images: one recount).
REFRESH_DELAY_MS = 250


class OverviewController(QObject):
    """Owns the Dataset dock (hidden at first; View ▸ Dataset shows it)."""

    def __init__(self, window: QMainWindow, documents: DocumentController):
        super().__init__(window)
        self._docs = documents
        self.panel = OverviewPanel()
        self.dock = QDockWidget("Dataset", window)
        self.dock.setObjectName("dataset_dock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.stale = True
        self._timer = QTimer(self, singleShot=True, interval=REFRESH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        d = documents
        for signal in (d.project_opened, d.project_closed, d.images_changed,
                       d.categories_changed):
            signal.connect(self._changed)
        for signal in (d.image_status_changed, d.image_split_changed):
            signal.connect(lambda _id, _value: self._changed())
        d.instances_changed.connect(lambda _id: self._changed())
        self.dock.visibilityChanged.connect(self._on_visibility_changed)

    @property
    def refresh_scheduled(self) -> bool:
        """Whether a recount waits for the changes to pause."""
        return self._timer.isActive()

    def _changed(self) -> None:
        self.stale = True
        if self.dock.isVisible():
            self._timer.start()  # restarted by each change: one recount when they pause

    def _on_visibility_changed(self, visible: bool) -> None:
        if visible and self.stale:
            self.refresh()

    def refresh(self) -> None:
        """Recount and draw now."""
        self._timer.stop()
        project = self._docs.project
        self.panel.show_overview(dataset_overview(project) if project is not None else None)
        self.stale = False
