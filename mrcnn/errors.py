"""Typed errors. Every message names the file or record at fault and the reason."""


class MrcnnError(Exception):
    """Base of every error the library raises on purpose."""


class ImageReadError(MrcnnError):
    """An image file cannot be read (missing, truncated, not an image, too large...)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


class CocoFormatError(MrcnnError):
    """A COCO file is invalid; the message names the bad record."""


class ProjectError(MrcnnError):
    """A project cannot be created, opened or changed as asked."""


class ProjectLockedError(ProjectError):
    """The project is already open for writing by another process."""


class NoWeightsError(MrcnnError):
    """No model weights are available; the message lists the options."""


class TrainingError(MrcnnError):
    """Training cannot go on (non-finite loss, no data, ...)."""
