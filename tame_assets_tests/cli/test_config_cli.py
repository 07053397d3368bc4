"""The CLI and the project file: `tame init`, `--config` on every command, flags over the file, `tame ui`
handing the same file to `dagster dev`, and typed errors (one line, exit 2) told apart from bugs."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.config import GROUPS, TameSettings, load_settings

runner = CliRunner()
COMMANDS = [
    "demo",
    "materialize",
    "months",
    "info",
    "ui",
    "init",
    "classify",
    "train",
    "sql",
    "skymap",
    "keogram",
    "movie",
    "find",
]


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("TAME_CONFIG", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_init_writes_every_group_and_loads_back_to_the_defaults(project):
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    path = project / "tame.toml"
    data = tomllib.loads(path.read_text())
    assert list(data) == list(GROUPS)  # every group, in order
    for group, keys in GROUPS.items():
        missing = set(keys) - set(data[group]) - {"refresh_days"}  # None: written commented out
        assert not missing, (group, missing)
    loaded = load_settings()
    assert loaded.config_file == str(path) and loaded.data_root == str(project / "data")
    assert loaded.compute_settings == TameSettings().compute_settings and loaded.compute == "local"
    defaults = dataclasses.replace(
        TameSettings(), data_root=str(project / "data"), compute="local", config_file=str(path)
    )
    assert loaded == defaults
    again = runner.invoke(app, ["init"])  # never overwrites without --force
    assert again.exit_code == 2 and again.output.strip() == f"Error: {path.name} exists; pass --force to overwrite it"
    path.write_text("[model]\n")
    assert runner.invoke(app, ["init", "--force"]).exit_code == 0 and "[kubernetes]" in path.read_text()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_config(command):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and ("--config" in result.output or command == "init"), result.output


def test_flags_override_the_file_for_one_command(project, tmp_path):
    (project / "tame.toml").write_text('[storage]\ndata_root = "from-file"\n')
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0 and f"data root: {project / 'from-file'}" in result.output, result.output
    result = runner.invoke(app, ["info", "--data-root", str(tmp_path / "flag")])
    assert result.exit_code == 0 and f"data root: {tmp_path / 'flag'}" in result.output
    other = tmp_path / "other.toml"
    other.write_text('[storage]\ndata_root = "elsewhere"\n')
    result = runner.invoke(app, ["info", "--config", str(other)])
    assert result.exit_code == 0 and f"data root: {tmp_path / 'elsewhere'}" in result.output


def test_a_bad_project_file_is_one_line_exit_2(project, tmp_path):
    (project / "tame.toml").write_text('[archives]\nsource = "remotee"\n')
    for args in (["info"], ["materialize", "--month", "2010-12", "--select", "magnetometer"], ["sql", "select 1"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.strip() == (
            f"Error: {project / 'tame.toml'}: [archives] source = 'remotee': expected one of sample, remote"
        )
    assert not (project / "data").exists()


def test_a_bug_keeps_its_traceback(project, monkeypatch):
    """Only the typed errors are usage errors: any other ValueError is a bug and is not hidden."""
    import tame_assets.defs.runner as runner_module

    def broken(*args, **kwargs):
        raise ValueError("internal invariant broken")

    monkeypatch.setattr(runner_module, "materialize_selection", broken)
    result = runner.invoke(app, ["materialize", "--select", "oath_images"])
    assert isinstance(result.exception, ValueError) and result.exit_code == 1
    assert "Error:" not in result.output


def test_ui_hands_dagster_dev_the_same_project_file(project, tmp_path, monkeypatch):
    import tame_assets.cli.pipeline as pipeline

    path = project / "tame.toml"
    path.write_text(
        '[storage]\ndata_root = "root"\n[compute]\nmode = "dask-local"\nn_workers = 3\n'
        '[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\n'
    )
    calls = []
    monkeypatch.setattr(pipeline.subprocess, "call", lambda command, env, cwd: calls.append((command, env, cwd)) or 0)
    result = runner.invoke(app, ["ui", "--port", "3999"])
    assert result.exit_code == 0, result.output
    command, env, cwd = calls[0]
    assert env["TAME_CONFIG"] == str(path) and env["DAGSTER_HOME"] == str(project / "root" / "dagster_home") == str(cwd)
    assert command[-2:] == ["-m", "tame_assets.defs.definitions"] and "3999" in command
    assert "TAME_DATA_ROOT" not in env
    # a flag changes the settings: the child gets a file of exactly the settings in effect
    result = runner.invoke(app, ["ui", "--data-root", str(tmp_path / "flag")])
    assert result.exit_code == 0, result.output
    command, env, cwd = calls[1]
    child = load_settings(env["TAME_CONFIG"])
    assert env["TAME_CONFIG"] == str(tmp_path / "flag" / "dagster_home" / "tame.ui.toml")
    assert child.data_root == str(tmp_path / "flag") and child.station("GAKO").camera == "gako"
    assert child.compute_settings.mode == "dask-local" and child.compute_settings.n_workers == 3
