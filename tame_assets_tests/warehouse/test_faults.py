"""Faults stay local: a corrupt partition, a copied data root, a reader holding tame.duckdb, stale temp files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.defs.resources import TameResource
from tame_assets.warehouse.provider import Provider
from tame_assets.warehouse.store import Warehouse, station_file

DUCKDB_CLI = str(Path(sys.executable).with_name("duckdb"))
runner = CliRunner()


def _magnetometer(month: str, rows: int = 5) -> pl.DataFrame:
    year, mon = map(int, month.split("-"))
    return pl.DataFrame(
        {
            "time": [dt.datetime(year, mon, 1, 0, m) for m in range(rows)],
            "station": ["NAL"] * rows,
            "x_nt": [7900.0] * rows,
            "y_nt": [800.0] * rows,
            "z_nt": [52600.0] * rows,
            "h_nt": [7940.4] * rows,
        }
    )


def _ceilometer(month: str) -> pl.DataFrame:
    year, mon = map(int, month.split("-"))
    return pl.DataFrame(
        {
            "time": [dt.datetime(year, mon, 1, 0, 0), dt.datetime(year, mon, 1, 0, 10)],
            "site": ["NYA", "NYA"],
            "cbh_m": [1200.0, None],
            "cloud_detected": [True, False],
            "missing": [False, True],
        }
    )


def _predictions(month: str) -> pl.DataFrame:
    year, mon = map(int, month.split("-"))
    return pl.DataFrame(
        {
            "time": [dt.datetime(year, mon, 1, 0, 1), dt.datetime(year, mon, 1, 0, 9)],
            "station": ["NYA", "NYA"],
            "file_name": ["a.png", "b.png"],
            "pred": ["arc", "clear"],
        }
    )


@pytest.fixture()
def data_root(tmp_path) -> Path:
    wh = Warehouse(tmp_path / "data")
    for month in ("2010-12", "2011-01"):
        wh.write_partition("magnetometer", _magnetometer(month), month)
        wh.write_partition("ceilometer", _ceilometer(month), month)
        wh.write_partition("asim_predictions", _predictions(month), month, station_file("NYA"))
    return Path(wh.root)


@pytest.fixture()
def corrupt_root(data_root) -> Path:
    part = data_root / "warehouse" / "magnetometer" / "month=2010-12" / "part-0.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # truncated: no footer
    return data_root


CORRUPT_FILE = "magnetometer/month=2010-12/part-0.parquet"


def test_corrupt_partition_fails_only_queries_on_its_table(corrupt_root):
    ok = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM ceilometer", "--data-root", str(corrupt_root)])
    assert ok.exit_code == 0, ok.output
    assert "4" in ok.stdout
    bad = runner.invoke(app, ["sql", "SELECT count(*) FROM magnetometer", "--data-root", str(corrupt_root)])
    assert bad.exit_code == 1
    assert CORRUPT_FILE in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    p = Provider(str(corrupt_root))
    assert p.get("ceilometer", "2010-12-01", "2011-02-01").height == 4
    with pytest.raises(duckdb.Error, match=CORRUPT_FILE):
        p.get("magnetometer", "2010-12-01", "2011-01-01")


def test_info_lists_the_corrupt_partition_and_exits_0(corrupt_root):
    result = runner.invoke(app, ["info", "--data-root", str(corrupt_root)])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if ln.strip().startswith("magnetometer"))
    assert "corrupt" in line and CORRUPT_FILE in line
    assert "4 rows" in next(ln for ln in result.stdout.splitlines() if ln.strip().startswith("ceilometer"))


def test_partition_readable_check_flags_the_corrupt_partition(corrupt_root):
    from tame_assets.defs.checks import check_partition_readable

    wh = Warehouse(corrupt_root)
    bad = check_partition_readable(wh, "magnetometer", "2010-12")
    assert not bad.passed and CORRUPT_FILE in bad.description
    assert check_partition_readable(wh, "magnetometer", "2011-01").passed
    assert check_partition_readable(wh, "ceilometer", "2010-12").passed
    assert not check_partition_readable(wh, "ceilometer", "1999-01").passed  # missing partition


def test_partition_readable_asset_checks_are_registered_and_blocking():
    from tame_assets.defs.checks import all_checks

    specs = {spec.name: spec for c in all_checks for spec in c.check_specs}
    for table in ("asim_images", "magnetometer", "ceilometer"):
        spec = specs[f"{table}_partition_readable"]
        assert spec.blocking and spec.asset_key.to_user_string() == table


@pytest.mark.e2e
def test_unrelated_materialization_succeeds(corrupt_root):
    from tame_assets.defs.assets.merged import asim_ceilometer

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("stations", ["NYA"])
    result = materialize(
        [asim_ceilometer],
        partition_key="2010-12|NYA",
        instance=instance,
        resources={"tame": TameResource(data_root=str(corrupt_root))},
    )
    assert result.success
    merged = Warehouse(corrupt_root).read_partition("asim_ceilometer", "2010-12", station_file("NYA"))
    assert merged.height == 2 and merged["cbh_m"].to_list() == [1200.0, None]


# ------------------------------------------------------------------ portable data root
def _cli_count(db: Path, cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DUCKDB_CLI, "-readonly", str(db), *cmd, "-csv", "-noheader", "-c", "SELECT count(*) FROM magnetometer"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_copied_data_root_reads_its_own_files(data_root, tmp_path):
    Warehouse(data_root).refresh_views()
    copy = tmp_path / "moved" / "data"
    shutil.copytree(data_root, copy)
    shutil.rmtree(data_root)
    # the duckdb shell: from inside the data root, or with file_search_path pointing at it
    inside = _cli_count(copy / "tame.duckdb", copy)
    assert inside.returncode == 0 and inside.stdout.strip() == "10", inside.stderr
    outside = _cli_count(copy / "tame.duckdb", tmp_path, "-cmd", f"SET file_search_path='{copy}'")
    assert outside.returncode == 0 and outside.stdout.strip() == "10", outside.stderr
    relative = _cli_count(Path("moved/data/tame.duckdb"), tmp_path, "-cmd", "SET file_search_path='moved/data'")
    assert relative.returncode == 0 and relative.stdout.strip() == "10", relative.stderr
    # python, through the library
    assert Provider(str(copy)).sql("SELECT count(*) AS n FROM magnetometer")["n"][0] == 10
    with duckdb.connect(str(copy / "tame.duckdb"), read_only=True) as con:
        con.execute(f"SET file_search_path = '{copy}'")
        assert con.execute("SELECT count(*) FROM ceilometer").fetchone()[0] == 4


# ------------------------------------------------------------------ readers never block writers
def test_a_reader_holding_tame_duckdb_does_not_block_a_write(data_root):
    wh = Warehouse(data_root)
    wh.refresh_views()
    reader = subprocess.Popen(
        [DUCKDB_CLI, "-readonly", str(wh.duckdb_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_root,
    )
    try:
        reader.stdin.write("SELECT count(*) FROM magnetometer;\n")
        reader.stdin.flush()
        assert reader.stdout.readline()  # the shell has the file open
        started = time.monotonic()
        wh.write_partition("new_table", pl.DataFrame({"a": [1, 2]}))
        wh.write_partition("magnetometer", _magnetometer("2011-02"), "2011-02")
        assert time.monotonic() - started < 10
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    with duckdb.connect(str(wh.duckdb_path), read_only=True) as con:
        con.execute(f"SET file_search_path = '{data_root}'")
        assert con.execute("SELECT count(*) FROM new_table").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM magnetometer").fetchone()[0] == 15
    assert not list(data_root.glob(".*.tmp")) and not list(data_root.glob("*.tmp"))


# ------------------------------------------------------------------ temp files of killed writers
def test_stale_temp_files_are_removed_on_the_next_write(data_root):
    folder = data_root / "warehouse" / "magnetometer" / "month=2010-12"
    stale = folder / ".part-0.parquet.0123456789abcdef0123456789abcdef.tmp"
    fresh = folder / ".part-0.parquet.fedcba9876543210fedcba9876543210.tmp"
    unrelated = folder / "notes.tmp"
    for path in (stale, fresh, unrelated):
        path.write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    os.utime(unrelated, (two_hours_ago, two_hours_ago))
    Warehouse(data_root).write_partition("magnetometer", _magnetometer("2010-12"), "2010-12")
    assert not stale.exists()
    assert fresh.exists() and unrelated.exists()  # a live writer's file, and a file that is not ours
