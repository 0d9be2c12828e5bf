"""The SAM-family model from the window: Model ▸ Interactive Segmentation Model… picks its
encoder and decoder ONNX files (their sha256 kept in the UI settings, the model reloaded at
the next start), the image embeddings computed in the "sam" lane (the image shown and the
next one), and the decoder run there per click for the Click → Mask tool. Nothing runs on the
GUI thread; nothing is downloaded. The model itself is `mrcnn.serving.sam`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMainWindow

from app.worker import Job
from mrcnn.errors import MrcnnError
from mrcnn.io.images import file_sha256, load_image
from mrcnn.io.remote import RemoteImage
from mrcnn.serving.sam import Click, SamAnswer, SamModel, onnxruntime_available

log = logging.getLogger(__name__)

NO_MODEL = ("Click → Mask needs a SAM-family model (SAM, MobileSAM, EfficientSAM exported to "
            "ONNX): Model ▸ Interactive Segmentation Model… picks its encoder and decoder "
            "files. Nothing is downloaded.")
NO_RUNTIME = ("Click → Mask runs SAM-family models with ONNX Runtime, which is not installed: "
              "pip install -e \".[sam]\"")


@dataclass(frozen=True)
class LoadedSam:
    model: SamModel
    encoder_sha256: str
    decoder_sha256: str


def load_sam_job(ctx, encoder: str, decoder: str) -> LoadedSam:
    """Job: check and load the two files (InteractiveModelError names what is wrong)."""
    enc_sha, dec_sha = file_sha256(encoder), file_sha256(decoder)
    ctx.check()
    return LoadedSam(SamModel(encoder, decoder), enc_sha, dec_sha)


def embed_job(ctx, model: SamModel, image_id: int, path: str) -> int:
    """Job: the image's embedding, kept in the model (the slow encoder)."""
    if not model.has_embedding(image_id):
        ctx.check()
        model.embedding(image_id, load_image(path))
    return image_id


def segment_job(ctx, model: SamModel, image_id: int, path: str, clicks: tuple[Click, ...],
                previous, refining=None) -> SamAnswer:
    """Job: the decoder on the clicks (the embedding first, when it is not kept yet), with
    the previous answer's logits as context, else the mask being refined (`refining`, an
    (H, W) bool mask) when there is one."""
    image = None if model.has_embedding(image_id) else load_image(path)
    ctx.check()
    embedding = model.embedding(image_id, image)
    if previous is None and refining is not None:
        previous = model.mask_prompt(embedding, refining)
    return model.segment(embedding, clicks, previous=previous)


class SamController(QObject):
    """Holds the loaded SAM model (used only in its lane's jobs) and its files."""

    changed = Signal()

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._w = window
        self._runner = window.runner
        self._fb = window.feedback
        self._ui = window.ui
        self.model: SamModel | None = None
        self.loading: Job | None = None
        window.actions["choose_sam"].triggered.connect(self.choose)
        window.canvas.image_shown.connect(self._on_canvas_image_shown)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def missing_message(self) -> str:
        if self.loading is not None:
            return "The SAM model is still loading"
        return NO_MODEL if onnxruntime_available() else NO_RUNTIME

    def restore(self) -> None:
        """Load the model picked in an earlier session, when its files are still there."""
        files = self._ui.sam_model()
        encoder, decoder = files.get("encoder"), files.get("decoder")
        if encoder and decoder and onnxruntime_available() and Path(encoder).is_file() \
                and Path(decoder).is_file():
            self.load(encoder, decoder, quiet=True)

    def choose(self) -> None:
        """Model ▸ Interactive Segmentation Model…: the encoder, then the decoder file."""
        start = self._ui.last_dir("sam")
        encoder, _ = QFileDialog.getOpenFileName(
            self._w, "SAM encoder (ONNX): runs once per image", start, "ONNX models (*.onnx)")
        if not encoder:
            return
        decoder, _ = QFileDialog.getOpenFileName(
            self._w, "SAM decoder (ONNX): runs per click", str(Path(encoder).parent),
            "ONNX models (*.onnx)")
        if decoder:
            self._ui.set_last_dir("sam", Path(encoder).parent)
            self.load(encoder, decoder)

    def load(self, encoder: str, decoder: str, *, quiet: bool = False) -> Job:
        job = self._runner.submit(load_sam_job, encoder, decoder, lane="sam",
                                  name="loading the SAM model")
        self.loading = job

        def done(loaded: LoadedSam) -> None:
            before = self._ui.sam_model()
            changed = (before.get("encoder") == encoder and before.get("encoder_sha256")
                       not in (None, loaded.encoder_sha256))
            self.model = loaded.model
            self._ui.set_sam_model({"encoder": encoder, "decoder": decoder,
                                    "encoder_sha256": loaded.encoder_sha256,
                                    "decoder_sha256": loaded.decoder_sha256})
            note = " (the encoder file changed since it was picked)" if changed else ""
            if not quiet or changed:
                self._fb.say(f"SAM model ready: {Path(encoder).name} + {Path(decoder).name} "
                             f"(sha256 {loaded.encoder_sha256[:12]}…, "
                             f"{loaded.decoder_sha256[:12]}…){note}", 10000)
            self._prefetch()
            self.changed.emit()

        def failed(message: str) -> None:
            self._fb.report(f"Cannot use this SAM model: {message}", box=not quiet)

        def finished() -> None:
            if self.loading is job:
                self.loading = None

        job.succeeded.connect(done)
        job.failed.connect(failed)
        job.finished.connect(finished)
        return job

    def segment(self, image_id: int, clicks: tuple[Click, ...], previous,
                refining=None) -> Job | None:
        """The decoder's answer to the clicks on an image, as a job (`segment_job`); None
        without a model."""
        if self.model is None:
            return None
        return self._runner.submit(segment_job, self.model, image_id, self._path(image_id),
                                   clicks, previous, refining, lane="sam", name="SAM",
                                   priority=2)

    def _path(self, image_id: int) -> str | RemoteImage:
        c = self._w.controller
        return c.image_file(c.image(image_id))

    def _on_canvas_image_shown(self, _image_id: int) -> None:
        self._prefetch()

    def _prefetch(self) -> None:
        """Embed the image shown and the next one in the background."""
        if self.model is None or not self._w.controller.is_open:
            return
        current = self._w.image_list.current_id
        ahead = self._w.image_list.neighbor(current, +1) if current is not None else None
        for image_id in (current, ahead):
            if image_id is not None and not self.model.has_embedding(image_id):
                try:
                    path = self._path(image_id)
                except MrcnnError:
                    continue
                job = self._runner.submit(embed_job, self.model, image_id, path, lane="sam",
                                          name="SAM embedding")
                job.failed.connect(lambda message: log.warning("SAM embedding: %s", message))
