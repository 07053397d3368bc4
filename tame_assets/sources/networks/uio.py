"""The UiO all-sky imager network (:mod:`tame_assets.sources.uio_asi`): one calibrated PNG per frame,
``{camera}_{YYYYMMDD}_{HHMMSS}_{wl}_cal.png``, time and filter from the file name."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import polars as pl

from tame_assets.sources import uio_asi
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.http import HttpClient, RefreshPolicy
from tame_assets.sources.images import load_image_array
from tame_assets.sources.networks.base import STATION_FRAMES_SCHEMA, FetchResult, FileName, Frame
from tame_assets.stations import Station


class UioNetwork:
    """UiO: single-frame PNG files from the archive at ``urls["uio_base_url"]``."""

    name = uio_asi.NETWORK
    multi_frame = False

    def owns_file(self, path: str | Path) -> bool:
        return bool(uio_asi.FILENAME_RE.match(Path(path).name))

    def parse_file_name(self, name: str) -> FileName:
        parsed = uio_asi.parse_asi_filename(name)
        return FileName(Path(name).name, self.name, parsed.station, parsed.camera, parsed.time, parsed.wavelength_nm)

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
        """:func:`tame_assets.sources.uio_asi.fetch_month` of the station's camera and filters into
        ``dest_root/asim/``; ``frame_index`` 0, ``wavelength_0.1nm`` = the filter in Å."""
        table, quarantine = uio_asi.fetch_month(
            client,
            urls["uio_base_url"],
            station.camera,
            list(station.wavelengths_nm),
            month,
            Path(dest_root) / "asim",
            progress=progress,
            refresh=refresh,
            max_image_pixels=max_image_pixels,
        )
        frames = table.with_columns(
            pl.lit(self.name).alias("network"),
            (pl.col("wavelength_nm") * 10).round().cast(pl.Int32).alias("wavelength_0.1nm"),
            pl.lit(0, pl.Int32).alias("frame_index"),
        ).select(list(STATION_FRAMES_SCHEMA))
        return FetchResult(frames, quarantine)

    def read_frame(self, path: str, index: int | None, max_pixels: int | None = None) -> Frame:
        if index not in (None, 0):
            raise ImageReadError(path, f"frame {index} not in the file (a UiO image holds one frame)")
        pixels = load_image_array(path, max_pixels=max_pixels)
        try:
            time = uio_asi.parse_asi_filename(path).time
        except ValueError:
            time = None
        return Frame(pixels, time)

    def iter_frames(self, path: str | Path, max_pixels: int | None = None) -> Iterator[Frame]:
        """The file's one frame (ValueError for a name without a time, checked before decoding;
        ImageReadError above the pixel cap ``max_pixels``)."""
        time = uio_asi.parse_asi_filename(str(path)).time
        yield Frame(load_image_array(path, max_pixels=max_pixels), time)


NETWORK = UioNetwork()
