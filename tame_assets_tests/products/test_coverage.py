"""Archive coverage: station × month counts from a real warehouse catalog, UI links, the figure."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import polars as pl

from tame_assets.analysis.figures import save_figure
from tame_assets.products.coverage import (
    coverage_figure,
    coverage_markdown,
    coverage_table,
    month_range,
    partition_url,
)
from tame_assets.warehouse.store import Warehouse, station_file


def _catalog(station: str, times: list[dt.datetime], p: list[float], cloud: list[bool | None]) -> pl.DataFrame:
    n = len(times)
    return pl.DataFrame(
        {
            "station": [station] * n,
            "time": times,
            "p_aurora": p,
            "p_aurora_calibrated": [None if i == 0 else v for i, v in enumerate(p)],
            "cloud_detected": cloud,
        },
        schema_overrides={"p_aurora_calibrated": pl.Float64, "cloud_detected": pl.Boolean},
    )


def test_coverage_counts_frames_days_aurora_and_clear_sky_per_station_month(tmp_path):
    wh = Warehouse(tmp_path / "data")
    assert coverage_table(wh).is_empty() and coverage_table(wh).columns[:3] == ["station", "month", "frames"]
    night = dt.datetime(2011, 1, 5, 22)
    nya = _catalog(
        "NYA",
        [night, night + dt.timedelta(minutes=1), night + dt.timedelta(hours=3)],  # two UT days
        [0.9, 0.2, 0.7],
        [False, True, None],
    )
    gill = _catalog("GILL", [dt.datetime(2011, 3, 1, 6)], [0.1], [None])
    wh.write_partition("aurora_catalog", nya, "2011-01", name=station_file("NYA"))
    wh.write_partition("aurora_catalog", gill, "2011-03", name=station_file("GILL"))

    table = coverage_table(wh)
    assert table.select("station", "month", "frames", "days", "auroral_frames", "cloud_free_frames").rows() == [
        ("GILL", "2011-03", 1, 1, 0, 0),
        ("NYA", "2011-01", 3, 2, 2, 1),  # first frame uncalibrated: its raw 0.9 counts
    ]
    assert table.row(1, named=True)["last_time"] == night + dt.timedelta(hours=3)

    markdown = coverage_markdown(table)
    assert (
        markdown.count("\n") == 3 and "[aurora_catalog](/assets/aurora_catalog?view=partitions&partition=" in markdown
    )
    link = partition_url("keograms", "NYA", "2011-01")
    assert urllib.parse.unquote(link.rsplit("=", 1)[1]) == "2011-01|NYA"  # month|station: Dagster's key order

    assert month_range(["2011-03", "2010-12"]) == ["2010-12", "2011-01", "2011-02", "2011-03"]
    figure = save_figure(coverage_figure(table), tmp_path / "figures", "archive_coverage")
    assert figure.png.stat().st_size > 5_000 and figure.svg.exists()
    svg = figure.svg.read_text()
    assert "no data" in svg and "2010-12" not in svg and "2011-02" in svg  # the gap month shown as a gap
