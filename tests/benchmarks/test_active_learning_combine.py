"""benchmarks/active_learning.py --combine: seeds run in separate processes give one table,
from their per-round output lines; a seed whose strategies did not all finish is left out."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.active_learning import STRATEGIES, combine_logs, print_table


def lines(seed: int, start: float, aps: dict[str, list[float]], first: int = 4,
          per_round: int = 4) -> str:
    out = [f"seed {seed}: start model on {first} images, val segm AP {start:.3f} (300 s)"]
    for strategy, values in aps.items():
        out += [f"seed {seed} {strategy:>18}: round {r}, {first + per_round * r} labelled, "
                f"val segm AP {ap:.3f} (150 s)" for r, ap in enumerate(values, 1)]
    return "\n".join(out) + "\n"


def test_two_logs_give_every_seed_and_round(tmp_path):
    a, b = tmp_path / "seed0.log", tmp_path / "seed1.log"
    a.write_text("writing 40 + 20 images ...\n" + lines(0, 0.05, {
        "random": [0.1, 0.2], "score margin": [0.11, 0.19], "mirror consistency": [0.2, 0.3]}))
    b.write_text(lines(1, 0.04, {"random": [0.12, 0.22], "score margin": [0.1, 0.2],
                                 "mirror consistency": [0.25, 0.33]}))
    got = combine_logs([a, b]).by_seed
    assert [set(s) for s in got] == [set(STRATEGIES)] * 2
    assert got[0]["mirror consistency"] == [0.05, 0.2, 0.3]
    assert got[1]["random"] == [0.04, 0.12, 0.22]


def test_an_unfinished_seed_is_left_out_and_none_is_an_error(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(lines(0, 0.05, {"random": [0.1], "score margin": [0.1]}))
    with pytest.raises(SystemExit, match="no seed"):
        combine_logs([log])


def test_one_seeds_strategies_may_come_from_several_logs_of_one_experiment(tmp_path):
    first, second = tmp_path / "first.log", tmp_path / "mirror.log"
    first.write_text(lines(0, 0.05, {"random": [0.1, 0.2], "score margin": [0.11, 0.19]}))
    second.write_text(lines(0, 0.05, {"mirror consistency": [0.2, 0.3]}))
    got = combine_logs([first, second]).by_seed
    assert got[0]["mirror consistency"] == [0.05, 0.2, 0.3]
    assert got[0]["score margin"] == [0.05, 0.11, 0.19]


def test_logs_of_different_experiments_are_refused(tmp_path):
    first, other = tmp_path / "first.log", tmp_path / "other.log"
    first.write_text(lines(0, 0.05, {"random": [0.1, 0.2], "score margin": [0.11, 0.19]}))
    other.write_text(lines(0, 0.07, {"mirror consistency": [0.2, 0.3]}))  # another start
    with pytest.raises(SystemExit, match="not of one experiment"):
        combine_logs([first, other])
    again = tmp_path / "again.log"  # the same round measured twice, differently
    again.write_text(lines(0, 0.05, {"random": [0.15, 0.2]}))
    with pytest.raises(SystemExit, match="random round 1"):
        combine_logs([first, again])


def test_the_tables_heading_is_the_design_the_logs_ran(tmp_path, capsys):
    """Not this command line's defaults: logs of 8 start images and +8 per round say so."""
    log = tmp_path / "seed0.log"
    log.write_text(lines(0, 0.05, dict.fromkeys(STRATEGIES, [0.1, 0.2, 0.3]), first=8,
                         per_round=8))
    combined = combine_logs([log])
    assert (combined.start, combined.per_round) == (8, 8)
    print_table(combined.by_seed, combined.start, combined.per_round)
    assert "over 1 seeds; 8 start images, +8 per round" in capsys.readouterr().out
    other = tmp_path / "seed1.log"  # another design: refused, not averaged in
    other.write_text(lines(1, 0.05, dict.fromkeys(STRATEGIES, [0.1, 0.2, 0.3]), first=8,
                           per_round=4))
    with pytest.raises(SystemExit, match="images per round here but 8"):
        combine_logs([log, other])


def test_the_table_pairs_the_strategies_by_seed(capsys):
    # seed-to-seed spread (about 0.05) larger than the gap; every seed ahead by 0.01 to 0.03
    by_seed = [{"random": [0.05, r], "score margin": [0.05, r],
                "mirror consistency": [0.05, r + d]}
               for r, d in [(0.10, 0.01), (0.20, 0.02), (0.15, 0.03)]]
    print_table(by_seed, 4, 4)
    out = capsys.readouterr().out
    assert "after the last round +0.020 against a spread of 0.056: not beyond the spread" in out
    assert "paired by seed, after the last round: +0.020 ± 0.006 (standard error); " \
           "ahead in 3 of 3 seeds" in out


def test_a_pretrained_start_keeps_the_features_and_starts_every_class_row_fresh(tmp_path):
    """--model CKPT (as from COCO weights): the seeds start from the checkpoint's network,
    re-laid for the project's categories; a checkpoint of other category names (what
    --pretrain writes) carries no class row over, so the start knows shapes but no class."""
    import torch

    from benchmarks.active_learning import pretrained
    from mrcnn.model.checkpoint import save_checkpoint
    from mrcnn.model.presets import build_model
    from mrcnn.store.project import Project
    from mrcnn.testing.synthetic import SHAPES, make_synthetic_project

    folder = make_synthetic_project(tmp_path / "p", n_train=2, n_val=1, size=64)
    torch.manual_seed(0)
    source = build_model(preset="r18", num_classes=len(SHAPES) + 1)
    ckpt = tmp_path / "pretrained.pt"
    save_checkpoint(ckpt, state_dict=source.state_dict(), preset="r18",
                    categories=[f"pretrained {name}" for name in SHAPES])
    args = argparse.Namespace(model=ckpt, preset="r50v2")
    model = pretrained(folder, args)
    assert args.preset == "r18"  # the rounds train the checkpoint's architecture
    got, was = model.state_dict(), source.state_dict()
    backbone = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(got[backbone], was[backbone])
    rows = "roi_heads.box_predictor.cls_score.weight"
    with Project.open(folder, read_only=True) as project:
        assert got[rows].shape[0] == len(project.categories()) + 1
    assert not torch.equal(got[rows][1:], was[rows][1:])
    assert pretrained(folder, argparse.Namespace(model=None, preset="r18")) is None
