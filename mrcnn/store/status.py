"""The image status lifecycle, in one place. Every module that moves an image from one
status to another, or asks which images are still to be done, asks here.

    new ──predicted──▶ predicted ──edited──▶ in_review ──reviewed──▶ reviewed
     └──────────────────edited──────────────────▲   ◀──not reviewed───┘

An image's *status* is not an instance's *state* (accepted / pending): an image in review
holds accepted and pending instances alike.
"""

from __future__ import annotations

from mrcnn.store.records import ImageStatus

#: Images a person has not finished: predicted ahead, offered for review, re-predicted by a
#: new model version.
UNREVIEWED: tuple[ImageStatus, ...] = (ImageStatus.NEW, ImageStatus.PREDICTED,
                                       ImageStatus.IN_REVIEW)


def after_predicting(status: str) -> ImageStatus:
    """A model's predictions were stored: a new image becomes predicted; nothing else moves
    (predictions never undo a person's work)."""
    now = ImageStatus(status)
    return ImageStatus.PREDICTED if now is ImageStatus.NEW else now


def after_editing(status: str) -> ImageStatus:
    """A person changed the image's annotations: an unfinished image is now in review; a
    reviewed one stays reviewed (its edit changes training data, which the window says)."""
    now = ImageStatus(status)
    if now in (ImageStatus.NEW, ImageStatus.PREDICTED):
        return ImageStatus.IN_REVIEW
    return now


def after_unreviewing(status: str) -> ImageStatus:
    """"Mark Not Reviewed": a reviewed image goes back to review (it holds a person's work)."""
    now = ImageStatus(status)
    return ImageStatus.IN_REVIEW if now is ImageStatus.REVIEWED else now


def after_import(recorded: str) -> ImageStatus:
    """The status an image gets from its record in our own COCO export: reviewed stays
    reviewed (with no objects it is a true negative); anything else that arrives with a
    person's instances is in review."""
    return ImageStatus.REVIEWED if recorded == "reviewed" else ImageStatus.IN_REVIEW


def is_unreviewed(status: str) -> bool:
    return ImageStatus(status) in UNREVIEWED
