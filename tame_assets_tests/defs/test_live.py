"""The live runner's commits as runless materializations of the external asset live_frames."""

from dagster import AssetKey, DagsterInstance

from tame_assets.defs.definitions import defs
from tame_assets.defs.live import LIVE_ASSET_KEY, live_event_reporter


def summary(rows: int, rows_today: int) -> dict:
    return {
        "station": "NYA",
        "day": "2010-12-29",
        "rows": rows,
        "rows_today": rows_today,
        "latest_frame_time": "2010-12-29 20:00:10",
        "latency_s_max": 1.234,
        "failed": 0,
    }


def test_commits_are_recorded_as_live_frames_materializations():
    assert LIVE_ASSET_KEY in {spec.key for spec in defs.resolve_all_asset_specs()}  # listed in the UI
    with DagsterInstance.ephemeral() as instance:
        report = live_event_reporter(instance, every_s=3600)
        report(summary(2, 2))  # the first commit is recorded at once
        report(summary(3, 5))  # within every_s: summed into the next event
        events = instance.fetch_materializations(AssetKey("live_frames"), limit=10).records
        assert len(events) == 1
        metadata = events[0].asset_materialization.metadata
        assert metadata["rows_added"].value == 2 and metadata["rows_today"].value == 2
        assert metadata["station"].value == "NYA" and metadata["latency_s_max"].value == 1.23
