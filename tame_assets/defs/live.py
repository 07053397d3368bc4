"""The live path in Dagster: ``live_frames`` is an external asset (an :class:`~dagster.AssetSpec`; the
``tame live`` process writes it, not a run), and each commit of the live runner is recorded on the
shared instance as a runless asset materialization, so the UI shows the live day's freshness, row
count and latency. Thin on purpose: the work is :mod:`tame_assets.live`."""

from __future__ import annotations

import time
from typing import Callable

from dagster import AssetKey, AssetMaterialization, AssetSpec, DagsterInstance, MetadataValue

from tame_assets.config import TameSettings
from tame_assets.defs.runner import dagster_home

LIVE_ASSET_KEY = AssetKey("live_frames")

live_frames_spec = AssetSpec(
    LIVE_ASSET_KEY,
    group_name="products",
    kinds={"parquet"},
    description=(
        "Catalog rows of the frames the live path (`tame live`) picked up during the night, before the "
        "month's batch run: warehouse/live_frames/, read with aurora_catalog by the view aurora_catalog_live "
        "(batch rows win for the days the batch catalog has). Materializations are recorded by the live process."
    ),
)


def live_instance(settings: TameSettings) -> DagsterInstance:
    """The shared instance ``tame ui`` shows (:func:`~tame_assets.defs.runner.dagster_home`)."""
    return DagsterInstance.from_config(str(dagster_home(settings)))


def live_event_reporter(instance: DagsterInstance, every_s: float = 10.0) -> Callable[[dict], None]:
    """A ``on_commit`` callback for :class:`~tame_assets.live.runner.LiveRunner`: records an
    ``AssetMaterialization`` of ``live_frames`` at most every ``every_s`` seconds (rows summed)."""
    pending = {"rows": 0, "failed": 0, "last": 0.0}

    def report(summary: dict) -> None:
        pending["rows"] += summary["rows"]
        pending["failed"] += summary["failed"]
        if time.monotonic() - pending["last"] < every_s:
            return
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key=LIVE_ASSET_KEY,
                description=f"live rows of {summary['station']} {summary['day']}",
                metadata={
                    "station": summary["station"],
                    "day": summary["day"],
                    "rows_added": MetadataValue.int(pending["rows"]),
                    "rows_today": MetadataValue.int(summary["rows_today"]),
                    "unreadable": MetadataValue.int(pending["failed"]),
                    "latest_frame_time": summary["latest_frame_time"],
                    "latency_s_max": MetadataValue.float(round(summary["latency_s_max"], 2)),
                },
            )
        )
        pending.update(rows=0, failed=0, last=time.monotonic())

    return report
