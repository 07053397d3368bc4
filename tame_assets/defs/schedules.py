"""Schedules and sensors: new months and new days of images arrive on their own, and what derives
from them follows by Declarative Automation.

The schedules and the two data sensors are stopped by default (switch them on in the Dagster UI, with
the daemon running — ``dagster dev`` starts it). ``products_automation_sensor`` runs by default: it
evaluates the assets' automation conditions (:func:`~tame_assets.defs.assets.common.follows_new_partitions`,
:func:`~tame_assets.defs.assets.common.refreshed_daily`), so a tick that writes raw partitions ends in
features, predictions, merges, keograms, daily summaries, maps, movies and catalog rows.
"""

import datetime as dt
import json

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from tame_assets.config import SAMPLE_MONTHS, SAMPLE_SOURCE
from tame_assets.defs.assets.common import station_month_key, station_partitions
from tame_assets.defs.resources import TameResource
from tame_assets.months import month_of, neighbour_month

#: Monthly sources shared by every station (one magnetometer / ceilometer series per month).
SOURCE_ASSETS = ("magnetometer", "ceilometer")
#: Per-station assets of a month: frames, features, predictions, merges.
STATION_ASSETS = ("asim_images", "asim_features", "asim_predictions", "asim_ceilometer", "asim_magnetometer")
MONTHLY_ASSETS = SOURCE_ASSETS + STATION_ASSETS

sources_job = define_asset_job(
    "monthly_sources_job",
    selection=AssetSelection.assets(*SOURCE_ASSETS),
    description="Ingest one month of the shared sources: magnetometer and ceilometer.",
)
#: Every station × month asset (a month of one station: frames, features, predictions, merges).
station_months_job = define_asset_job(
    "station_months_job",
    selection=AssetSelection.assets(*STATION_ASSETS),
    description="Ingest and derive one station's month: frames, features, predictions, merges.",
)


def current_month_key(now: dt.datetime) -> str:
    """Partition key of the month containing ``now`` (UTC)."""
    return month_of(now)


def previous_month_key(now: dt.datetime) -> str:
    """Partition key of the month before the one containing ``now`` (UTC)."""
    return neighbour_month(month_of(now), -1)


def station_month_requests(instance, month: str, run_key: str, tags: dict | None = None) -> list[RunRequest]:
    """One run request per registered station (dynamic partitions ``stations``) for ``month``."""
    return [
        RunRequest(run_key=f"{station}:{run_key}", partition_key=station_month_key(station, month), tags=tags or {})
        for station in sorted(instance.get_dynamic_partitions(station_partitions.name))
    ]


def _month_schedules(name: str, cron: str, month_of_tick, what: str) -> list:
    """The sources schedule ``<name>`` and its per-station twin ``<name>_stations`` (same cron, UTC)."""

    @schedule(
        job=sources_job,
        cron_schedule=cron,
        name=name,
        execution_timezone="UTC",
        description=f"{what}: magnetometer and ceilometer.",
    )
    def sources(context: ScheduleEvaluationContext):
        month = month_of_tick(context.scheduled_execution_time)
        return RunRequest(run_key=f"{month}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=month)

    @schedule(
        job=station_months_job,
        cron_schedule=cron,
        name=f"{name}_stations",
        execution_timezone="UTC",
        description=f"{what}: every registered station's frames, features, predictions and merges "
        "(products_automation_sensor carries them on to the products).",
    )
    def stations(context: ScheduleEvaluationContext):
        month = month_of_tick(context.scheduled_execution_time)
        run_key = f"{month}@{context.scheduled_execution_time:%Y-%m-%d}"
        requests = station_month_requests(context.instance, month, run_key)
        return requests or SkipReason(
            "no stations registered yet (switch on stations_sensor, or run `tame materialize`)"
        )

    return [sources, stations]


monthly_schedule, monthly_stations_schedule = _month_schedules(
    "previous_month_schedule",
    "0 3 2 * *",
    previous_month_key,
    "On the 2nd of each month at 03:00 UTC, materialize the previous, now complete month",
)
current_month_daily_schedule, current_month_daily_stations_schedule = _month_schedules(
    "current_month_daily_schedule",
    "30 4 * * *",
    current_month_key,
    "Every day at 04:30 UTC, refresh the current month's partitions with the days seen so far",
)


@sensor(
    name="stations_sensor",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Every 5 min: register each configured station (settings + stations file) as a `stations` "
    "partition; stations are never removed.",
)
def stations_sensor(context: SensorEvaluationContext, tame: TameResource):
    """Register every configured station (settings + stations file) as a ``stations`` partition, so a
    new station needs configuration only; stations are never removed (their data stay browsable)."""
    configured = tame.settings.station_table().codes
    known = set(context.instance.get_dynamic_partitions(station_partitions.name))
    new = [code for code in configured if code not in known]
    if not new:
        return SkipReason(f"all {len(configured)} configured stations registered")
    return SensorResult(dynamic_partitions_requests=[station_partitions.build_add_request(new)])


def watched_months(now: dt.datetime, source: str, sample_months=SAMPLE_MONTHS) -> list[str]:
    """Months the sensor lists: the previous and the current month (UTC) of a live archive, or the
    sample archive's months (it has no "now")."""
    if source == SAMPLE_SOURCE:
        return list(sample_months)
    return [previous_month_key(now), current_month_key(now)]


def new_days(listed: list[str], seen: list[str]) -> dict[str, list[str]]:
    """Days (``YYYYMMDD``) in ``listed`` but not in ``seen``, grouped by partition key ``YYYY-MM``."""
    fresh = sorted(set(listed) - set(seen))
    months: dict[str, list[str]] = {}
    for day in fresh:
        months.setdefault(f"{day[:4]}-{day[4:6]}", []).append(day)
    return months


@sensor(
    job=station_months_job,
    name="new_image_days_sensor",
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.STOPPED,
    description="Hourly: request the primary station's months that gained image days in the archive's "
    "availability index (or listing) since the last tick.",
)
def new_image_days_sensor(context: SensorEvaluationContext, tame: TameResource):
    """Watch the primary (UiO) station's image archive (:func:`watched_months`): its ``avail.csv``
    availability index where it serves one, else its listing pages; request that station's months
    that gained days since the last evaluation (cursor = JSON list of days seen; run tag ``tame/new_days``)."""
    from tame_assets.sources.locations import list_archive_days

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    months = watched_months(now, tame.settings.source)
    listed = list_archive_days(tame.settings, months)
    seen = json.loads(context.cursor) if context.cursor else []
    fresh = new_days(listed, seen)
    context.update_cursor(json.dumps(sorted(set(seen) | set(listed))))
    if not fresh:
        return SkipReason(f"no new days in {', '.join(months)}")
    station = tame.settings.asi_station
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{station}:{month}:{days[-1]}:{len(days)}",
                partition_key=station_month_key(station, month),
                tags={"tame/new_days": ",".join(days)},
            )
            for month, days in fresh.items()
        ],
        dynamic_partitions_requests=[station_partitions.build_add_request([station])],
    )


#: Declarative Automation of every asset with an automation condition (the derived partitioned chain,
#: skymaps of new stations, the daily analyses); raw and unpartitioned upstream assets have none.
products_automation_sensor = AutomationConditionSensorDefinition(
    "products_automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Declarative Automation: when raw partitions (asim_images, magnetometer, ceilometer of a station × "
    "month) are written, request that partition's features, predictions, merges, keograms, daily "
    "summaries, maps, movies and catalog; skymaps of a newly registered station; the analyses over all "
    "months at most once a day after new data. Never the unpartitioned ML chain (oath_*, svm_search, "
    "benchmarks, labelled_set_evaluation): `tame materialize` or the UI runs those.",
)

all_jobs = [sources_job, station_months_job]
all_schedules = [
    monthly_schedule,
    monthly_stations_schedule,
    current_month_daily_schedule,
    current_month_daily_stations_schedule,
]
all_sensors = [new_image_days_sensor, stations_sensor, products_automation_sensor]
