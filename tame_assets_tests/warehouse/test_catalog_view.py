"""aurora_catalog_live: batch rows win for the days the batch catalog has, live rows fill the others."""

import datetime as dt

import polars as pl

from tame_assets.warehouse.store import Warehouse, open_views_database


def frames(station, date, n, **extra):
    start = dt.datetime.combine(date, dt.time(20))
    return pl.DataFrame(
        {
            "network": "uio",
            "station": station,
            "camera": "nya4",
            "time": [start + dt.timedelta(seconds=10 * i) for i in range(n)],
            "pred": "arc",
            "p_aurora": 0.9,
            "file": [f"{station}_{date:%Y%m%d}_{i}.png" for i in range(n)],
            "frame_index": pl.Series([0] * n, dtype=pl.Int32),
            **extra,
        }
    )


def test_batch_rows_win_for_their_days_and_live_rows_fill_the_rest(tmp_path):
    wh = Warehouse(tmp_path / "data")
    d1, d2 = dt.date(2010, 12, 30), dt.date(2010, 12, 31)
    live = lambda station, day, n: frames(station, day, n, day=[day] * n, ok=True, latency_s=1.5)  # noqa: E731
    wh.write_partition("live_frames", live("NYA", d1, 3), "2010-12", "part-NYA-20101230-000.parquet")
    only_live = wh.sql("SELECT source, count(*) AS n FROM aurora_catalog_live GROUP BY 1")
    assert only_live.rows() == [("live", 3)]  # before any batch catalog: the live rows
    assert wh.sql("SELECT count(novelty) AS n FROM aurora_catalog_live")["n"][0] == 0  # the column, NULL
    wh.write_partition("live_frames", live("NYA", d2, 4), "2010-12", "part-NYA-20101231-000.parquet")
    wh.write_partition("live_frames", live("GILL", d1, 2), "2010-12", "part-GILL-20101230-000.parquet")
    # the month's batch run has caught up with NYA's 2010-12-30 (the same 3 frames, plus one the live path missed)
    wh.write_partition("aurora_catalog", frames("NYA", d1, 4, novelty=50.0), "2010-12", "part-NYA.parquet")
    query = (
        "SELECT station, CAST(time AS DATE) AS day, source, count(*) AS n "
        "FROM aurora_catalog_live GROUP BY ALL ORDER BY ALL"
    )
    expected = [("GILL", d1, "live", 2), ("NYA", d1, "batch", 4), ("NYA", d2, "live", 4)]
    assert wh.sql(query).rows() == expected
    novelty = "SELECT source, count(novelty) AS n FROM aurora_catalog_live GROUP BY 1 ORDER BY 1"
    assert wh.sql(novelty).rows() == [("batch", 4), ("live", 0)]  # live rows: NULL novelty
    with open_views_database(wh.layout) as con:  # tame.duckdb (relative paths) holds the same view
        assert con.execute(query).fetchall() == expected
        duplicates = "SELECT count(*) FROM (SELECT file FROM aurora_catalog_live GROUP BY file HAVING count(*) > 1)"
        assert con.execute(duplicates).fetchone() == (0,)
