"""Hostile checkpoints: refused by name with the reason, payloads never run, project unchanged."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from hostile_helpers import _one_line_error
from hostile_helpers import project as project  # the fixture, for the tests below

from mrcnn.errors import CheckpointError
from mrcnn.model.checkpoint import save_checkpoint
from mrcnn.model.weights import load_model
from mrcnn.store.project import Project


# ---------------------------------------------------------------- checkpoints
class Payload:
    """Unpickling this calls open(path, "w"): a file appears if the payload ever runs."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def r18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(2)
    from mrcnn.model.presets import build_model

    return build_model(preset="r18", num_classes=3).state_dict()


def _version(project: Project, write) -> None:
    """Register models/v1.pt (written by `write(path)`) as the project's active version."""
    path = project.models_dir / "v1.pt"
    write(path)
    project.add_model_version("models/v1.pt", "r18", activate=True)


def _cats(project: Project) -> list[str]:
    return [c.name for c in project.categories()]


def _ours(state, categories=("disc", "square"), preset="r18", **extra):
    def write(path):
        save_checkpoint(path, state_dict=state, preset=preset, categories=list(categories),
                        metadata=extra)
    return write


def _torch_save(obj):
    return lambda path: torch.save(obj, path)


def _cut(write, size: int):
    """`write`, then keep only the first `size` bytes (a copy or download that stopped)."""
    def cut(path):
        write(path)
        path.write_bytes(path.read_bytes()[:size])
    return cut


def _bytes(data: bytes):
    return lambda path: path.write_bytes(data)


CHECKPOINTS = {
    # id: (writer of models/v1.pt given (state, tmp_path), words the CheckpointError has)
    "pickle-payload": (lambda s, t: _torch_save({
        "format": "mrcnn-studio/1", "preset": "r18", "categories": ["disc", "square"],
        "state_dict": s, "metadata": {"x": Payload(t / "payload-ran")}}),
        "refused to load", "it contains Python objects (io.open)"),
    "legacy-format-payload": (lambda s, t: lambda path: torch.save(
        {"x": Payload(t / "payload-ran")}, path, _use_new_zipfile_serialization=False),
        "refused to load", "it contains Python objects (io.open)"),
    "bare-pickle-payload": (lambda s, t: _bytes(pickle.dumps(Payload(t / "payload-ran"))),
                            "is not a readable checkpoint (not a PyTorch file)"),
    "other-architecture": (lambda s, t: _ours(s, preset="r50v2"),
                           "does not fit the r50v2 architecture", "missing keys"),
    "other-categories": (lambda s, t: _ours(s, categories=("cat", "dog")),
                         "was trained for other categories than the project's",
                         "missing 'disc', 'square'; extra 'cat', 'dog'"),
    "categories-and-rows-disagree": (lambda s, t: _ours(s, categories=("disc", "square", "x")),
                                     "names 3 categories but its predictor has 2"),
    "unknown-preset": (lambda s, t: _ours(s, preset="r101-custom"), "unknown preset"),
    "non-tensor-weight": (lambda s, t: _torch_save({
        "format": "mrcnn-studio/1", "preset": "r18", "categories": ["disc", "square"],
        "state_dict": {**s, "rpn.head.conv.0.0.weight": "nope"}}),
        "rpn.head.conv.0.0.weight is not a tensor"),
    "truncated": (lambda s, t: _cut(_ours(s), 4096), "is not a readable checkpoint"),
    "zero-bytes": (lambda s, t: _cut(_ours(s), 0), "is not a readable checkpoint (file is "
                                                    "empty, 0 bytes)"),
    "json-not-torch": (lambda s, t: _bytes(b'{"format": "mrcnn-studio/1"}'),
                       "is not a readable checkpoint (not a PyTorch file)"),
    "missing-file": (lambda s, t: lambda path: None, "not found"),
}


@pytest.mark.parametrize("case", CHECKPOINTS, ids=list(CHECKPOINTS))
def test_a_bad_active_version_is_refused_by_name_and_changes_nothing(case, project, helpers,
                                                                    r18_state, tmp_path):
    make, *words = CHECKPOINTS[case]
    _version(project, make(r18_state, tmp_path))
    before = helpers.project_state(project)
    files = sorted(p.name for p in project.models_dir.iterdir())
    with pytest.raises(CheckpointError) as info:
        load_model(project=project, source="auto", categories=_cats(project))
    message = str(info.value)
    for w in words:
        assert w in message, message
    assert str(project.models_dir / "v1.pt") in message
    assert not (tmp_path / "payload-ran").exists()
    assert helpers.project_state(project) == before
    assert sorted(p.name for p in project.models_dir.iterdir()) == files


def test_predict_with_a_pickle_payload_is_one_error_line(project, helpers, r18_state,
                                                         tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    CHECKPOINTS["pickle-payload"][0](r18_state, tmp_path)(evil)
    before = helpers.project_state(project)
    project.close()
    err = _one_line_error(["predict", project.folder, "--model", evil], capsys)
    assert "refused to load" in err and "evil.pt" in err
    assert not (tmp_path / "payload-ran").exists()
    with Project.open(project.folder, read_only=True) as p:
        assert helpers.project_state(p) == before
