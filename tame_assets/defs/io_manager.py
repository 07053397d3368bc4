"""The warehouse IO manager: a single-table asset returns its table and takes its inputs as parameters;
where the table lives is decided here, once, from the asset key and the partition.

Layout (the same files as :meth:`Warehouse.write_partition` always wrote): unpartitioned
``<table>/part-0.parquet``, monthly ``<table>/month=YYYY-MM/part-0.parquet``, station × month
``<table>/month=YYYY-MM/part-<STATION>.parquet`` — written atomically (temporary file renamed), with the
standard table metadata (row count, column schema, table name, path, preview). Assets that read with
SQL (merges, analyses, windows over neighbouring months) keep explicit reads through the warehouse.

Bound to each converted asset (:func:`warehouse_asset`: ``@asset`` with ``io_manager_key`` and
``resource_defs``) so every caller that supplies the ``tame`` resource — the Definitions, the CLI
runner, tests, the UI — stores and loads through it without naming it.
"""

from __future__ import annotations

import warnings

import polars as pl
from dagster import BetaWarning, InputContext, IOManager, OutputContext, asset, io_manager

from tame_assets.defs.assets.common import Partition, table_metadata
from tame_assets.warehouse.store import Warehouse

#: Resource key of the warehouse IO manager.
WAREHOUSE_IO = "warehouse_io_manager"


class WarehouseIOManager(IOManager):
    """Stores a ``polars.DataFrame`` output as its asset's partition of the Parquet warehouse and loads
    an input the same way (the table name is the asset key)."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    @staticmethod
    def _partition(context: InputContext | OutputContext) -> Partition:
        return Partition.of(context.asset_partition_key if context.has_asset_partitions else None)

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the warehouse IO manager stores polars "
                f"DataFrames, got {type(obj).__name__}"
            )
        table = context.asset_key.to_user_string()
        path = self._partition(context).write(self.warehouse, table, obj)
        context.add_output_metadata(table_metadata(obj, table, path))

    def load_input(self, context: InputContext) -> pl.DataFrame:
        if context.has_asset_partitions and len(context.asset_partition_keys) != 1:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: load one partition per input "
                f"(got {len(context.asset_partition_keys)}); read windows with SQL instead"
            )
        return self._partition(context).read(self.warehouse, context.asset_key.to_user_string())


@io_manager(required_resource_keys={"tame"}, description="Parquet warehouse, one file per asset partition.")
def warehouse_io_manager(init_context) -> WarehouseIOManager:
    """The IO manager on the ``tame`` resource's warehouse (its data root)."""
    return WarehouseIOManager(init_context.resources.tame.warehouse)


#: ``resource_defs`` of a converted asset.
WAREHOUSE_IO_DEFS = {WAREHOUSE_IO: warehouse_io_manager}


def warehouse_asset(**kwargs):
    """``@asset(**kwargs)`` whose returned ``polars.DataFrame`` is its table, stored by
    :class:`WarehouseIOManager`, and whose parameters named after single-table assets are loaded by it
    (a figure-only asset returns a ``MaterializeResult`` instead: nothing is stored). The ``tame`` resource
    is ``context.resources.tame`` (Dagster refuses resource parameters next to asset-bound resources).
    Dagster marks asset-bound ``resource_defs`` as beta; its BetaWarning (about Dagster's API, printed
    by every process that loads the definitions) is silenced for these definitions only."""

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=BetaWarning, message=".*resource_defs")
            return asset(
                io_manager_key=WAREHOUSE_IO, resource_defs=WAREHOUSE_IO_DEFS, required_resource_keys={"tame"}, **kwargs
            )(fn)

    return decorate
