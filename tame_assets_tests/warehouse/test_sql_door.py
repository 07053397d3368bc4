"""The read-only SQL door (`tame sql`, `Provider.sql`) and identifiers taken from folder names."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.warehouse.provider import Provider
from tame_assets.warehouse.store import Warehouse

TAME = str(Path(sys.executable).with_name("tame"))
runner = CliRunner()


def _write_month(wh: Warehouse, month: str, rows: int = 3) -> None:
    year, mon = map(int, month.split("-"))
    times = [dt.datetime(year, mon, 1, 0, m) for m in range(rows)]
    wh.write_partition(
        "magnetometer",
        pl.DataFrame(
            {
                "time": times,
                "station": ["NAL"] * rows,
                "x_nt": [7900.0 + i for i in range(rows)],
                "y_nt": [800.0] * rows,
                "z_nt": [52600.0] * rows,
                "h_nt": [7940.4] * rows,
            }
        ),
        month,
    )


@pytest.fixture()
def root(tmp_path) -> Path:
    wh = Warehouse(tmp_path / "data")
    _write_month(wh, "2010-12")
    _write_month(wh, "2011-01")
    wh.write_partition(
        "ceilometer",
        pl.DataFrame({"time": [dt.datetime(2010, 12, 1, 0, 0)], "site": ["NYA"], "cbh_m": [1200.0]}),
        "2010-12",
    )
    return tmp_path / "data"


def _tame_sql(root: Path, query: str, *extra: str):
    return runner.invoke(app, ["sql", query, "--data-root", str(root), *extra])


def _digest(root: Path) -> dict[str, str]:
    """Content hash of every file under the data root (tame.duckdb and the warehouse)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".lock"
    }


REFUSED = {
    "COPY": "COPY (SELECT 1 AS x) TO '{wh}/magnetometer/month=2010-12/part-0.parquet' (FORMAT parquet)",
    "ATTACH": "ATTACH '{root}/tame.duckdb' AS t",
    "DETACH": "DETACH t",
    "DROP": "DROP VIEW magnetometer",
    "CREATE": "CREATE TABLE x AS SELECT 1",
    "INSERT": "INSERT INTO magnetometer SELECT * FROM magnetometer",
    "UPDATE": "UPDATE magnetometer SET x_nt = 0",
    "DELETE": "DELETE FROM magnetometer",
    "ALTER": "ALTER VIEW magnetometer RENAME TO m2",
    "LOAD": "INSTALL httpfs",
    "SET": "SET threads = 1",
    "EXPORT": "EXPORT DATABASE '{root}/exported'",
    "PRAGMA": "IMPORT DATABASE '{root}/exported'",
    "CALL": "CALL checkpoint()",
    "EXPLAIN": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{wh}/x.csv'",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_write_and_config_statements_are_refused_with_exit_2(root, kind):
    query = REFUSED[kind].format(root=root, wh=root / "warehouse")
    before = _digest(root)
    result = _tame_sql(root, query)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and kind in message and "read-only" in message, message
    assert _digest(root) == before


def test_copy_over_a_partition_leaves_it_intact(root):
    part = root / "warehouse" / "magnetometer" / "month=2010-12" / "part-0.parquet"
    result = _tame_sql(root, f"COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet)")
    assert result.exit_code == 2
    assert pl.read_parquet(part).height == 3


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count(*) AS n FROM magnetometer",
        "EXPLAIN SELECT * FROM magnetometer",
        "PRAGMA version",
        "CALL pragma_version()",
        "DESCRIBE magnetometer",
        "SUMMARIZE ceilometer",
        "FROM asof_nearest('magnetometer', 'magnetometer', 'station', 'station', tolerance_s := 60)",
    ],
)
def test_read_statements_run(root, query):
    result = _tame_sql(root, query)
    assert result.exit_code == 0, result.output


def test_more_than_one_statement_is_refused(root):
    result = _tame_sql(root, "SELECT 1; SELECT 2")
    assert result.exit_code == 2 and "one statement" in result.stderr


def test_sandbox_reads_nothing_outside_the_warehouse(root, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    result = _tame_sql(root, f"SELECT * FROM read_csv('{outside}')")
    assert result.exit_code == 1 and "secret.csv" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    ok = _tame_sql(root, f"SELECT count(*) AS n FROM read_parquet('{root}/warehouse/magnetometer/*/*.parquet')")
    assert ok.exit_code == 0 and "6" in ok.stdout


def test_sandbox_settings_are_locked(root):
    from tame_assets.warehouse.sql_door import read_only_connection

    con = read_only_connection(Warehouse(root))
    settings_now = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', "
            "'autoinstall_known_extensions', 'autoload_known_extensions')"
        ).fetchall()
    )
    assert settings_now == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }
    with pytest.raises(Exception, match="locked"):
        con.execute("SET enable_external_access = true")


def test_provider_sql_is_read_only(root):
    part = root / "warehouse" / "magnetometer" / "month=2010-12" / "part-0.parquet"
    p = Provider(str(root))
    assert p.sql("SELECT count(*) AS n FROM magnetometer")["n"][0] == 6
    with pytest.raises(PermissionError, match="COPY"):
        p.sql(f"COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet)")
    assert pl.read_parquet(part).height == 3


def test_printing_50_rows_of_a_huge_query_is_cheap(root):
    """300 million rows: only the printed rows are fetched (peak RSS and time of the `tame` process)."""
    started = time.monotonic()
    measure = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(r.stdout + r.stderr)"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            measure,
            TAME,
            "sql",
            "SELECT * FROM generate_series(300000000) t(i)",
            "--data-root",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    code, peak_kib = map(int, run.stdout.splitlines()[0].split())
    assert code == 0, run.stdout
    assert "first 50 rows" in run.stdout and "shape: (50, 1)" in run.stdout
    assert peak_kib < 800 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"  # the whole result would be > 2.4 GB
    assert elapsed < 60, elapsed


def test_max_rows_limits_what_is_fetched(root):
    result = _tame_sql(root, "SELECT * FROM magnetometer ORDER BY time", "--max-rows", "4")
    assert result.exit_code == 0 and "shape: (4, 7)" in result.stdout and "first 4 rows" in result.stdout
    whole = _tame_sql(root, "SELECT * FROM magnetometer", "--max-rows", "6")
    assert "shape: (6, 7)" in whole.stdout and "first" not in whole.stdout


# ------------------------------------------------------------------ random statement text
_WAREHOUSE_ATTACKS = [
    "COPY (SELECT 1) TO '{wh}/magnetometer/month=2010-12/part-0.parquet'",
    "COPY magnetometer TO '{wh}/x/part-0.parquet'",
    "ATTACH '{root}/tame.duckdb' AS t",
    "DROP VIEW t.magnetometer",
    "DROP VIEW magnetometer",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET allowed_directories = ['/']",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "EXPORT DATABASE '{wh}'",
    "CREATE OR REPLACE VIEW magnetometer AS SELECT 1",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{wh}/ceilometer/month=2010-12/part-0.parquet'",
    "CALL checkpoint()",
    "SELECT * FROM magnetometer",
    "VACUUM",
    "CHECKPOINT",
]
_WORDS = [
    "SELECT",
    "FROM",
    "COPY",
    "TO",
    "ATTACH",
    "DROP",
    "VIEW",
    "TABLE",
    "INSERT",
    "INTO",
    "SET",
    "PRAGMA",
    "CALL",
    "EXPLAIN",
    "ANALYZE",
    "WITH",
    "AS",
    "(",
    ")",
    ";",
    "'x'",
    "1",
    "magnetometer",
    "*",
    "--",
    "/*",
    "CREATE",
    "DELETE",
    "UPDATE",
    "INSTALL",
    "LOAD",
    "EXPORT",
    "IMPORT",
    "DATABASE",
    "'{wh}/y.parquet'",
]
statements = st.one_of(
    st.sampled_from(_WAREHOUSE_ATTACKS),
    st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12).map(" ".join),
    st.text(max_size=40),
    st.lists(st.sampled_from(_WAREHOUSE_ATTACKS), min_size=2, max_size=3).map("; ".join),
)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory) -> Path:
    wh = Warehouse(tmp_path_factory.mktemp("door") / "data")
    _write_month(wh, "2010-12")
    wh.write_partition(
        "ceilometer", pl.DataFrame({"time": [dt.datetime(2010, 12, 1)], "site": ["NYA"], "cbh_m": [1200.0]}), "2010-12"
    )
    return Path(wh.root)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=statements)
def test_random_statement_text_never_changes_the_data_root(shared_root, template):
    root = shared_root
    query = template.replace("{wh}", str(root / "warehouse")).replace("{root}", str(root))
    before = _digest(root)
    cwd_before = set(os.listdir("."))
    result = _tame_sql(root, query)
    assert result.exit_code in (0, 1, 2), (query, result.output, result.exception)
    assert _digest(root) == before, query
    assert set(os.listdir(".")) == cwd_before, query


# ------------------------------------------------------------------ identifiers from folder names
INJECTION = "z AS SELECT 1; COPY (SELECT 42 AS answer) TO 'injected.csv'; --"


def test_invalid_folder_names_are_skipped_and_reported(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (INJECTION, "my-table", "1st"):
        folder = root / "warehouse" / name
        folder.mkdir()
        pl.DataFrame({"a": [1]}).write_parquet(folder / "part-0.parquet")
    wh = Warehouse(root)
    assert wh.tables() == ["ceilometer", "magnetometer"]
    assert set(wh.skipped_folders()) == {INJECTION, "my-table", "1st"}
    wh.refresh_views()
    info = runner.invoke(app, ["info", "--data-root", str(root)])
    assert info.exit_code == 0, info.output
    assert "skipped folder 'my-table'" in info.stdout and "not a valid table name" in info.stdout
    assert "magnetometer" in info.stdout and "6 rows" in info.stdout
    result = _tame_sql(root, "SELECT count(*) AS n FROM magnetometer")
    assert result.exit_code == 0 and "6" in result.stdout
    assert not list(tmp_path.rglob("injected.csv")) and not list(root.rglob("injected.csv"))


@pytest.mark.parametrize("name", [INJECTION, "my-table", "a.b", "", 'x"y'])
def test_warehouse_methods_validate_table_names(root, name):
    wh = Warehouse(root)
    for call in (
        lambda: wh.read(name),
        lambda: wh.read(name, ["2010-12"]),
        lambda: wh.months(name),
        lambda: wh.write_partition(name, pl.DataFrame({"a": [1]}), "2010-12"),
        lambda: wh.read_partition(name, "2010-12"),
        lambda: wh.delete_partition(name, "2010-12"),
    ):
        with pytest.raises(ValueError, match="table name"):
            call()
    with pytest.raises((KeyError, ValueError)):
        Provider(str(root)).get(name)


def test_quote_ident_doubles_quotes_and_is_shared():
    from tame_assets.warehouse import merge, provider
    from tame_assets.warehouse.identifiers import quote_ident, validate_identifier

    assert quote_ident('a"b') == '"a""b"'
    assert merge.quote_ident is quote_ident and provider.quote_ident is quote_ident
    assert validate_identifier("h_nt") == "h_nt"
    with pytest.raises(ValueError, match="my-table"):
        validate_identifier("my-table")


# ------------------------------------------------------------------ budget and temp folder (issue 25)
def _budget_root(root: Path, tmp_path: Path, **sql) -> Path:
    """A tame.toml for ``root`` with ``[sql]`` keys ``sql``."""
    config = tmp_path / "tame.toml"
    values = "\n".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in sql.items())
    config.write_text(f"[storage]\ndata_root = {str(root)!r}\n\n[sql]\n{values}\n".replace("'", '"'))
    return config


def test_sandbox_does_not_admit_the_working_directorys_tmp_folder(root, tmp_path, monkeypatch):
    """DuckDB's default temp folder is ./.tmp, which enable_external_access = false admits."""
    cwd = tmp_path / "cwd"
    (cwd / ".tmp").mkdir(parents=True)
    (cwd / ".tmp" / "secret.csv").write_text("a\n42\n")
    monkeypatch.chdir(cwd)
    result = _tame_sql(root, "SELECT * FROM read_csv('.tmp/secret.csv')")
    assert result.exit_code == 1 and "42" not in result.stdout, result.output
    from tame_assets.warehouse.sql_door import read_only_connection

    con = read_only_connection(Warehouse(root))
    spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    con.close()
    assert Path(spill).parent == root / ".duckdb_tmp" and not Path(spill).exists()


def test_pivot_runs_and_pivot_inside_a_write_is_refused(root):
    result = _tame_sql(root, "PIVOT magnetometer ON station USING count(*)")
    assert result.exit_code == 0, result.output
    assert "NAL" in result.stdout and "6" in result.stdout
    before = _digest(root)
    for query in (
        f"COPY (PIVOT magnetometer ON station USING count(*)) TO '{root}/warehouse/x.csv'",
        "CREATE TABLE x AS PIVOT magnetometer ON station USING count(*)",
        "WITH p AS (PIVOT magnetometer ON station USING count(*)) INSERT INTO magnetometer SELECT * FROM p",
    ):
        refused = _tame_sql(root, query)
        assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, (query, refused.output)
    assert _digest(root) == before


def test_a_20000_union_query_is_refused_fast_in_bounded_memory(root, tmp_path):
    """The 200 KB query of 20,000 UNION ALLs (141 s, 10.7 GB before): refused before parsing."""
    query = tmp_path / "unions.sql"
    query.write_text("SELECT 1 AS x" + " UNION ALL SELECT 1" * 20_000)
    measure = (
        "import resource, subprocess, sys, time; t = time.monotonic(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.monotonic() - t); "
        "print(r.stdout + r.stderr)"
    )
    run = subprocess.run(
        [sys.executable, "-c", measure, TAME, "sql", "-f", str(query), "--data-root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, peak_kib, seconds = run.stdout.splitlines()[0].split()
    message = run.stdout.splitlines()[1:]
    print(f"20,000-union query: exit {code}, peak RSS {int(peak_kib) / 1024:.0f} MiB, {float(seconds):.1f} s")
    assert int(code) == 2 and len([m for m in message if m.strip()]) == 1, run.stdout
    assert "max_query_chars" in run.stdout
    assert int(peak_kib) < 400 * 1024 and float(seconds) < 30
    # under the size limit but over the complexity limit: also refused before DuckDB plans it
    from tame_assets.warehouse.sql_door import QueryLimitExceeded, run_read_only

    with pytest.raises(QueryLimitExceeded, match="UNION"):
        run_read_only(Warehouse(root), "SELECT 1" + " UNION ALL SELECT 1" * 2000)


def test_a_query_over_the_time_limit_is_interrupted_with_one_line(root, tmp_path):
    config = _budget_root(root, tmp_path, timeout_s=1)
    started = time.monotonic()
    result = runner.invoke(app, ["sql", "SELECT sum(i * i % 7) FROM range(100000000000) t(i)", "--config", str(config)])
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "query exceeded 1 s ([sql] timeout_s)"
    assert elapsed < 15, elapsed


def test_memory_limit_and_spill_cap_bound_a_query(root, tmp_path):
    from tame_assets.config import load_settings
    from tame_assets.warehouse.sql_door import QueryLimitExceeded, run_read_only

    config = _budget_root(root, tmp_path, memory_limit="64MB", max_temp_directory_size="16MB")
    wh = Warehouse(load_settings(config).paths)
    with pytest.raises(QueryLimitExceeded, match=r"memory_limit = 64MB, max_temp_directory_size = 16MB") as error:
        run_read_only(
            wh, "SELECT i % 20000000 AS k, count(*) AS n FROM range(40000000) t(i) GROUP BY k ORDER BY n DESC LIMIT 1"
        )
    assert "\n" not in str(error.value)
    assert list((root / ".duckdb_tmp").iterdir()) == []  # the private spill folder went with the connection
    rows, _ = run_read_only(wh, "SELECT count(*) AS n FROM magnetometer")
    assert rows["n"][0] == 6
