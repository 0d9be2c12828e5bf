"""What the window shows of the model: a banner when there are no weights, and the model
and device in the status bar; `ModelView` keeps both in step with the model controller."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.panels.status_bar import ElidedLabel
from mrcnn.model.weight_files import coco_file_path

BANNER_STYLE = """
QFrame#model_banner { background: #3b3422; border: 1px solid #8c7030; border-radius: 4px; }
QFrame#model_banner QLabel { background: transparent; border: none; }
"""

CHOICES = ("Choose a checkpoint file of your own, download torchvision's COCO-pretrained "
           "weights (about 180 MB, needs the internet), or label a few images by hand, mark "
           "them reviewed and fine-tune a model on them. Everything else works meanwhile.")


def offline_text() -> str:
    """Where torchvision's COCO weights go on a machine without the internet ("" where the
    preset has none): the same file, copied there by hand, is what the download fetches."""
    path = coco_file_path()
    if path is None:
        return ""
    return (f"No internet here? Copy torchvision's file {path.name} into {path.parent}, then "
            "press Download COCO Weights: it takes the file from there.")


def reason_of(message: str) -> str:
    """The first line of a NoWeightsError message, without its "No model weights: "."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first.removeprefix("No model weights: ").rstrip(".")


class ModelBanner(QFrame):
    """A non-blocking strip above the canvas: why there is no model, and the three ways on."""

    checkpoint_requested = Signal()
    download_requested = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("model_banner")
        self.setStyleSheet(BANNER_STYLE)
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choices = QLabel(CHOICES)
        self.choices.setWordWrap(True)
        self.offline = QLabel()  # the file's name and folder, to copy
        self.offline.setWordWrap(True)
        self.offline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checkpoint = QPushButton("Choose Checkpoint…")
        self.checkpoint.setToolTip("Predict with a .pt checkpoint file (weights only; a file "
                                   "that needs Python code to load is refused)")
        self.download = QPushButton("Download COCO Weights")
        self.download.setToolTip("Download torchvision's COCO weights into the torch cache "
                                 "(progress and Cancel in the status bar)")
        self.by_hand = QPushButton("Label by Hand")
        self.by_hand.setToolTip("Hide this banner; label and review a few images, then "
                                "fine-tune a model on them")
        self.checkpoint.clicked.connect(self.checkpoint_requested)
        self.download.clicked.connect(self.download_requested)
        self.by_hand.clicked.connect(self._on_by_hand_clicked)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.reason)
        text.addWidget(self.choices)
        text.addWidget(self.offline)
        buttons = QVBoxLayout()  # in a row they made the window wider than a 1280 px screen
        buttons.setSpacing(2)
        for b in (self.checkpoint, self.download, self.by_hand):
            buttons.addWidget(b)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addLayout(text, 1)
        layout.addLayout(buttons)
        self.hide()

    def show_message(self, message: str, *, failed: bool = False) -> None:
        """Show the banner for NoWeightsError's `message` (or a load error when `failed`)."""
        self.title.setText("The model could not be loaded" if failed
                           else "No model weights — predictions are off")
        reason = message if failed else reason_of(message)
        self.reason.setText(reason[:1].upper() + reason[1:] + ("" if failed else "."))
        offline = "" if failed else offline_text()
        self.offline.setText(offline)
        self.offline.setVisible(bool(offline))
        self.setToolTip(message)
        self.show()

    def _on_by_hand_clicked(self) -> None:
        self.hide()
        self.dismissed.emit()


class ModelStatus(QWidget):
    """Status-bar labels: the model (version or source) and the device it runs on, and why."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model_label = ElidedLabel()
        self.device_label = ElidedLabel()
        self.device_label.setToolTip("Where the model runs, why there, and in which precision")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 10, 0)
        layout.setSpacing(10)
        layout.addWidget(self.model_label)
        layout.addWidget(self.device_label)

    def set_model(self, text: str, tooltip: str = "") -> None:
        self.model_label.setText(text)
        self.model_label.setToolTip(tooltip)

    def set_device(self, text: str) -> None:
        self.device_label.setText(text)
        self.device_label.setVisible(bool(text))


class ModelView(QObject):
    """The banner and the status-bar labels, following a `ModelController`. The banner shows
    while there is no model, until the user dismisses it ("Label by Hand"); it comes back when
    they ask for a prediction. Whether it is dismissed is the project's (the window keeps it
    per project: reopening a project labelled by hand does not bring it back)."""

    banner_dismissed = Signal(bool)  # dismissed ("Label by Hand"), or back (a model wanted)

    def __init__(self, model, say: Callable[[str, int], None], parent: QObject | None = None):
        super().__init__(parent)
        self._model = model
        self._say = say
        self.banner = ModelBanner()
        self.status = ModelStatus()
        self._dismissed = False
        self.banner.checkpoint_requested.connect(model.choose_checkpoint)
        self.banner.download_requested.connect(model.download_coco)
        self.banner.dismissed.connect(self._on_banner_dismissed)
        model.state_changed.connect(self.refresh)
        model.model_wanted.connect(self._on_model_wanted)

    def project_opened(self, *, dismissed: bool = False) -> None:
        """A project was opened; `dismissed`: the banner was dismissed in it before."""
        self._dismissed = dismissed

    def refresh(self, project_open: bool = True) -> None:
        m = self._model
        info = m.info
        tip = (f"{info.source}: {info.preset} preset, {len(info.categories)} categories; "
               f"predictions stored as {info.key!r}") if info else m.message
        self.status.set_model(m.describe() if m.project_open else "", tip)
        self.status.set_device(info.device if info else "")
        if m.state in ("missing", "failed") and not self._dismissed:
            self.banner.show_message(m.message, failed=m.state == "failed")
        else:
            self.banner.hide()

    def _on_model_wanted(self) -> None:
        if self._dismissed:
            self._dismissed = False
            self.banner_dismissed.emit(False)
        self.refresh()

    def _on_banner_dismissed(self) -> None:
        self._dismissed = True
        self.banner_dismissed.emit(True)
        self._say("Label a few images by hand and mark them reviewed; then fine-tune a model "
                  "on them. Model ▸ Load Model Checkpoint… brings a model in any time.", 15000)
