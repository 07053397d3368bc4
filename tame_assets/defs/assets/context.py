"""Geophysical context: satellite conjunctions with the cameras (thin wiring of
:mod:`tame_assets.geometry.conjunctions`)."""

import polars as pl
from dagster import AssetExecutionContext

from tame_assets.defs.assets.common import (
    Partition,
    extra_metadata,
    figure_metadata,
    follows_new_partitions,
    station_month_partitions,
)
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource

CONTEXT = "context"
#: Figures per station and month (one per pass, the first passes).
MAX_CONJUNCTION_FIGURES = 6


@warehouse_asset(
    partitions_def=station_month_partitions,
    group_name=CONTEXT,
    kinds={"parquet", "matplotlib"},
    automation_condition=follows_new_partitions(),
)
def conjunctions(context: AssetExecutionContext, asim_images: pl.DataFrame) -> pl.DataFrame:
    """Satellite conjunctions of a station's month: one row per frame in which a satellite's magnetic
    footprint (IGRF, at the emission altitude) is in the camera's view above ``[conjunctions]
    min_elevation_deg`` — satellite, station, pass start/end, time, satellite and footprint position,
    azimuth/elevation, the footprint's pixel (x = column, y = row of the frame as stored), the frame's
    counts there (3×3 mean), file and frame index. Satellites from ``[conjunctions] tle_files`` /
    ``ephemeris_files``; none configured = an empty table. A figure per pass (the middle frame with
    the footprint track)."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import save_figure
    from tame_assets.geometry.conjunctions import (
        empty_conjunctions,
        load_sources,
        pass_figures,
        station_image_conjunctions,
    )

    settings = tame.settings
    if not settings.conjunction_tle_files and not settings.conjunction_ephemeris_files:
        context.log.info("no [conjunctions] tle_files / ephemeris_files configured: empty table")
        return empty_conjunctions()
    partition = Partition.of(context.partition_key)
    station = partition.station_config(settings)
    sources = load_sources(settings.conjunction_tle_files, settings.conjunction_ephemeris_files)
    table = station_image_conjunctions(
        station, asim_images, sources, settings.conjunction_min_elevation_deg, progress=context.log.info
    )
    figures = [
        save_figure(fig, tame.paths.figures_dir / "conjunctions", name)
        for name, fig in pass_figures(table, asim_images, limit=MAX_CONJUNCTION_FIGURES)
    ]
    context.add_output_metadata(
        {
            **extra_metadata(satellites=len(sources), passes=table.select("satellite", "pass_start").n_unique()),
            **figure_metadata(figures, context=context),
        }
    )
    return table
