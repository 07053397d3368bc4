"""Shared Dagster wiring: partitions, metadata helpers and progress logging."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import polars as pl
from dataclasses import dataclass

from dagster import (
    AssetExecutionContext,
    DynamicPartitionsDefinition,
    MetadataValue,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
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

    features = {"preprocessing": PREPROCESSING_VERSION, "image_read": images.IMAGE_READ_VERSION,
                "backbone": TameSettings.backbone, "feature_kind": TameSettings.feature_kind}
    parts = {
        "asim_images": {"index": uio_asi.INDEX_VERSION, "image_read": images.IMAGE_READ_VERSION},
        "magnetometer": {"parser": magnetometer.PARSER_VERSION},
        "ceilometer": {"parser": ceilometer.PARSER_VERSION},
        "oath_images": {"parser": oath.PARSER_VERSION},
        "oath_features": features,
        "asim_features": features,
        "oath_classifier": {"classifier": CLASSIFIER_VERSION},
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
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name=c, type=str(t)) for c, t in df.schema.items()]
        ),
    }
    if path:
        meta["path"] = MetadataValue.path(path)
    preview = df.head(5).select([c for c, t in df.schema.items() if not isinstance(t, (pl.List, pl.Array))])
    if preview.width:
        meta["preview"] = MetadataValue.md(_markdown_table(preview))
    meta.update({k: _metadata_value(v) for k, v in extra.items()})
    return meta


def _markdown_table(df: pl.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "---|" * df.width
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join([head, sep, *rows])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def figure_metadata(figures: Iterable[Any], numbers: dict[str, Any] | None = None) -> dict:
    """Metadata for figure assets: file paths and an inline PNG preview per figure, plus the numbers."""
    meta: dict[str, Any] = {}
    for fig in figures:
        name = Path(fig.png).stem
        meta[f"{name}_png"] = MetadataValue.path(str(fig.png))
        meta[f"{name}_svg"] = MetadataValue.path(str(fig.svg))
        meta[f"{name}_preview"] = MetadataValue.md(fig.md_preview)
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


def configured_oath_features(tame) -> tuple[np.ndarray, np.ndarray]:
    """(X, labels) of the OATH features of the configured backbone and feature kind."""
    settings = tame.settings
    features = tame.warehouse.read_partition("oath_features", None).filter(
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
    return float(search.filter(pl.col("kernel") == "linear")
                 .sort(["acc6_mean", "C"], descending=[True, False])["C"][0])


@contextlib.contextmanager
def partition_on_engine(context: AssetExecutionContext, tame, table: str):
    """``(partition, settings, the partition of table, an open compute engine)`` for per-frame work;
    the run log says how many frames run where."""
    from tame_assets.compute import open_engine

    partition, settings = Partition.of(context.partition_key), tame.settings
    frame = partition.read(tame.warehouse, table)
    with open_engine(settings.compute_settings) as engine:
        context.log.info(f"{context.asset_key.to_user_string()} {partition.label}: {frame.height} frames on {engine.description}")
        yield partition, settings, frame, engine
