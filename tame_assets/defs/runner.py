"""Run materializations outside the UI (CLI, demo): layered, month by month, with progress."""

from __future__ import annotations

import os
from typing import Callable, Iterable

from dagster import AssetKey, AssetsDefinition, DagsterInstance, materialize

from tame_assets.config import TameSettings
from tame_assets.defs.resources import TameResource

LOG_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _instance() -> DagsterInstance:
    """The persistent instance under ``$DAGSTER_HOME`` (seen by ``dagster dev``) or an ephemeral one."""
    return DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()


def _asset_defs() -> list[AssetsDefinition]:
    from tame_assets.defs.definitions import all_assets

    return [a for a in all_assets if isinstance(a, AssetsDefinition)]


def _with_checks() -> list:
    from tame_assets.defs.checks import all_checks

    return [*_asset_defs(), *all_checks]


def plan_layers(assets: list[AssetsDefinition], names: Iterable[str] | None = None) -> tuple[list[str], list[str], list[str]]:
    """Split the selected assets into (unpartitioned before the months, monthly, unpartitioned after).

    An unpartitioned asset goes "after" when any of its (transitive) upstream assets is monthly.
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
        raise ValueError(f"unknown asset(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(k.to_user_string() for k in by_key))}")
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


def _run(settings: TameSettings, selection: list[str], partition_key: str | None, echo: Callable[[str], None]) -> bool:
    if not selection:
        return True
    label = f"[{partition_key}] " if partition_key else ""
    echo(f"→ {label}{', '.join(selection)}")
    result = materialize(
        _with_checks(),
        selection=selection,
        partition_key=partition_key,
        instance=_instance(),
        resources={"tame": TameResource.from_settings(settings)},
        run_config=LOG_CONFIG,
        raise_on_error=False,
    )
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        echo(f"✗ failed: {', '.join(failed) or 'see the log above'}")
    return result.success


def materialize_selection(settings: TameSettings, names: Iterable[str] | None, months: Iterable[str],
                          echo: Callable[[str], None] = print) -> bool:
    """Materialize ``names`` (all when None) with ``settings``: unpartitioned-upstream, each month, then the rest."""
    from tqdm import tqdm

    before, during, after = plan_layers(_asset_defs(), names)
    months = list(months)
    if during and not months:
        raise ValueError(f"monthly assets {', '.join(during)} need --month YYYY-MM")
    steps = ([("", before)] if before else []) + [(m, during) for m in months if during] + ([("", after)] if after else [])
    for month, selection in tqdm(steps, desc="tame", unit="run"):
        if not _run(settings, selection, month or None, echo):
            return False
    return True


def materialize_everything(settings: TameSettings, months: Iterable[str], echo: Callable[[str], None] = print) -> bool:
    """Every asset of the platform for ``months``."""
    return materialize_selection(settings, None, months, echo)
