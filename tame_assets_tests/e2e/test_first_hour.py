"""A scientist's first hour: the CLI and the UI share one Dagster instance, the archive's months are
known and an empty month is reported in one line, `tame sql` works on real DuckDB files (queries from
files, stdin, starting with a comment; CSV / JSON / Parquet output; vector columns summarised)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tame_assets.config import SAMPLE_MONTHS, TameSettings
from tame_assets.warehouse.store import Warehouse

TAME = str(Path(sys.executable).with_name("tame"))
README = Path(__file__).resolve().parents[2] / "README.md"


def _tame(*args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([TAME, *args], capture_output=True, text=True, timeout=300, input=stdin, cwd=cwd)


@pytest.fixture()
def vector_warehouse(tmp_path) -> Path:
    """A warehouse with a 1000-float vector column and 20 columns, plus a magnetometer table."""
    wh = Warehouse(tmp_path)
    n = 3
    wh.write_partition(
        "asim_features",
        pl.DataFrame(
            {
                "file_name": [f"nya4_20101207_2334{i}0_5577_cal.png" for i in range(n)],
                "features": [[0.25 * i] * 1000 for i in range(n)],
                **{f"stat_{k}": [float(k)] * n for k in range(17)},
            },
            schema_overrides={"features": pl.List(pl.Float32)},
        ),
        "2010-12",
    )
    wh.write_partition(
        "magnetometer",
        pl.DataFrame(
            {
                "time": [dt.datetime(2010, 12, 1, 0, m) for m in range(n)],
                "station": ["NAL"] * n,
                "x_nt": [7900.0, 7901.5, 7903.0],
            }
        ),
        "2010-12",
    )
    wh.refresh_views()
    return tmp_path


def test_sql_query_starting_with_a_comment_and_vectors_summarised(vector_warehouse):
    run = _tame(
        "sql",
        "-- the feature vectors\nselect * from asim_features order by file_name",
        "--data-root",
        str(vector_warehouse),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("[1000 floats]") == 3
    header = next(line for line in run.stdout.splitlines() if "file_name" in line)
    for column in ["features", "month", *(f"stat_{k}" for k in range(17))]:  # no column squeezed to "…"
        assert f" {column} " in header, header


def test_sql_from_stdin_and_from_a_file(vector_warehouse, tmp_path):
    run = _tame("sql", "-", "--data-root", str(vector_warehouse), stdin="select sum(x_nt) as total from magnetometer")
    assert run.returncode == 0, run.stderr
    assert "23704.5" in run.stdout
    query = tmp_path / "q.sql"
    query.write_text("-- count\nselect count(*) as n from magnetometer\n")
    run = _tame("sql", "-f", str(query), "--data-root", str(vector_warehouse))
    assert run.returncode == 0, run.stderr
    assert "│ 3   │" in run.stdout


def test_sql_csv_json_and_parquet_outputs(vector_warehouse, tmp_path):
    root = str(vector_warehouse)
    csv = _tame("sql", "select time, x_nt from magnetometer order by time", "--format", "csv", "--data-root", root)
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == [
        "time,x_nt",
        "2010-12-01T00:00:00.000000,7900.0",
        "2010-12-01T00:01:00.000000,7901.5",
        "2010-12-01T00:02:00.000000,7903.0",
    ]
    js = _tame("sql", "select station, x_nt from magnetometer order by time", "--format", "json", "--data-root", root)
    assert js.returncode == 0, js.stderr
    assert json.loads(js.stdout)[1] == {"station": "NAL", "x_nt": 7901.5}
    out = tmp_path / "out" / "features.parquet"
    pq = _tame(
        "sql",
        "select file_name, features from asim_features order by 1",
        "--format",
        "parquet",
        "--out",
        str(out),
        "--data-root",
        root,
    )
    assert pq.returncode == 0, pq.stderr
    back = pl.read_parquet(out)
    assert back.height == 3 and back["features"][2].len() == 1000 and back["features"][2][0] == 0.5
    assert not list(out.parent.glob(".*.tmp"))  # written to a temporary file, then renamed
    vectors_csv = _tame(
        "sql", "select features from asim_features order by file_name limit 1", "--format", "csv", "--data-root", root
    )
    assert vectors_csv.stdout.splitlines()[1].startswith('"[0.0, 0.0,')


def test_sql_usage_errors_are_one_clear_line(vector_warehouse):
    root = str(vector_warehouse)
    run = _tame("sql", "select 1", "--format", "parquet", "--data-root", root)
    assert run.returncode == 2 and "--format parquet needs --out FILE" in run.stderr
    run = _tame("sql", "select 1", "--format", "xml", "--data-root", root)
    assert run.returncode == 2 and "'xml' is not one of table, csv, json, parquet" in run.stderr
    run = _tame("sql", "select * from nope", "--data-root", root)
    assert run.returncode == 1 and run.stderr.startswith("SQL error:") and "nope" in run.stderr


def test_available_months_from_the_archive_listing_match_the_sample(sample_archive):
    """The remote code path (listing the UiO-layout year folders) on the sample archive's HTTP server."""
    from tame_assets.sources.http import HttpClient
    from tame_assets.sources.locations import archive_image_months, available_months
    from tame_assets.sources.sample.generator import sample_locations

    settings = TameSettings(data_root=str(sample_archive.parent))
    base = sample_locations(settings.paths)["uio_base_url"]
    assert archive_image_months(HttpClient(), base, "nya4", [557.7]) == list(SAMPLE_MONTHS)
    assert archive_image_months(HttpClient(), base, "nya4", [630.0]) == []  # no such wavelength folder (404)
    assert archive_image_months(HttpClient(), base, "nope9", [557.7]) == []
    assert available_months(settings) == list(SAMPLE_MONTHS)


def test_months_command_and_a_month_without_data_is_one_line(tmp_path):
    run = _tame("months", "--data-root", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert [ln.split()[0] for ln in run.stdout.splitlines()[1:]] == list(SAMPLE_MONTHS)
    run = _tame("materialize", "--month", "2026-11", "--select", "magnetometer", "--data-root", str(tmp_path))
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "no data for 2026-11 in the configured sample archive (it has 2010-12, 2011-01; see `tame months`)"
    )
    assert not (tmp_path / "warehouse").exists()  # refused before anything ran


def test_empty_month_checks_pass_with_a_reason_and_cli_runs_land_in_the_shared_instance(tmp_path, sample_archive):
    """Dagster path for a month without data: the raw asset writes 0 rows, its checks pass and say
    why; the run is recorded in <local root>/dagster_home, the instance `tame ui` opens."""
    from dagster import AssetKey, DagsterInstance

    from tame_assets.defs.runner import materialize_selection

    settings = TameSettings(data_root=str(tmp_path / "data"))
    settings.paths.sample_archive_dir.parent.mkdir(parents=True)
    settings.paths.sample_archive_dir.symlink_to(sample_archive)  # the session's archive: not generated again
    lines: list[str] = []
    assert materialize_selection(settings, ["magnetometer"], ["2026-11", SAMPLE_MONTHS[0]], echo=lines.append)
    assert Warehouse(settings.paths).read_partition("magnetometer", "2026-11").height == 0
    assert Warehouse(settings.paths).read_partition("magnetometer", SAMPLE_MONTHS[0]).height > 0
    assert [ln.split(" (")[0] for ln in lines] == ["✓ [2026-11] magnetometer", f"✓ [{SAMPLE_MONTHS[0]}] magnetometer"]

    home = settings.paths.dagster_home
    assert "telemetry:\n  enabled: false" in (home / "dagster.yaml").read_text()
    instance = DagsterInstance.from_config(str(home))
    materialized = instance.get_materialized_partitions(AssetKey("magnetometer"))
    assert materialized == {"2026-11", SAMPLE_MONTHS[0]}
    empty = list(_check_evaluations(instance, "2026-11"))
    assert {e.check_name for e in empty} == {
        "magnetometer_times_in_partition",
        "magnetometer_plausible",
        "magnetometer_gap_fraction",
    }
    assert all(e.passed for e in empty)
    assert all("no magnetometer rows for 2026-11: the configured archive has no data" in e.description for e in empty)


def _check_evaluations(instance, month: str):
    """Evaluations of the magnetometer checks for ``month`` recorded in ``instance``."""
    from dagster import AssetCheckKey, AssetKey

    for name in ("magnetometer_times_in_partition", "magnetometer_plausible", "magnetometer_gap_fraction"):
        history = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey("magnetometer"), name), limit=10
        )
        for record in history:
            if record.partition == month and record.event is not None:
                yield record.event.dagster_event.event_specific_data


def test_ui_and_months_have_help():
    for command in ("ui", "months"):
        run = _tame(command, "--help")
        assert run.returncode == 0 and "--data-root" in run.stdout, run.stderr
    assert "--port" in _tame("ui", "--help").stdout


def test_readme_has_the_two_commands_that_ci_runs_verbatim():
    """README's first command installs and runs the demo; the second installs the [test] extra and
    chromium before running pytest (the first alone has no pytest); .ci/run runs both, extracted."""

    def command(name: str) -> str:
        run = subprocess.run(
            ["bash", str(README.parent / "scripts" / "readme-command"), name, str(README)],
            capture_output=True,
            text=True,
            check=True,
        )
        return run.stdout.strip()

    demo, test = command("demo"), command("test")
    assert demo.startswith("python3.11 -m venv .venv && .venv/bin/python scripts/install.py -e . && ")
    assert demo.endswith(".venv/bin/tame demo")
    assert test.startswith(".venv/bin/python scripts/install.py -e '.[test]' && ")  # uv with pip's indexes
    assert "apt-get install -y -qq chromium" in test
    assert " && .venv/bin/ruff check && .venv/bin/ruff format --check && .venv/bin/dg check defs && " in test
    assert test.endswith(".venv/bin/python -m pytest -q -x -n 2 --dist loadfile --durations=15")  # two workers
    ci = (README.parent / ".ci" / "run").read_text()
    # .ci/run holds both commands verbatim and refuses to run when README's differ
    assert f"DEMO='{demo}'" in ci and f'TEST="{test}"' in ci
    assert "scripts/readme-command demo README.md" in ci and "scripts/readme-command test README.md" in ci


@pytest.mark.fresh_clone  # deselected unless `pytest --fresh-clone` (~20 min); CI runs the same via .ci/run
def test_fresh_clone_runs_readmes_two_commands():
    """Clones the repo and runs README's two commands (install + demo + the whole suite)."""
    run = subprocess.run(
        ["bash", str(README.parent / "scripts" / "fresh-clone-check")], capture_output=True, text=True, timeout=5400
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert "fresh-clone check passed" in run.stdout


def test_readme_numbers_block_is_marked_and_replaceable():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_numbers", README.parent / "bench" / "readme_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = README.read_text()
    assert text.count(module.START) == 1 and text.count(module.END) == 1
    replaced = module.replace_block(text, "`tame demo` materializes NEW NUMBERS.")
    assert f"{module.START}\n`tame demo` materializes NEW NUMBERS.\n{module.END}" in replaced
    assert replaced.replace("`tame demo` materializes NEW NUMBERS.", "") == module.replace_block(
        text, ""
    )  # nothing outside the block changes
    with pytest.raises(SystemExit, match="no .* block"):
        module.replace_block("no markers here", "x")
