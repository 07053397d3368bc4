"""CLI-ready products for files a user already has (no warehouse): ``tame keogram`` and ``tame movie``.

Frames come from a reader ``read_frames(path) -> iterable of (time, frame)`` (naive UTC, 2-D array);
the default :func:`read_any_frames` reads a UiO all-sky PNG (full bit depth, time from the file
name) or every frame of a THEMIS CDF / PGM file (times from the file). Files are processed in the
time order of their names (UiO and THEMIS names; other names last, lexically). A file that cannot be read is skipped and
reported (``skipped``: file and reason); when no file is readable the command fails naming the first.
Outputs are written atomically (temporary file + rename).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from tame_assets.products.keogram import keogram_array, keogram_figure
from tame_assets.products.movie import MovieResult, write_movie
from tame_assets.sources.images import ImageReadError, load_asi_image
from tame_assets.sources.themis import parse_themis_filename, read_themis_file
from tame_assets.sources.uio_asi import parse_asi_filename

FrameReader = Callable[[Path], Iterable[tuple[Any, np.ndarray]]]
KEOGRAM_SUFFIXES = (".parquet", ".png")


def read_uio_png(path: str | Path) -> Iterator[tuple[dt.datetime, np.ndarray]]:
    """One UiO all-sky PNG (e.g. ``nya6_20141020_165407_5577_cal.png``): its file-name time (UTC) and
    the greyscale frame at full depth (uint8/uint16). Raises ValueError/ImageReadError naming the file."""
    yield parse_asi_filename(str(path)).time, load_asi_image(path)


def read_themis_frames(path: str | Path) -> Iterator[tuple[dt.datetime, np.ndarray]]:
    """Every frame of a THEMIS CDF / PGM file with its UTC time (rows as stored in the file)."""
    frames = read_themis_file(path)
    if frames.error and not len(frames.times):
        raise ValueError(frames.error)
    for time, frame in zip(frames.times, frames.frames):
        if not np.isnat(time):
            yield time.astype("datetime64[us]").item(), frame


def read_any_frames(path: str | Path) -> Iterator[tuple[dt.datetime, np.ndarray]]:
    """Frames of a UiO PNG or a THEMIS CDF / PGM(.gz) file, chosen by the file name."""
    name = Path(path).name.lower()
    return read_themis_frames(path) if name.endswith((".cdf", ".pgm", ".pgm.gz")) else read_uio_png(path)


def _file_order(path: Path) -> tuple:
    for parse in (lambda n: parse_asi_filename(n).time, lambda n: parse_themis_filename(n).start):
        try:
            return (0, parse(path.name), path.name)
        except ValueError:
            continue
    return (1, dt.datetime.min, path.name)


@dataclass
class FileFrames:
    """Iterate ``(time, frame)`` over files in time order, skipping unreadable files (kept in ``skipped``)."""

    files: list[Path]
    read_frames: FrameReader
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_frames: int = 0

    def __iter__(self):
        for path in sorted(self.files, key=_file_order):
            try:
                pairs = list(self.read_frames(path))  # one file's frames (a file is a few frames at most)
            except (ImageReadError, ValueError, OSError, EOFError) as exc:
                self.skipped.append((str(path), str(exc)))
                continue
            self.n_frames += len(pairs)
            yield from pairs

    def no_frames_error(self) -> ValueError:
        first = f" (first problem: {self.skipped[0][1]})" if self.skipped else ""
        return ValueError(f"no readable frames in {len(self.files)} file(s){first}")


def _input_files(files: Iterable[str | Path]) -> list[Path]:
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("no input files given")
    for p in paths:
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
    return paths


@dataclass(frozen=True)
class KeogramFilesResult:
    out: Path
    n_frames: int
    coordinate: str  # lat_deg | lon_deg | row | col
    skipped: list[tuple[str, str]]


def keogram_files_command(files: Iterable[str | Path], out: str | Path, skymap: Any = None,
                          altitude_km: float | None = None, read_frames: FrameReader = read_any_frames, *,
                          direction: str = "ns", bin_deg: float = 0.1, station: str = "",
                          min_elevation_deg: float | None = None) -> KeogramFilesResult:
    """Keogram of ``files`` written to ``out``: ``.parquet`` (long table ``time, lat_deg|row, intensity``,
    one time per frame) or ``.png`` (the keogram figure).

    Without ``skymap``: pixel mode (``row``). With a skymap object (see
    :mod:`tame_assets.products.pixels`): latitude bins of ``bin_deg`` at its ``altitude_km``;
    ``altitude_km``, when given, must equal it unless the skymap offers ``at_altitude(km)``.
    """
    out = Path(out)
    if out.suffix.lower() not in KEOGRAM_SUFFIXES:
        raise ValueError(f"{out}: keogram output must end in {' or '.join(KEOGRAM_SUFFIXES)}")
    if altitude_km is not None:
        if skymap is None:
            raise ValueError("an emission altitude needs a skymap (pixel keograms have no altitude)")
        if hasattr(skymap, "at_altitude"):
            skymap = skymap.at_altitude(float(altitude_km))
        elif not np.isclose(float(altitude_km), float(getattr(skymap, "altitude_km", np.nan))):
            raise ValueError(f"skymap is at {getattr(skymap, 'altitude_km', '?')} km, not {altitude_km} km, "
                             "and cannot be recomputed for another altitude")
    stream = FileFrames(_input_files(files), read_frames)
    keo = keogram_array(stream, None, skymap, direction=direction, bin_deg=bin_deg, min_elevation_deg=min_elevation_deg)
    if keo.time.size == 0:
        raise stream.no_frames_error()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.stem}.{uuid.uuid4().hex}{out.suffix}"
    try:
        if out.suffix.lower() == ".parquet":
            keo.to_table().write_parquet(tmp)
        else:
            import matplotlib.pyplot as plt

            fig = keogram_figure(keo, station=station or str(getattr(skymap, "station", "") or "").upper()
                                 or _station_of(stream.files))
            fig.savefig(tmp, format="png", dpi=110)
            plt.close(fig)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return KeogramFilesResult(out, int(keo.time.size), keo.coordinate_name, stream.skipped)


def _station_of(files: list[Path]) -> str:
    stations = set()
    for f in files:
        try:
            stations.add(parse_asi_filename(f.name).station)
        except ValueError:
            return ""
    return ", ".join(sorted(stations))


@dataclass(frozen=True)
class MovieFilesResult:
    movie: MovieResult
    skipped: list[tuple[str, str]]


def movie_files_command(files: Iterable[str | Path], out: str | Path, read_frames: FrameReader = read_any_frames, *,
                        predictions=None, fps: float = 10.0, station: str = "") -> MovieFilesResult:
    """Annotated MP4 of ``files`` in time order (``predictions``: optional ``time, pred, p_aurora`` table)."""
    stream = FileFrames(_input_files(files), read_frames)
    try:
        movie = write_movie(stream, None, out, predictions, fps=fps, station=station or _station_of(stream.files))
    except ValueError as exc:
        if stream.n_frames == 0 and "no frames" in str(exc):
            raise stream.no_frames_error() from None
        raise
    return MovieFilesResult(movie, stream.skipped)
