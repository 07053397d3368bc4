"""The catalog season benchmark (``bench/catalog_season.py``) on a small season: it runs, checks its
answers against polars and prints parseable lines. Timings are printed, not asserted."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "catalog_season.py"
ROW = re.compile(r"^(\w+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(-|[\d.]+)\s+(-|[\d.]+)\s+(PASS|FAIL)$")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("catalog_season", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_small_season_runs_checked_and_parses(bench, capsys):
    assert bench.main(["--frames", "20000", "--repeats", "1", "--subset", "2000", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "season: 20,000 frames" in out
    assert f"correctness: {len(bench.QUERIES)} of {len(bench.QUERIES)} results equal" in out
    rows = {m[1]: m for line in out.splitlines() if (m := ROW.match(line.strip()))}
    assert set(rows) == {q.name for q in bench.QUERIES}
    for name, m in rows.items():
        assert float(m[3]) > 0 and float(m[4]) > 0 and float(m[6]) > 0, name
    assert int(rows["discrete_storm"][2].replace(",", "")) > 0  # the storms make the first query non-empty
    assert int(rows["label_review"][2]) == 10


def test_check_rejects_a_wrong_answer(bench):
    season = bench.pl.concat(bench.season_catalog(4000).values())
    storm, hourly, review = bench.QUERIES
    right = storm.polars(season)
    bench.check(storm, right, season)
    with pytest.raises(AssertionError):
        bench.check(storm, right.head(right.height - 1), season)
    counts = hourly.polars(season)
    with pytest.raises(AssertionError):
        bench.check(hourly, counts.with_columns(bench.pl.col("frames") + 1), season)
    top = review.polars(season)
    with pytest.raises(AssertionError):  # a row outside the filter, with a plausible p
        bench.check(review, top.with_columns(bench.pl.col("cbh_m") + 5000), season)
