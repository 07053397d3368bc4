"""Merged layer: image predictions matched to the nearest ceilometer and magnetometer records
(DuckDB as-of joins over the Parquet views; neighbouring months' edges are read). The joins read with
SQL (explicit ``deps``); the merged table is returned and stored by the warehouse IO manager."""

import polars as pl
from dagster import AssetExecutionContext

from tame_assets.defs.assets.common import (
    Partition,
    asset_code_version,
    extra_metadata,
    follows_new_partitions,
    station_month_partitions,
)
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.warehouse.merge import merge_month

MERGED = "merged"


def _summary(table: pl.DataFrame) -> dict:
    matched = table["dt_s"].is_not_null().sum()
    mean_dt = table["dt_s"].abs().mean() if matched else None
    return extra_metadata(
        matched_rows=int(matched), mean_abs_dt_s=float(mean_dt) if mean_dt is not None else float("nan")
    )


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["asim_predictions", "ceilometer"],
    group_name=MERGED,
    kinds={"duckdb", "parquet"},
    code_version=asset_code_version("asim_ceilometer"),
    automation_condition=follows_new_partitions(),
)
def asim_ceilometer(context: AssetExecutionContext) -> pl.DataFrame:
    """Predictions + nearest ceilometer record (cbh_m, cloud_detected, missing, dt_s) within the
    ceilometer tolerance (default 300 s)."""
    tame: TameResource = context.resources.tame
    partition, s = Partition.of(context.partition_key), tame.settings
    station = partition.station_config(s)
    left = (
        f"SELECT * EXCLUDE (month) FROM asim_predictions WHERE month = '{partition.month}' "
        f"AND station = '{station.code}'"
    )
    table = merge_month(
        tame.warehouse,
        left,
        "ceilometer",
        partition.month,
        s.ceilometer_tolerance_s,
        ["cbh_m", "cloud_detected", "missing"],
        right_key="site",
        key_map=station.key_maps["ceilometer"],
    )
    context.add_output_metadata(_summary(table))
    return table


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["asim_predictions", "asim_features", "magnetometer"],
    group_name=MERGED,
    kinds={"duckdb", "parquet"},
    code_version=asset_code_version("asim_magnetometer"),
    automation_condition=follows_new_partitions(),
)
def asim_magnetometer(context: AssetExecutionContext) -> pl.DataFrame:
    """Predictions + features + nearest magnetometer sample (x/y/z/h in nT, dt_s) within the
    magnetometer tolerance (default 60 s)."""
    tame: TameResource = context.resources.tame
    partition, s = Partition.of(context.partition_key), tame.settings
    station = partition.station_config(s)
    left = (
        "SELECT p.* EXCLUDE (month), f.features FROM asim_predictions p "
        "JOIN asim_features f ON f.month = p.month AND f.station = p.station AND f.file_name = p.file_name "
        "AND f.frame_index = p.frame_index "
        f"WHERE p.month = '{partition.month}' AND p.station = '{station.code}' "
        "ORDER BY p.time, p.file_name, p.frame_index"
    )
    table = merge_month(
        tame.warehouse,
        left,
        "magnetometer",
        partition.month,
        s.magnetometer_tolerance_s,
        ["x_nt", "y_nt", "z_nt", "h_nt"],
        key_map=station.key_maps["magnetometer"],
    )
    context.add_output_metadata(_summary(table))
    return table
