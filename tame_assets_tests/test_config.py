"""One settings object: the Dagster resource carries exactly TameSettings' fields; paths are built in
one place (also for object-store roots); the CLI hands settings over explicitly."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tame_assets.config import PathLayout, TameSettings, setting_names
from tame_assets.defs.resources import TameResource


def test_resource_fields_are_the_settings_fields():
    resource_fields = list(TameResource.model_fields)
    assert resource_fields == setting_names()  # same names, same order: a new setting must be added to both
    defaults = TameResource()
    for f in dataclasses.fields(TameSettings):
        if f.name == "data_root":
            continue  # '' on the resource = the dataclass default ($TAME_DATA_ROOT or ./data)
        value = getattr(defaults, f.name)
        assert (tuple(value) if isinstance(value, list) else value) == f.default, f.name


def test_resource_round_trips_settings(tmp_path):
    settings = TameSettings(data_root=str(tmp_path), asi_station="GILL", wavelengths_nm=(557.7, 630.0),
                            benchmark_backbones=("efficientnet_lite1",), labelled_set_fine_tune=True)
    assert TameResource.from_settings(settings).settings == settings


def test_object_store_paths_stay_urls(tmp_path):
    layout = PathLayout.for_root("s3://bucket/prefix/", local_root=tmp_path)
    assert layout.data_root == "s3://bucket/prefix" and layout.warehouse == "s3://bucket/prefix/warehouse"
    assert layout.classifier_path == tmp_path / "models" / "oath_classifier"
    assert layout.duckdb_path == tmp_path / "tame.duckdb"
    local = PathLayout.for_root(tmp_path / "root")
    assert local.classifier_path == tmp_path / "root" / "models" / "oath_classifier"
    assert local.warehouse == str(tmp_path / "root" / "warehouse")


def test_cli_does_not_write_the_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tame_assets.cli import app

    monkeypatch.delenv("TAME_DATA_ROOT", raising=False)
    before = dict(os.environ)
    result = CliRunner().invoke(app, ["info", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert str(tmp_path) in result.output
    assert dict(os.environ) == before


@pytest.mark.parametrize("month", ["2010-13", "abc", "2010-1", "2010-00"])
def test_bad_month_is_a_one_line_usage_error(month, tmp_path):
    from typer.testing import CliRunner

    from tame_assets.cli import app

    result = CliRunner().invoke(app, ["materialize", "--month", month, "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "expected YYYY-MM" in result.output and "Traceback" not in result.output
