"""Merged layer: image predictions matched to the nearest ceilometer and magnetometer records
(DuckDB as-of joins over the Parquet views; neighbouring months' edges are read)."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from tame_assets.warehouse.merge import merge_month
from tame_assets.defs.assets.common import asset_code_version, monthly_partitions, table_metadata
from tame_assets.defs.resources import TameResource

MERGED = "merged"


def _summary(table, name: str, path: str):
    matched = table["dt_s"].is_not_null().sum()
    mean_dt = table["dt_s"].abs().mean() if matched else None
    return table_metadata(table.drop("features", strict=False), name, path, matched_rows=int(matched),
                          mean_abs_dt_s=float(mean_dt) if mean_dt is not None else float("nan"))


@asset(partitions_def=monthly_partitions, deps=["asim_predictions", "ceilometer"], group_name=MERGED,
       kinds={"duckdb", "parquet"}, code_version=asset_code_version("asim_ceilometer"))
def asim_ceilometer(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Predictions + nearest ceilometer record (cbh_m, cloud_detected, missing, dt_s) within the
    ceilometer tolerance (default 300 s)."""
    month, s = context.partition_key, tame.settings
    left = f"SELECT * EXCLUDE (month) FROM asim_predictions WHERE month = '{month}'"
    table = merge_month(tame.warehouse, left, "ceilometer", month, s.ceilometer_tolerance_s,
                        ["cbh_m", "cloud_detected", "missing"], right_key="site", key_map={s.asi_station: s.ceilometer_site})
    path = tame.warehouse.write_partition("asim_ceilometer", table, month)
    return MaterializeResult(metadata=_summary(table, "asim_ceilometer", path))


@asset(partitions_def=monthly_partitions, deps=["asim_predictions", "asim_features", "magnetometer"],
       group_name=MERGED, kinds={"duckdb", "parquet"}, code_version=asset_code_version("asim_magnetometer"))
def asim_magnetometer(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Predictions + features + nearest magnetometer sample (x/y/z/h in nT, dt_s) within the
    magnetometer tolerance (default 60 s)."""
    month, s = context.partition_key, tame.settings
    left = (
        "SELECT p.* EXCLUDE (month), f.features FROM asim_predictions p "
        "JOIN asim_features f ON f.month = p.month AND f.file_name = p.file_name "
        f"WHERE p.month = '{month}' ORDER BY p.time, p.file_name"
    )
    table = merge_month(tame.warehouse, left, "magnetometer", month, s.magnetometer_tolerance_s,
                        ["x_nt", "y_nt", "z_nt", "h_nt"], key_map={s.asi_station: s.magnetometer_station})
    path = tame.warehouse.write_partition("asim_magnetometer", table, month)
    return MaterializeResult(metadata=_summary(table, "asim_magnetometer", path))
