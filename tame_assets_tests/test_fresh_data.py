"""Scheduled re-runs see new data: the raw assets of the current month, materialized twice through the
real Definitions against a loopback "remote" archive whose files grew in between."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import polars as pl
from dagster import DagsterInstance, materialize

from tame_assets.checks import all_checks
from tame_assets.definitions import all_assets
from tame_assets.resources import TameResource
from tame_assets.sources.ceilometer import write_pangaea_tab
from tame_assets.sources.magnetometer import iaga_day_url, write_iaga2002
from tame_assets.storage import Warehouse


def _magnetometer_day(day: dt.date, n: int) -> pl.DataFrame:
    start = dt.datetime.combine(day, dt.time())
    rng = np.random.default_rng(n)
    return pl.DataFrame({
        "time": pl.datetime_range(start, start + dt.timedelta(minutes=n - 1), "1m", eager=True, time_unit="us"),
        "x_nt": 9000 + rng.normal(0, 20, n), "y_nt": 300 + rng.normal(0, 20, n), "z_nt": 53000 + rng.normal(0, 5, n),
    })


def _ceilometer_month(month_start: dt.datetime, n: int) -> pl.DataFrame:
    times = pl.datetime_range(month_start, month_start + dt.timedelta(minutes=n - 1), "1m", eager=True, time_unit="us")
    heights = np.where(np.arange(n) % 3 == 0, np.nan, 800.0 + np.arange(n) % 500)  # every third: no cloud
    return pl.DataFrame({"time": times, "cbh_m": heights}).with_columns(pl.col("cbh_m").fill_nan(None))


def _write_remote(www, day: dt.date, month: str, n_mag: int, n_ceil: int) -> None:
    mag = www / iaga_day_url("image", "NAL", day).removeprefix("image/")
    ceil = www / "ceilometer" / f"NYA_{month}.tab"
    for path in (mag, ceil):
        previous = path.stat().st_mtime_ns if path.exists() else None
        if path is mag:
            write_iaga2002(_magnetometer_day(day, n_mag), path, "NAL")
        else:
            write_pangaea_tab(_ceilometer_month(dt.datetime(day.year, day.month, 1), n_ceil), path)
        if previous is not None:  # as a real server's clock would have moved on
            os.utime(path, ns=(previous + 1_000_000_000,) * 2)


def _materialize(root, url, month):
    tame = TameResource(data_root=str(root), source="remote", image_base_url=url,
                        pangaea_url=f"{url}/ceilometer/{{site}}_{{month}}.tab")
    result = materialize([*all_assets, *all_checks], selection=["magnetometer", "ceilometer"], partition_key=month,
                         resources={"tame": tame}, instance=DagsterInstance.ephemeral(), raise_on_error=True)
    assert result.success
    wh = Warehouse(root)
    return (wh.sql("select count(*) n from magnetometer where x_nt is not null")["n"][0],
            wh.sql("select count(*) n from ceilometer where not missing")["n"][0])


def test_current_month_rerun_picks_up_the_grown_remote_day_and_month(tmp_path, loopback_server):
    today = dt.datetime.now(dt.timezone.utc).date()
    month = f"{today:%Y-%m}"
    www = tmp_path / "www"
    _write_remote(www, today, month, n_mag=300, n_ceil=300)
    served = loopback_server(www)
    root = tmp_path / "data"
    assert _materialize(root, served.url, month) == (300, 300)  # the first, partial copies
    _write_remote(www, today, month, n_mag=1440, n_ceil=8000)  # the day completed, the month grew
    assert _materialize(root, served.url, month) == (1440, 8000)
    assert _materialize(root, served.url, month) == (1440, 8000)  # unchanged remote: 304, same rows
