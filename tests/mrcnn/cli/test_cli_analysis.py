"""`python -m mrcnn errors` (a model's errors on the validation split, kept with its version and
compared with its parent's) and `python -m mrcnn hints` (label suspects), with a random r18
checkpoint: it detects nothing at the 0.5 score floor, so every accepted instance is missed
and unsupported."""

from __future__ import annotations

import json

import pytest

from mrcnn.cli.main import main
from mrcnn.store.project import Project
from mrcnn.testing.synthetic import make_synthetic_project
from mrcnn.training.error_analysis import (
    ErrorKind,
    ErrorList,
    FoundError,
    save_errors,
    stored_errors,
    truth_images,
)


def run_here(*args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import torch

    from mrcnn.model.checkpoint import save_checkpoint
    from mrcnn.model.presets import build_model
    from mrcnn.testing.synthetic import SHAPES

    torch.manual_seed(0)
    model = build_model(preset="r18", num_classes=len(SHAPES) + 1, min_size=64, max_size=64)
    path = tmp_path_factory.mktemp("r18") / "r18.pt"
    save_checkpoint(path, state_dict=model.state_dict(), preset="r18", categories=list(SHAPES))
    return path


@pytest.fixture
def folder(tmp_path, weights):
    """Synthetic shapes (2 train, 2 val images), v1 the random checkpoint, v2 its child."""
    import shutil

    folder = make_synthetic_project(tmp_path / "shapes", n_train=2, n_val=2, size=64, seed=3)
    with Project.open(folder) as p:
        shutil.copy(weights, p.models_dir / "v1.pt")
        shutil.copy(weights, p.models_dir / "v2.pt")
        v1 = p.add_model_version("models/v1.pt", "r18", activate=True)
        p.add_model_version("models/v2.pt", "r18", parent_id=v1.id)
    return folder


def test_errors_are_listed_kept_with_the_version_and_compared_with_the_parent(folder, capsys):
    with Project.open(folder, read_only=True) as p:
        images = truth_images(p)
    instances = [(im.image_id, t.instance_id) for im in images for t in im.instances]
    code, out, _err = run_here("errors", folder, "--json", capsys=capsys)
    assert code == 0
    data = json.loads(out)
    assert data["version"] == "v1" and data["images"] == 2
    assert data["counts"] == {"false_positive": 0, "missed": len(instances), "poor_fit": 0}
    assert [(e["image_id"], e["instance_id"]) for e in data["errors"]] == instances
    assert all(e["kind"] == "missed" and e["truth"]["counts"] for e in data["errors"])
    assert data["since_parent"] is None  # v1 has no parent
    with Project.open(folder, read_only=True) as p:
        kept = stored_errors(p, "v1")
    assert data["kept"].endswith("errors/v1.json") and len(kept.errors) == len(instances)

    # v1's list had a false positive v2 does not make, and v2 misses what v1 missed
    fp = FoundError(images[0].image_id, ErrorKind.FALSE_POSITIVE, "disc", 0.0, 0.9, None,
                    None, images[0].instances[0].rle)
    with Project.open(folder) as p:
        save_errors(p, "v1", ErrorList("v1", kept.image_ids, (*kept.errors, fp)))
    code, out, _err = run_here("errors", folder, "--model", "v2", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (f"v2 on 2 validation images: {len(instances)} missed, 0 false "
                        "positives, 0 poor fits")
    assert "matched to an accepted instance of the same category" in lines[1]
    assert sum(" missed " in ln for ln in lines) == len(instances)
    assert "since v1: 1 fixed, 0 new (on the 2 validation images both were scored on)" in out
    assert any(ln.strip().startswith("fixed") and "false positive disc" in ln for ln in lines)
    assert lines[-1].startswith("kept for v2 in ")


def test_without_validation_images_errors_says_so(tmp_path, capsys):
    folder = make_synthetic_project(tmp_path / "shapes", n_train=2, n_val=0, size=64)
    code, _out, err = run_here("errors", folder, capsys=capsys)
    assert code == 1
    assert "no reviewed images in the validation split" in err


def test_hints_lists_ranked_suspects(folder, capsys):
    with Project.open(folder, read_only=True) as p:
        total = sum(len(im.instances) for im in truth_images(p, [i.id for i in p.images()]))
    code, out, _err = run_here("hints", folder, "--json", "--limit", "2", capsys=capsys)
    assert code == 0
    data = json.loads(out)
    assert data["images"] == 4 and data["total"] == total and len(data["suspects"]) == 2
    # nothing detected: every accepted instance is unsupported, at the weight's score
    assert {(s["kind"], s["score"]) for s in data["suspects"]} == {("unsupported", 0.5)}
    code, out, _err = run_here("hints", folder, "--split", "val", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert " label suspects on 2 reviewed images (" in lines[0]
    assert lines[0].endswith("detections score ≥ 0.50):")
    assert len(lines) > 1 and all("no detection supports it" in ln for ln in lines[1:])


def test_hints_leaves_out_a_label_found_right_and_all_lists_it(folder, capsys):
    from mrcnn.training.label_hints import mark_right, rank_suspects

    code, out, _err = run_here("hints", folder, "--json", capsys=capsys)
    before = json.loads(out)
    first = before["suspects"][0]
    with Project.open(folder) as p:  # the window's Label Is Right on the first one
        images = truth_images(p, [i.id for i in p.images()])
        suspects = rank_suspects(images, {im.image_id: [] for im in images})
        (suspect,) = [s for s in suspects if s.instance_id == first["instance_id"]]
        mark_right(p, suspect)
    code, out, _err = run_here("hints", folder, "--json", capsys=capsys)
    after = json.loads(out)
    assert (after["total"], after["found_right"]) == (before["total"] - 1, 1)
    assert first["instance_id"] not in {s["instance_id"] for s in after["suspects"]}
    code, out, _err = run_here("hints", folder, capsys=capsys)
    assert "1 more found right earlier (--all lists them):" in out.splitlines()[0]
    code, out, _err = run_here("hints", folder, "--all", capsys=capsys)
    marked = [ln for ln in out.splitlines() if ln.endswith("[found right]")]
    assert len(marked) == 1 and f"instance {first['instance_id']} " in marked[0]
