"""Overview layer: what the archive holds, station × month, with links into the UI's partitions."""

import polars as pl
from dagster import AssetExecutionContext, AutomationCondition, MetadataValue

from tame_assets.analysis.figures import save_figure
from tame_assets.defs.assets.common import extra_metadata, figure_metadata
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.products.coverage import coverage_figure, coverage_markdown, coverage_table

OVERVIEW = "overview"


def after_each_catalog_update() -> AutomationCondition:
    """Requested on the tick after any catalog partition was updated (the asset is one cheap query)."""
    return (
        AutomationCondition.any_deps_updated().since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("after each catalog update")


@warehouse_asset(
    deps=["aurora_catalog"],
    group_name=OVERVIEW,
    kinds={"duckdb", "matplotlib"},
    automation_condition=after_each_catalog_update(),
)
def archive_coverage(context: AssetExecutionContext) -> pl.DataFrame:
    """Which station × months are in the aurora catalog: frames, UT days, first/last frame (UTC), auroral
    and cloud-free frames — as a table, a station × month figure, and a list with a link to each
    partition in the UI (open this asset to find the materialized partitions among all months)."""
    tame: TameResource = context.resources.tame
    table = coverage_table(tame.warehouse)
    figure = save_figure(coverage_figure(table), tame.paths.figures_dir, "archive_coverage")
    context.add_output_metadata(
        {
            "partitions": MetadataValue.md(coverage_markdown(table)),
            **figure_metadata([figure], context=context),
            **extra_metadata(station_months=table.height, frames=int(table["frames"].sum()) if table.height else 0),
        }
    )
    return table
