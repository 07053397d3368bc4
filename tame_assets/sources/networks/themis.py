"""The THEMIS all-sky imager network (:mod:`tame_assets.sources.themis`): level-1 CDF (an hour of
frames) or raw UCalgary PGM (a minute), unfiltered (white light); times from the files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import polars as pl

from tame_assets.sources import themis
from tame_assets.sources.errors import QUARANTINE_SCHEMA, ImageReadError
from tame_assets.sources.http import HttpClient, RefreshPolicy, sha256_of
from tame_assets.sources.images import load_image_array
from tame_assets.sources.networks.base import STATION_FRAMES_SCHEMA, FetchResult, FileName, Frame
from tame_assets.stations import Station

_SUFFIXES = (".cdf", ".pgm", ".pgm.gz")


@lru_cache(maxsize=1)
def _themis_file(path: str, mtime_ns: int, max_pixels: int | None = None) -> themis.ThemisFrames:
    """The file's frames, read once per process while consecutive frame items come from it."""
    return themis.read_themis_file(path, max_pixels=max_pixels)


def _time(value: np.datetime64):
    return None if np.isnat(value) else value.astype("datetime64[us]").item()


class ThemisNetwork:
    """THEMIS: multi-frame CDF/PGM files, from ``station.folder`` or the archive at
    ``urls["themis_cdf_base_url"|"themis_pgm_base_url"]`` (by ``station.image_format``)."""

    name = themis.NETWORK
    multi_frame = True

    def owns_file(self, path: str | Path) -> bool:
        return Path(path).name.lower().endswith(_SUFFIXES)

    def parse_file_name(self, name: str) -> FileName:
        parsed = themis.parse_themis_filename(name)
        return FileName(parsed.name, self.name, parsed.station, parsed.site, parsed.start, 0.0)

    def _files(
        self, station: Station, month: str, urls: dict[str, str], dest_root: Path, client: HttpClient, progress
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(files: local_path, file_name, url, bytes, sha256; quarantine) of the station's month."""
        if station.folder:
            local = themis.find_local_files(station.folder, site=station.camera, month=month)
            local = local.filter(pl.col("format") == station.image_format)
            files = (
                local.select("path", "file_name")
                .rename({"path": "local_path"})
                .with_columns(
                    pl.lit(None, pl.Utf8).alias("url"),
                    pl.Series("bytes", [Path(p).stat().st_size for p in local["path"]], pl.Int64),
                    pl.Series("sha256", [sha256_of(Path(p)) for p in local["path"]], pl.Utf8),
                )
            )
            return files, pl.DataFrame(schema=QUARANTINE_SCHEMA)
        base = urls["themis_cdf_base_url" if station.image_format == "cdf" else "themis_pgm_base_url"]
        files, quarantine = themis.fetch_themis_month(
            client,
            base,
            station.image_format,
            station.camera,
            month,
            Path(dest_root) / "themis" / station.image_format,
            progress=progress,
        )
        return files.select("local_path", "file_name", "url", "bytes", "sha256"), quarantine

    def fetch_month(
        self,
        station: Station,
        month: str,
        urls: dict[str, str],
        dest_root: Path,
        *,
        client: HttpClient,
        progress: Callable[[int, int], None] | None = None,
        refresh: RefreshPolicy | None = None,
        max_image_pixels: int | None = None,
    ) -> FetchResult:
        """The station's CDF or PGM files of the month (local folder, or downloaded under
        ``dest_root/themis/<format>/``); every frame a row (:func:`tame_assets.sources.themis.frames_table`),
        a frame or file that cannot be read a row with ``valid = false`` and a quarantine row.
        A file without frames (a CDF with no records, a 0-byte PGM) is such a file. ``max_image_pixels``
        caps PGM frames and a PGM's decompressed size (:func:`tame_assets.sources.themis.max_pgm_bytes`);
        ``refresh`` does not apply (archive files never change)."""
        files, quarantine = self._files(station, month, urls, dest_root, client, progress)
        frames = themis.frames_table(files["local_path"].to_list(), max_pixels=max_image_pixels)
        frames = frames.join(files, on="local_path", how="left")
        table = frames.select(
            pl.col("time"),
            pl.col("network"),
            pl.lit(station.code).alias("station"),
            pl.col("camera"),
            pl.lit(0.0).alias("wavelength_nm"),
            pl.col("wavelength_0.1nm"),
            pl.col("file_name"),
            pl.col("frame_index"),
            pl.col("url"),
            pl.col("local_path"),
            pl.col("bytes"),
            pl.col("sha256"),
            pl.col("ok").alias("valid"),
        )
        bad = frames.filter(~pl.col("ok")).select(
            "time",
            pl.lit(station.code).alias("station"),  # file: its name
            pl.col("file_name").alias("file"),
            pl.col("error").alias("reason"),
        )
        return FetchResult(
            table.cast(STATION_FRAMES_SCHEMA).sort("time", "file_name", "frame_index", nulls_last=True),
            pl.concat([quarantine, bad.cast(QUARANTINE_SCHEMA)]),
        )

    def read_frame(self, path: str, index: int | None, max_pixels: int | None = None) -> Frame:
        """Frame ``index`` of the file (read once per process while its frames are consumed in order).
        ``index`` None (a row whose file could not be read at all) decodes the path as an image, which
        fails naming the file."""
        if index is None:
            return Frame(load_image_array(path, max_pixels=max_pixels), None)
        try:
            read = _themis_file(path, Path(path).stat().st_mtime_ns, max_pixels)
        except FileNotFoundError:
            raise ImageReadError(path, "file not found") from None
        except themis.ThemisFormatError as exc:
            raise ImageReadError(path, exc.reason) from None
        if index >= len(read):
            raise ImageReadError(path, f"frame {index} not in the file ({len(read)} complete frames)")
        return Frame(read.frames[index], _time(read.times[index]))

    def iter_frames(self, path: str | Path, max_pixels: int | None = None) -> Iterator[Frame]:
        """Every frame with a valid time (a frame whose header time is damaged is left out); ValueError
        when the file has no complete frame and says why (a PGM above the cap of ``max_pixels`` included)."""
        read = themis.read_themis_file(path, max_pixels=max_pixels)
        if read.error and not len(read.times):
            raise ValueError(read.error)
        for time, frame in zip(read.times, read.frames):
            if not np.isnat(time):
                yield Frame(frame, _time(time))


NETWORK = ThemisNetwork()
