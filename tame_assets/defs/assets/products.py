"""Products layer: p_aurora calibration, keograms, daily summary plots, mosaics of overlapping
cameras, nightly movies and the ``aurora_catalog`` (one row per frame: class, calibrated p_aurora,
cloud base, H and dH/dt)."""

import datetime as dt
import json

import numpy as np
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tame_assets.config import PARTITIONS_START
from tame_assets.defs.assets.common import (
    Partition,
    best_linear_c,
    configured_oath_features,
    extra_metadata,
    figure_metadata,
    follows_new_partitions,
    settings_metadata,
    station_month_partitions,
    station_partitions,
    table_metadata,
    while_missing,
)
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.files import write_text_atomic
from tame_assets.labels import AURORAL_CLASSES
from tame_assets.months import month_bounds, neighbour_month, parse_month
from tame_assets.warehouse.store import station_file

PRODUCTS = "products"
CALIBRATION_FILE = "p_aurora_calibration.json"
#: Latitude bin of the keograms (degrees).
KEOGRAM_BIN_DEG = 0.1


def _write_json(path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2))


@warehouse_asset(deps=["svm_search"], group_name=PRODUCTS, kinds={"scikitlearn", "matplotlib"})
def p_aurora_calibration(context: AssetExecutionContext, oath_features: pl.DataFrame) -> pl.DataFrame:
    """Calibration of p_aurora: held-out p_aurora of every OATH image (5-fold CV of the OATH
    classifier's recipe) → isotonic or Platt calibrator (lower held-out ECE), reliability diagram,
    expected calibration error before and after on held-out folds; saved as JSON next to the model."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import save_figure
    from tame_assets.ml.classifier import cross_validated_p_aurora
    from tame_assets.products.calibration import (
        cross_validated_calibration,
        fit_calibrator,
        reliability_curve,
        reliability_figure,
    )

    X, y = configured_oath_features(tame, oath_features)
    p = cross_validated_p_aurora(X, y, best_linear_c(tame.warehouse))
    truth = np.isin(y, AURORAL_CLASSES)
    calibrator = fit_calibrator(p, truth)
    report = cross_validated_calibration(p, truth, method=calibrator.method)
    target = tame.paths.models_dir / CALIBRATION_FILE
    _write_json(
        target,
        {
            **calibrator.to_dict(),
            "ece_raw": report.ece_raw,
            "ece_calibrated": report.ece_calibrated,
            "n_images": int(len(y)),
        },
    )
    curve = reliability_curve(p, truth).with_columns(pl.lit("raw").alias("scores"))
    calibrated = reliability_curve(report.p_calibrated, truth).with_columns(pl.lit("calibrated").alias("scores"))
    curve = pl.concat([curve, calibrated])
    fig = save_figure(
        reliability_figure(
            p,
            truth,
            report.p_calibrated,
            title=f"p_aurora reliability, OATH-format set ({len(y)} images, held-out 5-fold CV)",
        ),
        tame.paths.figures_dir,
        "p_aurora_reliability",
    )
    context.log.info(f"ECE {report.ece_raw:.3f} → {report.ece_calibrated:.3f} ({calibrator.method})")
    numbers = {"ece_raw": report.ece_raw, "ece_calibrated_heldout": report.ece_calibrated, "method": calibrator.method}
    context.add_output_metadata(
        {
            **extra_metadata(**numbers),
            **figure_metadata([fig], context=context),
            "calibrator": MetadataValue.path(str(target)),
            **settings_metadata("p_aurora_calibration", tame.settings),
        }
    )
    return curve


@asset(
    partitions_def=station_partitions,
    group_name=PRODUCTS,
    kinds={"parquet", "matplotlib"},
    automation_condition=while_missing(),
)
def skymaps(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Camera geometry of a station, one row per pixel and wavelength: ``station, network, camera,
    wavelength_0.1nm, altitude_km, valid_from, valid_to, source, row, col, azimuth_deg, elevation_deg,
    lat_deg, lon_deg, mlat_deg, mlon_deg, aacgm_epoch`` (degrees; lat/lon at the wavelength's emission
    altitude, 110 km for 557.7 nm and white light, 230 km for 630.0 nm; NULL below the minimum elevation;
    mlat/mlon = AACGM-v2 of lat/lon at ``aacgm_epoch``). From the official skymap file
    (THEMIS ``.sav``) where configured, else the camera's documented lens model; row 0 = the first
    image row as stored in the data files."""
    from tame_assets.analysis.figures import save_figure
    from tame_assets.geometry import skymap_figure, station_skymap

    station = tame.settings.station(context.partition_key)
    codes = [int(round(w * 10)) for w in station.wavelengths_nm] or [0]
    tables, figures = [], []
    for code in codes:
        sky = station_skymap(station, code)
        if sky is None:
            continue
        tables.append(
            sky.to_table().with_columns(
                pl.lit(station.code).alias("station"),
                pl.lit(station.network).alias("network"),
                pl.lit(station.camera).alias("camera"),
                pl.lit(code, pl.Int32).alias("wavelength_0.1nm"),
                pl.lit(sky.altitude_km).alias("altitude_km"),
                pl.lit(sky.valid_from, pl.Datetime("us")).alias("valid_from"),
                pl.lit(sky.valid_to, pl.Datetime("us")).alias("valid_to"),
                pl.lit(sky.source).alias("source"),
            )
        )
        # AACGM-v2 per pixel at the emission altitude; epoch = validity start, else the first partition month.
        epoch = sky.valid_from or parse_month(PARTITIONS_START)
        mlat, mlon = sky.aacgm(epoch)
        tables[-1] = tables[-1].with_columns(
            pl.Series("mlat_deg", mlat.ravel()).fill_nan(None),
            pl.Series("mlon_deg", mlon.ravel()).fill_nan(None),
            pl.lit(epoch, pl.Datetime("us")).alias("aacgm_epoch"),
        )
        fig = skymap_figure(sky)
        figures.append(save_figure(fig, tame.paths.figures_dir, f"skymap_{station.code}_{code}"))
    if not tables:
        context.log.warning(
            f"no geometry for station {station.code}: configure its skymap_file (THEMIS .sav) "
            "or a lens model; keograms fall back to pixel rows"
        )
        return MaterializeResult(metadata={"station": station.code, "skymap": "none"})
    table = pl.concat(tables)
    path = tame.warehouse.write_partition("skymaps", table, None, station_file(station.code))
    return MaterializeResult(
        metadata={
            **table_metadata(table, "skymaps", path, source=tables[0]["source"][0]),
            **figure_metadata(figures, context=context),
        }
    )


def _read_frame(item: str):
    """The greyscale frame a frame item names, or None when it cannot be read (asim_images quarantined it)."""
    from tame_assets.sources.frame_reader import grey_frame

    return grey_frame(item, missing_ok=True)


def _frames(images: pl.DataFrame):
    """(time, greyscale frame) of every readable frame of an ``asim_images`` table, in time order."""
    from tame_assets.sources.frame_reader import frame_items

    valid = images.filter(pl.col("valid")).sort("time")
    for time, item in zip(valid["time"], frame_items(valid)):
        frame = _read_frame(item)
        if frame is not None:
            yield time, frame


@warehouse_asset(
    partitions_def=station_month_partitions,
    group_name=PRODUCTS,
    kinds={"parquet", "matplotlib"},
    automation_condition=follows_new_partitions(),
)
def keograms(context: AssetExecutionContext, asim_images: pl.DataFrame) -> pl.DataFrame:
    """North–south keogram of a station's month: ``station, wavelength_nm, time, lat_deg, intensity``
    (latitude bins of 0.1° at the emission altitude via the station's skymap; ``row`` instead of
    ``lat_deg`` for cameras without one; ``mlat_deg`` along the magnetic meridian with ``[products]
    keogram_magnetic``), one time per frame, each frame decoded once; figure with
    gaps as gaps."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import save_figure
    from tame_assets.geometry import station_skymap
    from tame_assets.products.keogram import keogram, keogram_figure

    partition = Partition.of(context.partition_key)
    station, month = partition.station_config(tame.settings), partition.month
    images = asim_images
    tables, figures = [], []
    for (wavelength, code), group in images.group_by("wavelength_nm", "wavelength_0.1nm", maintain_order=True):
        first = next(_frames(group), None)
        if first is None:
            continue
        sky = station_skymap(station, code, first[1].shape)
        # [products] keogram_magnetic: along the AACGM-v2 meridian in mlat bins, epoch = the month's first frame.
        epoch = first[0] if tame.settings.keogram_magnetic and sky is not None else None
        table = keogram(_frames(group), None, sky, bin_deg=KEOGRAM_BIN_DEG, magnetic_epoch=epoch)
        tables.append(
            table.with_columns(pl.lit(station.code).alias("station"), pl.lit(float(wavelength)).alias("wavelength_nm"))
        )
        colour = f"{wavelength:.1f} nm" if code else "white light"
        fig = keogram_figure(table, station=station.code, wavelength=colour)
        figures.append(save_figure(fig, tame.paths.figures_dir, f"keogram_{station.code}_{code}_{month}"))
    if not tables:
        context.log.warning(f"no readable images in {partition.label}: empty keogram")
    table = (
        pl.concat(tables, how="diagonal_relaxed")
        if tables
        else pl.DataFrame(
            schema={"time": pl.Datetime("us"), "lat_deg": pl.Float64, "intensity": pl.Float32, "station": pl.Utf8}
        )
    )
    context.add_output_metadata(figure_metadata(figures, context=context))
    return table


def _days(table: pl.DataFrame, max_days: int = 0) -> list[dt.date]:
    """UT days with rows in ``table``, in order; at most ``max_days`` (> 0) — those with the most rows."""
    if not table.height:
        return []
    counts = table.group_by(pl.col("time").dt.date().alias("day")).len().sort(["len", "day"], descending=[True, False])
    days = counts["day"].to_list()
    return sorted(days[:max_days] if max_days > 0 else days)


def _around(tame: TameResource, table: str, month: str) -> pl.DataFrame:
    """The month's rows of the monthly ``table`` plus its neighbours' (so a UT day at a month edge is complete)."""
    present = tame.warehouse.months(table)
    months = [m for m in (neighbour_month(month, -1), month, neighbour_month(month, 1)) if m in present]
    return tame.warehouse.read(table, months)


def _station_rows(table: pl.DataFrame, column: str, key: str) -> pl.DataFrame:
    """Rows of a source table (magnetometer ``station``, ceilometer ``site``) for the mapped key ('' = none)."""
    if not table.height or not key:
        return table.clear() if table.height else table
    return table.filter(pl.col(column) == key)


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["ceilometer", "magnetometer"],
    group_name=PRODUCTS,
    kinds={"matplotlib"},
    automation_condition=follows_new_partitions(),
)
def daily_summaries(
    context: AssetExecutionContext, asim_images: pl.DataFrame, keograms: pl.DataFrame, asim_predictions: pl.DataFrame
) -> MaterializeResult:
    """One figure per station and UT day with images: keogram, predicted classes + p_aurora, ceilometer
    cloud base / flag and magnetometer H (day median subtracted) and dH/dt on one UTC axis. Figures only
    (no table); the sources around the month edges are read as a window."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import save_figure
    from tame_assets.products.summary import daily_summary_figure

    partition = Partition.of(context.partition_key)
    config, month = partition.station_config(tame.settings), partition.month
    station = config.code
    keo, predictions = keograms, asim_predictions
    ceilometer = _station_rows(_around(tame, "ceilometer", month), "site", config.ceilometer_site)
    magnetometer = _station_rows(_around(tame, "magnetometer", month), "station", config.magnetometer_station)
    start, end = month_bounds(month)
    files = []
    images = asim_images.filter(pl.col("valid"))
    for day in _days(images, tame.settings.daily_products_max_days):
        lo, hi = dt.datetime.combine(day, dt.time()), dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1)

        def on_day(t: pl.DataFrame, lo: dt.datetime = lo, hi: dt.datetime = hi) -> pl.DataFrame:
            return t.filter((pl.col("time") >= lo) & (pl.col("time") < hi)) if t.height else t

        fig = daily_summary_figure(
            on_day(keo).drop("station", "wavelength_nm", strict=False),
            on_day(predictions),
            on_day(ceilometer),
            on_day(magnetometer),
            station,
            day,
        )
        files.append(save_figure(fig, tame.paths.figures_dir / "daily_summary", f"{station}_{day:%Y%m%d}"))
    context.log.info(f"{len(files)} daily summary figures for {partition.label} ({start:%Y-%m-%d} – {end:%Y-%m-%d})")
    return MaterializeResult(
        metadata={
            "days": len(files),
            **figure_metadata(files, context=context),
            "folder": MetadataValue.path(str(tame.paths.figures_dir / "daily_summary")),
        }
    )


#: Latitude cell of the auroral maps (degrees; longitude cells are about as wide on the ground).
MAP_CELL_DEG = 0.1


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["skymaps"],
    group_name=PRODUCTS,
    kinds={"parquet", "matplotlib"},
    automation_condition=follows_new_partitions(),
)
def auroral_maps(
    context: AssetExecutionContext, asim_images: pl.DataFrame, asim_predictions: pl.DataFrame
) -> pl.DataFrame:
    """Map projection of each UT day's most auroral frame (highest p_aurora among the frames of an auroral
    class; a day without one shows its highest-p_aurora frame, titled "no auroral frame"): the frame on a regular
    latitude/longitude grid (0.1° cells) at the emission altitude via the station's skymap, with the
    land outline; table ``station, time, file_name, frame_index, p_aurora, lat_deg, lon_deg, intensity``
    (cell centres in degrees; a cell takes the counts of the pixel nearest to its centre on the
    emission shell; cells outside the field of view are not stored). Stations without geometry get no maps."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import save_figure
    from tame_assets.geometry import station_skymap
    from tame_assets.products.projection import grid_for_skymaps, map_caption, map_figure, projection_for
    from tame_assets.sources.frame_reader import frame_items

    partition = Partition.of(context.partition_key)
    station = partition.station_config(tame.settings)
    images = asim_images.filter(pl.col("valid"))
    predictions = asim_predictions.filter(pl.col("p_aurora").is_not_null())
    best = (
        predictions.join(
            images.select("file_name", "frame_index", "local_path", "network"), on=["file_name", "frame_index"]
        )
        .with_columns(
            pl.col("time").dt.date().alias("day"), pl.col("pred").is_in(list(AURORAL_CLASSES)).alias("auroral")
        )
        .filter(pl.col("day").is_in(_days(images, tame.settings.daily_products_max_days)))
        .sort(["day", "auroral", "p_aurora", "time"], descending=[False, True, True, False])
        .unique("day", keep="first", maintain_order=True)
    )
    tables, figures, projection = [], [], None
    for row, item in zip(best.iter_rows(named=True), frame_items(best)):
        time, frame = row["time"], _read_frame(item)
        if frame is None:
            continue  # unreadable since it was indexed: quarantined by asim_images
        if projection is None or projection.shape != frame.shape:
            sky = station_skymap(station, int(row["wavelength_0.1nm"]), frame.shape)
            if sky is None:
                context.log.warning(f"no geometry for station {station.code}: no maps")
                break
            projection = projection_for(sky, grid_for_skymaps([sky], MAP_CELL_DEG), method="nearest")
        image = projection.apply(frame)
        lat, lon = np.meshgrid(projection.grid.lat_centres, projection.grid.lon_centres, indexing="ij")
        seen = np.isfinite(image)
        tables.append(
            pl.DataFrame({"lat_deg": lat[seen], "lon_deg": lon[seen], "intensity": image[seen]}).with_columns(
                pl.lit(station.code).alias("station"),
                pl.lit(time).cast(pl.Datetime("us")).alias("time"),
                pl.lit(row["file_name"]).alias("file_name"),
                pl.lit(row["frame_index"], pl.Int32).alias("frame_index"),
                pl.lit(row["p_aurora"]).alias("p_aurora"),
            )
        )
        caption = map_caption(row["pred"], row["p_aurora"], row["auroral"], sky.altitude_km)
        fig = map_figure(
            image, projection.grid, stations=station.code, time=time, product="auroral map", caption=caption
        )
        figures.append(save_figure(fig, tame.paths.figures_dir / "maps", f"{station.code}_{time:%Y%m%d_%H%M%S}"))
    table = (
        pl.concat(tables).select(
            "station", "time", "file_name", "frame_index", "p_aurora", "lat_deg", "lon_deg", "intensity"
        )
        if tables
        else pl.DataFrame(schema={"station": pl.Utf8, "time": pl.Datetime("us"), "lat_deg": pl.Float64})
    )
    context.add_output_metadata({**extra_metadata(maps=len(figures)), **figure_metadata(figures, context=context)})
    return table


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["skymaps"],
    group_name=PRODUCTS,
    kinds={"parquet", "matplotlib"},
    automation_condition=follows_new_partitions(),
)
def mosaics(context: AssetExecutionContext, asim_images: pl.DataFrame) -> pl.DataFrame:
    """Mosaics of overlapping cameras (:mod:`tame_assets.products.mosaics`): per group of configured
    stations whose fields of view overlap and per time step (a frame of the group's last-configured
    station with a frame of another member within 30 s), the frames on one 0.1° latitude/longitude grid,
    the camera seeing a cell at the higher elevation winning it; projected at the assumed emission height
    (110 km) or, with ``[products] emission_height = "measured"``, at the height triangulated from the
    two cameras' frames. A group's mosaics are made in the partition of its last-configured station (the
    others' ``asim_images`` of the month are read from the warehouse); other partitions, and stations
    without an overlapping neighbour, yield an empty table. Table ``group, station, time, height_km,
    height_source, ncc, ncc_assumed, lat_deg, lon_deg, intensity, source_station``; one figure per group
    and UT day (its best-correlated, else brightest, time step)."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import save_figure
    from tame_assets.geometry import emission_altitude_km
    from tame_assets.products.mosaics import (
        SCHEMA,
        GroupMosaicker,
        cached_station_skymap,
        group_steps,
        mosaic_caption,
        overlap_groups,
        step_table,
    )
    from tame_assets.products.projection import map_figure

    partition = Partition.of(context.partition_key)
    station, month = partition.station_config(tame.settings), partition.month
    configured = tame.settings.station_table().stations

    def wavelength(s) -> int:
        return int(round(s.wavelengths_nm[0] * 10)) if s.wavelengths_nm else 0

    code = wavelength(station)
    same_light = {c: s for c, s in configured.items() if wavelength(s) == code}
    groups = []
    if len(same_light) > 1:
        skymaps = {c: cached_station_skymap(s, code) for c, s in same_light.items()}
        groups = [g for g in overlap_groups(skymaps) if g[-1] == station.code]
    tables, figures = [], []
    for group in groups:
        frames = []
        for member in group:
            if member == station.code:
                rows = asim_images
            elif tame.warehouse.exists(tame.warehouse.partition_file("asim_images", month, station_file(member))):
                rows = tame.warehouse.read_partition("asim_images", month, station_file(member))
            else:
                context.log.warning(f"mosaics {'+'.join(group)}: no asim_images of {member} in {month} yet")
                rows = asim_images.clear()
            frames.append(list(_frames(rows)))
        mosaicker = GroupMosaicker([skymaps[m] for m in group], emission_altitude_km(code))
        best: dict = {}
        for step in group_steps(mosaicker, frames, measure=tame.settings.emission_height == "measured"):
            tables.append(step_table(step, group, station.code))
            finite = step.mosaic.image[np.isfinite(step.mosaic.image)]
            rank = (np.nan_to_num(step.ncc, nan=-1.0), float(np.percentile(finite, 99.5)) if finite.size else 0.0)
            day = step.time.date()
            if day not in best or rank > best[day][0]:
                best[day] = (rank, step)
        for _, step in best.values():
            fig = map_figure(
                step.mosaic, stations=list(group), time=step.time, product="mosaic", caption=mosaic_caption(step)
            )
            name = f"{'_'.join(group)}_{step.time:%Y%m%d_%H%M%S}"
            figures.append(save_figure(fig, tame.paths.figures_dir / "mosaics", name))
        context.log.info(f"mosaics {'+'.join(group)} {month}: {len(tables)} time steps, {len(best)} figures")
    table = pl.concat(tables) if tables else pl.DataFrame(schema=SCHEMA)
    heights = table.unique("time").filter(pl.col("height_source") == "measured")["height_km"] if tables else None
    numbers = {"groups": len(groups), "time_steps": table["time"].n_unique() if table.height else 0}
    if heights is not None and heights.len():
        numbers["median_measured_height_km"] = float(heights.median())
    context.add_output_metadata({**extra_metadata(**numbers), **figure_metadata(figures, context=context)})
    return table


@warehouse_asset(
    partitions_def=station_month_partitions,
    group_name=PRODUCTS,
    kinds={"parquet"},
    automation_condition=follows_new_partitions(),
)
def nightly_movies(
    context: AssetExecutionContext, asim_images: pl.DataFrame, asim_predictions: pl.DataFrame
) -> pl.DataFrame:
    """An MP4 per station and UT day (``movies/<station>/<YYYYMMDD>.mp4`` in the local root), each frame
    annotated with its UTC time, predicted class and p_aurora; table ``station, day, path, frames, seconds``."""
    tame: TameResource = context.resources.tame
    from tame_assets.products.movie import write_movie

    partition = Partition.of(context.partition_key)
    station = partition.station_config(tame.settings).code
    images, predictions = asim_images, asim_predictions
    rows = []
    for day in _days(images.filter(pl.col("valid")), tame.settings.daily_products_max_days):
        of_day = images.filter(pl.col("time").dt.date() == day)
        out = tame.paths.local_root / "movies" / station / f"{day:%Y%m%d}.mp4"
        movie = write_movie(_frames(of_day), None, out, predictions, fps=4, station=station)
        rows.append(
            {
                "station": station,
                "day": day,
                "path": str(movie.path),
                "frames": movie.n_frames,
                "seconds": movie.duration_s,
            }
        )
    return pl.DataFrame(
        rows, schema={"station": pl.Utf8, "day": pl.Date, "path": pl.Utf8, "frames": pl.Int64, "seconds": pl.Float64}
    )


def catalog_automation() -> AutomationCondition:
    """:func:`follows_new_partitions`, except that a missing ``frame_embeddings`` partition does not hold
    the catalog back (its ``novelty`` stays NULL); when that partition is materialized later, the update
    re-derives the catalog."""
    return follows_new_partitions().replace(
        "any_deps_missing", AutomationCondition.any_deps_missing().ignore(AssetSelection.assets("frame_embeddings"))
    )


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["magnetometer", "p_aurora_calibration", "frame_embeddings"],
    group_name=PRODUCTS,
    kinds={"duckdb", "parquet"},
    automation_condition=catalog_automation(),
)
def aurora_catalog(context: AssetExecutionContext, asim_ceilometer: pl.DataFrame) -> pl.DataFrame:
    """The searchable catalog (DuckDB view ``aurora_catalog``): one row per frame — network, station,
    camera, time, class and class probabilities, p_aurora and calibrated p_aurora, nearest ceilometer
    cloud flag / base (m), magnetometer H (nT) and dH/dt (nT/min, 1-minute means), file, frame index,
    ``mlat`` (deg) and ``mlt`` (h) of the station's zenith at 110 km (AACGM-v2 at the frame's time) and
    ``novelty`` (percentile 0–100 of the distance to the labelled set, from ``frame_embeddings``; NULL
    where the frame has no embedding or that partition is not materialized)."""
    tame: TameResource = context.resources.tame
    from tame_assets.geometry.stations import station_site
    from tame_assets.products.calibration import calibrator_from_dict
    from tame_assets.products.catalog import build_catalog
    from tame_assets.warehouse.similar import partition_novelty

    partition, settings = Partition.of(context.partition_key), tame.settings
    station = partition.station_config(settings)
    calibration = tame.paths.models_dir / CALIBRATION_FILE
    calibrator = calibrator_from_dict(json.loads(calibration.read_text())) if calibration.exists() else None
    table = build_catalog(
        asim_ceilometer,
        _station_rows(_around(tame, "magnetometer", partition.month), "station", station.magnetometer_station),
        network=station.network,
        camera=station.camera,
        calibrate=calibrator.transform if calibrator else None,
        magnetometer_key_map=station.key_maps["magnetometer"],
        tolerance_s=settings.magnetometer_tolerance_s,
        site=station_site(station),
        embeddings=partition_novelty(tame.warehouse, partition.month, partition.station),
    )
    matched = int(table["h_nt"].is_not_null().sum()) if table.height else 0
    scored = int(table["novelty"].is_not_null().sum()) if table.height else 0
    context.add_output_metadata(
        extra_metadata(with_magnetometer=matched, with_novelty=scored, calibrated=calibrator is not None)
    )
    return table
