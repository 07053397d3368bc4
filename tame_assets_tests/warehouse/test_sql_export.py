"""`tame sql --format csv|json|parquet --out F`: the result streamed in record batches (flat memory in
the row count), the same file as writing the whole result at once. Peak RSS of a 30 M-row export:
bench/hardening_rss.py."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.warehouse.sql_door import RefusedStatement, export_read_only
from tame_assets.warehouse.store import Warehouse

runner = CliRunner()
QUERY = "SELECT i, i / 2 AS x, [i, i + 1] AS pair, TIMESTAMP '2010-12-01' + to_seconds(i) AS time FROM range(2500) t(i)"


@pytest.fixture()
def root(tmp_path):
    wh = Warehouse(tmp_path / "data")
    wh.write_partition("magnetometer", pl.DataFrame({"time": [dt.datetime(2010, 12, 1)], "x_nt": [1.0]}), "2010-12")
    wh.refresh_views()
    return tmp_path / "data"


def test_export_hands_the_result_over_in_batches_of_the_given_size(root):
    seen = []

    def write(reader):
        for batch in reader:
            seen.append(batch.num_rows)
        return sum(seen)

    assert export_read_only(Warehouse(root), QUERY, write, batch_rows=1000) == 2500
    assert len(seen) >= 3 and max(seen) <= 1000, seen  # never the whole result at once
    with pytest.raises(RefusedStatement):  # the same door as run_read_only
        export_read_only(Warehouse(root), "COPY (SELECT 1) TO 'x.csv'", write)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_streamed_files_equal_the_whole_result(root, tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    result = runner.invoke(
        app, ["sql", QUERY + " ORDER BY i", "--format", fmt, "--out", str(out), "--data-root", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert "2500 rows →" in result.output
    if fmt == "csv":
        table = pl.read_csv(out)
        assert table.columns == ["i", "x", "pair", "time"] and table.height == 2500
        assert table["pair"][7] == "[7, 8]" and table["time"][2] == "2010-12-01T00:00:02.000000"
    elif fmt == "json":
        rows = json.loads(out.read_text())
        assert len(rows) == 2500 and rows[3] == {"i": 3, "x": 1.5, "pair": [3, 4], "time": "2010-12-01 00:00:03"}
    else:
        table = pl.read_parquet(out)
        assert table.height == 2500 and table["pair"][9].to_list() == [9, 10]
        assert table["time"][1] == dt.datetime(2010, 12, 1, 0, 0, 1)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_empty_results_keep_their_header_or_array(root, tmp_path):
    csv = tmp_path / "e.csv"
    result = runner.invoke(
        app,
        ["sql", "SELECT 1 AS a, 2 AS b WHERE false", "--format", "csv", "--out", str(csv), "--data-root", str(root)],
    )
    assert result.exit_code == 0, result.output
    assert csv.read_text().strip() == "a,b"
    result = runner.invoke(app, ["sql", "SELECT 1 AS a WHERE false", "--format", "json", "--data-root", str(root)])
    assert result.exit_code == 0 and result.stdout.strip() == "[]", result.output
