"""Typed errors, all in one place. Every message names the file or record at fault and the
reason. Every error the library raises on purpose is a `MrcnnError`: a caller that shows
errors to people catches that one class. Cancellations (`ModelCancelled`,
`TrainingCancelled`) are `MrcnnError`s too: a handler that must tell them apart catches them
first. Torch-free and Qt-free."""


class MrcnnError(Exception):
    """Base of every error the library raises on purpose."""


# ---------------------------------------------------------------- files and projects
class ImageReadError(MrcnnError):
    """An image file cannot be read (missing, truncated, not an image, too large...)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


class DatasetFormatError(MrcnnError):
    """Labelled data (COCO, YOLO-seg, mask PNGs, labelme, VOC) is invalid or cannot be written."""


class CocoFormatError(DatasetFormatError):
    """A COCO file is invalid; the message names the bad record."""


class KeypointError(MrcnnError):
    """A keypoint schema or a set of keypoints that breaks the rules (the message says which)."""


class ProjectError(MrcnnError):
    """A project cannot be created, opened or changed as asked."""


class ProjectLockedError(ProjectError):
    """The project is already open for writing by another process."""


class DownloadError(MrcnnError):
    """A download failed (unreachable, too slow, refused, incomplete or corrupt)."""


class RemoteStorageError(MrcnnError):
    """Images under a URL cannot be reached (connection, credentials, missing plugin)."""

    def __init__(self, url, reason: str, hint: str = ""):
        """The message names the URL, the reason and (`hint`) what to do."""
        self.url = str(url)
        self.reason = reason
        self.hint = hint
        super().__init__(f"cannot read {self.url}: {reason}" + (f". {hint}" if hint else ""))


# ---------------------------------------------------------------- editing
class EditError(MrcnnError):
    """An edit cannot be made as asked (empty mask, unknown or foreign instance, ...)."""


class HistoryError(MrcnnError):
    """Undo or redo no longer matches the project; the history was cleared, the project kept."""


class StaleEditError(HistoryError):
    """A command's undo/redo found the project not in the state it expects."""


class MaskToolError(MrcnnError):
    """A mask tool cannot do what was asked (bad input shape, empty polygon, GrabCut failed)."""


# ---------------------------------------------------------------- models
class NoWeightsError(MrcnnError):
    """No model weights are available; the message lists the options."""


class CheckpointError(MrcnnError):
    """A checkpoint cannot be used (unsafe, corrupt, wrong architecture, wrong categories)."""


class CategoryMismatchError(CheckpointError):
    """A checkpoint was trained for other categories than the ones asked for."""


class ModelCancelled(MrcnnError):
    """A model load (download) was cancelled by its caller."""


class InteractiveModelError(MrcnnError):
    """An interactive segmentation model (SAM-family ONNX files) cannot be used."""


class ModelProcessError(MrcnnError):
    """The model process stopped (crashed, killed, out of memory) or cannot be started."""


# ---------------------------------------------------------------- training
class TrainingError(MrcnnError):
    """Training cannot go on (non-finite loss, no data, ...)."""


class TrainingOutOfMemory(TrainingError):
    """A training step ran out of device memory (on a GPU the batch is halved)."""


class TrainingCancelled(MrcnnError):
    """The user cancelled training; the partial model is to be discarded."""


class EventFormatError(MrcnnError, ValueError):
    """A line is no training event (not JSON, not an object, unknown kind, bad field)."""
