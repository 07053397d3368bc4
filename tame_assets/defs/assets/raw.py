"""Raw layer: one asset per source archive (download + parse → Parquet table)."""


from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from tame_assets.analysis.figures import magnetometer_quicklook_figure, save_figure
from tame_assets.sources.locations import archive_locations
from tame_assets.defs.assets.common import monthly_partitions, progress_logger, table_metadata
from tame_assets.defs.resources import TameResource
from tame_assets.sources import ceilometer as ceilometer_source
from tame_assets.sources import magnetometer as magnetometer_source
from tame_assets.sources import oath as oath_source
from tame_assets.sources import uio_asi
from tame_assets.sources.http import HttpClient

RAW = "raw"


def _warn_if_empty(context: AssetExecutionContext, table, name: str, month: str) -> None:
    """One warning line for a month the configured archive has no data for (0 rows are written)."""
    if table.height == 0:
        context.log.warning(f"no {name} data for {month} in the configured archive: wrote 0 rows "
                            "(`tame months` lists the months it has)")


@asset(partitions_def=monthly_partitions, group_name=RAW, kinds={"parquet", "duckdb"})
def asim_images(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Index of the month's all-sky images (UiO archive), downloaded under ``raw/asim/<station>/``.

    One row per image file (time UTC, station, camera, wavelength_nm, file_name, url, local_path,
    bytes, sha256, valid). Corrupt files stay in the index with ``valid = false`` and a
    ``quarantine`` record giving the reason.
    """
    month = context.partition_key
    settings = tame.settings
    urls = archive_locations(settings)
    table, quarantine = uio_asi.fetch_month(
        HttpClient(),
        urls.uio_base_url,
        settings.asi_camera,
        list(settings.wavelengths_nm),
        month,
        tame.paths.raw_dir / "asim",
        progress=progress_logger(context, f"asim_images {month}"),
    )
    _warn_if_empty(context, table, "asim_images", month)
    path = tame.warehouse.write_partition("asim_images", table, month)
    tame.warehouse.record_quarantine("asim_images", month, quarantine)
    if quarantine.height:
        context.log.warning(f"{quarantine.height} image(s) quarantined: {quarantine['reason'].to_list()[:5]}")
    return MaterializeResult(
        metadata=table_metadata(table, "asim_images", path, quarantined=quarantine.height)
    )


@asset(partitions_def=monthly_partitions, group_name=RAW, kinds={"parquet", "duckdb"})
def magnetometer(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """IMAGE magnetometer series of the month (IAGA-2002): time UTC, station, x/y/z/f/h in nT."""
    month = context.partition_key
    settings = tame.settings
    table = magnetometer_source.fetch_month(
        HttpClient(),
        archive_locations(settings).image_base_url,
        settings.magnetometer_station,
        month,
        tame.paths.raw_dir / "magnetometer",
    )
    _warn_if_empty(context, table, "magnetometer", month)
    path = tame.warehouse.write_partition("magnetometer", table, month)
    gaps = table["h_nt"].null_count() / table.height if table.height else 1.0
    metadata = table_metadata(table, "magnetometer", path, gap_fraction=gaps)
    if table.height:
        quicklook = save_figure(magnetometer_quicklook_figure(table, settings.magnetometer_station, month),
                                tame.paths.figures_dir, f"magnetometer_{settings.magnetometer_station}_{month}")
        metadata.update(quicklook_png=MetadataValue.path(str(quicklook.png)),
                        quicklook_svg=MetadataValue.path(str(quicklook.svg)),
                        quicklook_preview=MetadataValue.md(quicklook.md_preview))
    return MaterializeResult(metadata=metadata)


@asset(partitions_def=monthly_partitions, group_name=RAW, kinds={"parquet", "duckdb"})
def ceilometer(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """AWI ceilometer cloud-base height at Ny-Ålesund (PANGAEA): time UTC, site, cbh_m, flags."""
    month = context.partition_key
    settings = tame.settings
    table = ceilometer_source.fetch_month(
        HttpClient(),
        archive_locations(settings).pangaea_url,
        settings.ceilometer_site,
        month,
        tame.paths.raw_dir / "ceilometer",
    )
    _warn_if_empty(context, table, "ceilometer", month)
    path = tame.warehouse.write_partition("ceilometer", table, month)
    missing = float(table["missing"].mean()) if table.height else 1.0
    return MaterializeResult(metadata=table_metadata(table, "ceilometer", path, missing_fraction=missing))


@asset(group_name=RAW, kinds={"parquet", "duckdb"})
def oath_images(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """The OATH labelled THEMIS set (tarball → images + labels): pic_num, class6, label, angle, path."""
    table = oath_source.fetch_oath(
        HttpClient(), archive_locations(tame.settings).oath_url, tame.paths.raw_dir / "oath"
    )
    path = tame.warehouse.write_partition("oath_images", table)
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    context.log.info(f"OATH class counts: {counts}")
    return MaterializeResult(metadata=table_metadata(table, "oath_images", path, class_counts=counts))
