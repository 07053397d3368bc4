"""Run materializations outside the UI (CLI, demo): layered, month by month, one line per run under one
progress bar, recorded in the shared Dagster instance that `tame ui` opens (:func:`dagster_home`).
Unpartitioned upstream assets that are up to date on that instance are skipped (:func:`up_to_date`).

Concurrent CLI processes: two runs of the same partition never overlap — each run holds a lock file of
its partition in ``<instance>/locks/`` (:func:`partition_lock`); a second process prints one line
naming the run that holds it and waits (up to :data:`PARTITION_WAIT_S`, then one line and exit 2).
Opening the shared instance and registering stations happen under one instance lock, so two first
uses cannot race on its SQLite storage. Dagster's console log is one line per message (a failed step's
traceback stays in the run's event log, shown by ``tame ui``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator

from dagster import AssetKey, AssetsDefinition, DagsterInstance, Field, logger

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
    """The persistent instance in :func:`dagster_home`, the one ``tame ui`` shows (opened under the
    instance lock: two processes creating its SQLite storage at once could collide)."""
    home = dagster_home(settings)
    with _exclusive(home / "locks" / "instance.lock"):
        return DagsterInstance.from_config(str(home))


#: Longest a run waits for another process's run of the same partition, seconds.
PARTITION_WAIT_S = 6 * 3600.0


class PartitionBusy(UsageError):
    """Another process's run held the partition for longer than the wait (one line naming that run)."""


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed; blocking) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def lock_name(partition_key: str | None) -> str:
    """The lock file name of a partition (``unpartitioned`` for runs without one)."""
    return "unpartitioned" if partition_key is None else re.sub(r"[^A-Za-z0-9_.-]", "_", str(partition_key))


def _holder(fd: int) -> str | None:
    """What the lock file says about the run holding it (None: no record yet, its holder is starting)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("run_id"):
        return None
    return (
        f"{info['run_id']} ({info.get('selection', '?')}; pid {info.get('pid', '?')} on {info.get('host', '?')}, "
        f"since {info.get('started', '?')} UTC)"
    )


def _named(holder: str | None) -> str:
    return holder or "of another process (starting)"


@contextlib.contextmanager
def partition_lock(
    home: Path,
    partition_key: str | None,
    run_id: str,
    selection: Iterable[str] = (),
    echo: Callable[[str], None] = print,
    wait_s: float = PARTITION_WAIT_S,
    poll_s: float = 0.1,
) -> Iterator[None]:
    """Hold the lock of ``partition_key`` in ``home/locks/`` while the block runs, recording ``run_id``
    (and the selection, pid, host, start) in the lock file. When another process holds it: one line
    ``partition … is being materialized by run …; waiting`` and wait until it is free; after ``wait_s``
    :class:`PartitionBusy` naming the holding run. An flock lock: released by the kernel when its
    holder ends, however it ends (no stale locks)."""
    path = home / "locks" / f"{lock_name(partition_key)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    label = "(unpartitioned)" if partition_key is None else str(partition_key)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            started, announced = time.monotonic(), False
            while True:
                holder = _holder(fd)
                if not announced and (holder or time.monotonic() - started > 1.0):  # else: it is just starting
                    echo(f"· partition {label} is being materialized by run {_named(holder)}; waiting for it to finish")
                    announced = True
                if time.monotonic() - started > wait_s:
                    raise PartitionBusy(
                        f"partition {label} is still held by run {_named(holder)} after {wait_s:.0f} s; "
                        "try again when it has finished"
                    ) from None
                time.sleep(poll_s)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
        record = {
            "run_id": run_id,
            "selection": ", ".join(selection),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


class _OneLine(logging.Formatter):
    """Only the first line of a message (a failed step's traceback stays in the run's event log)."""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        text = super().format(record)
        return text.splitlines()[0] if text else text


@logger(
    {"log_level": Field(str, is_required=False, default_value="WARNING")},
    description="Dagster's console log, one line per message (tame materialize / demo).",
)
def one_line_console_logger(init_context) -> logging.Logger:
    from dagster._core.utils import coerce_valid_log_level

    out = logging.Logger("tame.runs", level=coerce_valid_log_level(init_context.logger_config["log_level"]))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("%(asctime)s - %(levelname)s - %(message)s", "%Y-%m-%d %H:%M:%S"))
    out.addHandler(handler)
    return out


def _failure_line(error) -> str:
    """The user's exception of a failed step (below Dagster's wrapping errors), first line."""
    while error.cause is not None and error.cls_name and error.cls_name.startswith("Dagster"):
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[0] if lines else error.cls_name or "failed"


def _execute(assets: list, selection: list[str], partition_key, instance, resources: dict, run_id: str, tags=None):
    """What :func:`dagster.materialize` does, with :func:`one_line_console_logger` and our ``run_id``."""
    from dagster import Definitions, define_asset_job

    job_name = "__ephemeral_asset_job__"  # dagster.materialize's job name
    defs = Definitions(
        jobs=[define_asset_job(name=job_name, selection=selection)],
        assets=assets,
        resources=resources,
        loggers={"console": one_line_console_logger},
    )
    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=LOG_CONFIG,
        instance=instance,
        partition_key=partition_key,
        raise_on_error=False,
        run_id=run_id,
        tags=tags,
    )


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
    force: bool = False,
) -> bool:
    """One Dagster run of ``selection`` (one partition or none); prints one line for it, plus one per
    failed step and per failed check. ``force``: tagged :data:`~tame_assets.defs.assets.common.FORCE_TAG`,
    so up-to-date assets recompute instead of reusing their result."""
    from tame_assets.defs.assets.common import FORCE_TAG, Partition

    if not selection:
        return True
    label = f"[{Partition.of(partition_key).label}] " if partition_key else ""
    run_id = str(uuid.uuid4())
    home = Path(instance.root_directory) if instance.root_directory else dagster_home(settings)
    with partition_lock(home, partition_key, run_id, selection, echo):  # one run per partition at a time
        started = time.perf_counter()
        result = _execute(
            _with_checks(),
            selection,
            partition_key,
            instance,
            {"tame": TameResource.from_settings(settings)},
            run_id,
            tags={FORCE_TAG: "true"} if force else None,
        )
    mark = "✓" if result.success else "✗"
    echo(f"{mark} {label}{', '.join(selection)} ({time.perf_counter() - started:.0f} s)")
    for event in result.all_events:
        if event.is_step_failure:
            echo(f"  ✗ {event.step_key} failed: {_failure_line(event.event_specific_data.error)}")
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
    with _exclusive(dagster_home(settings) / "locks" / "instance.lock"):  # two first uses: one adds them
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
            if not _run(settings, selection, key, instance, above_bar, force):
                return False
            bar.update()
    return True


def materialize_everything(settings: TameSettings, months: Iterable[str], echo: Callable[[str], None] = print) -> bool:
    """Every asset of the platform for ``months`` and every configured station."""
    return materialize_selection(settings, None, months, echo)
