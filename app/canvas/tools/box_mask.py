"""Box → Mask: drag a box around an object; the project's own model answers with its mask
(its RoI heads over the image's features, kept in the model process since the image was
predicted: no second backbone run), its category and score. A new accepted instance, one
undoable step. With no model loaded the box goes to GrabCut, and the status bar says so."""

from __future__ import annotations

from app.canvas.tools.shapes import BoxGrabCutTool
from mrcnn.serving.session import BoxAnswer


class BoxMaskTool(BoxGrabCutTool):
    name = "boxmask"

    def _run(self, box: tuple[float, float, float, float]) -> None:
        doc = self.host.document()
        job = self.host.box_mask_job(doc.image_id, box) if doc is not None else None
        if job is None:
            if doc is not None:
                self.host.say("No model loaded: Box → Mask used GrabCut", 0)
            super()._run(box)
            return

        def done(answer: BoxAnswer) -> None:
            if not answer.rle.area:
                self.host.say("The model found no object in the box; try GrabCut (R) or a "
                              "closer box")
                return
            category = self.host.category_for_model_name(answer.category)
            if category is None:
                return
            new = self.host.commit("Box → Mask", lambda d: d.add_instance(
                answer.rle.decode(), category, label="Box → Mask"))
            self.host.select_new(new)
            source = "kept features" if answer.cached else "features computed now"
            self.host.say(f"Box → Mask: {answer.category} {answer.score:.2f} "
                          f"({answer.seconds * 1000:.0f} ms, {source})")

        self._track(job, "Box → Mask", "Box → Mask: asking the model…", done)
