"""One settings object: the Dagster resource carries exactly TameSettings' fields; paths are built in
one place (also for object-store roots); the CLI hands settings over explicitly; the project file
tame.toml sets them (precedence, groups, typed one-line errors, relative paths, stations, compute)."""

from __future__ import annotations

import dataclasses
import os
import re
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
            continue  # '' on the resource = the dataclass default (./data)
        value = getattr(defaults, f.name)
        assert (tuple(value) if isinstance(value, list) else value) == f.default, f.name


def test_resource_round_trips_settings(tmp_path):
    settings = TameSettings(
        data_root=str(tmp_path),
        asi_station="GILL",
        wavelengths_nm=(557.7, 630.0),
        benchmark_backbones=("efficientnet_lite1",),
        labelled_set_fine_tune=True,
    )
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

    monkeypatch.delenv("TAME_CONFIG", raising=False)
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


# ----------------------------------------------------------------------------- the project file tame.toml
from tame_assets.config import (  # noqa: E402
    GROUPS,
    SettingsError,
    config_values,
    find_config,
    load_settings,
    render_config,
)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project folder as working directory, no $TAME_CONFIG; ``write(text)`` writes its tame.toml."""
    monkeypatch.delenv("TAME_CONFIG", raising=False)
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)

    def write(text: str, name: str = "tame.toml"):
        path = folder / name
        path.write_text(text)
        return path

    return write


def test_precedence_flag_over_file_over_default(project, tmp_path, monkeypatch):
    assert find_config() is None and load_settings() == TameSettings()  # no file: the defaults
    local = project('[model]\nbackbone = "efficientnet_lite2"\n[merges]\nmagnetometer_tolerance_s = 30\n')
    settings = load_settings()  # ./tame.toml in the working directory
    assert settings.config_file == str(local) and settings.backbone == "efficientnet_lite2"
    assert settings.magnetometer_tolerance_s == 30.0 and settings.ceilometer_tolerance_s == 300.0  # default kept
    assert load_settings(backbone="efficientnet_lite1", feature_kind=None).backbone == "efficientnet_lite1"  # a flag
    named = project('[model]\nbackbone = "resnet18"\n', name="other.toml")
    monkeypatch.setenv("TAME_CONFIG", str(named))  # $TAME_CONFIG beats ./tame.toml
    assert load_settings().backbone == "resnet18" and load_settings().config_file == str(named)
    assert load_settings(local).backbone == "efficientnet_lite2"  # --config beats $TAME_CONFIG
    monkeypatch.setenv("TAME_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match=r"^\$TAME_CONFIG .*missing.toml: no such file"):
        load_settings()


def test_relative_paths_resolve_against_the_files_folder(project, tmp_path, monkeypatch):
    path = project(
        '[storage]\ndata_root = "store"\nsample_cache = "off"\n'
        '[stations]\nfile = "more/stations.toml"\n[model]\nlabelled_set_dir = "../labels"\n'
        '[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nfolder = "gako"\n'
    )
    (path.parent / "more").mkdir()
    (path.parent / "more" / "stations.toml").write_text(
        '[KIL]\nnetwork = "uio"\ncamera = "kil1"\nwavelengths_nm = [630]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory does not matter
    settings = load_settings(path)
    assert settings.data_root == str(path.parent / "store")
    assert settings.paths.warehouse == str(path.parent / "store" / "warehouse")
    assert settings.sample_cache == "off" and settings.paths.sample_cache_dir is None
    assert settings.stations_file == str(path.parent / "more" / "stations.toml")
    assert settings.labelled_set_dir == str(tmp_path / "labels")
    assert settings.station("GAKO").folder == str(path.parent / "gako")
    assert settings.station("KIL").wavelengths_nm == (630.0,)
    assert load_settings(project("[model]\n")).data_root == str(path.parent / "data")  # no data_root: beside the file
    s3 = project('[storage]\ndata_root = "s3://bucket/prefix"\n')
    assert load_settings(s3).paths.data_root == "s3://bucket/prefix"


def test_a_station_only_in_the_project_file_is_configured(project):
    path = project(
        '[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nmagnetometer_station = "GAK"\n'
    )
    settings = load_settings()
    assert settings.station_table().codes == ["NYA", "GILL", "GAKO"]
    assert settings.station("GAKO").key_maps["magnetometer"] == {"GAKO": "GAK"}
    # the resource carries the file, so a run launched from the UI knows the station
    resource = TameResource.from_settings(settings)
    assert resource.config_file == str(path) and resource.settings.station("GAKO").camera == "gako"
    with pytest.raises(
        ValueError,
        match=r"station 'XYZ' is not configured \(configured: NYA, GILL, GAKO\); "
        r"add a \[stations.XYZ\] table to tame.toml",
    ):
        settings.station("XYZ")


def test_compute_table_holds_mode_and_cluster_parameters(project):
    project(
        '[compute]\nmode = "slurm"\nqueue = "normal"\ncores = 8\nprocesses = 4\nmemory = "32GB"\n'
        'job_script_prologue = ["module load python/3.11"]\n'
    )
    compute = load_settings().compute_settings
    assert (compute.mode, compute.queue, compute.cores, compute.processes) == ("slurm", "normal", 8, 4)
    assert compute.job_script_prologue == ("module load python/3.11",)
    flagged = load_settings(compute="dask-local").compute_settings  # --compute: the mode for one command
    assert flagged.mode == "dask-local" and flagged.cores == 8


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[storge]\ndata_root = "x"\n', "unknown group [storge]; groups: storage, archives,"),
        ('[storage]\ndata_rot = "x"\n', "unknown key [storage] data_rot; keys of [storage]: data_root, local_root,"),
        ('[archives]\nsource = "remotee"\n', "[archives] source = 'remotee': expected one of sample, remote"),
        ('[archives]\nmax_image_pixels = "big"\n', "[archives] max_image_pixels = 'big': expected an integer"),
        ("[archives]\nmax_image_pixels = 0\n", "[archives] max_image_pixels = 0: expected an integer ≥ 1"),
        (
            "[primary_station]\nwavelengths_nm = 557.7\n",
            "[primary_station] wavelengths_nm = 557.7: expected a list of numbers",
        ),
        ('[model]\nlabelled_set_fine_tune = "yes"\n', "[model] labelled_set_fine_tune = 'yes': expected true or false"),
        (
            "[model]\nmin_classifier_accuracy = 2\n",
            "[model] min_classifier_accuracy = 2: expected a number between 0 and 1",
        ),
        ('[storage]\nduckdb_s3 = "ftp"\n', "[storage] duckdb_s3 = 'ftp': expected one of auto, httpfs, fsspec"),
        ('[compute]\nmode = "slurmm"\n', "[compute] mode = 'slurmm': expected one of local | dask-local"),
        ('[compute]\nqeue = "normal"\n', "unknown key [compute] qeue; keys of [compute]: mode, settings_file,"),
        ('[compute]\nmode = "slurm"\nwalltime = "1h"\n', "[compute]: compute settings: walltime '1h' is not like"),
        ('[kubernetes]\nmax_concurrent = "many"\n', "[kubernetes] max_concurrent = 'many': expected an integer"),
        (
            '[stations.GAKO]\nnetwork = "rego"\ncamera = "gako"\n',
            "[stations.GAKO] station 'GAKO': unknown network 'rego'",
        ),
        (
            '[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nfolderr = "x"\n',
            "[stations.GAKO] unknown key(s) folderr; known:",
        ),
        (
            '[stations]\nGAKO = "themis"\n',
            "unknown key [stations] GAKO; keys of [stations]: file; stations are [stations.CODE]",
        ),
        (
            '[primary_station]\nasi_station = "nya"\n',
            "[primary_station] station 'nya': a station code is 3-5 upper-case",
        ),
        ('[model]\nbackbone = "a"\nbackbone = "b"\n', "not valid TOML: Cannot overwrite a value (at line 3, column"),
        ("[model\n", "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 7)"),
    ],
)
def test_a_bad_project_file_is_one_line_naming_file_key_and_allowed_values(project, text, expected):
    path = project(text)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message


def test_every_key_of_every_group_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    rendered = render_config()
    for group, keys in GROUPS.items():
        assert f"[{group}]" in docs and f"[{group}]" in rendered, group
        for key, spec in keys.items():
            assert f"`{key}`" in docs, f"docs/configuration.md lacks [{group}] {key}"
            assert spec.doc and f"\n{key} = " in rendered or f"# {key} = " in rendered, key
    fields = {spec.field for keys in GROUPS.values() for spec in keys.values() if spec.field}
    assert fields == set(setting_names()) - {"config_file"}  # every setting has exactly one [group] key


def test_rendered_settings_load_back_unchanged(project, tmp_path):
    settings = TameSettings(
        data_root=str(tmp_path / "d"),
        wavelengths_nm=(557.7, 630.0),
        refresh_days=3,
        benchmark_backbones=("efficientnet_lite1",),
        labelled_set_fine_tune=True,
        image_requester_name='O\'Brien "quoted" \\ back',
        compute="pbs",
        k8s_gpu_concurrency=2,
    )
    path = project(render_config(settings))
    assert load_settings() == dataclasses.replace(settings, config_file=str(path))
    assert config_values(path)["refresh_days"] == 3


def test_no_environment_variable_is_read_outside_config():
    package = Path(__file__).resolve().parents[1] / "tame_assets"
    readers = [
        f"{p.relative_to(package)}:{n}"
        for p in sorted(package.rglob("*.py"))
        if p.name != "config.py" or p.parent != package
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bos\.environ\b|\bgetenv\(|import environ\b|\benviron\.get\(", line)
    ]
    assert readers == []  # settings come from tame.toml; secrets and DAGSTER_HOME from config's functions
