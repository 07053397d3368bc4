"""Raw layer: one asset per source archive (download + parse → Parquet table)."""

from collections import Counter

import polars as pl
from dagster import AssetExecutionContext, DataVersion

from tame_assets.analysis.figures import magnetometer_quicklook_figure, save_figure
from tame_assets.config import SAMPLE_SOURCE
from tame_assets.defs.assets.common import (
    Partition,
    asset_code_version,
    extra_metadata,
    figure_metadata,
    monthly_partitions,
    progress_logger,
    settings_metadata,
    station_month_partitions,
    versioned_output,
)
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.sources import ceilometer as ceilometer_source
from tame_assets.sources import magnetometer as magnetometer_source
from tame_assets.sources import oath as oath_source
from tame_assets.sources.frame_reader import fetch_station_month
from tame_assets.sources.http import HttpClient, RefreshPolicy
from tame_assets.sources.locations import archive_locations, image_requester

RAW = "raw"


def _warn_if_empty(context: AssetExecutionContext, table, name: str, month: str) -> None:
    """One warning line for a month the configured archive has no data for (0 rows are written)."""
    if table.height == 0:
        context.log.warning(
            f"no {name} data for {month} in the configured archive: wrote 0 rows "
            "(`tame months` lists the months it has)"
        )


@warehouse_asset(
    partitions_def=station_month_partitions,
    group_name=RAW,
    kinds={"parquet", "duckdb"},
    code_version=asset_code_version("asim_images"),
)
def asim_images(context: AssetExecutionContext) -> pl.DataFrame:
    """Index of a station's month of all-sky frames, any network (UiO PNG; THEMIS CDF or PGM from the
    archive or the station's local folder); downloads go under ``raw/``.

    One row per frame (time UTC, network, station, camera, wavelength_nm, wavelength_0.1nm,
    file_name, frame_index, url, local_path, bytes, sha256, valid). Corrupt, truncated or oversized
    files (above ``max_image_pixels``, read from the header) stay in the index with ``valid = false``
    and a ``quarantine`` record giving the reason. Images of the current and previous month (or
    ``refresh_days``) are re-validated with the archive on every run.
    """
    tame: TameResource = context.resources.tame
    partition, settings = Partition.of(context.partition_key), tame.settings
    station = partition.station_config(settings)
    table, quarantine = fetch_station_month(
        station,
        partition.month,
        vars(archive_locations(settings)),
        tame.paths.raw_dir,
        progress=progress_logger(context, f"asim_images {partition.label}"),
        refresh=RefreshPolicy(settings.refresh_days),
        max_image_pixels=settings.max_image_pixels,
    )
    _warn_if_empty(context, table, "asim_images", partition.label)
    tame.warehouse.record_quarantine("asim_images", partition.month, quarantine, station=station.code)
    if quarantine.height:
        context.log.warning(f"{quarantine.height} frame(s) quarantined: {quarantine['reason'].to_list()[:5]}")
    context.add_output_metadata(
        extra_metadata(
            quarantined=quarantine.height, network=station.network, station=station.code, camera=station.camera
        )
    )
    return table


@warehouse_asset(
    partitions_def=monthly_partitions,
    group_name=RAW,
    kinds={"parquet", "duckdb"},
    code_version=asset_code_version("magnetometer"),
)
def magnetometer(context: AssetExecutionContext) -> pl.DataFrame:
    """IMAGE magnetometer series of the month: one request per UT day to the IMAGE data form (column
    format, cached under ``raw/magnetometer/``): time UTC, station, x/y/z/f/h in nT."""
    tame: TameResource = context.resources.tame
    month = context.partition_key
    settings = tame.settings
    rejected: Counter = Counter()
    table = magnetometer_source.fetch_month(
        HttpClient(deadline_s=settings.download_deadline_s),
        archive_locations(settings).image_base_url,
        settings.magnetometer_station,
        month,
        tame.paths.raw_dir / "magnetometer",
        image_requester(settings),
        refresh=RefreshPolicy(settings.refresh_days),
        rejected=rejected,
    )
    _warn_if_empty(context, table, "magnetometer", month)
    gaps = table["h_nt"].null_count() / table.height if table.height else 1.0
    metadata = extra_metadata(gap_fraction=gaps, rejected_values=dict(rejected))
    if rejected:
        context.log.warning(f"magnetometer {month}: values set NULL: {dict(rejected)}")
    if table.height:
        quicklook = save_figure(
            magnetometer_quicklook_figure(table, settings.magnetometer_station, month),
            tame.paths.figures_dir,
            f"magnetometer_{settings.magnetometer_station}_{month}",
        )
        metadata.update(figure_metadata([quicklook], context=context))
    context.add_output_metadata(metadata)
    return table


@warehouse_asset(
    partitions_def=monthly_partitions,
    group_name=RAW,
    kinds={"parquet", "duckdb"},
    code_version=asset_code_version("ceilometer"),
)
def ceilometer(context: AssetExecutionContext) -> pl.DataFrame:
    """AWI ceilometer cloud-base height at Ny-Ålesund: the PANGAEA collection's child dataset covering
    the month (resolved from the collection's text export): time UTC, site, cbh_m, flags."""
    tame: TameResource = context.resources.tame
    month = context.partition_key
    settings = tame.settings
    rejected: Counter = Counter()
    fetched = ceilometer_source.fetch_month(
        HttpClient(deadline_s=settings.download_deadline_s),
        archive_locations(settings).pangaea_url,
        settings.ceilometer_site,
        month,
        tame.paths.raw_dir / "ceilometer",
        refresh=RefreshPolicy(settings.refresh_days),
        rejected=rejected,
    )
    table = fetched.table
    context.log.info(fetched.note)
    _warn_if_empty(context, table, "ceilometer", month)
    missing = float(table["missing"].mean()) if table.height else 1.0
    if rejected:
        context.log.warning(f"ceilometer {month}: impossible cloud-base values set NULL: {dict(rejected)}")
    context.add_output_metadata(
        extra_metadata(
            missing_fraction=missing,
            source_dataset=fetched.child.doi if fetched.child else "",
            note=fetched.note,
            rejected_values=dict(rejected),
        )
    )
    return table


@warehouse_asset(group_name=RAW, kinds={"parquet", "duckdb"}, code_version=asset_code_version("oath_images"))
def oath_images(context: AssetExecutionContext):
    """The OATH labelled THEMIS set (tarball → images + labels): pic_num, class6, label, angle, path.
    Its data version is the tarball's SHA-256, so what depends on it is stale only when the set changed."""
    tame: TameResource = context.resources.tame
    table, digest = oath_source.fetch_oath_versioned(
        HttpClient(deadline_s=tame.settings.download_deadline_s),
        archive_locations(tame.settings).oath_url,
        tame.paths.raw_dir / "oath",
        sha256=(tame.settings.oath_sha256 or None) if tame.settings.source != SAMPLE_SOURCE else None,
    )
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    context.log.info(f"OATH class counts: {counts}")
    context.add_output_metadata(
        {**extra_metadata(class_counts=counts), **settings_metadata("oath_images", tame.settings)}
    )
    return versioned_output(table, DataVersion(f"sha256:{digest[:32]}"))
