"""Merged layer: image predictions matched to the nearest ceilometer and magnetometer records
(DuckDB as-of joins over the Parquet views; neighbouring months' edges are read)."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from tame_assets.warehouse.merge import merge_month
from tame_assets.defs.assets.common import Partition, asset_code_version, station_month_partitions, table_metadata
from tame_assets.defs.resources import TameResource

MERGED = "merged"


def _summary(table, name: str, path: str):
    matched = table["dt_s"].is_not_null().sum()
    mean_dt = table["dt_s"].abs().mean() if matched else None
    return table_metadata(table.drop("features", strict=False), name, path, matched_rows=int(matched),
                          mean_abs_dt_s=float(mean_dt) if mean_dt is not None else float("nan"))


@asset(partitions_def=station_month_partitions, deps=["asim_predictions", "ceilometer"], group_name=MERGED,
       kinds={"duckdb", "parquet"}, code_version=asset_code_version("asim_ceilometer"))
def asim_ceilometer(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Predictions + nearest ceilometer record (cbh_m, cloud_detected, missing, dt_s) within the
    ceilometer tolerance (default 300 s)."""
    partition, s = Partition.of(context.partition_key), tame.settings
    station = partition.station_config(s)
    left = f"SELECT * EXCLUDE (month) FROM asim_predictions WHERE month = '{partition.month}' AND station = '{station.code}'"
    table = merge_month(tame.warehouse, left, "ceilometer", partition.month, s.ceilometer_tolerance_s,
                        ["cbh_m", "cloud_detected", "missing"], right_key="site", key_map=station.key_maps["ceilometer"])
    path = partition.write(tame.warehouse, "asim_ceilometer", table)
    return MaterializeResult(metadata=_summary(table, "asim_ceilometer", path))


@asset(partitions_def=station_month_partitions, deps=["asim_predictions", "asim_features", "magnetometer"],
       group_name=MERGED, kinds={"duckdb", "parquet"}, code_version=asset_code_version("asim_magnetometer"))
def asim_magnetometer(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Predictions + features + nearest magnetometer sample (x/y/z/h in nT, dt_s) within the
    magnetometer tolerance (default 60 s)."""
    partition, s = Partition.of(context.partition_key), tame.settings
    station = partition.station_config(s)
    left = (
        "SELECT p.* EXCLUDE (month), f.features FROM asim_predictions p "
        "JOIN asim_features f ON f.month = p.month AND f.station = p.station AND f.file_name = p.file_name "
        "AND f.frame_index = p.frame_index "
        f"WHERE p.month = '{partition.month}' AND p.station = '{station.code}' ORDER BY p.time, p.file_name, p.frame_index"
    )
    table = merge_month(tame.warehouse, left, "magnetometer", partition.month, s.magnetometer_tolerance_s,
                        ["x_nt", "y_nt", "z_nt", "h_nt"], key_map=station.key_maps["magnetometer"])
    path = partition.write(tame.warehouse, "asim_magnetometer", table)
    return MaterializeResult(metadata=_summary(table, "asim_magnetometer", path))
