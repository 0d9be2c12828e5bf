"""Fine-tune from the window, and what follows: the Training and Model Versions docks, the
training process, registering and activating the new version, reloading the model and
re-predicting the unreviewed images, and the uncertainty-first review queue.

Domain work is `mrcnn`'s (finetune, versions, uncertainty); training runs in its own
process (`app/controllers/training_job.py`); this object lives on the GUI thread and only wires.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow

from app import dialogs
from app.controllers.training_job import TrainingProcess
from app.panels.training import START_TEXT, TrainingPanel
from app.panels.versions import VersionsPanel
from app.text import plural
from mrcnn.errors import MrcnnError
from mrcnn.store import review_queue as uncertainty
from mrcnn.store import versions
from mrcnn.store.status import UNREVIEWED
from mrcnn.training import launcher as finetune
from mrcnn.training import recipe as recipes
from mrcnn.training.events import EvalEvent, StartEvent, StepEvent, TrainingEvent

log = logging.getLogger(__name__)

FINE_TUNE_TEXT = "&Fine-tune"


def finetune_tip(r: finetune.Readiness) -> str:
    """What a run would train and score on, for a project that is ready."""
    warning = versions.noise_warning(r.val, r.val_instances)
    return (f"Ready: {plural(r.train, 'training image')}; validation "
            f"{plural(r.val, 'image')}, {plural(r.val_instances, 'instance')}"
            + (f" (⚠ {warning})" if warning else ""))


class FinetuneController(QObject):
    """Owns the Training and Model Versions docks and at most one training run."""

    #: The machine as a training process sees it; asked once per app session in the
    #: background (`mrcnn.training.recipe.probe_hardware`), shared by every window.
    hardware: recipes.Hardware | None = None
    _probing = False

    version_added = Signal(str)  # name of a version a run registered
    run_ended = Signal(str)  # "succeeded" | "failed" | "cancelled"

    def __init__(self, window: QMainWindow, options: finetune.FinetuneOptions | None = None):
        super().__init__(window)
        self._w = window
        self._docs = window.controller
        self._fb = window.feedback
        self.options = options or finetune.restore(window.ui.finetune_choices())
        self.panel = TrainingPanel()
        self.panel.set_options(self.options)
        self._fitting = False
        self.versions = VersionsPanel()
        self.training_dock = self._dock("Training", self.panel)
        self.versions_dock = self._dock("Model Versions", self.versions)
        window.tabifyDockWidget(self.training_dock, self.versions_dock)
        self.training_dock.raise_()
        self.process: TrainingProcess | None = None
        self.run: finetune.TrainingRun | None = None
        self._baseline_name: str | None = None
        self._readiness = finetune.Readiness(0, 0)
        self._order_timer = QTimer(self, singleShot=True, interval=300)
        self._order_timer.timeout.connect(self._apply_order)
        self.recipe: recipes.Recipe | None = None
        self._connect()

    def _dock(self, title: str, widget) -> QDockWidget:
        dock = QDockWidget(title, self._w)
        dock.setObjectName(title.lower().replace(" ", "_") + "_dock")
        dock.setWidget(widget)
        self._w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        dock.hide()
        return dock

    def _connect(self) -> None:
        a, d = self._w.actions, self._docs
        a["fine_tune"].triggered.connect(self.start)
        a["next_uncertain"].triggered.connect(self.next_uncertain)
        a["show_training"].triggered.connect(self.show_panel)
        a["move_split"].triggered.connect(self.move_split)
        self.panel.start_requested.connect(self.start)
        self.panel.cancel_requested.connect(self.cancel)
        self.versions.activate_requested.connect(self.activate)
        self.versions.rollback_requested.connect(self.rollback)
        self.versions.delete_requested.connect(self.delete)
        d.project_opened.connect(self._on_project_changed)
        d.project_closed.connect(self._on_project_changed)
        d.image_status_changed.connect(lambda _id, _status: self.refresh())
        d.image_split_changed.connect(self._on_image_split_changed)
        d.images_changed.connect(self.refresh)
        self._w.image_list.current_image_changed.connect(lambda _id: self._update_split_action())
        self.panel.preset.currentIndexChanged.connect(lambda _i: self._update_choices())
        self.panel.start_from.currentIndexChanged.connect(lambda _i: self._update_choices())
        for spin in (self.panel.iterations, self.panel.size):
            spin.valueChanged.connect(lambda _v: self._update_recipe())
        self.panel.device.currentIndexChanged.connect(lambda _i: self._update_recipe())
        self._w.model.state_changed.connect(self._update_recipe)
        self._w.model.predictions_stored.connect(lambda _id: self._schedule_order())
        self._w.image_list.order_changed.connect(lambda _key: self._apply_order())
        self.refresh()

    # ---------------------------------------------------------------- state
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def _writable(self) -> bool:
        return self._docs.is_open and not self._docs.read_only

    def refresh(self) -> None:
        """Readiness (the action's text and state) and the versions table."""
        p = self._docs.project if self._docs.is_open else None
        self._readiness = finetune.readiness(p) if p else finetune.Readiness(0, 0)
        need = self._readiness.describe()
        action = self._w.actions["fine_tune"]
        ready = self._readiness.ready and not self.running
        action.setProperty("ready", ready)
        action.setEnabled(ready and self._writable())
        action.setIconText("Fine-tune" + (f" ({need})" if need else ""))
        action.setText(FINE_TUNE_TEXT + (f" ({need})" if need else ""))
        self.panel.start_button.setEnabled(ready and self._writable())
        self.panel.start_button.setText("Fine-tune" + (f" ({need})" if need else ""))
        tip = self._readiness.advice() or finetune_tip(self._readiness)
        self.panel.start_button.setToolTip(tip)
        if p is not None and self.run is None:  # before any run: what one would use
            self.panel.set_status(tip)
        self._update_choices()
        self._update_split_action()
        rows = versions.summarize(p) if p else []
        self.versions.set_versions(rows, writable=self._writable() and not self.running,
                                   can_rollback=bool(p) and versions.rollback_target(p)
                                   is not None)

    def _active_preset(self) -> str | None:
        active = self._docs.project.active_model_version() if self._docs.is_open else None
        return active.preset if active else None

    def _update_choices(self) -> None:
        """Offer only the preset and start combinations that can run (mrcnn's rule); an
        impossible one (e.g. remembered from another project) becomes the nearest that can."""
        if self.running or self._fitting:
            return
        options = self.panel.read_options(self.options)
        active = self._active_preset()
        fitted = finetune.runnable(options, active_preset=active)
        if (fitted.preset, fitted.start) != (options.preset, options.start):
            self.options = fitted
            self._fitting = True
            try:
                self.panel.set_options(fitted)
            finally:
                self._fitting = False
            options = fitted
        self.panel.set_choices(finetune.choices(options, active_preset=active))
        self._update_recipe()

    # ---------------------------------------------------------------- the recipe
    def _update_recipe(self) -> None:
        """The line saying what one click would run (mrcnn's recipe, for this machine)."""
        if self.running or not self._docs.is_open:
            self.recipe = None
            if not self.running:
                self.panel.set_recipe("")
            return
        hardware = type(self).hardware
        if hardware is None:
            self.recipe = None
            self.panel.set_recipe("checking this machine…")
            self._probe_hardware()
            return
        o = self.panel.read_options(self.options)
        if o.device == "cpu" or (o.device in ("cuda", "mps") and hardware.device != o.device):
            hardware = recipes.Hardware(cpu_cores=hardware.cpu_cores)
        try:
            self.recipe = recipes.recipe_for(
                self._docs.project, hardware, preset=o.fixed_preset, start=o.start,
                size=o.size, max_iters=o.max_iters, batch_size=o.batch_size)
        except (MrcnnError, ValueError, KeyError) as exc:
            self.recipe = None
            self.panel.set_recipe(f"cannot plan the run: {exc}")
            return
        self.panel.set_recipe(self.recipe.line())

    def _probe_hardware(self) -> None:
        cls = type(self)
        if cls._probing:
            return
        cls._probing = True
        job = self._w.runner.submit(lambda _ctx: recipes.probe_hardware(), lane="task",
                                    name="asking which device training would use")
        job.succeeded.connect(self._on_hardware_probed)
        job.finished.connect(lambda: setattr(cls, "_probing", False))

    def _on_hardware_probed(self, hardware: recipes.Hardware) -> None:
        type(self).hardware = hardware
        self._update_recipe()

    # ---------------------------------------------------------------- the split
    def _on_image_split_changed(self, image_id: int, split: str) -> None:
        self._w.image_list.update_split(image_id, split)
        self.refresh()

    def _update_split_action(self) -> None:
        action = self._w.actions["move_split"]
        split = self._w.image_list.split_of(self._w.image_list.current_id)
        action.setText("Move to &Training" if split == "val" else "Move to &Validation")

    def move_split(self) -> None:
        """Image ▸ Move to Validation / Move to Training, for the image shown (undoable)."""
        image_id = self._w.image_list.current_id
        if image_id is None or not self._writable():
            return
        with self._fb.guard("Cannot move the image"):
            split = "train" if self._docs.image(image_id).split == "val" else "val"
            self._docs.move_to_split(image_id, split)
            r = self._readiness
            where = "validation" if split == "val" else "training"
            self._fb.say(f"Moved to the {where} split (validation: "
                         f"{plural(r.val, 'reviewed image')}, "
                         f"{plural(r.val_instances, 'instance')}); "
                         "Ctrl+Z undoes it", 8000)

    def show_panel(self) -> None:
        self.versions_dock.show()
        self.training_dock.show()
        self.training_dock.raise_()
        if self.training_dock.height() < 300:
            self._w.resizeDocks([self.training_dock], [340], Qt.Orientation.Vertical)

    def _on_project_changed(self) -> None:
        if self.running:
            self.cancel()
        self.refresh()
        self._apply_order()

    # ---------------------------------------------------------------- a run
    def start(self) -> None:
        """Fine-tune with the panel's options (one click: the defaults)."""
        if self.running or not self._writable():
            return
        self.refresh()
        if not self._readiness.ready:
            self._fb.say(self._readiness.advice(), 8000)
            return
        project = self._docs.project
        self.options = self.panel.read_options(self.options)
        self._remember()
        problems = self.options.problems()
        why = finetune.start_problem(project, self.options.preset, self.options.start)
        if why:
            problems.append(f"{self.options.preset} from {START_TEXT[self.options.start]}: "
                            f"{why}")
        if problems:  # one per line
            self._fb.report("\n".join(problems), box=True, title="Cannot fine-tune")
            return
        active = project.active_model_version()
        showing = self._w.model.info.kind if self._w.model.info is not None else None
        self._baseline_name = finetune.baseline_name(active.name if active else None, showing)
        self._update_recipe()
        recipe = self.recipe
        stage = versions.staging_path(project)
        argv = finetune.train_command(project.folder, self.options, stage=stage,
                                      baseline=self._baseline_name)
        self.run = finetune.TrainingRun()
        self.process = TrainingProcess(argv, stage, self)
        self.process.event.connect(self._on_training_event)
        self.process.succeeded.connect(self._on_training_succeeded)
        self.process.failed.connect(self._on_training_failed)
        self.process.cancelled.connect(self._on_training_cancelled)
        self.show_panel()
        self.panel.run_started(self.options.max_iters or (recipe.max_iters if recipe else 0))
        r = self._readiness
        preset = self.options.fixed_preset or (recipe.preset if recipe else "the model")
        self.panel.set_status("Starting: " + finetune.describe_run(
            preset, r.train, r.val, r.val_instances) + "…")
        self.process.start()
        self.refresh()
        self._w.actions["fine_tune"].setEnabled(False)

    def cancel(self) -> None:
        if self.running:
            self.process.cancel()

    def _remember(self) -> None:
        self._w.ui.set_finetune_choices(finetune.remembered(self.options))

    def shutdown(self) -> None:
        """The window closes: remember the options; stop a run (nothing is registered)."""
        if not self.running:
            self.options = self.panel.read_options(self.options)
        self._remember()
        if self.process is not None:
            self.cancel()
            self.process.process.waitForFinished(3000)
            self.process.stage.unlink(missing_ok=True)

    def _on_training_event(self, event: TrainingEvent) -> None:
        self.run.update(event)
        if isinstance(event, StartEvent):
            self.panel.run_started(self.run.max_iters)
            r = self._readiness
            text = finetune.describe_run(event.preset, event.train_images, event.val_images,
                                         r.val_instances if r.val == event.val_images else None)
            warning = versions.noise_warning(event.val_images, r.val_instances
                                             if r.val == event.val_images else None)
            if event.recipe:
                self.panel.set_recipe(event.recipe, running=True)
            self.panel.set_status(f"{text}, on {event.device}"
                                  + (f". ⚠ {warning}." if warning else ""))
        elif isinstance(event, StepEvent):
            self.panel.show_step(event)
            if event.iteration == event.max_iters:
                self.panel.set_status("Scoring the new version on the validation images…")
        elif isinstance(event, EvalEvent) and event.stage in ("baseline", "before"):
            name = event.version or self._baseline_name or "the starting model"
            ap = versions.metric(event.metrics)
            scored = versions.scored_on(event.metrics) or (None, None)
            val = versions.describe_val(*scored)
            self.panel.set_status(f"{name} on validation: mask AP "
                                  f"{'—' if ap is None else f'{ap:.3f}'}"
                                  f"{f' ({val})' if val else ''}; training…")
        elif isinstance(event, EvalEvent) and event.stage == "after":
            self.panel.set_status("Saving the new version…")

    def _on_training_succeeded(self) -> None:
        run, saved = self.run, self.run.saved
        if saved is None or saved.staged is None:
            self._on_training_failed("the trained model could not be saved: the training "
                                     "process named no staged file")
            return
        project = self._docs.project
        activate = versions.should_activate(self.options.activate, run.baseline, run.after)
        metadata = dict(saved.metadata or {})
        metadata["baseline"] = {"version": self._baseline_name, "metrics": run.baseline}
        try:
            version = versions.register_staged(
                project, saved.staged, preset=saved.preset or self.options.preset,
                parent_id=saved.parent_id, metadata=metadata, activate=activate)
        except (MrcnnError, OSError) as exc:
            self._on_training_failed(f"the trained model could not be saved: {exc}")
            return
        before = run.baseline_name or self._baseline_name or "before"
        scored = versions.scored_on(run.after) or versions.scored_on(run.baseline) or (None,
                                                                                       None)
        val, warning = versions.describe_val(*scored), versions.noise_warning(*scored)
        self.panel.show_comparison(versions.compare(run.baseline, run.after), before,
                                   version.name, val_text=val, warning=warning)
        ap = versions.metric(run.after)
        text = (f"{version.name} saved (mask AP {'—' if ap is None else f'{ap:.3f}'}"
                f"{f', {val}' if val else ''})")
        if activate:
            left = len(project.images(UNREVIEWED))
            text += (f", now active; predicting the {left} unreviewed image"
                     f"{'s' if left != 1 else ''} again" if left else ", now active")
        else:
            text += f"; {self._baseline_name} stays active (it scores at least as well)"
        self.panel.set_status(text)
        self._fb.say(text, 15000)
        self.panel.set_running(False)
        self.refresh()
        self.version_added.emit(version.name)
        if activate:
            self._reload_model(predict=True)
        self.run_ended.emit("succeeded")

    def _on_training_failed(self, message: str) -> None:
        self.panel.set_running(False)
        self.panel.set_status(f"Training failed: {message}")
        self._fb.report(f"Training failed: {message}", box=True, title="Training failed")
        self.refresh()
        self.run_ended.emit("failed")

    def _on_training_cancelled(self) -> None:
        self.panel.set_running(False)
        active = self._docs.project.active_model_version() if self._docs.is_open else None
        text = "Training cancelled; nothing was saved" + (
            f", {active.name} stays active" if active else "")
        self.panel.set_status(text)
        self._fb.say(text, 10000)
        self.refresh()
        self.run_ended.emit("cancelled")

    def _reload_model(self, *, predict: bool) -> None:
        """The model process loads the (new) active version; then, optionally, mask
        refinement is checked for it and every unreviewed image is predicted with it in the
        background."""
        job = self._w.model.load_default()
        if job is not None and predict:
            job.succeeded.connect(lambda _r: self._w.refinement.check_then_predict())

    # ---------------------------------------------------------------- versions
    def activate(self, version_id: int) -> None:
        with self._fb.guard("Cannot activate"):
            self._docs.project.activate_model_version(version_id)
            self._after_switch()

    def rollback(self) -> None:
        with self._fb.guard("Cannot roll back"):
            target = versions.rollback_target(self._docs.project)
            if target is None:
                self._fb.say("There is no earlier version to roll back to")
                return
            self._docs.project.activate_model_version(target.id)
            self._after_switch()

    def _after_switch(self) -> None:
        active = self._docs.project.active_model_version()
        self._fb.say(f"{active.name} is now the active model version", 8000)
        self.refresh()
        self._reload_model(predict=False)

    def delete(self, version_id: int) -> None:
        project = self._docs.project
        with self._fb.guard("Cannot delete"):
            v = project.model_version(version_id)
            if not dialogs.confirm(self._w, "Delete model version",
                                   f"Delete {v.name} and its checkpoint file {v.path}? Its "
                                   "pending predictions go too; accepted instances stay."):
                return
            versions.delete_version(project, version_id)
            self._fb.say(f"Deleted {v.name}", 8000)
            self.refresh()
            self._docs.images_changed.emit()

    # ---------------------------------------------------------------- review queue
    def next_uncertain(self) -> None:
        """Go to the unreviewed image the model is least sure about (after the current one,
        when that is in the queue: pressing again walks down the queue)."""
        if not self._docs.is_open:
            return
        project = self._docs.project
        scores = uncertainty.uncertainties(project)
        queue = [i for i in uncertainty.review_queue(project, scores) if scores[i] is not None]
        current = self._w.image_list.current_id
        if current in queue:
            k = queue.index(current)
            queue = queue[k + 1:] + queue[:k]
        if not queue:
            self._fb.say("No other predicted unreviewed image: predict the unreviewed images "
                         "first (Model ▸ Predict All Unreviewed)", 8000)
            return
        self._w.image_list.select_image(queue[0])
        self._fb.say(f"Most uncertain unreviewed image next (uncertainty "
                     f"{scores[queue[0]]:.2f})", 5000)

    def _schedule_order(self) -> None:
        if self._w.image_list.order == "uncertain":
            self._order_timer.start()

    def _apply_order(self) -> None:
        """The image list in uncertainty order, when the user chose that order."""
        images = self._w.image_list
        if images.order != "uncertain" or not self._docs.is_open:
            images.set_rank(None)
            return
        scores = uncertainty.uncertainties(self._docs.project)
        queue = uncertainty.review_queue(self._docs.project, scores)
        images.set_rank({image_id: k for k, image_id in enumerate(queue)}, scores)
