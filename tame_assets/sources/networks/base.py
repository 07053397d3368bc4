"""What every camera network provides (:class:`CameraNetwork`) and the types its entry points return.

The core (frame reader, ``asim_images``, features, products) only talks to this interface; which
network a station or a file belongs to is answered by the registry (:mod:`tame_assets.sources.networks`).
Times are naive UTC (start of exposure); wavelengths in nm (0.0 = unfiltered, white light).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple, Protocol, runtime_checkable

import numpy as np
import polars as pl

from tame_assets.sources.errors import QUARANTINE_SCHEMA  # noqa: F401 (re-exported: a fetch's quarantine rows)

if TYPE_CHECKING:
    from tame_assets.sources.http import HttpClient, RefreshPolicy
    from tame_assets.stations import Station

#: ``asim_images``: one row per frame of a station's month, whatever the network.
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
#: What identifies a frame and says where it comes from: carried by the features, predictions and merges.
FRAME_KEY_COLUMNS = (
    "time",
    "network",
    "station",
    "camera",
    "wavelength_nm",
    "wavelength_0.1nm",
    "file_name",
    "frame_index",
)


class FetchResult(NamedTuple):
    """What every network's :meth:`CameraNetwork.fetch_month` returns: ``frames`` (one row per frame,
    :data:`STATION_FRAMES_SCHEMA`, sorted by time) and ``quarantine`` (:data:`QUARANTINE_SCHEMA`).
    A frame or file that cannot be read keeps its row with ``valid = false`` and has a quarantine row.
    Unpacks as ``frames, quarantine = result``."""

    frames: pl.DataFrame
    quarantine: pl.DataFrame


class FileName(NamedTuple):
    """What a file name says, in every network's terms: ``time`` = start of the period the file covers
    (naive UTC), ``station`` upper-case code, ``camera`` the network's camera id, ``wavelength_nm``
    (0.0 for unfiltered imagers)."""

    name: str
    network: str
    station: str
    camera: str
    time: dt.datetime
    wavelength_nm: float


class Frame(NamedTuple):
    """One frame: ``pixels`` as stored, full depth ((H, W) uint8/uint16, or (H, W, 3) for colour
    files), and its ``time`` (naive UTC start of exposure; None when neither file nor name gives it)."""

    pixels: np.ndarray
    time: dt.datetime | None


@runtime_checkable
class CameraNetwork(Protocol):
    """One camera network: its archive, file names and file format.

    ``name`` is the ``network`` value of stations and tables; ``multi_frame`` says whether a file
    holds several frames (its frames are then addressed as ``<path>#<index>``, index 0 = first).
    """

    name: str
    multi_frame: bool

    def owns_file(self, path: str | Path) -> bool:
        """Whether ``path``'s name is one of this network's file names (no I/O)."""

    def parse_file_name(self, name: str) -> FileName:
        """What the name says; ValueError naming the file for a name of another pattern."""

    def fetch_month(
        self,
        station: "Station",
        month: str,
        urls: dict[str, str],
        dest_root: Path,
        *,
        client: "HttpClient",
        progress: Callable[[int, int], None] | None = None,
        refresh: "RefreshPolicy | None" = None,
        max_image_pixels: int | None = None,
    ) -> FetchResult:
        """Every frame of ``station`` in ``month`` (``YYYY-MM``): listed and downloaded from the archive at
        ``urls[<setting name>]`` under ``dest_root`` (or found in ``station.folder``), checked frame by frame."""

    def read_frame(self, path: str, index: int | None, max_pixels: int | None = None) -> Frame:
        """Frame ``index`` of the file ``path`` (None: the file read as one image); raises
        :class:`~tame_assets.sources.errors.ImageReadError` naming the file (and frame)."""

    def iter_frames(self, path: str | Path, max_pixels: int | None = None) -> Iterator[Frame]:
        """Every frame of the file with a time, in file order; ValueError/ImageReadError for an unreadable
        file (``max_pixels``: the image cap, ``[archives] max_image_pixels``; None = the default)."""
