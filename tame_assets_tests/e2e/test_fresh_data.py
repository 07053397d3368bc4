"""Data follows the remote archive and the code: scheduled re-runs of the current month see files
that grew (raw assets materialized twice through the real Definitions against a loopback "remote"
archive), and a bumped parser/preprocessing/classifier version marks materializations stale."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.definitions.data_version import StaleCauseCategory, StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from tame_assets.defs.assets.common import asset_code_version
from tame_assets.defs.checks import all_checks
from tame_assets.defs.definitions import all_assets
from tame_assets.defs.resources import TameResource
from tame_assets.ml import preprocessing, tables
from tame_assets.sources import ceilometer, images, magnetometer, oath, uio_asi
from tame_assets.sources.ceilometer import write_pangaea_tab
from tame_assets.sources.magnetometer import write_iaga2002
from tame_assets.sources.sample.generator import (
    CEILOMETER_COLLECTION_ID,
    SampleArchiveServer,
    ceilometer_child_id,
    pangaea_dataset_path,
    write_ceilometer_collection,
)
from tame_assets.warehouse.store import Warehouse


def _magnetometer_day(day: dt.date, n: int) -> pl.DataFrame:
    start = dt.datetime.combine(day, dt.time())
    rng = np.random.default_rng(n)
    return pl.DataFrame(
        {
            "time": pl.datetime_range(start, start + dt.timedelta(minutes=n - 1), "1m", eager=True, time_unit="us"),
            "x_nt": 9000 + rng.normal(0, 20, n),
            "y_nt": 300 + rng.normal(0, 20, n),
            "z_nt": 53000 + rng.normal(0, 5, n),
        }
    )


def _ceilometer_month(month_start: dt.datetime, n: int) -> pl.DataFrame:
    times = pl.datetime_range(month_start, month_start + dt.timedelta(minutes=n - 1), "1m", eager=True, time_unit="us")
    heights = np.where(np.arange(n) % 3 == 0, np.nan, 800.0 + np.arange(n) % 500)  # every third: no cloud
    return pl.DataFrame({"time": times, "cbh_m": heights}).with_columns(pl.col("cbh_m").fill_nan(None))


def _write_remote(www, day: dt.date, month: str, n_mag: int, n_ceil: int) -> None:
    """The "remote" archive in the sample archive's layout: NAL's day in the store the emulated IMAGE
    form answers from, the PANGAEA collection export and the month's child dataset."""
    mag = www / "image" / "iaga2002" / "NAL" / f"{day:%Y}" / f"nal{day:%Y%m%d}vmin.min"
    ceil = pangaea_dataset_path(www, ceilometer_child_id(month))
    write_ceilometer_collection(www, [month])
    for path in (mag, ceil):
        previous = path.stat().st_mtime_ns if path.exists() else None
        if path is mag:
            write_iaga2002(_magnetometer_day(day, n_mag), path, "NAL")
        else:
            write_pangaea_tab(_ceilometer_month(dt.datetime(day.year, day.month, 1), n_ceil), path)
        if previous is not None:  # as a real server's clock would have moved on
            os.utime(path, ns=(previous + 1_000_000_000,) * 2)


def _materialize(root, url, month, selection=("magnetometer", "ceilometer"), instance=None):
    tame = TameResource(
        data_root=str(root),
        source="remote",
        image_base_url=f"{url}/image",
        pangaea_url=f"{url}/pangaea/10.1594/PANGAEA.{CEILOMETER_COLLECTION_ID}?format=textfile",
        image_requester_name="Test",
        image_requester_institute="UiO",
        image_requester_email="test@example.org",
    )
    result = materialize(
        [*all_assets, *all_checks],
        selection=list(selection),
        partition_key=month,
        resources={"tame": tame},
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=True,
    )
    assert result.success
    if "magnetometer" not in selection:
        return None
    wh = Warehouse(root)
    return (
        wh.sql("select count(*) n from magnetometer where x_nt is not null")["n"][0],
        wh.sql("select count(*) n from ceilometer where not missing")["n"][0],
    )


def test_current_month_rerun_picks_up_the_grown_remote_day_and_month(tmp_path):
    today = dt.datetime.now(dt.timezone.utc).date()
    month = f"{today:%Y-%m}"
    www = tmp_path / "www"
    _write_remote(www, today, month, n_mag=300, n_ceil=300)
    served = SampleArchiveServer(www)
    root = tmp_path / "data"
    killed = root / "raw" / "magnetometer" / "NAL" / month[:4] / "nal20000101vmin.min.part"  # a killed writer's
    killed.parent.mkdir(parents=True)
    killed.write_bytes(bytes(100_000))
    os.utime(killed, (killed.stat().st_mtime - 86_400,) * 2)
    assert _materialize(root, served.url, month) == (300, 300)  # the first, partial copies
    assert not killed.exists()  # swept: older than any running download
    _write_remote(www, today, month, n_mag=1440, n_ceil=8000)  # the day completed, the month grew
    assert _materialize(root, served.url, month) == (1440, 8000)
    assert _materialize(root, served.url, month) == (1440, 8000)  # unchanged remote: 304, same rows
    served.close()


VERSIONED = [
    "asim_images",
    "magnetometer",
    "ceilometer",
    "oath_images",
    "oath_features",
    "asim_features",
    "oath_classifier",
    "asim_predictions",
    "asim_ceilometer",
    "asim_magnetometer",
]


@pytest.mark.parametrize(
    "module, constant, affected",
    [
        (magnetometer, "PARSER_VERSION", {"magnetometer"}),
        (ceilometer, "PARSER_VERSION", {"ceilometer"}),
        (oath, "PARSER_VERSION", {"oath_images"}),
        (uio_asi, "INDEX_VERSION", {"asim_images"}),
        (images, "IMAGE_READ_VERSION", {"asim_images", "oath_features", "asim_features"}),
        (preprocessing, "PREPROCESSING_VERSION", {"oath_features", "asim_features"}),
        (tables, "CLASSIFIER_VERSION", {"oath_classifier", "asim_predictions"}),
    ],
)
def test_a_version_bump_changes_exactly_the_code_versions_that_depend_on_it(monkeypatch, module, constant, affected):
    before = {name: asset_code_version(name) for name in VERSIONED}
    monkeypatch.setattr(module, constant, "bumped")
    after = {name: asset_code_version(name) for name in VERSIONED}
    assert {name for name in VERSIONED if after[name] != before[name]} == affected
    declared = {k.to_user_string(): v for a in all_assets for k, v in a.code_versions_by_key.items()}
    assert all(declared[name] == before[name] for name in VERSIONED)  # what the Definitions carry


def test_parser_bump_marks_the_materialized_partition_stale(tmp_path, monkeypatch):
    today = dt.datetime.now(dt.timezone.utc).date()
    month = f"{today:%Y-%m}"
    www = tmp_path / "www"
    _write_remote(www, today, month, n_mag=300, n_ceil=300)
    served = SampleArchiveServer(www)
    instance = DagsterInstance.ephemeral()
    _materialize(tmp_path / "data", served.url, month, selection=["ceilometer"], instance=instance)
    key = AssetKey("ceilometer")
    assert get_stale_status_resolver(instance, all_assets).get_status(key, month) == StaleStatus.FRESH
    monkeypatch.setattr(ceilometer, "PARSER_VERSION", "next")
    bumped = [
        a.map_asset_specs(lambda spec: spec.replace_attributes(code_version=asset_code_version("ceilometer")))
        if a.keys == {key}
        else a
        for a in all_assets
    ]  # the Definitions as a new release would build them
    resolver = get_stale_status_resolver(instance, bumped)
    assert resolver.get_status(key, month) == StaleStatus.STALE
    assert [c.category for c in resolver.get_stale_causes(key, month)] == [StaleCauseCategory.CODE]
