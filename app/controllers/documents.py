"""The open project's image documents: one `mrcnn.editing.document.ImageDocument` (one undo stack)
per
image, made when the image is first edited and kept while the project is open.

Only the shown image's document keeps decoded masks; the others drop theirs (their history
stays, bounded by each document's byte budget). The least recently used documents beyond
`limit` are forgotten, history and all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from mrcnn.editing.document import DocumentChange, ImageDocument
from mrcnn.store.project import Project

#: How many images keep their undo history while the project is open.
DEFAULT_LIMIT = 64


class DocumentSet:
    """Image id → ImageDocument for one project; every change is passed to `on_change`."""

    def __init__(self, on_change: Callable[[int, DocumentChange], None],
                 limit: int = DEFAULT_LIMIT):
        self._on_change = on_change
        self._limit = max(1, limit)
        self._project: Project | None = None
        self._docs: OrderedDict[int, tuple[ImageDocument, Callable[[], None]]] = OrderedDict()

    def reset(self, project: Project | None) -> None:
        """Forget every document (and its history); edit `project` from now on."""
        for _doc, unsubscribe in self._docs.values():
            unsubscribe()
        self._docs.clear()
        self._project = project

    def get(self, image_id: int) -> ImageDocument:
        """The image's document (made now if needed); the others drop their decoded masks."""
        entry = self._docs.get(image_id)
        if entry is None:
            if self._project is None:
                raise RuntimeError("no project to edit")
            doc = ImageDocument(self._project, image_id)
            unsubscribe = doc.subscribe(lambda change: self._on_change(image_id, change))
            entry = self._docs[image_id] = (doc, unsubscribe)
        self._docs.move_to_end(image_id)
        for other, (doc, _u) in self._docs.items():
            if other != image_id:
                doc.drop_cache()
        while len(self._docs) > self._limit:
            _id, (_doc, unsubscribe) = self._docs.popitem(last=False)
            unsubscribe()
        return entry[0]

    def peek(self, image_id: int) -> ImageDocument | None:
        """The image's document if it has one already (nothing is made)."""
        entry = self._docs.get(image_id)
        return entry[0] if entry else None
