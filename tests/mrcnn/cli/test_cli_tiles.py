"""`python -m mrcnn predict PROJECT --tiles auto|off|SIZE`: parsed, handed to
predict_project, and a bad value is one clear error line before any model loads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mrcnn.cli import model as cli_model
from mrcnn.cli.main import build_parser, main
from mrcnn.serving import predict as serving_predict
from mrcnn.serving.predict import PredictReport
from mrcnn.store.project import Project


def test_the_option_is_parsed_and_auto_by_default():
    parse = build_parser().parse_args
    assert parse(["predict", "p"]).tiles == "auto"
    assert parse(["predict", "p", "--tiles", "off"]).tiles == "off"
    assert parse(["predict", "p", "--tiles", "AUTO"]).tiles == "auto"
    assert parse(["predict", "p", "--tiles", "640"]).tiles == 640


@pytest.mark.parametrize("bad", ["huge", "8", "-1"])
def test_a_bad_value_is_one_clear_error(bad, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "p", "--tiles", bad])
    err = capsys.readouterr().err
    assert "--tiles" in err and "tiles must be 'auto', 'off' or a tile size in pixels" in err


@pytest.mark.parametrize(("flag", "want"), [([], "auto"), (["--tiles", "off"], "off"),
                                           (["--tiles", "512"], 512)])
def test_the_setting_reaches_predict_project(flag, want, tmp_path, monkeypatch, capsys):
    (tmp_path / "images").mkdir()
    Project.create(tmp_path / "project", tmp_path / "images").close()
    loaded = SimpleNamespace(model=None, categories=["a"], version_id=None, source="stand-in")
    monkeypatch.setattr(cli_model, "_load_model", lambda *a, **k: (loaded, "stand-in"))
    seen: list[dict] = []

    def fake_predict_project(project, model, categories, **kwargs):
        seen.append(kwargs)
        kwargs["tile_progress"](3, 7)  # the per-tile line
        return PredictReport(device="cpu")

    monkeypatch.setattr(serving_predict, "predict_project", fake_predict_project)
    assert main(["predict", str(tmp_path / "project"), "--device", "cpu", *flag]) == 0
    assert [k["tiles"] for k in seen] == [want]
    assert "in tiles: 3/7" in capsys.readouterr().err
