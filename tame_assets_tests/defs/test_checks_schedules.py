"""Every data-quality check with passing and failing input; a blocking check failing in a real
materialization; schedules and the new-days sensor against the sample archive on loopback."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import polars as pl
import pytest
from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from tame_assets.defs import checks
from tame_assets.defs.definitions import all_assets, defs
from tame_assets.defs.resources import TameResource
from tame_assets.defs.schedules import (
    current_month_daily_schedule,
    current_month_daily_stations_schedule,
    monthly_schedule,
    new_days,
    new_image_days_sensor,
    stations_sensor,
    watched_months,
)
from tame_assets.labels import OATH_CLASSES
from tame_assets.sources.sample.generator import ensure_sample_archive

T = dt.datetime(2010, 12, 5, 12)


def _features(vectors, ok=None, error=None):
    n = len(vectors)
    return pl.DataFrame(
        {
            "file_name": [f"f{i}.png" for i in range(n)],
            "features": vectors,
            "ok": ok if ok is not None else [True] * n,
            "error": error if error is not None else [None] * n,
        },
        schema_overrides={"features": pl.List(pl.Float32), "error": pl.String},
    )


def test_row_counts_match():
    images = pl.DataFrame({"file_name": ["a.png", "b.png"]})
    assert checks.check_row_counts_match(images, images).passed
    assert not checks.check_row_counts_match(images, images.head(1)).passed  # a row lost
    assert not checks.check_row_counts_match(images, images.reverse()).passed  # file ↔ row mapping broken


def test_feature_vectors():
    assert checks.check_feature_vectors(
        _features([[1.0, 2.0], None], ok=[True, False], error=[None, "x.png: bad"])
    ).passed
    assert not checks.check_feature_vectors(_features([[1.0, float("nan")]])).passed  # NaN in an ok row
    assert not checks.check_feature_vectors(_features([None])).passed  # NULL vector in an ok row
    assert not checks.check_feature_vectors(_features([None], ok=[False])).passed  # failure without a reason


def test_times_in_partition_and_sorted():
    good = pl.DataFrame({"time": [T, T + dt.timedelta(minutes=1)]})
    assert checks.check_times_in_partition(good, "2010-12").passed
    assert not checks.check_times_in_partition(good, "2011-01").passed  # outside the month
    assert not checks.check_times_in_partition(good.reverse(), "2010-12").passed  # not sorted
    edge = pl.DataFrame({"time": [dt.datetime(2011, 1, 1)]})
    assert not checks.check_times_in_partition(edge, "2010-12").passed  # month end is exclusive


def test_magnetometer_plausible():
    nal = pl.DataFrame({"x_nt": [7800.0], "y_nt": [-300.0], "z_nt": [53000.0]})  # Ny-Ålesund-like field
    assert checks.check_magnetometer_plausible(nal).passed
    assert not checks.check_magnetometer_plausible(nal.with_columns(z_nt=pl.lit(5300.0))).passed  # |B| too small
    assert not checks.check_magnetometer_plausible(nal.with_columns(x_nt=pl.lit(99999.0))).passed  # fill value leaked
    assert not checks.check_magnetometer_plausible(nal.clear()).passed  # nothing valid at all


def test_gap_and_missing_fractions():
    mag = pl.DataFrame({"h_nt": [1.0, None, 3.0, 4.0, 5.0]})
    assert checks.check_gap_fraction(mag, "h_nt", 0.2).passed
    assert not checks.check_gap_fraction(mag, "h_nt", 0.1).passed
    ceil = pl.DataFrame({"missing": [True, True, False, False]})
    assert checks.check_missing_flag_fraction(ceil, 0.5).passed
    assert not checks.check_missing_flag_fraction(ceil, 0.3).passed
    assert not checks.check_missing_flag_fraction(ceil.clear(), 0.3).passed  # empty month counts as missing


def test_accuracy_floor():
    assert checks.check_accuracy_floor(0.73, 0.5).passed
    assert not checks.check_accuracy_floor(0.4, 0.5).passed


def test_class_drift():
    rng = np.random.default_rng(0)
    oath = pl.Series(rng.choice(OATH_CLASSES, 600).tolist())
    similar = pl.Series(rng.choice(OATH_CLASSES, 300).tolist())
    assert checks.check_class_drift(similar, oath).passed
    assert not checks.check_class_drift(pl.Series(["cloudy"] * 300), oath).passed  # everything one class
    assert not checks.check_class_drift(pl.Series([], dtype=pl.String), oath).passed


@pytest.mark.e2e
def test_blocking_magnetometer_check_fails_on_implausible_file(tmp_path):
    archive = ensure_sample_archive(tmp_path)
    day = next((archive / "image/iaga2002/NAL/2010").glob("nal201012*vmin.min"))
    lines = day.read_text().splitlines()
    first_data = next(i for i, line in enumerate(lines) if line[:2] == "20")
    x = float(lines[first_data].split()[3])
    # X of one sample → 69,000 nT (fixed-width column kept): |B| ≈ 87,000 nT, not on Earth
    lines[first_data] = lines[first_data].replace(f"{x:10.2f}", f"{69000:10.2f}", 1)
    day.write_text("\n".join(lines) + "\n")
    result = materialize(
        [*all_assets, *checks.all_checks],
        selection=["magnetometer"],
        partition_key="2010-12",
        resources={"tame": TameResource(data_root=str(tmp_path))},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    plausible = evaluations["magnetometer_plausible"]
    assert not plausible.passed and plausible.severity == AssetCheckSeverity.ERROR
    assert plausible.metadata["implausible"].value == 1
    assert evaluations["magnetometer_times_in_partition"].passed


def test_schedules_request_the_right_partitions(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:  # schedules need an instance with a ref
        ctx = build_schedule_context(
            instance=instance,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=dt.datetime(2011, 2, 2, 3, 0, tzinfo=dt.timezone.utc),
        )
        requests = list(defs.get_schedule_def(monthly_schedule.name).evaluate_tick(ctx).run_requests)
        assert [r.partition_key for r in requests] == ["2011-01"]  # the previous, complete month
        ctx = build_schedule_context(
            instance=instance,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=dt.datetime(2011, 2, 17, 4, 30, tzinfo=dt.timezone.utc),
        )
        requests = list(current_month_daily_schedule.evaluate_tick(ctx).run_requests)
        assert [r.partition_key for r in requests] == ["2011-02"]
        # the per-station twin: one run per registered station, none before a station is registered
        stations = defs.get_schedule_def(current_month_daily_stations_schedule.name)
        assert not stations.evaluate_tick(ctx).run_requests
        instance.add_dynamic_partitions("stations", ["NYA", "GAKO"])
        requests = stations.evaluate_tick(ctx).run_requests
        assert sorted(r.partition_key for r in requests) == ["2011-02|GAKO", "2011-02|NYA"]
    resolved = [defs.get_schedule_def(s.name) for s in defs.schedules] + list(defs.sensors)
    status = {d.name: d.default_status.value for d in resolved}
    assert status.pop("products_automation_sensor") == "RUNNING"  # automation follows whatever writes raw data
    assert set(status.values()) == {"STOPPED"}  # schedules and data sensors: off by default
    assert all(d.description for d in resolved) and all(j.description for j in defs.jobs)  # the UI shows what each does


def test_new_days_and_watched_months():
    assert new_days(["20101230", "20101231", "20110101"], ["20101230"]) == {
        "2010-12": ["20101231"],
        "2011-01": ["20110101"],
    }
    assert new_days(["20101230"], ["20101230"]) == {}
    assert watched_months(dt.datetime(2011, 1, 10), "remote") == ["2010-12", "2011-01"]
    assert watched_months(dt.datetime(2026, 1, 10), "sample") == ["2010-12", "2011-01"]


def test_sensor_requests_months_with_new_days(tmp_path):
    archive = ensure_sample_archive(tmp_path)
    year = archive / "asim/nya4/5577/2011"
    held_back = tmp_path / "20110131"
    shutil.move(year / "20110131", held_back)  # the archive has not published 31 January yet
    avail = archive / "asim/avail.csv"  # ... nor listed it in its availability index
    full_index = avail.read_text()
    avail.write_text("".join(line for line in full_index.splitlines(True) if ",20110131," not in line))
    resources = {"tame": TameResource(data_root=str(tmp_path))}

    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(instance=instance, resources=resources)
        first = new_image_days_sensor(ctx)
        assert {r.partition_key for r in first.run_requests} == {"2010-12|NYA", "2011-01|NYA"}
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["NYA"]]  # the station registered
        tags = {
            r.partition_key.keys_by_dimension["month"]: r.tags["tame/new_days"].split(",") for r in first.run_requests
        }
        assert len(tags["2010-12"]) == 31 and len(tags["2011-01"]) == 30 and "20110131" not in tags["2011-01"]

        ctx = build_sensor_context(instance=instance, resources=resources, cursor=ctx.cursor)
        assert isinstance(new_image_days_sensor(ctx), SkipReason)  # nothing new

        shutil.move(held_back, year / "20110131")  # the new day appears in the listing ...
        ctx = build_sensor_context(instance=instance, resources=resources, cursor=ctx.cursor)
        assert isinstance(new_image_days_sensor(ctx), SkipReason)  # ... but the sensor reads avail.csv
        avail.write_text(full_index)  # and in the index
        ctx = build_sensor_context(instance=instance, resources=resources, cursor=ctx.cursor)
        (request,) = new_image_days_sensor(ctx).run_requests
        assert request.partition_key == "2011-01|NYA" and request.tags["tame/new_days"] == "20110131"


def test_stations_sensor_registers_configured_stations_once(tmp_path):
    stations_file = tmp_path / "stations.toml"
    stations_file.write_text('[GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\n')
    resources = {"tame": TameResource(data_root=str(tmp_path), stations_file=str(stations_file))}
    with DagsterInstance.ephemeral() as instance:
        result = stations_sensor(build_sensor_context(instance=instance, resources=resources))
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["NYA", "GILL", "GAKO"]]
        instance.add_dynamic_partitions("stations", ["NYA", "GILL", "GAKO"])
        assert isinstance(stations_sensor(build_sensor_context(instance=instance, resources=resources)), SkipReason)


def test_station_month_check_metadata_keeps_one_series_per_station():
    """The UI's check plots draw one line per numeric metadata key across executions: numbers of a
    station × month partition are keyed by station, so stations never share (zig-zag on) one line."""
    from tame_assets.defs.assets.common import Partition

    outcome = checks.check_class_drift(pl.Series(["arc", "moon"] * 50), pl.Series(list(OATH_CLASSES) * 20))
    nya = checks._result(outcome, partition=Partition.of("2010-12|NYA")).metadata
    gill = checks._result(outcome, partition=Partition.of("2010-12|GILL")).metadata
    assert "js_distance [NYA]" in nya and "js_distance [GILL]" in gill and "js_distance" not in nya
    assert nya["station"].value == "NYA" and nya["month"].value == "2010-12"
    assert set(nya) - {"station"} != set(gill) - {"station"}
    monthly = checks._result(outcome, partition=Partition.of("2010-12")).metadata  # no station: unchanged keys
    assert "js_distance" in monthly and "station" not in monthly
