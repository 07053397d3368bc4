"""The image catalog: one row per frame with its class, calibrated p_aurora, the nearest ceilometer
record and the magnetometer H and dH/dt — what ``aurora_catalog`` holds and science queries filter.

Inputs are warehouse tables (polars): ``asim_ceilometer`` (predictions + nearest cloud base), the
magnetometer rows around the month and the month's ``frame_embeddings`` (novelty). Times naive UTC,
cloud base in metres, H in nT, dH/dt in nT/min; ``mlat`` (AACGM-v2 latitude, deg) and ``mlt``
(magnetic local time, h) of the station's zenith at 110 km; ``novelty`` (percentile, 0–100) of the
frame's distance to the labelled set (:mod:`tame_assets.ml.embeddings`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import polars as pl

from tame_assets.warehouse.merge import merge_frames
from tame_assets.warehouse.similar import novelty_percent

CATALOG_COLUMNS = (
    "network",
    "station",
    "camera",
    "time",
    "pred",
    "p_aurora",
    "p_aurora_calibrated",
    "cloud_detected",
    "cbh_m",
    "ceilometer_dt_s",
    "h_nt",
    "dh_dt_nt_per_min",
    "magnetometer_dt_s",
    "file",
    "frame_index",
)


def minute_dh_dt(magnetometer: pl.DataFrame) -> pl.DataFrame:
    """``time, h_nt, dh_dt_nt_per_min`` of one station's magnetometer rows: 1-minute means of H (nT,
    minute start times, naive UTC) and the difference to the previous minute (nT/min; null when that
    minute has no data)."""
    minutes = (
        magnetometer.drop_nulls("h_nt").sort("time").group_by_dynamic("time", every="1m").agg(pl.col("h_nt").mean())
    )
    prev_ok = (pl.col("time") - pl.col("time").shift(1)) == pl.duration(minutes=1)
    return minutes.with_columns(
        pl.when(prev_ok).then(pl.col("h_nt") - pl.col("h_nt").shift(1)).otherwise(None).alias("dh_dt_nt_per_min")
    )


def magnetometer_dh_dt(magnetometer: pl.DataFrame) -> pl.DataFrame:
    """``station, time, h_nt, dh_dt_nt_per_min`` per station from 1-minute means (see :func:`minute_dh_dt`)."""
    frames = [
        minute_dh_dt(group).with_columns(pl.lit(station).alias("station"))
        for (station,), group in magnetometer.group_by("station", maintain_order=True)
    ]
    schema = {"time": pl.Datetime("us"), "h_nt": pl.Float64, "dh_dt_nt_per_min": pl.Float64, "station": pl.Utf8}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(list(schema)).cast(schema)


def build_catalog(
    ceilometer_merged: pl.DataFrame,
    magnetometer: pl.DataFrame,
    *,
    network: str,
    camera: str,
    calibrate=None,
    magnetometer_key_map: Mapping[str, str] | None = None,
    tolerance_s: float = 60.0,
    site: tuple[float, float, float] | None = None,
    altitude_km: float = 110.0,
    embeddings: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per frame of ``ceilometer_merged`` (``asim_ceilometer``: predictions, ``cbh_m``,
    ``cloud_detected``, ``dt_s``), in its order, with the nearest 1-minute H and dH/dt within
    ``tolerance_s`` and ``p_aurora_calibrated = calibrate(p_aurora)`` (NULL without a calibrator),
    ``mlat``/``mlt`` of the zenith of ``site`` at ``altitude_km`` (:func:`with_zenith_magnetic`) and
    ``novelty`` from ``embeddings`` (:func:`with_novelty`; NULL without).

    The magnetometer is merged here again rather than taken from ``asim_magnetometer`` because that
    table holds the nearest raw sample of X/Y/Z/H and no dH/dt, which needs the neighbouring minute
    (:func:`minute_dh_dt`); merging the 1-minute series gives H and dH/dt of the same minute (and
    keeps the catalog free of the feature vectors ``asim_magnetometer`` carries)."""
    left = ceilometer_merged.rename({"dt_s": "ceilometer_dt_s"})
    minutes = magnetometer_dh_dt(magnetometer)
    merged = merge_frames(
        left,
        minutes,
        tolerance_s=tolerance_s,
        right_columns=["h_nt", "dh_dt_nt_per_min"],
        key_map=dict(magnetometer_key_map or {}),
    )
    merged = merged.rename({"dt_s": "magnetometer_dt_s"})
    p = merged["p_aurora"].to_numpy().astype(float)
    calibrated = np.full(len(p), np.nan)
    if calibrate is not None and np.isfinite(p).any():
        calibrated[np.isfinite(p)] = calibrate(p[np.isfinite(p)])
    probabilities = [c for c in merged.columns if c.startswith("p_") and c != "p_aurora"]
    frame_index = merged["frame_index"] if "frame_index" in merged.columns else pl.lit(0, pl.Int32)
    out = merged.with_columns(
        pl.lit(network).alias("network"),
        pl.lit(camera).alias("camera"),
        pl.Series("p_aurora_calibrated", calibrated).fill_nan(None),
        pl.col("file_name").alias("file"),
        frame_index.cast(pl.Int32).alias("frame_index"),
    )
    out = out.select(*CATALOG_COLUMNS[:6], *probabilities, *CATALOG_COLUMNS[6:])
    return with_novelty(with_zenith_magnetic(out, site, altitude_km), embeddings)


def with_novelty(catalog: pl.DataFrame, embeddings: pl.DataFrame | None) -> pl.DataFrame:
    """``catalog`` plus ``novelty``: the frame's novelty percentile (0–100: 50 a typical frame, 100
    stranger than every labelled frame) from ``embeddings`` (rows of ``frame_embeddings``: ``file_name``,
    ``frame_index``, ``novelty`` as a fraction 0–1), matched by file and frame index; NULL where the
    frame has no embedding or ``embeddings`` is None."""
    if embeddings is None or not embeddings.height or "novelty" not in embeddings.columns:
        return catalog.with_columns(pl.lit(None, pl.Float64).alias("novelty"))
    scores = embeddings.select(
        pl.col("file_name").alias("file"),
        pl.col("frame_index").cast(pl.Int32),
        novelty_percent().alias("novelty"),
    ).unique(["file", "frame_index"], keep="first")
    return catalog.drop("novelty", strict=False).join(
        scores, on=["file", "frame_index"], how="left", maintain_order="left", nulls_equal=True
    )


def with_zenith_magnetic(catalog: pl.DataFrame, site, altitude_km: float = 110.0) -> pl.DataFrame:
    """``catalog`` plus ``mlat`` (AACGM-v2 latitude, deg) and ``mlt`` (magnetic local time, h) of the
    station's zenith at ``altitude_km`` at each row's ``time`` (epoch of the data; NULL without a
    ``site`` = (lat_deg, lon_deg, alt_m) or time), :func:`tame_assets.geometry.magnetic.zenith_mlt`."""
    n = catalog.height
    mlat, mlt = np.full(n, np.nan), np.full(n, np.nan)
    if site is not None and n:
        from tame_assets.geometry.magnetic import zenith_mlt

        times = catalog["time"].cast(pl.Datetime("us")).to_numpy()
        mlat, mlt = zenith_mlt(site[0], site[1], altitude_km, times)
    return catalog.with_columns(
        pl.Series("mlat", mlat, dtype=pl.Float64).fill_nan(None), pl.Series("mlt", mlt, dtype=pl.Float64).fill_nan(None)
    )
