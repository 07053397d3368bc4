"""The `tame` console command: help for every command, `tame sql` and `tame info` on a real warehouse.

The installed console script runs once as a process; the other tests invoke the same Typer app in
process (typer's CliRunner: its exit code, stdout and stderr), as each new process costs ~1 s of imports."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.warehouse.store import Warehouse

TAME = str(Path(sys.executable).with_name("tame"))


def _tame(*args: str) -> SimpleNamespace:
    """``tame ARGS`` in process: returncode, stdout and stderr as a subprocess would give them."""
    result = CliRunner().invoke(app, list(args))
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def test_the_console_script_runs_the_app():
    run = subprocess.run([TAME, "--help"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Usage: tame" in run.stdout and "materialize" in run.stdout and "demo" in run.stdout


@pytest.mark.parametrize("command", ["demo", "materialize", "classify", "train", "sql", "info"])
def test_every_command_has_help(command):
    run = _tame(command, "--help")
    assert run.returncode == 0, run.stderr
    assert "Usage" in run.stdout
    if command != "train":  # train reads only the labels and images it is given
        assert "--data-root" in run.stdout


@pytest.fixture()
def small_warehouse(tmp_path):
    wh = Warehouse(tmp_path)
    for month, day in (("2010-12", 31), ("2011-01", 1)):
        times = [dt.datetime(2010 if month == "2010-12" else 2011, int(month[-2:]), day, 0, m) for m in range(3)]
        wh.write_partition(
            "magnetometer",
            pl.DataFrame(
                {
                    "time": times,
                    "station": ["NAL"] * 3,
                    "x_nt": [7900.0, 7901.0, 7902.0],
                    "y_nt": [800.0] * 3,
                    "z_nt": [52600.0] * 3,
                    "h_nt": [7940.4] * 3,
                }
            ),
            month,
        )
    wh.refresh_views()
    return tmp_path


def test_sql_prints_a_table(small_warehouse):
    run = _tame(
        "sql",
        "select month, count(*) as n from magnetometer group by 1 order by 1",
        "--data-root",
        str(small_warehouse),
    )
    assert run.returncode == 0, run.stderr
    assert "2010-12" in run.stdout and "2011-01" in run.stdout and "shape: (2, 2)" in run.stdout


def test_sql_error_is_clear(small_warehouse):
    run = _tame("sql", "select * from nope", "--data-root", str(small_warehouse))
    assert run.returncode != 0 and "nope" in (run.stderr + run.stdout)


def test_info_lists_tables_partitions_and_counts(small_warehouse):
    run = _tame("info", "--data-root", str(small_warehouse))
    assert run.returncode == 0, run.stderr
    line = next(ln for ln in run.stdout.splitlines() if ln.strip().startswith("magnetometer"))
    assert "6 rows" in line and "2010-12..2011-01 (2 months)" in line


# ----------------------------------------------------------------------------- input errors: one line, exit 2
@pytest.mark.parametrize(
    "command, month, message",
    [
        ("materialize", "2010-13", "--month: invalid month '2010-13': expected YYYY-MM"),
        ("materialize", "2009-06", "--month 2009-06 is outside the monthly partitions 2010-11.."),
        ("demo", "2010-00", "--month: invalid month '2010-00': expected YYYY-MM"),
    ],
)
def test_bad_month_is_a_one_line_usage_error(tmp_path, command, month, message):
    run = _tame(command, "--month", month, "--data-root", str(tmp_path))
    assert run.returncode == 2 and run.stderr.startswith(f"Error: {message}")
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not any(tmp_path.iterdir())  # nothing started


def test_unknown_asset_is_a_usage_error_naming_it(tmp_path):
    run = _tame("materialize", "--select", "magnetometr", "--month", "2010-12", "--data-root", str(tmp_path))
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("Error:")]
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(errors) == 1 and "unknown asset(s): magnetometr" in errors[0]


def test_one_class_labels_are_refused_before_any_feature_is_extracted(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        (images / f"{i}.png").write_bytes(b"not even decoded")
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\n0.png,arc\n1.png,arc\n2.png,arc\n")
    run = _tame("train", "--labels", str(labels), "--images", str(images), "--out", str(tmp_path / "model"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"Error: {labels}: only the label 'arc': a classifier needs at least two labels"
    assert not (tmp_path / "model").exists()
