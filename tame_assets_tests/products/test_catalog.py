"""The catalog's magnetic columns: mlat/mlt of the station's zenith per frame, and the README's
MLT-sector query answered by DuckDB over the Parquet file; its novelty column."""

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

from tame_assets.geometry.magnetic import aacgm, mlt_hours
from tame_assets.geometry.stations import station_site
from tame_assets.products.catalog import with_zenith_magnetic
from tame_assets.stations import Station


def test_catalog_gains_zenith_mlat_and_mlt_and_mlt_sector_query(tmp_path):
    nya = Station(code="NYA", network="uio", camera="nya6", wavelengths_nm=(557.7,))
    site = station_site(nya)
    assert site[0] == pytest.approx(78.92, abs=0.01)
    times = pl.datetime_range(dt.datetime(2010, 12, 2), dt.datetime(2010, 12, 3), "10s", eager=True, closed="left")
    catalog = pl.DataFrame(
        {"station": "NYA", "time": times, "pred": np.where(np.arange(times.len()) % 3, "arc", "clear")}
    )
    catalog = catalog.vstack(pl.DataFrame({"station": ["NYA"], "time": [None], "pred": ["arc"]}, schema=catalog.schema))
    out = with_zenith_magnetic(catalog, site)
    assert out.columns == [*catalog.columns, "mlat", "mlt"]
    assert out["mlt"][-1] is None and out["mlat"][-1] is None
    row = out.filter(pl.col("time") == dt.datetime(2010, 12, 2, 18)).row(0, named=True)
    # NYA at the lens table's site (78.92x N): the shared notes' 76.42°, 20.49 h within the site's rounding.
    assert row["mlat"] == pytest.approx(76.42, abs=0.01) and row["mlt"] == pytest.approx(20.49, abs=0.01)
    t = dt.datetime(2010, 12, 2, 7, 33, 20)
    direct = mlt_hours(aacgm(*site[:2], 110.0, t)[1], t)
    assert out.filter(pl.col("time") == t)["mlt"][0] == pytest.approx(float(direct), abs=0.002)
    assert with_zenith_magnetic(catalog, None)["mlt"].null_count() == catalog.height
    out.write_parquet(tmp_path / "catalog.parquet")
    # The README's query: auroral frames per MLT hour in the pre-midnight sector 18–24 MLT.
    sql = f"""
        SELECT floor(mlt)::INT AS mlt_hour, count(*) AS frames
        FROM read_parquet('{tmp_path / "catalog.parquet"}')
        WHERE pred IN ('arc', 'diffuse', 'discrete') AND mlt >= 18 AND mlt < 24
        GROUP BY 1 ORDER BY 1"""
    rows = duckdb.sql(sql).fetchall()
    assert [h for h, _ in rows] == [18, 19, 20, 21, 22, 23]
    expected = out.filter((pl.col("pred") == "arc") & (pl.col("mlt") >= 18) & (pl.col("mlt") < 24)).height
    assert sum(n for _, n in rows) == expected


def test_build_catalog_appends_mlat_mlt_and_novelty_after_its_columns():
    from tame_assets.products.catalog import CATALOG_COLUMNS, build_catalog

    times = [dt.datetime(2010, 12, 2, 18, 0, s) for s in (0, 10, 20)]
    merged = pl.DataFrame(
        {
            "station": ["NYA"] * 3,
            "time": times,
            "pred": ["arc"] * 3,
            "p_aurora": [0.9, 0.8, 0.7],
            "p_arc": [0.9, 0.8, 0.7],
            "cloud_detected": [False] * 3,
            "cbh_m": [None, 500.0, None],
            "dt_s": [1.0] * 3,
            "file_name": ["a", "b", "c"],
            "frame_index": [0, 0, 0],
        }
    )
    magnetometer = pl.DataFrame(
        {
            "station": ["NAL"] * 2,
            "time": [dt.datetime(2010, 12, 2, 17, 59), dt.datetime(2010, 12, 2, 18)],
            "h_nt": [1.0, 2.0],
        }
    )
    out = build_catalog(
        merged,
        magnetometer,
        network="uio",
        camera="nya6",
        magnetometer_key_map={"NYA": "NAL"},
        site=(78.92, 11.93, 50.0),
    )
    assert out.columns[-3:] == ["mlat", "mlt", "novelty"] and set(CATALOG_COLUMNS) <= set(out.columns)
    assert out["mlt"].to_list() == pytest.approx([20.4895, 20.4920, 20.4945], abs=2e-4)  # MLT runs with UT
    assert out["novelty"].dtype == pl.Float64 and out["novelty"].null_count() == 3  # no frame_embeddings given


def test_novelty_is_the_embeddings_percentile_in_percent_matched_by_file_and_frame():
    from tame_assets.products.catalog import with_novelty

    catalog = pl.DataFrame(
        {"file": ["a", "b", "b", "c"], "frame_index": pl.Series([0, 0, 1, 0], dtype=pl.Int32), "pred": ["arc"] * 4}
    )
    embeddings = pl.DataFrame(
        {
            "file_name": ["b", "b", "a", "c", "b"],  # another order; "c" without an embedding; "b"/0 twice
            "frame_index": pl.Series([1, 0, 0, 0, 0], dtype=pl.Int32),
            "novelty": pl.Series([0.995, 0.5, 1.0, None, 0.5], dtype=pl.Float32),
        }
    )
    out = with_novelty(catalog, embeddings)
    assert out.columns == ["file", "frame_index", "pred", "novelty"] and out.height == 4
    assert out["novelty"].to_list() == [100.0, 50.0, 99.5, None]
    assert with_novelty(catalog, None)["novelty"].null_count() == 4
