"""Shared Dagster wiring: partitions, metadata helpers and progress logging."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    DataVersion,
    DynamicPartitionsDefinition,
    MetadataValue,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    Output,
    TableColumn,
    TableSchema,
)

from tame_assets.config import PARTITIONS_START, TameSettings
from tame_assets.ml.tables import feature_matrix
from tame_assets.stations import Station
from tame_assets.warehouse.store import PART_FILE, station_file

#: Monthly partitions ``YYYY-MM`` from PARTITIONS_START; ``end_offset=1`` includes the current,
#: still-growing month (refreshed daily by ``current_month_daily_schedule``).
monthly_partitions = MonthlyPartitionsDefinition(start_date=PARTITIONS_START, fmt="%Y-%m", end_offset=1)

#: Camera stations (partition keys = station codes, ``NYA``, ``GAKO``). Dynamic: a configured station
#: becomes a partition when the CLI first runs it, when ``stations_sensor`` sees it in the settings,
#: or from the UI's "Add partition"; what the station *is* comes from the settings (:mod:`tame_assets.stations`).
station_partitions = DynamicPartitionsDefinition(name="stations")

#: Station × month: the partitions of every per-frame asset (keys ``YYYY-MM|STATION``).
station_month_partitions = MultiPartitionsDefinition({"month": monthly_partitions, "station": station_partitions})


#: Unpartitioned assets the per-frame chain reads (classifier, calibration): they must exist before a
#: partition is derived, but their re-materialization does not re-derive every partition on its own.
UNPARTITIONED_INPUTS = ("oath_classifier", "p_aurora_calibration")
#: When the unpartitioned analyses over all months (cloud validation, magnetometer model, UMAP, …)
#: refresh after new partitions: at most once a day, from 06:00 UTC on.
ANALYSES_CRON = "0 6 * * *"


def follows_new_partitions() -> AutomationCondition:
    """Declarative Automation of the derived partitioned assets (features → predictions → merges →
    products): a partition is requested when one of its partitioned parents was updated (a schedule or
    sensor tick on raw data, or an upstream automated run) or when it became missing (a new station),
    once every parent exists and none is in progress. Unlike ``AutomationCondition.eager()`` it covers
    every month, not only the latest one (the sensor and a finished month's schedule fill past months),
    and updates of :data:`UNPARTITIONED_INPUTS` only gate: a re-fitted classifier marks the archive stale
    in the UI, but re-deriving every materialized month is a backfill decision, not an automatic one.
    A missing ``skymaps`` partition does not hold back ``auroral_maps`` (it reads the geometry through
    :func:`~tame_assets.geometry.station_skymap`; the table is for SQL and the UI)."""
    updated = AutomationCondition.any_deps_updated().ignore(AssetSelection.assets(*UNPARTITIONED_INPUTS))
    return (
        (AutomationCondition.newly_missing() | updated).since_last_handled()
        & ~AutomationCondition.any_deps_missing().ignore(AssetSelection.assets("skymaps"))
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("follows new partitions")


def while_missing() -> AutomationCondition:
    """Declarative Automation of ``skymaps``: a registered station without its geometry gets it on the
    next tick (also stations registered before the sensor first ran), unless that run failed."""
    return (
        AutomationCondition.missing() & ~AutomationCondition.in_progress() & ~AutomationCondition.execution_failed()
    ).with_label("missing, not failed")


def refreshed_daily(cron: str = ANALYSES_CRON) -> AutomationCondition:
    """Declarative Automation of an unpartitioned analysis over every partition: at most once per
    ``cron`` tick (UTC), and only when one of its inputs was updated since it last ran, so a day of
    new partitions costs one run of the analysis, not one per partition. (No "all inputs present" term:
    for a parent partitioned by month, a missing month would count as a missing input.)"""
    return (
        AutomationCondition.cron_tick_passed(cron, "UTC").since_last_handled()
        & AutomationCondition.any_deps_updated().since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label(f"daily after new data ({cron} UTC)")


#: TameSettings fields that change an unpartitioned upstream asset's content at run time (beyond its
#: code version and inputs). Recorded with each materialization (metadata ``tame/settings``) so that
#: ``tame materialize`` re-runs an asset whose recorded settings differ (:mod:`tame_assets.defs.runner`).
RUN_TIME_SETTINGS: dict[str, tuple[str, ...]] = {
    "oath_images": ("source", "oath_url", "oath_sha256"),
    "oath_features": ("source", "oath_url", "backbone", "feature_kind", "benchmark_backbones", "feature_kinds"),
    "backbone_benchmark": (),
    "svm_search": ("backbone", "feature_kind"),
    "oath_classifier": ("backbone", "feature_kind"),
    "p_aurora_calibration": ("backbone", "feature_kind"),
    "labelled_set_evaluation": (
        "source",
        "labelled_set_dir",
        "labelled_set_backbones",
        "benchmark_backbones",
        "feature_kinds",
        "labelled_set_fine_tune",
    ),
    "svm_hyperparameter_maps": (),
    "backbone_tradeoff": (),
}
SETTINGS_METADATA_KEY = "tame/settings"


def run_time_settings(asset_name: str, settings: TameSettings) -> str:
    """The settings of :data:`RUN_TIME_SETTINGS` for ``asset_name`` plus the data root, as sorted JSON."""
    import json

    values = {name: getattr(settings, name) for name in RUN_TIME_SETTINGS.get(asset_name, ())}
    values["data_root"] = settings.paths.data_root
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in sorted(values.items())}, sort_keys=True)


def settings_metadata(asset_name: str, settings: TameSettings) -> dict:
    """Materialization metadata recording :func:`run_time_settings` (read back by the runner)."""
    return {SETTINGS_METADATA_KEY: MetadataValue.text(run_time_settings(asset_name, settings))}


#: Run tag that makes up-to-date assets recompute (``tame materialize --force``; in the UI: add the tag
#: ``tame/force = true`` in the launchpad).
FORCE_TAG = "tame/force"
#: Metadata key set on a materialization that reused the previous result (see :func:`up_to_date_version`).
REUSED_METADATA_KEY = "tame/reused"


def up_to_date_version(context: AssetExecutionContext, settings: TameSettings) -> DataVersion | None:
    """The data version of this (unpartitioned) asset's last materialization when that result is still
    what a run would compute, else None — so a launch from the UI, a schedule or the CLI reuses the OATH
    chain instead of recomputing it. Up to date means what the UI shows as not stale, plus the settings:
    the code version is unchanged, every upstream asset still has the data version this one was computed
    from (no upstream added), and the run-time settings recorded with it (:func:`settings_metadata`)
    equal ``settings``'. The run tag :data:`FORCE_TAG` = ``true`` always recomputes."""
    from dagster._core.definitions.data_version import (
        extract_data_provenance_from_entry,
        extract_data_version_from_entry,
    )

    if context.run.tags.get(FORCE_TAG, "").lower() == "true":
        return None
    key, instance = context.asset_key, context.instance
    entry = instance.get_latest_materialization_event(key)
    if entry is None or entry.asset_materialization is None:
        return None
    recorded = entry.asset_materialization.metadata.get(SETTINGS_METADATA_KEY)
    if recorded is None or recorded.value != run_time_settings(key.to_user_string(), settings):
        return None
    provenance, version = extract_data_provenance_from_entry(entry), extract_data_version_from_entry(entry)
    if provenance is None or version is None:
        return None
    code_version = context.assets_def.code_versions_by_key.get(key)
    if code_version is not None and provenance.code_version != code_version:
        return None
    if not set(context.assets_def.asset_deps[key]) <= set(provenance.input_data_versions):
        return None
    for parent, parent_version in provenance.input_data_versions.items():
        latest = instance.get_latest_materialization_event(parent)
        if latest is None or extract_data_version_from_entry(latest) != parent_version:
            return None
    return version


def reused_table(context: AssetExecutionContext, warehouse, settings: TameSettings) -> Output | None:
    """The asset's stored table as this run's output (same data version, metadata saying so) when
    :func:`up_to_date_version` allows it and the table is readable, else None (compute it). An asset
    that may return it has no return annotation (Dagster refuses an ``Output`` from a function
    annotated ``-> pl.DataFrame``)."""
    version = up_to_date_version(context, settings)
    if version is None:
        return None
    name = context.asset_key.to_user_string()
    try:
        table = Partition.of(None).read(warehouse, name)
    except Exception as exc:  # a missing or damaged file: recompute
        context.log.info(f"{name}: stored table unreadable ({type(exc).__name__}), recomputing")
        return None
    context.log.info(
        f"{name} is up to date (code, inputs and settings unchanged): reusing it (run tag {FORCE_TAG}=true recomputes)"
    )
    return versioned_output(table, version, {REUSED_METADATA_KEY: True, **settings_metadata(name, settings)})


def versioned_output(value: Any, version: DataVersion, metadata: dict | None = None) -> Output:
    """``Output(value)`` with an explicit data version (Dagster marks the parameter beta and warns on
    every call; the warning is about Dagster's API, so it is silenced here)."""
    import warnings

    from dagster import BetaWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BetaWarning)
        return Output(value, data_version=version, metadata=metadata)


def station_month_key(station: str, month: str) -> MultiPartitionKey:
    """The station × month partition key of ``station`` in ``month``."""
    return MultiPartitionKey({"station": station, "month": month})


@dataclass(frozen=True)
class Partition:
    """Where one Dagster partition lives in the warehouse: ``month`` (None: unpartitioned) and
    ``station`` (None: a monthly table of one file per month)."""

    month: str | None
    station: str | None = None

    @classmethod
    def of(cls, key: str | None) -> "Partition":
        """From a partition key: ``YYYY-MM``, ``YYYY-MM|STATION`` (station × month) or None."""
        if key is None:
            return cls(None)
        dims = key.keys_by_dimension if isinstance(key, MultiPartitionKey) else None
        if dims is None and "|" in str(key):
            month, station = str(key).split("|", 1)
            dims = {"month": month, "station": station}
        return cls(dims["month"], dims["station"]) if dims else cls(str(key))

    @property
    def file(self) -> str:
        """The partition's file name in the month's folder."""
        return station_file(self.station) if self.station else PART_FILE

    @property
    def label(self) -> str:
        return f"{self.station} {self.month}" if self.station else str(self.month)

    def station_config(self, settings: TameSettings) -> Station:
        """The configured :class:`Station` of this partition (ValueError naming the configured ones)."""
        return settings.station(self.station)

    def read(self, warehouse, table: str):
        """This partition of ``table`` (the same station's file for per-station tables)."""
        return warehouse.read_partition(table, self.month, self.file)

    def write(self, warehouse, table: str, df) -> str:
        """Write ``df`` as this partition of ``table``; returns the path."""
        return warehouse.write_partition(table, df, self.month, self.file)


def asset_code_version(asset_name: str) -> str:
    """Dagster ``code_version`` of an asset: the versions of what decides its content (parser,
    preprocessing, default backbone and feature kind, classifier recipe, default merge tolerance), as
    ``key=value;...``. Bumping any of them marks the materialized partitions stale in the UI.

    Settings changed at run time in the resource config are not part of it (code versions are static).
    """
    from tame_assets.ml.preprocessing import PREPROCESSING_VERSION
    from tame_assets.ml.tables import CLASSIFIER_VERSION
    from tame_assets.sources import ceilometer, images, magnetometer, oath, uio_asi

    features = {
        "preprocessing": PREPROCESSING_VERSION,
        "image_read": images.IMAGE_READ_VERSION,
        "backbone": TameSettings.backbone,
        "feature_kind": TameSettings.feature_kind,
    }
    parts = {
        "asim_images": {"index": uio_asi.INDEX_VERSION, "image_read": images.IMAGE_READ_VERSION},
        "magnetometer": {"parser": magnetometer.PARSER_VERSION},
        "ceilometer": {"parser": ceilometer.PARSER_VERSION},
        "oath_images": {"parser": oath.PARSER_VERSION},
        "oath_features": features,
        "asim_features": features,
        "oath_classifier": {"classifier": CLASSIFIER_VERSION},
        "svm_search": {"classifier": CLASSIFIER_VERSION},
        "backbone_benchmark": {"classifier": CLASSIFIER_VERSION},
        "asim_predictions": {"classifier": CLASSIFIER_VERSION},
        "asim_ceilometer": {"tolerance_s": TameSettings.ceilometer_tolerance_s},
        "asim_magnetometer": {"tolerance_s": TameSettings.magnetometer_tolerance_s},
    }[asset_name]
    return ";".join(f"{key}={value}" for key, value in sorted(parts.items()))


def table_metadata(df: pl.DataFrame, table: str, path: str | None = None, **extra: Any) -> dict:
    """Standard Dagster table metadata: row count, schema, table name, path and a preview."""
    meta: dict[str, Any] = {
        "dagster/row_count": df.height,
        "dagster/table_name": table,
        "dagster/column_schema": TableSchema(columns=[TableColumn(name=c, type=str(t)) for c, t in df.schema.items()]),
    }
    if path:
        meta["path"] = MetadataValue.path(path)
    preview = df.head(5).select([c for c, t in df.schema.items() if not isinstance(t, (pl.List, pl.Array))])
    if preview.width:
        meta["preview"] = MetadataValue.md(_markdown_table(preview))
    meta.update({k: _metadata_value(v) for k, v in extra.items()})
    return meta


def extra_metadata(**extra: Any) -> dict:
    """Asset-specific materialization metadata (besides the IO manager's table metadata), as Dagster values."""
    return {k: _metadata_value(v) for k, v in extra.items()}


def _markdown_table(df: pl.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "---|" * df.width
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([head, sep, *rows])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Folder (under the instance's compute-log directory) the inline figure previews are copied to.
PREVIEW_NAMESPACE = "tame_figures"


def figure_preview_url(context: Any, fig: Any) -> str | None:
    """Copy the figure's downscaled PNG where the Dagster web server serves files from
    (``/logs/<namespace>/<name>/png``: the instance's local compute-log directory) and return that
    URL, or None when the run's instance keeps compute logs elsewhere (e.g. S3) or there is no preview.

    Dagster 1.13's UI has no image metadata type and shows markdown inline only below 1,000
    characters (a base64 PNG never is), so a short ``![…](url)`` is the way to an inline figure. The
    file name carries a hash of the image: every materialization shows its own figure.
    """
    import hashlib

    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    from tame_assets.files import write_bytes_atomic

    manager = getattr(getattr(context, "instance", None), "compute_log_manager", None)
    data = getattr(fig, "preview_png", b"")
    if not data or not isinstance(manager, LocalComputeLogManager):
        return None
    name = f"{Path(fig.png).stem}-{hashlib.sha256(data).hexdigest()[:12]}"
    target = Path(manager.get_captured_local_path([PREVIEW_NAMESPACE, name], "png"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():  # same name = same bytes
        write_bytes_atomic(target, data)
    return f"/logs/{PREVIEW_NAMESPACE}/{name}/png"


def figure_metadata(figures: Iterable[Any], numbers: dict[str, Any] | None = None, context: Any = None) -> dict:
    """Metadata for figure assets: per figure ``<name>_preview`` (shown inline in the UI's Overview and
    Events tabs when ``context`` is given and the instance keeps compute logs locally, see
    :func:`figure_preview_url`; else the base64 preview behind "[Show Markdown]"), ``<name>_png`` and
    ``<name>_svg`` paths; then the numbers. Pass every figure of the partition (every day)."""
    meta: dict[str, Any] = {}
    for fig in figures:
        name = Path(fig.png).stem
        url = figure_preview_url(context, fig) if context is not None else None
        meta[f"{name}_preview"] = MetadataValue.md(f"![{name}]({url})" if url else fig.md_preview)
        meta[f"{name}_png"] = MetadataValue.path(str(fig.png))
        meta[f"{name}_svg"] = MetadataValue.path(str(fig.svg))
    for key, value in (numbers or {}).items():
        meta[key] = _metadata_value(value)
    return meta


def _metadata_value(value: Any) -> Any:
    if isinstance(value, (MetadataValue, TableSchema)):
        return value
    if isinstance(value, float):
        return MetadataValue.float(float(value))
    if isinstance(value, bool):
        return MetadataValue.bool(value)
    if isinstance(value, int):
        return MetadataValue.int(int(value))
    if isinstance(value, (dict, list)):
        return MetadataValue.json(value)
    if isinstance(value, pl.DataFrame):
        return MetadataValue.md(_markdown_table(value))
    try:
        return MetadataValue.float(float(value))
    except (TypeError, ValueError):
        return MetadataValue.text(str(value))


def progress_logger(context: AssetExecutionContext, what: str, every: int = 10) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that logs roughly every ``every`` percent."""
    state = {"last": -1}

    def progress(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct // every > state["last"] or done == total:
            state["last"] = pct // every
            context.log.info(f"{what}: {done}/{total} ({pct} %)")

    return progress


def chunk_logger(context: AssetExecutionContext, what: str, max_lines: int = 50) -> Callable[[int, int, str], None]:
    """An ``on_progress(chunks_done, chunks_total, where)`` callback for the compute engine: logs
    chunks done / total and the worker each ran on (every chunk up to ``max_lines`` chunks, then
    evenly spaced), and at the end how many chunks each worker ran."""
    per_worker: dict[str, int] = {}

    def on_progress(done: int, total: int, where: str) -> None:
        per_worker[where] = per_worker.get(where, 0) + 1
        if total <= max_lines or done % -(-total // max_lines) == 0 or done == total:
            context.log.info(f"{what}: chunk {done}/{total} done on {where}")
        if done == total and total > 1:
            context.log.info(f"{what}: chunks per worker {dict(sorted(per_worker.items()))}")

    return on_progress


def configured_oath_features(tame, features: pl.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(X, labels) of the OATH features (``features``, else the stored table) of the configured backbone
    and feature kind."""
    settings = tame.settings
    features = features if features is not None else tame.warehouse.read_partition("oath_features", None)
    features = features.filter(
        (pl.col("backbone") == settings.backbone) & (pl.col("feature_kind") == settings.feature_kind)
    )
    if features.is_empty():
        raise ValueError(
            f"oath_features has no rows for backbone {settings.backbone}/{settings.feature_kind}; "
            "add it to the benchmark backbones and re-materialize oath_features"
        )
    return feature_matrix(features)


def best_linear_c(warehouse) -> float:
    """The linear SVC's C with the best six-class accuracy in the ``svm_search`` table."""
    search = warehouse.read_partition("svm_search", None)
    # ties (common: accuracies are fractions of a few hundred images) → the smallest C, every run
    return float(search.filter(pl.col("kernel") == "linear").sort(["acc6_mean", "C"], descending=[True, False])["C"][0])


@contextlib.contextmanager
def partition_on_engine(context: AssetExecutionContext, tame, frame: pl.DataFrame):
    """``(partition, settings, an open compute engine)`` for per-frame work on ``frame`` (the input
    partition); the run log says how many frames run where."""
    from tame_assets.compute import open_engine

    partition, settings = Partition.of(context.partition_key), tame.settings
    with open_engine(settings.compute_settings) as engine:
        context.log.info(
            f"{context.asset_key.to_user_string()} {partition.label}: {frame.height} frames on {engine.description}"
        )
        yield partition, settings, engine
