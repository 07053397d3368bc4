"""The warehouse IO manager: returned tables land in the warehouse layout (same bytes as
``Warehouse.write_partition``), inputs load from it, and outputs carry the table metadata."""

import polars as pl
import pytest
from dagster import AssetExecutionContext, DagsterInstance, materialize

from tame_assets.defs.assets.common import monthly_partitions, station_month_partitions
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.warehouse.store import Warehouse, station_file

FRAME = pl.DataFrame({"time": [1, 2, 3], "station": ["NYA"] * 3, "value": [0.5, 1.5, None]})


@warehouse_asset()
def io_plain(context: AssetExecutionContext) -> pl.DataFrame:
    return FRAME


@warehouse_asset(partitions_def=monthly_partitions)
def io_monthly(context: AssetExecutionContext) -> pl.DataFrame:
    return FRAME.with_columns(pl.lit(context.partition_key).alias("month"))  # dropped: the folder carries it


@warehouse_asset(partitions_def=station_month_partitions)
def io_station(context: AssetExecutionContext, io_monthly: pl.DataFrame) -> pl.DataFrame:
    return io_monthly.with_columns(pl.col("value") * 2)


@warehouse_asset()
def io_wrong(context: AssetExecutionContext):  # no annotation: Dagster's type check would catch it first
    return {"not": "a table"}


def _materialize(root, assets, selection, key=None):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("stations", ["NYA"])
    return materialize(
        assets,
        selection=selection,
        partition_key=key,
        instance=instance,
        resources={"tame": TameResource(data_root=str(root))},
        raise_on_error=False,
    )


def test_outputs_land_in_the_warehouse_layout_with_the_same_bytes(tmp_path):
    wh = Warehouse(tmp_path / "ref")
    assert _materialize(tmp_path, [io_plain], ["io_plain"]).success
    assert _materialize(tmp_path, [io_monthly], ["io_monthly"], "2010-12").success
    got = Warehouse(tmp_path)
    plain = got.partition_file("io_plain", None)
    assert plain.endswith("warehouse/io_plain/part-0.parquet")
    reference = wh.write_partition("io_plain", FRAME)
    assert open(plain, "rb").read() == open(reference, "rb").read()
    monthly = got.read_partition("io_monthly", "2010-12")
    assert monthly.equals(FRAME)  # the month column is the hive folder, not a stored column
    assert not [p for p in (tmp_path / "warehouse").rglob("*") if p.name.endswith(".tmp")]  # atomic: no leftovers


def test_a_station_month_input_is_loaded_and_the_output_carries_table_metadata(tmp_path):
    assert _materialize(tmp_path, [io_monthly], ["io_monthly"], "2010-12").success
    # the station × month asset loads its monthly input through the IO manager, not the pickling default
    result = _materialize(tmp_path, [io_monthly, io_station], ["io_station"], "2010-12|NYA")
    assert result.success
    table = Warehouse(tmp_path).read_partition("io_station", "2010-12", station_file("NYA"))
    assert table["value"].to_list() == [1.0, 3.0, None]
    meta = result.asset_materializations_for_node("io_station")[0].metadata
    assert meta["dagster/row_count"].value == 3 and meta["dagster/table_name"].value == "io_station"
    assert [c.name for c in meta["dagster/column_schema"].schema.columns] == ["time", "station", "value"]
    assert meta["path"].value.endswith("io_station/month=2010-12/part-NYA.parquet")


def test_a_non_table_output_is_a_one_line_error_naming_the_asset(tmp_path):
    result = _materialize(tmp_path, [io_wrong], ["io_wrong"])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = (
        failure.event_specific_data.error.cause.message
        if failure.event_specific_data.error.cause
        else failure.event_specific_data.error.message
    )
    assert "io_wrong" in message and "dict" in message
    assert not (tmp_path / "warehouse" / "io_wrong").exists()


@pytest.mark.parametrize(
    "name",
    [
        "asim_images",
        "asim_features",
        "asim_predictions",
        "asim_ceilometer",
        "asim_magnetometer",
        "keograms",
        "auroral_maps",
        "mosaics",
        "nightly_movies",
        "aurora_catalog",
        "magnetometer",
        "ceilometer",
        "oath_images",
        "oath_features",
        "svm_search",
        "backbone_benchmark",
        "p_aurora_calibration",
        "labelled_set_evaluation",
        "umap_embedding",
    ],
)
def test_single_table_assets_store_through_the_io_manager(name):
    from tame_assets.defs.definitions import all_assets
    from tame_assets.defs.io_manager import WAREHOUSE_IO

    (asset,) = [a for a in all_assets if name in {k.to_user_string() for k in a.keys}]
    assert asset.get_io_manager_key_for_asset_key(asset.key) == WAREHOUSE_IO
