"""``tame skymap / keogram / movie / find``: products of files you have, and of frames a catalog query selects.

The domain work is in :mod:`tame_assets.geometry` (skymaps), :mod:`tame_assets.products` (keogram arrays
and figures, movies) and :func:`tame_assets.sources.frame_reader.file_frames` (every frame of a file of
any network); these commands order the files, read them, write outputs (atomically) and report.

Files are processed in the time order of their names (UiO and THEMIS names; other names last,
lexically). A file that cannot be read is skipped and reported (``skipped``: file and reason); when no
file is readable the command fails naming the first problem.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings, write_frame
from tame_assets.cli.sql import run_query
from tame_assets.config import UsageError
from tame_assets.files import atomic_path
from tame_assets.products.keogram import keogram_array, keogram_figure
from tame_assets.products.movie import MAX_FPS, MIN_FPS, MovieResult, write_movie
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.frame_reader import file_frames
from tame_assets.sources.themis import parse_themis_filename
from tame_assets.sources.uio_asi import parse_asi_filename

#: ``read_frames(path) -> iterable of (time, frame)`` (naive UTC, 2-D array).
FrameReader = Callable[[Path], Iterable[tuple[Any, np.ndarray]]]
KEOGRAM_SUFFIXES = (".parquet", ".png")
#: ``tame skymap --image-format``: THEMIS pixel rows as stored in CDF or PGM files.
IMAGE_FORMATS = ("cdf", "pgm")


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


def keogram_files_command(
    files: Iterable[str | Path],
    out: str | Path,
    skymap: Any = None,
    altitude_km: float | None = None,
    read_frames: FrameReader = file_frames,
    *,
    direction: str = "ns",
    bin_deg: float = 0.1,
    station: str = "",
    min_elevation_deg: float | None = None,
    magnetic: bool = False,
) -> KeogramFilesResult:
    """Keogram of ``files`` written to ``out``: ``.parquet`` (long table ``time, lat_deg|row, intensity``,
    one time per frame) or ``.png`` (the keogram figure).

    Without ``skymap``: pixel mode (``row``). With a skymap object (see
    :mod:`tame_assets.products.pixels`): latitude bins of ``bin_deg`` at its ``altitude_km``;
    ``altitude_km``, when given, must equal it unless the skymap offers ``at_altitude(km)``.
    ``magnetic``: along the AACGM-v2 magnetic meridian in magnetic-latitude bins (``mlat_deg``; epoch =
    the first frame's time; needs a skymap).
    """
    if magnetic and skymap is None:
        raise ValueError("a magnetic keogram needs a skymap (--skymap)")
    out = Path(out)
    if out.suffix.lower() not in KEOGRAM_SUFFIXES:
        raise ValueError(f"{out}: keogram output must end in {' or '.join(KEOGRAM_SUFFIXES)}")
    if altitude_km is not None:
        if skymap is None:
            raise ValueError("an emission altitude needs a skymap (pixel keograms have no altitude)")
        if hasattr(skymap, "at_altitude"):
            skymap = skymap.at_altitude(float(altitude_km))
        elif not np.isclose(float(altitude_km), float(getattr(skymap, "altitude_km", np.nan))):
            raise ValueError(
                f"skymap is at {getattr(skymap, 'altitude_km', '?')} km, not {altitude_km} km, "
                "and cannot be recomputed for another altitude"
            )
    stream = FileFrames(_input_files(files), read_frames)
    keo = keogram_array(
        stream,
        None,
        skymap,
        direction=direction,
        bin_deg=bin_deg,
        min_elevation_deg=min_elevation_deg,
        magnetic_epoch=True if magnetic else None,
    )
    if keo.time.size == 0:
        raise stream.no_frames_error()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".parquet":
            keo.to_table().write_parquet(tmp)
        else:
            import matplotlib.pyplot as plt

            fig = keogram_figure(
                keo, station=station or str(getattr(skymap, "station", "") or "").upper() or _station_of(stream.files)
            )
            fig.savefig(tmp, format="png", dpi=110)
            plt.close(fig)
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


def movie_files_command(
    files: Iterable[str | Path],
    out: str | Path,
    read_frames: FrameReader = file_frames,
    *,
    predictions=None,
    fps: float = 10.0,
    station: str = "",
) -> MovieFilesResult:
    """Annotated MP4 of ``files`` in time order (``predictions``: optional ``time, pred, p_aurora`` table)."""
    stream = FileFrames(_input_files(files), read_frames)
    try:
        movie = write_movie(stream, None, out, predictions, fps=fps, station=station or _station_of(stream.files))
    except ValueError as exc:
        if stream.n_frames == 0 and "no frames" in str(exc):
            raise stream.no_frames_error() from None
        raise
    return MovieFilesResult(movie, stream.skipped)


def write_skymap(
    file: str, altitude_km: Optional[float], out: Path, min_elevation_deg: float = 10.0, image_format: str = "cdf"
):
    """Build the skymap of ``file`` (:func:`tame_assets.geometry.skymap_for_file`) and write it to ``out``
    (Parquet, one row per pixel, atomically); returns the table. ValueError with one line on bad input."""
    from tame_assets.geometry import skymap_for_file, write_skymap_parquet

    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise ValueError(f"{out}: output file must end in .parquet")
    skymap = skymap_for_file(file, altitude_km, min_elevation_deg, image_format)
    write_skymap_parquet(skymap, out)
    return skymap.to_table()


@app.command()
def skymap(
    file: str = typer.Argument(..., help="A THEMIS skymap .sav file, or a camera with a lens model (nya6, nya4)."),
    out: Path = typer.Option(..., "--out", help="Output Parquet: one row per pixel."),
    altitude: Optional[float] = typer.Option(None, "--altitude", help="Emission altitude, km (default 110)."),
    min_elevation: float = typer.Option(10.0, help="Pixels below this elevation (degrees) get no lat/lon."),
    image_format: str = typer.Option("cdf", help="THEMIS: rows as in the cdf or pgm files (cdf or pgm)."),
    config: ConfigOption = None,
) -> None:
    """Camera geometry per pixel: row, col, azimuth_deg, elevation_deg, lat_deg, lon_deg (row 0 = first stored row)."""
    if image_format not in IMAGE_FORMATS:
        raise UsageError(f"--image-format: {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}")
    settings(config)
    try:
        table = write_skymap(file, altitude, out, min_elevation, image_format)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    typer.echo(f"{table.height:,} pixels ({table['lat_deg'].is_not_null().sum():,} with lat/lon) → {out}")


def _load_skymap(path: Optional[str], altitude: Optional[float], files: list[Path]):
    """The skymap for ``files``; THEMIS PGM rows differ from CDF rows (see tame_assets.geometry)."""
    if path is None:
        return None
    from tame_assets.geometry import skymap_for_file

    pgm = any(f.name.lower().endswith((".pgm", ".pgm.gz")) for f in files)
    try:
        return skymap_for_file(path, altitude, image_format="pgm" if pgm else "cdf")
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--skymap") from None


def _echo_movie(movie) -> None:
    typer.echo(f"{movie.n_frames} frames, {movie.duration_s:.1f} s → {movie.path}")


def _report_skipped(skipped: list[tuple[str, str]]) -> None:
    for name, reason in skipped:
        typer.echo(f"skipped {name}: {reason}", err=True)


@app.command()
def keogram(
    files: list[Path] = typer.Argument(..., help="UiO PNG or THEMIS CDF / PGM files (any order)."),
    out: Path = typer.Option(..., "--out", help="K.parquet (time, lat_deg|row, intensity) or K.png."),
    skymap_file: Optional[str] = typer.Option(
        None, "--skymap", help="Skymap (.sav or camera name): latitude instead of rows."
    ),
    altitude: Optional[float] = typer.Option(None, "--altitude", help="Emission altitude, km (with --skymap)."),
    direction: str = typer.Option("ns", help="ns (north-south) or ew (east-west) slice through the zenith."),
    magnetic: Optional[bool] = typer.Option(
        None, "--magnetic/--geographic", help="Along the AACGM-v2 magnetic meridian, in mlat bins (needs --skymap)."
    ),
    config: ConfigOption = None,
) -> None:
    """Keogram of files you already have (no warehouse): one time per frame."""
    run_settings = settings(config)
    magnetic = run_settings.keogram_magnetic if magnetic is None else magnetic
    sky = _load_skymap(skymap_file, altitude, files)
    read = functools.partial(file_frames, max_pixels=run_settings.max_image_pixels)
    try:
        result = keogram_files_command(
            files, out, sky, altitude if sky is None else None, read_frames=read, direction=direction, magnetic=magnetic
        )
    except ValueError as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None
    _report_skipped(result.skipped)
    typer.echo(f"{result.n_frames} frames ({result.coordinate}) → {result.out}")


@app.command()
def movie(
    files: list[Path] = typer.Argument(..., help="UiO PNG or THEMIS CDF / PGM files (any order)."),
    out: Path = typer.Option(..., "--out", help="Output MP4."),
    fps: float = typer.Option(10.0, help=f"Frames per second ({MIN_FPS:g} to {MAX_FPS:g})."),
    config: ConfigOption = None,
) -> None:
    """MP4 movie of files you already have, each frame annotated with its UTC time."""
    if not MIN_FPS <= fps <= MAX_FPS:
        raise UsageError(f"--fps {fps:g}: a movie has {MIN_FPS:g} to {MAX_FPS:g} frames per second")
    run_settings = settings(config)
    read = functools.partial(file_frames, max_pixels=run_settings.max_image_pixels)
    try:
        result = movie_files_command(files, out, read, fps=fps)
    except ValueError as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None
    _report_skipped(result.skipped)
    _echo_movie(result.movie)


@app.command()
def find(
    query: str = typer.Argument(
        ..., help="SQL over the warehouse whose rows have `file` (e.g. SELECT * FROM aurora_catalog WHERE …)."
    ),
    out: Path = typer.Option(..., "--out", help="The matching frames: .csv or .parquet."),
    movie_out: Optional[Path] = typer.Option(None, "--movie", help="Also an MP4 of the matching frames."),
    keogram_out: Optional[Path] = typer.Option(None, "--keogram", help="Also a keogram of them (.png or .parquet)."),
    data_root: DataRootOption = None,
    config: ConfigOption = None,
) -> None:
    """Export the frames a catalog query selects: their list, and optionally a movie or keogram of them."""
    import polars as pl

    from tame_assets.warehouse.store import Warehouse

    run_settings = settings(config, data_root)
    warehouse = Warehouse(run_settings.paths)
    rows, _ = run_query(warehouse, query)
    if "file" not in rows.columns:
        raise typer.BadParameter(
            "the query must return a `file` column (the frame's file name), e.g. SELECT * FROM aurora_catalog WHERE …"
        )
    rows = with_indexed_paths(warehouse, rows)
    write_frame(rows, out)
    typer.echo(f"{rows.height} frames → {out}")
    if not (movie_out or keogram_out) or rows.height == 0:
        return
    outside = rows.filter(pl.col("local_path").is_null())
    if outside.height:
        raise UsageError(
            f"{outside.height} of the {rows.height} frames are not in the warehouse's image index (asim_images), "
            f"e.g. {outside['file'][0]!r}: movies and keograms are made only of indexed frames"
        )
    paths = rows["local_path"].unique(maintain_order=True).to_list()
    read = functools.partial(file_frames, max_pixels=run_settings.max_image_pixels)
    try:
        if movie_out:
            _echo_movie(movie_files_command(paths, movie_out, read).movie)
        if keogram_out:
            result = keogram_files_command(paths, keogram_out, read_frames=read)
            typer.echo(f"keogram of {result.n_frames} frames → {result.out}")
    except ValueError as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None


def with_indexed_paths(warehouse, rows):
    """``rows`` (a query result with ``file`` and maybe ``frame_index``) with ``local_path`` taken from the
    warehouse's own image index (``asim_images``: where the platform stored or found each frame), never
    from the query: a ``local_path`` column the query returns is replaced. Rows whose frame is not in the
    index get NULL."""
    import polars as pl

    keys = ["file", "frame_index"] if "frame_index" in rows.columns else ["file"]  # a THEMIS file: many frames
    rows = rows.drop("local_path", strict=False)
    import duckdb

    try:
        index = warehouse.read("asim_images")
    except duckdb.Error:  # no image table (yet): nothing is indexed
        index = pl.DataFrame(schema={"file_name": pl.Utf8, "frame_index": pl.Int32, "local_path": pl.Utf8})
    images = (
        index.select(pl.col("file_name").alias("file"), "frame_index", "local_path")
        .unique(keys, keep="first", maintain_order=True)
        .select(*keys, "local_path")
    )
    if "frame_index" in keys:
        images = images.cast({"frame_index": rows.schema["frame_index"]})
    return rows.join(images.cast({"file": rows.schema["file"]}), on=keys, how="left", maintain_order="left")
