"""Frames of any network, one table: a station's month of frames (``asim_images``) and reading one frame.

A frame is identified by (file, frame index): a UiO PNG holds one frame (index 0), a THEMIS CDF an
hour of them, a THEMIS PGM a minute. Per-frame work (features, products) addresses a frame with a
*frame item* string: the file's path, or ``<path>#<index>`` for a multi-frame THEMIS file (THEMIS
file names never contain ``#`` and end in ``.cdf``/``.pgm``/``.pgm.gz``, so the two cannot be
confused); :func:`load_frame` reads either.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from tame_assets.sources import themis, uio_asi
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.http import HttpClient, RefreshPolicy, sha256_of
from tame_assets.sources.images import load_image_array
from tame_assets.stations import Station

#: ``asim_images``: one row per frame of a station's month, for every network.
STATION_FRAMES_SCHEMA = {
    "time": pl.Datetime("us"),
    "network": pl.Utf8,
    "station": pl.Utf8,
    "camera": pl.Utf8,
    "wavelength_nm": pl.Float64,
    "wavelength_0.1nm": pl.Int32,
    "file_name": pl.Utf8,
    "frame_index": pl.Int32,
    "url": pl.Utf8,
    "local_path": pl.Utf8,
    "bytes": pl.Int64,
    "sha256": pl.Utf8,
    "valid": pl.Boolean,
}
QUARANTINE_SCHEMA = uio_asi.QUARANTINE_SCHEMA
#: What identifies a frame and says where it comes from: carried by the features, predictions and merges.
FRAME_KEY_COLUMNS = ("time", "network", "station", "camera", "wavelength_nm", "wavelength_0.1nm", "file_name", "frame_index")
_MULTI_FRAME = re.compile(r"^(?P<path>.+\.(?:cdf|pgm|pgm\.gz))#(?P<index>\d+)$")


def frame_item(local_path: str, frame_index: int | None, network: str) -> str:
    """The frame item of a row: the path for single-frame files, ``<path>#<index>`` for THEMIS files."""
    return f"{local_path}#{int(frame_index)}" if network == themis.NETWORK and frame_index is not None else local_path


def frame_items(table: pl.DataFrame) -> list[str]:
    """Frame items of an ``asim_images`` table's rows, in row order (tables without ``network`` are UiO)."""
    if "network" not in table.columns:
        return table["local_path"].to_list()
    return [frame_item(p, i, n) for p, i, n in table.select("local_path", "frame_index", "network").iter_rows()]


@lru_cache(maxsize=1)
def _themis_file(path: str, mtime_ns: int) -> themis.ThemisFrames:
    return themis.read_themis_file(path)


def load_frame(item: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """The frame an item names, at full depth: (H, W) uint8/uint16, or (H, W, 3) for colour files.
    THEMIS files are read once per process while consecutive frames come from them. Raises
    :class:`ImageReadError` naming the file (and frame) when it cannot be read."""
    match = _MULTI_FRAME.match(str(item))
    if not match:
        return load_image_array(item, max_pixels=max_pixels)
    path, index = match["path"], int(match["index"])
    try:
        read = _themis_file(path, Path(path).stat().st_mtime_ns)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except themis.ThemisFormatError as exc:
        raise ImageReadError(path, exc.reason) from None
    if index >= len(read):
        raise ImageReadError(path, f"frame {index} not in the file ({len(read)} complete frames)")
    return read.frames[index]


def _with_uio_columns(table: pl.DataFrame) -> pl.DataFrame:
    return table.with_columns(
        pl.lit(uio_asi.NETWORK).alias("network"),
        (pl.col("wavelength_nm") * 10).round().cast(pl.Int32).alias("wavelength_0.1nm"),
        pl.lit(0, pl.Int32).alias("frame_index"),
    ).select(list(STATION_FRAMES_SCHEMA))


def _themis_files(station: Station, month: str, urls: dict[str, str], dest_root: Path, client: HttpClient,
                  progress) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(files: local_path, file_name, url, bytes, sha256; quarantine) of a THEMIS station's month."""
    if station.folder:
        local = themis.find_local_files(station.folder, site=station.camera, month=month)
        local = local.filter(pl.col("format") == station.image_format)
        files = local.select("path", "file_name").rename({"path": "local_path"}).with_columns(
            pl.lit(None, pl.Utf8).alias("url"),
            pl.Series("bytes", [Path(p).stat().st_size for p in local["path"]], pl.Int64),
            pl.Series("sha256", [sha256_of(Path(p)) for p in local["path"]], pl.Utf8))
        return files, pl.DataFrame(schema=QUARANTINE_SCHEMA)
    base = urls["themis_cdf_base_url" if station.image_format == "cdf" else "themis_pgm_base_url"]
    files, quarantine = themis.fetch_themis_month(client, base, station.image_format, station.camera, month,
                                                  Path(dest_root) / "themis" / station.image_format, progress=progress)
    return files.select("local_path", "file_name", "url", "bytes", "sha256"), quarantine


def fetch_station_month(station: Station, month: str, urls: dict[str, str], dest_root: Path,
                        client: HttpClient | None = None, progress: Callable[[int, int], None] | None = None,
                        refresh: RefreshPolicy | None = None,
                        max_image_pixels: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(asim_images rows, quarantine rows)`` of ``station`` in ``month`` (:data:`STATION_FRAMES_SCHEMA`).

    UiO: :func:`tame_assets.sources.uio_asi.fetch_month` (one frame per PNG). THEMIS: the CDF or PGM
    files of the month from the station's ``folder``, or downloaded from the archive at
    ``urls["themis_cdf_base_url"|"themis_pgm_base_url"]`` under ``dest_root/themis/<format>/``; every
    frame becomes a row. A frame or file that cannot be read keeps its row with ``valid = false`` and
    gets a quarantine row with the reason. ``urls`` holds the archive base URLs by setting name.
    """
    client = client or HttpClient()
    if station.network == uio_asi.NETWORK:
        table, quarantine = uio_asi.fetch_month(
            client, urls["uio_base_url"], station.camera, list(station.wavelengths_nm), month,
            Path(dest_root) / "asim", progress=progress, refresh=refresh, max_image_pixels=max_image_pixels)
        return _with_uio_columns(table), quarantine
    files, quarantine = _themis_files(station, month, urls, dest_root, client, progress)
    frames = themis.frames_table(files["local_path"].to_list())
    table = frames.join(files.rename({"local_path": "file"}), on="file", how="left").select(
        pl.col("time"), pl.col("network"), pl.lit(station.code).alias("station"), pl.col("camera"),
        pl.lit(0.0).alias("wavelength_nm"), pl.col("wavelength_0.1nm"), pl.col("file_name"), pl.col("frame_index"),
        pl.col("url"), pl.col("file").alias("local_path"), pl.col("bytes"), pl.col("sha256"), pl.col("ok").alias("valid"),
    )
    bad = frames.filter(~pl.col("ok")).select("time", pl.lit(station.code).alias("station"),
                                               pl.col("file"), pl.col("error").alias("reason"))
    return (table.cast(STATION_FRAMES_SCHEMA).sort("time", "file_name", "frame_index", nulls_last=True),
            pl.concat([quarantine, bad.cast(QUARANTINE_SCHEMA)]))
