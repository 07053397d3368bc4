"""The one frame reader: a station's month of frames (``asim_images``) and reading one frame, any network.

A frame is identified by (file, frame index): a UiO PNG holds one frame (index 0), a THEMIS CDF an
hour of them, a THEMIS PGM a minute. Per-frame work (features, classification, products, analyses,
``tame find``) addresses a frame with a *frame item* string: the file's path, or ``<path>#<index>``
for a file of a multi-frame network (:attr:`CameraNetwork.multi_frame`; such file names never contain
``#``, so the two cannot be confused). :func:`read_frame` reads either, asking the network registry
(:mod:`tame_assets.sources.networks`) which network's file it is; a path no network claims (an OATH
crop, a user's PNG) is decoded as an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import polars as pl

from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.http import HttpClient, RefreshPolicy
from tame_assets.sources.images import load_image_array, to_greyscale
from tame_assets.sources.networks import (
    FRAME_KEY_COLUMNS,
    QUARANTINE_SCHEMA,
    STATION_FRAMES_SCHEMA,
    FetchResult,
    Frame,
    get_network,
    known_networks,
    network_of_file,
)
from tame_assets.stations import Station

__all__ = [
    "FRAME_KEY_COLUMNS",
    "QUARANTINE_SCHEMA",
    "STATION_FRAMES_SCHEMA",
    "fetch_station_month",
    "file_frames",
    "frame_item",
    "frame_items",
    "grey_frame",
    "load_frame",
    "read_frame",
    "split_frame_item",
]


def frame_item(local_path: str, frame_index: int | None, network: str) -> str:
    """The frame item of a row: ``<path>#<index>`` for a multi-frame network's file, else the path."""
    multi = get_network(network).multi_frame
    return f"{local_path}#{int(frame_index)}" if multi and frame_index is not None else local_path


def frame_items(table: pl.DataFrame) -> list[str]:
    """Frame items of an ``asim_images`` table's rows, in row order (tables without ``network`` are UiO)."""
    if "network" not in table.columns:
        return table["local_path"].to_list()
    return [frame_item(p, i, n) for p, i, n in table.select("local_path", "frame_index", "network").iter_rows()]


def split_frame_item(item: str | Path) -> tuple[str, int | None]:
    """``(path, frame index)`` of a frame item; index None for a plain path."""
    text = str(item)
    path, sep, index = text.rpartition("#")
    if sep and index.isdigit():
        network = network_of_file(path)
        if network is not None and network.multi_frame:
            return path, int(index)
    return text, None


def read_frame(item: str | Path, max_pixels: int | None = None) -> Frame:
    """The frame an item names, at full depth, and its time: ``Frame(pixels, time)``, pixels (H, W)
    uint8/uint16 or (H, W, 3) for colour files, time naive UTC (None when unknown). A multi-frame file
    is read once per process while consecutive frames come from it. ``max_pixels`` caps width × height
    of image files (read from the header). Raises :class:`~tame_assets.sources.errors.ImageReadError`
    naming the file (and frame) when it cannot be read."""
    path, index = split_frame_item(item)
    network = network_of_file(path)
    if network is None:
        return Frame(load_image_array(path, max_pixels=max_pixels), None)
    return network.read_frame(path, index, max_pixels=max_pixels)


def load_frame(item: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """The pixels of :func:`read_frame` (what feature extraction decodes)."""
    return read_frame(item, max_pixels=max_pixels).pixels


def grey_frame(item: str | Path, max_pixels: int | None = None, missing_ok: bool = False) -> np.ndarray | None:
    """The frame an item names as 2-D greyscale at full depth (colour files: see
    :func:`~tame_assets.sources.images.to_greyscale`); ``missing_ok``: None instead of
    :class:`~tame_assets.sources.errors.ImageReadError` for an unreadable frame (``asim_images`` quarantined it)."""
    try:
        return to_greyscale(load_frame(item, max_pixels=max_pixels))
    except ImageReadError:
        if missing_ok:
            return None
        raise


def file_frames(path: str | Path, max_pixels: int | None = None) -> Iterator[tuple]:
    """``(time, greyscale frame)`` of every frame of a whole file (naive UTC; 2-D at full depth), for
    commands that take files rather than warehouse rows. ValueError naming the file when no network
    reads it; the network's ValueError/ImageReadError for an unreadable file or one above the image cap
    ``max_pixels`` (``[archives] max_image_pixels``; a compressed file's decompressed size included)."""
    network = network_of_file(path)
    if network is None:
        raise ValueError(f"{Path(path).name}: not a file of a known camera network ({', '.join(known_networks())})")
    for frame in network.iter_frames(path, max_pixels=max_pixels):
        yield frame.time, to_greyscale(frame.pixels)


def fetch_station_month(
    station: Station,
    month: str,
    urls: dict[str, str],
    dest_root: Path,
    client: HttpClient | None = None,
    progress: Callable[[int, int], None] | None = None,
    refresh: RefreshPolicy | None = None,
    max_image_pixels: int | None = None,
) -> FetchResult:
    """``FetchResult(asim_images rows, quarantine rows)`` of ``station`` in ``month``
    (:data:`STATION_FRAMES_SCHEMA`), from the station's network (:meth:`CameraNetwork.fetch_month`).

    ``urls`` holds the archive base URLs by setting name; downloads go below ``dest_root``. A frame or
    file that cannot be read keeps its row with ``valid = false`` and gets a quarantine row with the reason.
    """
    return get_network(station.network).fetch_month(
        station,
        month,
        urls,
        Path(dest_root),
        client=client or HttpClient(),
        progress=progress,
        refresh=refresh,
        max_image_pixels=max_image_pixels,
    )
