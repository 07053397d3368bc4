"""Run materializations outside the UI (CLI, demo): layered, month by month, one line per run under one
progress bar, recorded in the shared Dagster instance that `tame ui` opens (:func:`dagster_home`).
Unpartitioned upstream assets that are up to date on that instance are skipped (:func:`up_to_date`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from dagster import AssetKey, AssetsDefinition, DagsterInstance, materialize

from tame_assets.config import TameSettings, UsageError, dagster_home_env
from tame_assets.defs.resources import TameResource
from tame_assets.files import write_text_atomic

#: CLI runs log Dagster's own events at WARNING (failed checks, quarantined files); the runner prints
#: one line per run instead, above a single progress bar.
LOG_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

#: ``dagster.yaml`` written into a new shared instance: queued runs (two at a time on a small
#: machine), no telemetry, no first-visit dialog in the UI.
DAGSTER_YAML = """\
# Written by tame on first use; shared by `tame materialize/demo` and `tame ui`.
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 2
"""


def dagster_home(settings: TameSettings) -> Path:
    """The shared instance directory: ``$DAGSTER_HOME`` when set, else ``<local root>/dagster_home``
    (created with :data:`DAGSTER_YAML` on first use, written atomically)."""
    home = Path(dagster_home_env() or settings.paths.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and not (home / "dagster.yml").exists():
        write_text_atomic(config, DAGSTER_YAML)
    return home


def _instance(settings: TameSettings) -> DagsterInstance:
    """The persistent instance in :func:`dagster_home`, the one ``tame ui`` shows."""
    return DagsterInstance.from_config(str(dagster_home(settings)))


def _asset_defs() -> list[AssetsDefinition]:
    from tame_assets.defs.asset_defs import all_assets

    return [a for a in all_assets if isinstance(a, AssetsDefinition)]


def _with_checks() -> list:
    from tame_assets.defs.checks import all_checks

    return [*_asset_defs(), *all_checks]


def plan_layers(
    assets: list[AssetsDefinition], names: Iterable[str] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Split the selected assets into (unpartitioned before the partitioned ones, partitioned,
    unpartitioned after). An unpartitioned asset goes "after" when any of its (transitive) upstream
    assets is partitioned.
    """
    by_key = {key: a for a in assets for key in a.keys}
    monthly = {k for k, a in by_key.items() if a.partitions_def is not None}

    def upstream_monthly(key: AssetKey, seen: set) -> bool:
        for dep in by_key[key].asset_deps.get(key, set()):
            if dep in seen or dep not in by_key:
                continue
            seen.add(dep)
            if dep in monthly or upstream_monthly(dep, seen):
                return True
        return False

    wanted = set(names) if names else {k.to_user_string() for k in by_key}
    unknown = wanted - {k.to_user_string() for k in by_key}
    if unknown:
        known = ", ".join(sorted(k.to_user_string() for k in by_key))
        raise UsageError(f"unknown asset(s): {', '.join(sorted(unknown))}; known: {known}")
    before, during, after = [], [], []
    for key in by_key:  # definition order is already topological within each module layer
        name = key.to_user_string()
        if name not in wanted:
            continue
        if key in monthly:
            during.append(name)
        elif upstream_monthly(key, set()):
            after.append(name)
        else:
            before.append(name)
    return before, during, after


def _run(
    settings: TameSettings,
    selection: list[str],
    partition_key: str | None,
    instance: DagsterInstance,
    echo: Callable[[str], None],
) -> bool:
    """One Dagster run of ``selection`` (one partition or none); prints one line for it, plus one per
    failed step and per failed check."""
    from tame_assets.defs.assets.common import Partition

    if not selection:
        return True
    label = f"[{Partition.of(partition_key).label}] " if partition_key else ""
    started = time.perf_counter()
    result = materialize(
        _with_checks(),
        selection=selection,
        partition_key=partition_key,
        instance=instance,
        resources={"tame": TameResource.from_settings(settings)},
        run_config=LOG_CONFIG,
        raise_on_error=False,
    )
    mark = "✓" if result.success else "✗"
    echo(f"{mark} {label}{', '.join(selection)} ({time.perf_counter() - started:.0f} s)")
    for event in result.all_events:
        if event.is_step_failure:
            echo(f"  ✗ {event.step_key} failed: {event.event_specific_data.error.message.strip().splitlines()[-1]}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                echo(f"  ! check {evaluation.check_name} ({evaluation.severity.value}): {evaluation.description}")
    return result.success


def partition_kind(asset: AssetsDefinition) -> str:
    """``""`` (unpartitioned), ``"month"``, ``"station"`` or ``"station_month"``."""
    from dagster import DynamicPartitionsDefinition, MultiPartitionsDefinition

    definition = asset.partitions_def
    if definition is None:
        return ""
    if isinstance(definition, MultiPartitionsDefinition):
        return "station_month"
    return "station" if isinstance(definition, DynamicPartitionsDefinition) else "month"


def plan_runs(
    settings: TameSettings, names: Iterable[str] | None, months: Iterable[str], stations: Iterable[str] | None = None
) -> list[tuple[str | None, list[str]]]:
    """The runs ``(partition key or None, asset names)`` that materialize ``names`` (all when None) for
    ``months`` and ``stations`` (default: every configured one), in dependency order: unpartitioned
    upstream assets, per-station assets, then each month (shared monthly sources, then each station's
    month), then the unpartitioned assets downstream of them. UsageError for unknown assets or
    stations, and for month-partitioned assets without months."""
    from tame_assets.defs.assets.common import station_month_key

    assets = _asset_defs()
    kinds = {key.to_user_string(): partition_kind(a) for a in assets for key in a.keys}
    before, during, after = plan_layers(assets, names)
    months = list(months)
    stations = list(stations) if stations else settings.station_table().codes
    for code in stations:
        settings.station(code)  # UsageError naming the configured stations
    by_kind = {kind: [n for n in during if kinds[n] == kind] for kind in ("station", "month", "station_month")}
    if (by_kind["month"] or by_kind["station_month"]) and not months:
        monthly = ", ".join(by_kind["month"] + by_kind["station_month"])
        raise UsageError(f"monthly assets {monthly} need --month YYYY-MM")
    runs: list[tuple[str | None, list[str]]] = [(None, before)] if before else []
    runs += [(code, by_kind["station"]) for code in stations if by_kind["station"]]
    for month in months:
        if by_kind["month"]:
            runs.append((month, by_kind["month"]))
        if by_kind["station_month"]:
            runs += [(station_month_key(code, month), by_kind["station_month"]) for code in stations]
    return runs + ([(None, after)] if after else [])


def register_stations(instance: DagsterInstance, stations: Iterable[str]) -> None:
    """Add the stations the instance does not know yet to the dynamic ``stations`` partitions."""
    from tame_assets.defs.assets.common import station_partitions

    known = set(instance.get_dynamic_partitions(station_partitions.name))
    new = [code for code in stations if code not in known]
    if new:
        instance.add_dynamic_partitions(station_partitions.name, new)


def up_to_date(settings: TameSettings, names: Iterable[str], instance: DagsterInstance) -> list[str]:
    """The assets among ``names`` (unpartitioned, with no partitioned upstream: the OATH chain, SVM
    search, benchmarks, calibration, labelled-set evaluation and their figures) that need no run.

    An asset is up to date when (1) Dagster's own stale status on ``instance`` is FRESH — materialized,
    code version unchanged, no input with a newer data version, exactly what the UI shows as not stale
    (``CachingStaleStatusResolver``); (2) the run-time settings recorded with its last materialization
    (metadata ``tame/settings``, :data:`~tame_assets.defs.assets.common.RUN_TIME_SETTINGS`: backbone,
    feature kind, benchmark backbones, OATH source, labelled set, data root) equal ``settings``' — code
    versions are static, so a different backbone or feature kind must not pass for fresh; a
    materialization without that record counts as different; and (3) no upstream asset among ``names``
    runs now (a settings-driven re-run need not change a data version that Dagster sees).
    Returned in dependency order.
    """
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._time import get_current_datetime

    from tame_assets.defs.assets.common import SETTINGS_METADATA_KEY, run_time_settings

    graph = AssetGraph.from_assets(_asset_defs())
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    fresh, running, wanted = [], set(), set(names)
    for key in graph.toposorted_asset_keys:
        name = key.to_user_string()
        if name not in wanted:
            continue
        event = instance.get_latest_materialization_event(key)
        recorded = event.asset_materialization.metadata.get(SETTINGS_METADATA_KEY) if event else None
        if (
            resolver.get_status(key) == StaleStatus.FRESH
            and recorded is not None
            and recorded.value == run_time_settings(name, settings)
            and not any(parent.to_user_string() in running for parent in graph.get(key).parent_keys)
        ):
            fresh.append(name)
        else:
            running.add(name)
    return fresh


def materialize_selection(
    settings: TameSettings,
    names: Iterable[str] | None,
    months: Iterable[str],
    echo: Callable[[str], None] = print,
    stations: Iterable[str] | None = None,
    force: bool = False,
) -> bool:
    """Materialize ``names`` (all when None) with ``settings`` for ``months`` × ``stations`` (default:
    every configured station), in the order of :func:`plan_runs`. Unpartitioned upstream assets that are
    :func:`up_to_date` are skipped (one line names them) unless ``force``; partitioned assets and the
    unpartitioned analyses downstream of them always run."""
    from tqdm import tqdm

    steps = plan_runs(settings, names, months, stations)
    instance = _instance(settings)
    register_stations(instance, list(stations) if stations else settings.station_table().codes)
    upstream = set(plan_layers(_asset_defs(), names)[0])
    if not force and steps and steps[0][0] is None and set(steps[0][1]) <= upstream:
        skipped = up_to_date(settings, steps[0][1], instance)
        if skipped:
            echo(f"· up to date, skipped: {', '.join(skipped)} (--force re-runs them)")
            steps = [(None, [n for n in steps[0][1] if n not in skipped])] + steps[1:]
            steps = [step for step in steps if step[1]]
    with tqdm(total=len(steps), desc="tame", unit="run", leave=False) as bar:

        def above_bar(message: str) -> None:
            bar.clear()
            echo(message)
            bar.refresh()

        for key, selection in steps:
            if not _run(settings, selection, key, instance, above_bar):
                return False
            bar.update()
    return True


def materialize_everything(settings: TameSettings, months: Iterable[str], echo: Callable[[str], None] = print) -> bool:
    """Every asset of the platform for ``months`` and every configured station."""
    return materialize_selection(settings, None, months, echo)
