"""SAM-family click → mask through ONNX Runtime, with stand-in ONNX models that have a SAM
export's inputs and outputs (tests/conftest.py `stand_in_sam`): the clicks go through the code
path a real model uses; a wrong or corrupt file is refused, naming it."""

from __future__ import annotations

import numpy as np
import pytest

from mrcnn.errors import InteractiveModelError
from mrcnn.io.images import file_sha256
from mrcnn.serving.sam import Click, SamModel

SAM_HALF = 10


def photo(h: int = 90, w: int = 150) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def square(cx: float, cy: float, shape, half: int = SAM_HALF) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]] + 0.5
    return np.maximum(abs(xx - cx), abs(yy - cy)) < half


def test_a_click_becomes_the_decoders_mask_at_the_images_size(stand_in_sam):
    sam = SamModel(stand_in_sam.encoder, stand_in_sam.decoder)
    assert sam.side == 64
    image = photo()
    embedding = sam.embedding("a", image)
    assert embedding.values.shape == (1, 3, 16, 16) and embedding.size == (90, 150)
    assert embedding.scale == pytest.approx(64 / 150)
    answer = sam.segment(embedding, [Click(40.0, 30.0)])
    # the click went to the decoder in the encoder's pixels and came back in the image's
    assert answer.mask.shape == (90, 150)
    assert np.array_equal(answer.mask, square(40.0, 30.0, (90, 150)))
    assert answer.score == pytest.approx(0.9)
    again = sam.segment(embedding, [Click(40.0, 30.0), Click(45.0, 33.0, positive=False)],
                        previous=answer.low_res)
    assert again.mask.shape == (90, 150) and again.low_res.shape == (1, 1, 64, 64)
    assert sam.has_embedding("a") and sam.embedding("a", None) is embedding  # kept
    with pytest.raises(KeyError):
        sam.embedding("never seen", None)
    with pytest.raises(InteractiveModelError, match="click on the object"):
        sam.segment(embedding, [])


def test_wrong_or_corrupt_files_are_refused_naming_them(stand_in_sam, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(InteractiveModelError, match=r"encoder .*junk\.onnx: not an ONNX model"):
        SamModel(junk, stand_in_sam.decoder)
    with pytest.raises(InteractiveModelError, match="no such file"):
        SamModel(tmp_path / "missing.onnx", stand_in_sam.decoder)
    with pytest.raises(InteractiveModelError, match=r"decoder .*missing the inputs"):
        SamModel(stand_in_sam.encoder, stand_in_sam.encoder)  # the encoder twice
    with pytest.raises(InteractiveModelError, match=r"encoder .*expected one input"):
        SamModel(stand_in_sam.decoder, stand_in_sam.decoder)
    assert len(file_sha256(stand_in_sam.encoder)) == 64


def test_an_existing_mask_becomes_the_decoders_context(stand_in_sam):
    sam = SamModel(stand_in_sam.encoder, stand_in_sam.decoder)
    embedding = sam.embedding("a", photo())
    mask = np.zeros((90, 150), bool)
    mask[:, :75] = True  # the left half of the image
    prompt = sam.mask_prompt(embedding, mask)
    assert prompt.shape == (1, 1, 64, 64)
    # the image fills the top 38 rows of the 64 x 64 frame (90 x 150 scaled by 64/150)
    assert (prompt[0, 0, 5:30, :28] == 10).all() and (prompt[0, 0, 5:30, 36:] == -10).all()
    assert (prompt[0, 0, 45:] == -10).all()  # the padding
    answer = sam.segment(embedding, [Click(10, 10)], previous=prompt)
    assert np.array_equal(answer.low_res, prompt)  # the stand-in echoes its mask input
