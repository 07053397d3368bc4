"""Schedules and sensors: new months and new days of images arrive on their own.

All are stopped by default (switch them on in the Dagster UI, with the daemon running —
``dagster dev`` starts it).
"""


import datetime as dt
import json

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from tame_assets.defs.assets.common import monthly_partitions
from tame_assets.config import SAMPLE_MONTHS, SAMPLE_SOURCE
from tame_assets.months import month_of, neighbour_month
from tame_assets.defs.resources import TameResource

MONTHLY_ASSETS = (
    "asim_images", "magnetometer", "ceilometer", "asim_features", "asim_predictions",
    "asim_ceilometer", "asim_magnetometer",
)

#: Every monthly-partitioned asset: raw sources, features, predictions, merges.
monthly_job = define_asset_job(
    "monthly_partitions_job",
    selection=AssetSelection.assets(*MONTHLY_ASSETS),
    description="Ingest and derive one month: images, magnetometer, ceilometer, features, predictions, merges.",
)

def current_month_key(now: dt.datetime) -> str:
    """Partition key of the month containing ``now`` (UTC)."""
    return month_of(now)


def previous_month_key(now: dt.datetime) -> str:
    """Partition key of the month before the one containing ``now`` (UTC)."""
    return neighbour_month(month_of(now), -1)


@schedule(job=monthly_job, cron_schedule="0 3 2 * *", name="previous_month_schedule", execution_timezone="UTC")
def monthly_schedule(context: ScheduleEvaluationContext):
    """On the 2nd of each month at 03:00 UTC, materialize the previous, now complete month."""
    month = previous_month_key(context.scheduled_execution_time)
    return RunRequest(run_key=f"{month}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=month)


@schedule(job=monthly_job, cron_schedule="30 4 * * *", name="current_month_daily_schedule", execution_timezone="UTC")
def current_month_daily_schedule(context: ScheduleEvaluationContext):
    """Every day at 04:30 UTC, refresh the current month's partition with the days seen so far."""
    month = current_month_key(context.scheduled_execution_time)
    return RunRequest(run_key=f"{month}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=month)


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


@sensor(job=monthly_job, name="new_image_days_sensor", minimum_interval_seconds=3600,
        default_status=DefaultSensorStatus.STOPPED)
def new_image_days_sensor(context: SensorEvaluationContext, tame: TameResource):
    """Watch the image archive's listing (:func:`watched_months`); request the months that gained
    days since the last evaluation (cursor = JSON list of days seen; run tag ``tame/new_days``)."""
    from tame_assets.sources.locations import list_archive_days

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    months = watched_months(now, tame.settings.source)
    listed = list_archive_days(tame.settings, months)
    seen = json.loads(context.cursor) if context.cursor else []
    fresh = new_days(listed, seen)
    context.update_cursor(json.dumps(sorted(set(seen) | set(listed))))
    if not fresh:
        return SkipReason(f"no new days in {', '.join(months)}")
    return [
        RunRequest(run_key=f"{month}:{days[-1]}:{len(days)}", partition_key=month, tags={"tame/new_days": ",".join(days)})
        for month, days in fresh.items()
    ]


all_jobs = [monthly_job]
all_schedules = [monthly_schedule, current_month_daily_schedule]
all_sensors = [new_image_days_sensor]
