"""``tame replay`` into a folder, then ``tame live`` on it (the asset events it records: tests/defs/test_live.py)."""

import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.config import TameSettings
from tame_assets.warehouse.store import Warehouse
from tame_assets_tests.live.conftest import fit_classifier

runner = CliRunner()


@pytest.fixture()
def night_frames(sample_archive):
    return sorted((sample_archive / "asim").rglob("nya4_*.png"), key=lambda p: p.name)[:2]


def test_replay_then_live_catalogs_every_frame(night_frames, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("TAME_CONFIG", raising=False)
    settings = TameSettings(data_root=str(tmp_path / "data"))
    fit_classifier(settings.paths.classifier_path)  # where the oath_classifier asset puts it
    night = tmp_path / "night"
    night.mkdir()
    for frame in night_frames:
        (night / frame.name).write_bytes(frame.read_bytes())
    played = runner.invoke(app, ["replay", "--from", str(night), "--to", str(tmp_path / "watch"), "--speed", "0"])
    assert played.exit_code == 0, played.output
    assert "replayed 2 files" in played.output
    result = runner.invoke(
        app,
        ["live", "--watch", str(tmp_path / "watch"), "--data-root", str(tmp_path / "data"), "--poll", "0.1"]
        + ["--idle-exit", "1", "--no-dagster"],
    )
    assert result.exit_code == 0, result.output
    assert "live NYA: 2 rows" in result.output
    assert Warehouse(settings.paths).sql("SELECT count(*) AS n FROM aurora_catalog_live")["n"][0] == 2
    no_watch = runner.invoke(app, ["live", "--data-root", str(tmp_path / "data")])
    assert no_watch.exit_code == 2 and "give --watch FOLDER" in no_watch.output
