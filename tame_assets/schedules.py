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
    build_schedule_from_partitioned_job,
    define_asset_job,
    schedule,
    sensor,
)

from tame_assets.assets.common import monthly_partitions
from tame_assets.resources import TameResource

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

#: On the 2nd of each month at 03:00 UTC, (re)materialize the previous month.
monthly_schedule = build_schedule_from_partitioned_job(
    monthly_job, name="previous_month_schedule", day_of_month=2, hour_of_day=3
)


def current_month_key(now: dt.datetime) -> str:
    """Partition key of the month containing ``now`` (UTC)."""
    return now.strftime("%Y-%m")


@schedule(job=monthly_job, cron_schedule="30 4 * * *", name="current_month_daily_schedule", execution_timezone="UTC")
def current_month_daily_schedule(context: ScheduleEvaluationContext):
    """Every day at 04:30 UTC, refresh the current month's partition with the days seen so far."""
    month = current_month_key(context.scheduled_execution_time)
    return RunRequest(run_key=f"{month}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=month)


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
    """Watch the image archive's listing for the current and previous month; request the months
    that gained days since the last evaluation (cursor = JSON list of days seen)."""
    from tame_assets.archives import list_archive_days

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    months = [current_month_key(now.replace(day=1) - dt.timedelta(days=1)), current_month_key(now)]
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
