"""PANGAEA ceilometer files: no-cloud vs missing, errors with line numbers, writer and HTTP client."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tame_assets.sources import ceilometer as ceil
from tame_assets.sources.http import DownloadError, HttpClient

HEADER = (
    "/* DATA DESCRIPTION:\nCitation:\tMaturilli, M; Ebell, K (2018): Ceilometer cloud base height\n"
    "Parameter(s):\tDATE/TIME (Date/Time) * GEOCODE\n\tCloud base height (CBH) [m]\n*/\n"
)


def test_no_cloud_and_missing_are_explicit(tmp_path):
    text = (
        HEADER + "Date/Time\tCBH [m]\n"
        "2010-12-01T00:00\t450\n2010-12-01T00:05\t\n2010-12-01T00:10\t\n"
        "2010-12-01T00:25:00\t3100\n2010-12-01T00:30\t2900\n"
    )
    path = tmp_path / "NYA_2010-12.tab"
    path.write_text(text)
    df = ceil.parse_pangaea_tab(path, "NYA")
    assert df.columns == list(ceil.CEILOMETER_SCHEMA) and df.schema == pl.Schema(ceil.CEILOMETER_SCHEMA)
    assert df["time"].to_list() == [dt.datetime(2010, 12, 1, 0, m) for m in range(0, 35, 5)]
    assert df["cbh_m"].to_list() == [450.0, None, None, None, None, 3100.0, 2900.0]
    assert df["cloud_detected"].to_list() == [True, False, False, None, None, True, True]
    assert df["missing"].to_list() == [False, False, False, True, True, False, False]
    assert df["site"].unique().to_list() == ["NYA"]
    raw = ceil.parse_pangaea_tab(path, "NYA", fill_missing=False)
    assert raw.height == 5 and not raw["missing"].any()


def test_month_grid_reports_outages_at_the_edges(tmp_path):
    rows = "".join(
        f"2010-12-01T{h:02d}:{m:02d}\t{'' if m % 10 else 800}\n" for h in range(1, 3) for m in range(0, 60, 5)
    )
    path = tmp_path / "a.tab"
    path.write_text(HEADER + "Date/Time\tCBH [m]\n" + rows)
    df = ceil.parse_pangaea_tab(path, "NYA", grid=(dt.datetime(2010, 12, 1), dt.datetime(2010, 12, 1, 4)))
    assert (
        df.height == 48
        and df["time"][0] == dt.datetime(2010, 12, 1)
        and df["time"][-1] == dt.datetime(2010, 12, 1, 3, 55)
    )
    assert df["missing"].sum() == 24 and df.filter(pl.col("missing"))["cloud_detected"].null_count() == 24
    assert df.filter(~pl.col("missing"))["cloud_detected"].sum() == 12


def test_irregular_records_are_not_padded(tmp_path):
    times = [dt.datetime(2010, 12, 1) + dt.timedelta(seconds=s) for s in (0, 16, 31, 48, 63, 80, 95, 300)]
    path = tmp_path / "irregular.tab"
    path.write_text("Date/Time\tCBH [m]\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%S}\t500\n" for t in times))
    assert ceil.parse_pangaea_tab(path, "NYA").height == len(times)


def test_other_columns_are_ignored(tmp_path):
    path = tmp_path / "b.tab"
    path.write_text(
        HEADER + "Date/Time\tHeight [m]\tCBH [m]\tFlag\n2010-12-01T00:00\t11\t1200\tok\n2010-12-01T00:01\t11\t\tok\n"
    )
    df = ceil.parse_pangaea_tab(path, "NYA")
    assert df["cbh_m"].to_list() == [1200.0, None] and df["cloud_detected"].to_list() == [True, False]


@pytest.mark.parametrize(
    "line,message",
    [
        ("2010-12-01T00:30\t2900\textra", r"NYA_2010-12.tab, line 9: expected 2 tab-separated columns, found 3"),
        ("2010-12-01T00:30", r"NYA_2010-12.tab, line 9: expected 2 tab-separated columns, found 1"),
        ("2010-12-01T00:30\t29OO", r"NYA_2010-12.tab, line 9: invalid CBH '29OO'"),
        ("2010-13-01T00:30\t2900", r"NYA_2010-12.tab, line 9: invalid Date/Time '2010-13-01T00:30'"),
        ("2010-12-01T00:00\t2900", r"NYA_2010-12.tab, line 9: duplicate Date/Time"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "NYA_2010-12.tab"
    path.write_text(HEADER + "Date/Time\tCBH [m]\n2010-12-01T00:00\t450\n2010-12-01T00:05\t\n" + line + "\n")
    with pytest.raises(ceil.PangaeaFormatError, match=message):
        ceil.parse_pangaea_tab(path, "NYA")


def test_bad_headers(tmp_path):
    path = tmp_path / "h.tab"
    path.write_text("/* never closed\nDate/Time\tCBH [m]\n")
    with pytest.raises(ceil.PangaeaFormatError, match="h.tab, line 1: metadata header"):
        ceil.parse_pangaea_tab(path, "NYA")
    path.write_text(HEADER + "Date/Time\tHeight [m]\n")
    with pytest.raises(ceil.PangaeaFormatError, match=r"h.tab, line 6: expected 'Date/Time' and 'CBH \[m\]'"):
        ceil.parse_pangaea_tab(path, "NYA")


def _month_table(month_start: dt.datetime, n: int) -> pl.DataFrame:
    times = [month_start + dt.timedelta(minutes=5 * i) for i in range(n)]
    cbh = [None if i % 3 == 0 else float(300 + 10 * i) for i in range(n)]
    missing = [100 <= i < 110 for i in range(n)]
    return pl.DataFrame({"time": times, "cbh_m": cbh, "missing": missing})


def test_writer_round_trip(tmp_path):
    table = _month_table(dt.datetime(2010, 12, 1), 300)
    path = ceil.write_pangaea_tab(table, tmp_path / "NYA_2010-12.tab")
    lines = path.read_text().splitlines()
    assert lines[0] == "/* DATA DESCRIPTION:" and lines[lines.index("*/") + 1] == "Date/Time\tCBH [m]"
    assert len(lines) == lines.index("*/") + 2 + 290  # missing rows are absent records
    back = ceil.parse_pangaea_tab(path, "NYA")
    assert back["time"].equals(table["time"]) and back["missing"].equals(table["missing"])
    expected = table.with_columns(pl.when(pl.col("missing")).then(None).otherwise(pl.col("cbh_m")).alias("cbh_m"))
    assert back["cbh_m"].equals(expected["cbh_m"])
    assert (back["cloud_detected"] == expected["cbh_m"].is_not_null()).filter(~back["missing"]).all()


def test_fetch_month_over_http(tmp_path, loopback_server):
    """The collection export lists one child per month; the client resolves December's child."""
    root = tmp_path / "www" / "10.1594"
    n = 31 * 288
    table = _month_table(dt.datetime(2010, 12, 1), n)
    ceil.write_pangaea_tab(table.slice(0, n - 20), root / "PANGAEA.4242")  # last 100 min absent
    (root / "PANGAEA.880300").write_text(
        "/* DATA DESCRIPTION:\nCitation:\tcollection\n*/\nCitation\tDOI\tDate/Time start\tDate/Time end\n"
        "CBH (2010-11)\thttps://doi.org/10.1594/PANGAEA.4241\t2010-11-01T00:00\t2010-11-30T23:55\n"
        "CBH (2010-12)\thttps://doi.org/10.1594/PANGAEA.4242\t2010-12-01T00:00\t2010-12-31T23:55\n"
    )
    served = loopback_server(tmp_path / "www")
    client = HttpClient(backoff_s=0.01)
    url = f"{served.url}/10.1594/PANGAEA.880300?format=textfile&charset=UTF-8"
    got = ceil.fetch_month(client, url, "NYA", "2010-12", tmp_path / "raw")
    df = got.table
    assert got.child.dataset_id == 4242 and served.count("/10.1594/PANGAEA.4242") == 1
    assert df.height == n and df["time"].is_sorted() and df["missing"].sum() == 10 + 20
    assert df["time"][-1] == dt.datetime(2010, 12, 31, 23, 55)
    assert (tmp_path / "raw" / "NYA" / "PANGAEA.4242.tab").exists()
    empty = ceil.fetch_month(client, url, "NYA", "2011-01", tmp_path / "raw")
    assert empty.table.height == 0 and empty.table.schema == pl.Schema(ceil.CEILOMETER_SCHEMA)
    assert empty.child is None and empty.note.startswith("no ceilometer data for 2011-01")
    served.faults["/10.1594/PANGAEA.4241"] = ("status", 403, 1)
    with pytest.raises(DownloadError, match=r"PANGAEA.4241\?format=textfile: HTTP 403"):
        ceil.fetch_month(client, url, "NYA", "2010-11", tmp_path / "raw")


def test_impossible_cloud_base_values_are_null_never_detections(tmp_path):
    from collections import Counter

    text = (
        HEADER + "Date/Time\tCBH [m]\n"
        "2010-12-01T00:00\t450\n2010-12-01T00:01\tNaN\n2010-12-01T00:02\tinf\n2010-12-01T00:03\t-30\n"
        "2010-12-01T00:04\t\n2010-12-01T00:05\t25000\n2010-12-01T00:06\t1200\n"
    )
    path = tmp_path / "NYA_2010-12.tab"
    path.write_text(text)
    rejected = Counter()
    df = ceil.parse_pangaea_tab(path, "NYA", rejected=rejected)
    assert df["cbh_m"].to_list() == [450.0, None, None, None, None, None, 1200.0]
    assert df["cloud_detected"].to_list() == [True, None, None, None, False, None, True]
    assert not df["missing"].any()
    assert rejected == {"CBH NaN": 1, "CBH infinite": 1, "CBH negative": 1, "CBH above 20000 m": 1}


def test_refresh_days_0_stops_revalidating_the_running_months_file(tmp_path, loopback_server):
    """With the month still running (its last day ahead of today) the child was re-validated on every
    run even with refresh_days = 0; now 0 means never, and the default still asks."""
    from tame_assets.sources.http import RefreshPolicy

    root = tmp_path / "www" / "10.1594"
    ceil.write_pangaea_tab(_month_table(dt.datetime(2010, 12, 1), 288), root / "PANGAEA.4242")
    (root / "PANGAEA.880300").write_text(
        "/* DATA DESCRIPTION:\nCitation:\tcollection\n*/\nCitation\tDOI\tDate/Time start\tDate/Time end\n"
        "CBH (2010-12)\thttps://doi.org/10.1594/PANGAEA.4242\t2010-12-01T00:00\t2010-12-31T23:55\n"
    )
    served = loopback_server(tmp_path / "www")
    client = HttpClient(backoff_s=0.01)
    url = f"{served.url}/10.1594/PANGAEA.880300?format=textfile&charset=UTF-8"
    running = dt.date(2010, 12, 15)
    for _ in range(3):
        ceil.fetch_month(client, url, "NYA", "2010-12", tmp_path / "raw", refresh=RefreshPolicy(0, today=running))
    assert served.count("/10.1594/PANGAEA.4242") == 1  # downloaded once, never asked again
    ceil.fetch_month(client, url, "NYA", "2010-12", tmp_path / "raw", refresh=RefreshPolicy(today=running))
    assert served.count("/10.1594/PANGAEA.4242") == 2  # the default re-validates the running month
