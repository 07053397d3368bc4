"""Keograms: the north–south (or east–west) slice through the zenith of every frame, stacked in time.

Streaming: frames are read once from an iterator and only their slices are kept (float32), so a
month of frames (~260,000 at 10 s) never sits in memory.

Two modes:

- **pixel** (no skymap): the image column through the zenith pixel (``direction="ns"``, coordinate
  ``row``) or the image row through it (``"ew"``, coordinate ``col``). The zenith pixel defaults to
  the image centre ``(H // 2, W // 2)``.
- **geographic** (with a skymap, see :mod:`tame_assets.products.pixels`): the pixel path through the
  zenith along the meridian — in every image row (or column, whichever the meridian crosses more of)
  the field-of-view pixel whose look direction has the smallest east component
  ``|cos(el) sin(az)|`` (``"ew"``: north component ``|cos(el) cos(az)|``) — binned into latitude
  (longitude) bins of ``bin_deg`` at the skymap's emission altitude; a bin's intensity is the mean of
  the path pixels whose skymap latitude (longitude) falls in ``[lower, upper)``. Empty bins are dropped.

Output: a long polars table ``time, lat_deg|lon_deg|row|col, intensity`` (one time per frame) or the
:class:`Keogram` arrays; :func:`grid_keogram` puts it on a regular time grid with NaN for missing frames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl

from tame_assets.products.frame_stream import regular_time_grid, timed_frames, to_datetime64_array
from tame_assets.products.pixels import PixelLocator, skymap_arrays

COORDINATE_COLUMNS = ("lat_deg", "lon_deg", "row", "col", "mlat_deg")
DIRECTIONS = ("ns", "ew")
_BLOCK_ROWS = 8192


@dataclass(frozen=True)
class KeogramPath:
    """The pixels of one keogram column and the coordinate bin each one averages into."""

    rows: np.ndarray  # pixel row of each path pixel
    cols: np.ndarray  # pixel column of each path pixel
    bin_of_pixel: np.ndarray  # index into ``coordinate`` for each path pixel
    coordinate: np.ndarray  # bin centre (degrees) or pixel row/column
    coordinate_name: str  # one of COORDINATE_COLUMNS
    shape: tuple[int, int]  # frame shape the path applies to
    bin_edges: np.ndarray | None = None  # (n_bins + 1) degrees, geographic mode only

    def __post_init__(self):
        counts = np.bincount(self.bin_of_pixel, minlength=self.coordinate.size)
        if (counts == 0).any():
            raise ValueError("every keogram bin needs at least one path pixel")
        order = np.argsort(self.bin_of_pixel, kind="stable")  # path pixels grouped by bin
        object.__setattr__(self, "_counts", counts.astype(np.float64))
        object.__setattr__(self, "_starts", np.r_[0, np.cumsum(counts)[:-1]])
        object.__setattr__(self, "_flat", (self.rows * self.shape[1] + self.cols)[order])
        object.__setattr__(self, "_rows_cols", (self.rows[order], self.cols[order]))
        object.__setattr__(self, "_one_per_bin", bool((counts == 1).all()))

    def sample(self, frame: np.ndarray) -> np.ndarray:
        """The keogram column of one frame: the mean path intensity per bin (float32)."""
        if frame.shape != self.shape:
            raise ValueError(f"frame shape {frame.shape} differs from the keogram path's {self.shape}")
        values = frame.reshape(-1)[self._flat] if frame.flags.c_contiguous else frame[self._rows_cols]
        if self._one_per_bin:
            return values.astype(np.float32)
        return (np.add.reduceat(values.astype(np.float64), self._starts) / self._counts).astype(np.float32)


def pixel_path(
    shape: tuple[int, int], direction: str = "ns", zenith_pixel: tuple[int, int] | None = None
) -> KeogramPath:
    """Image column (``"ns"``, coordinate ``row``) or row (``"ew"``, coordinate ``col``) through the zenith pixel."""
    _check_direction(direction)
    h, w = shape
    zr, zc = (h // 2, w // 2) if zenith_pixel is None else (int(zenith_pixel[0]), int(zenith_pixel[1]))
    if not (0 <= zr < h and 0 <= zc < w):
        raise ValueError(f"zenith pixel {(zr, zc)} outside a {h}×{w} frame")
    if direction == "ns":
        rows, cols, name = np.arange(h), np.full(h, zc), "row"
    else:
        rows, cols, name = np.full(w, zr), np.arange(w), "col"
    along = rows if direction == "ns" else cols
    return KeogramPath(rows, cols, np.arange(along.size), along.copy(), name, (h, w))


def meridian_path(
    skymap: Any, direction: str = "ns", bin_deg: float = 0.1, min_elevation_deg: float | None = None
) -> KeogramPath:
    """Pixel path through the zenith along the N–S (E–W) azimuth, binned in latitude (longitude) degrees."""
    _check_direction(direction)
    if not bin_deg > 0:
        raise ValueError(f"bin_deg must be positive degrees, got {bin_deg}")
    sky = skymap_arrays(skymap)
    valid = sky.valid if min_elevation_deg is None else sky.valid & (sky.elevation_deg >= min_elevation_deg)
    if not valid.any():
        raise ValueError(f"skymap has no pixel above {min_elevation_deg}° elevation")
    cos_el = np.cos(np.radians(sky.elevation_deg))
    north = cos_el * np.cos(np.radians(sky.azimuth_deg))
    east = cos_el * np.sin(np.radians(sky.azimuth_deg))
    along, cross = (north, np.abs(east)) if direction == "ns" else (east, np.abs(north))
    along = np.where(valid, along, np.nan)
    cross = np.where(valid, cross, np.inf)
    # The two ends of the path: the pixels looking furthest along ± the direction (at the field-of-view edge).
    end_a = np.unravel_index(int(np.nanargmax(along)), along.shape)
    end_b = np.unravel_index(int(np.nanargmin(along)), along.shape)
    by_rows = abs(end_a[0] - end_b[0]) >= abs(end_a[1] - end_b[1])
    axis_index = 0 if by_rows else 1
    lo, hi = sorted((end_a[axis_index], end_b[axis_index]))
    lines = np.arange(lo, hi + 1)
    best = np.argmin(cross[lo : hi + 1, :] if by_rows else cross[:, lo : hi + 1].T, axis=1)
    rows, cols = (lines, best) if by_rows else (best, lines)
    ok = np.isfinite(cross[rows, cols])
    rows, cols = rows[ok], cols[ok]
    zr, zc = sky.zenith_pixel
    if not ((rows == zr) & (cols == zc)).any() and valid[zr, zc]:
        rows, cols = np.append(rows, zr), np.append(cols, zc)
    values = (sky.lat_deg if direction == "ns" else _continuous_lon(sky.lon_deg, valid))[rows, cols]
    first = np.floor(values.min() / bin_deg) * bin_deg
    bin_index = np.floor((values - first) / bin_deg + 1e-9).astype(np.int64)
    used, bin_of_pixel = np.unique(bin_index, return_inverse=True)
    centres = np.round(first + (used + 0.5) * bin_deg, 9)
    edges = np.round(first + np.arange(bin_index.max() + 2) * bin_deg, 9)
    return KeogramPath(
        rows.astype(np.int64),
        cols.astype(np.int64),
        bin_of_pixel.ravel(),
        centres,
        "lat_deg" if direction == "ns" else "lon_deg",
        sky.shape,
        edges,
    )


def magnetic_meridian_path(
    skymap: Any, when, bin_deg: float = 0.1, min_elevation_deg: float | None = None
) -> KeogramPath:
    """Pixel path through the zenith along the AACGM-v2 magnetic meridian at the epoch ``when``, binned
    in magnetic latitude (coordinate ``mlat_deg``, bins of ``bin_deg`` at the skymap's emission
    altitude): :func:`meridian_path` on the skymap with its azimuths turned so that 0° is magnetic
    north at the zenith (the direction mlat grows fastest) and its latitudes replaced by AACGM ones."""
    import dataclasses

    from tame_assets.geometry.magnetic import magnetic_azimuth_deg, skymap_aacgm

    sky = skymap_arrays(skymap)
    mlat, mlon = skymap_aacgm(sky, when)
    north = magnetic_azimuth_deg(sky, mlat, mlon)
    turned = dataclasses.replace(
        sky, azimuth_deg=(sky.azimuth_deg - north) % 360.0, lat_deg=np.where(sky.valid, mlat, np.nan), lon_deg=mlon
    )
    path = meridian_path(turned, "ns", bin_deg, min_elevation_deg)
    return dataclasses.replace(path, coordinate_name="mlat_deg")


def _continuous_lon(lon_deg: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Longitudes wrapped to within ±180° of the field of view's median, so bins do not split at ±180/360."""
    centre = float(np.median(lon_deg[valid]))
    return (lon_deg - centre + 180.0) % 360.0 - 180.0 + centre


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


@dataclass(frozen=True)
class Keogram:
    """Keogram arrays: one column per frame, times sorted ascending (naive UTC)."""

    time: np.ndarray  # (n_time,) datetime64[us]
    coordinate: np.ndarray  # (n_coord,) bin centres (degrees) or pixel index
    coordinate_name: str  # lat_deg | lon_deg | row | col | mlat_deg
    intensity: np.ndarray  # (n_time, n_coord) float32, frame units (counts) or as given
    bin_edges: np.ndarray | None = None

    def to_table(self) -> pl.DataFrame:
        """Long format ``time, <coordinate_name>, intensity`` (one block of rows per frame)."""
        n_t, n_c = self.intensity.shape
        coord_dtype = pl.Float64 if self.coordinate_name in ("lat_deg", "lon_deg", "mlat_deg") else pl.Int32
        return pl.DataFrame(
            {
                "time": pl.Series("time", np.repeat(self.time, n_c)).cast(pl.Datetime("us")),
                self.coordinate_name: pl.Series(np.tile(self.coordinate, n_t)).cast(coord_dtype),
                "intensity": pl.Series(self.intensity.reshape(-1), dtype=pl.Float32),
            }
        )


def keogram_from_table(table: pl.DataFrame) -> Keogram:
    """Back from the long table to arrays (a (time, coordinate) absent from the table is NaN)."""
    names = [c for c in COORDINATE_COLUMNS if c in table.columns]
    if len(names) != 1 or "time" not in table.columns or "intensity" not in table.columns:
        raise ValueError(f"keogram table needs time, intensity and one of {COORDINATE_COLUMNS}; has {table.columns}")
    name = names[0]
    times = to_datetime64_array(table["time"])
    coords = table[name].to_numpy()
    t_u, t_i = np.unique(times, return_inverse=True)
    c_u, c_i = np.unique(coords, return_inverse=True)
    grid = np.full((t_u.size, c_u.size), np.nan, dtype=np.float32)
    grid[t_i.ravel(), c_i.ravel()] = table["intensity"].cast(pl.Float32).fill_null(np.nan).to_numpy()
    return Keogram(t_u, c_u, name, grid)


def keogram_array(
    frames: Iterable,
    times: Iterable | None = None,
    skymap: Any = None,
    *,
    direction: str = "ns",
    bin_deg: float = 0.1,
    zenith_pixel: tuple[int, int] | None = None,
    min_elevation_deg: float | None = None,
    path: KeogramPath | None = None,
    magnetic_epoch=None,
) -> Keogram:
    """Stream ``frames`` (with ``times``, or ``(time, frame)`` pairs) into a :class:`Keogram`.

    Without ``skymap``: pixel mode (coordinate ``row``/``col``). With one: geographic mode along the
    meridian, ``bin_deg`` latitude/longitude bins at ``skymap.altitude_km`` (pixels below
    ``min_elevation_deg`` excluded); with ``magnetic_epoch`` as well (a time, or True: the first
    frame's): along the AACGM-v2 magnetic meridian in magnetic-latitude bins
    (:func:`magnetic_meridian_path`, coordinate ``mlat_deg``). ``path`` overrides all. Each frame is
    read once; only its slice is kept, in a float32 buffer grown in place (sized exactly when
    ``times`` has a length).
    """
    capacity = len(times) if times is not None and hasattr(times, "__len__") else _BLOCK_ROWS
    intensity = None
    time_us = np.empty(capacity, dtype=np.int64)
    filled = 0
    for index, (time, frame) in enumerate(timed_frames(frames, times)):
        if path is None and skymap is not None and magnetic_epoch is not None and magnetic_epoch is not False:
            epoch = time.astype("datetime64[us]") if magnetic_epoch is True else magnetic_epoch
            path = magnetic_meridian_path(skymap, epoch, bin_deg, min_elevation_deg)
        if path is None:
            path = (
                meridian_path(skymap, direction, bin_deg, min_elevation_deg)
                if skymap is not None
                else pixel_path(frame.shape, direction, zenith_pixel)
            )
        if intensity is None:
            intensity = np.empty((capacity, path.coordinate.size), dtype=np.float32)
        if filled == capacity:  # grow in place (realloc): no second copy of the slices at any time
            capacity += max(_BLOCK_ROWS, capacity // 4)
            intensity.resize((capacity, path.coordinate.size), refcheck=False)
            time_us.resize(capacity, refcheck=False)
        try:
            intensity[filled] = path.sample(frame)
        except ValueError as exc:
            raise ValueError(f"frame {index} ({time}): {exc}") from None
        time_us[filled] = time.astype("int64")
        filled += 1
    if path is None:
        name = "row" if direction == "ns" else "col"
        if skymap is not None:
            name = "lat_deg" if direction == "ns" else "lon_deg"
            name = "mlat_deg" if magnetic_epoch is not None and magnetic_epoch is not False else name
        return Keogram(np.array([], dtype="datetime64[us]"), np.array([]), name, np.empty((0, 0), np.float32))
    intensity.resize((filled, path.coordinate.size), refcheck=False)
    time_us.resize(filled, refcheck=False)
    time_arr = time_us.view("datetime64[us]")
    if filled > 1 and (np.diff(time_us) < 0).any():
        order = np.argsort(time_arr, kind="stable")
        time_arr, intensity = time_arr[order], intensity[order]
    return Keogram(time_arr, path.coordinate, path.coordinate_name, intensity, path.bin_edges)


def keogram(frames: Iterable, times: Iterable | None = None, skymap: Any = None, **options) -> pl.DataFrame:
    """Long keogram table ``time, lat_deg|lon_deg|row|col, intensity``; options as :func:`keogram_array`."""
    return keogram_array(frames, times, skymap, **options).to_table()


@dataclass(frozen=True)
class GriddedKeogram:
    """A keogram on a regular time grid: rows of NaN where no frame was recorded."""

    time: np.ndarray  # (n_slots,) datetime64[us], start + k · cadence
    coordinate: np.ndarray
    coordinate_name: str
    intensity: np.ndarray  # (n_slots, n_coord) float32, NaN for missing frames
    cadence_s: float
    bin_edges: np.ndarray | None = None

    def time_edges(self) -> np.ndarray:
        """(n_slots + 1) slot boundaries, each slot centred on its grid time."""
        half = np.timedelta64(int(round(self.cadence_s * 5e5)), "us")
        step = np.timedelta64(int(round(self.cadence_s * 1e6)), "us")
        return np.append(self.time - half, self.time[-1] + step - half) if self.time.size else self.time

    def coordinate_edges(self) -> np.ndarray:
        """Bin boundaries: bins of the geographic bin width (from ``bin_edges``, else the smallest spacing
        of the centres), or ±0.5 pixel."""
        centres = self.coordinate.astype(float)
        if self.coordinate_name in ("row", "col"):
            return _edges_of_centres(centres, 1.0)
        if self.bin_edges is not None:
            return _edges_of_centres(centres, float(np.diff(self.bin_edges[:2])[0]))
        steps = np.diff(centres)
        return _edges_of_centres(centres, float(steps[steps > 0].min()) if (steps > 0).any() else 1.0)


def _edges_of_centres(centres: np.ndarray, width: float) -> np.ndarray:
    """Edges for pcolormesh: cell i spans [centre_i − width/2, centre_i+1 − width/2), so the large pixels
    near the horizon, whose neighbours skip latitude bins, fill the bins between them."""
    c = np.asarray(centres, dtype=float)
    if c.size == 0:
        return c
    return np.append(c - width / 2, c[-1] + width / 2)


def grid_keogram(keo: Keogram | pl.DataFrame, cadence_s: float | None = None) -> GriddedKeogram:
    """Regular time grid (cadence = median frame spacing unless given); missing frames are NaN rows.

    A spacing above 1.5 cadences stays a gap (see :func:`tame_assets.products.frame_stream.regular_time_grid`);
    two frames in one slot: the earlier one is kept.
    """
    if isinstance(keo, pl.DataFrame):
        keo = keogram_from_table(keo)
    grid, slot, cadence = regular_time_grid(keo.time, cadence_s)
    intensity = np.full((grid.size, keo.coordinate.size), np.nan, dtype=np.float32)
    kept = slot >= 0
    intensity[slot[kept]] = keo.intensity[kept]
    return GriddedKeogram(grid, keo.coordinate, keo.coordinate_name, intensity, cadence, keo.bin_edges)


def custom_path_keogram(
    frames: Iterable,
    times: Iterable | None,
    skymap: Any,
    path_lat: Sequence[float],
    path_lon: Sequence[float],
    path_time: Sequence | None = None,
) -> pl.DataFrame:
    """Intensity at the nearest skymap pixel to each lat/lon point (e.g. a satellite footprint).

    Without ``path_time``: every frame is sampled at every point → ``time, point, lat_deg, lon_deg,
    row, col, intensity``. With ``path_time`` (naive UTC, one per point, ascending): the footprint is
    interpolated linearly to each frame's time and sampled once per frame; frames outside the path's
    time span are skipped. Points outside the field of view (farther from the nearest pixel than that
    pixel's spacing) have ``row = col = -1`` and NaN intensity. Distances are on the emission shell
    at ``skymap.altitude_km``.
    """
    lat = np.asarray(path_lat, dtype=float).ravel()
    lon = np.asarray(path_lon, dtype=float).ravel()
    if lat.size != lon.size or lat.size == 0:
        raise ValueError(f"path_lat and path_lon must be equal non-empty lengths, got {lat.size} and {lon.size}")
    locator = PixelLocator(skymap)
    shape = locator.skymap.shape
    columns: dict[str, list] = {k: [] for k in ("time", "point", "lat_deg", "lon_deg", "row", "col", "intensity")}
    if path_time is not None:
        pt = to_datetime64_array(path_time, "path_time").astype("int64")
        if pt.size != lat.size:
            raise ValueError(f"path_time has {pt.size} times for {lat.size} points")
        if (np.diff(pt) < 0).any():
            raise ValueError("path_time must be ascending")
        lon_unwrapped = np.degrees(np.unwrap(np.radians(lon)))
    else:
        flat_all, _ = locator.nearest(lat, lon)
    for index, (time, frame) in enumerate(timed_frames(frames, times)):
        if frame.shape != shape:
            raise ValueError(f"frame {index} ({time}): shape {frame.shape} differs from the skymap's {shape}")
        if path_time is None:
            p_lat, p_lon, flat, points = lat, lon, flat_all, np.arange(lat.size)
        else:
            t = time.astype("int64")
            if t < pt[0] or t > pt[-1]:
                continue
            p_lat = np.array([np.interp(t, pt, lat)])
            p_lon = np.array([(np.interp(t, pt, lon_unwrapped) + 180.0) % 360.0 - 180.0])
            flat, _ = locator.nearest(p_lat, p_lon)
            points = np.array([int(np.argmin(np.abs(pt - t)))])  # path sample nearest in time
        inside = flat >= 0
        r, c = np.divmod(np.where(inside, flat, 0), shape[1])
        values = np.where(inside, frame.reshape(-1)[np.where(inside, flat, 0)].astype(np.float64), np.nan)
        columns["time"].append(np.full(flat.size, time))
        for key, arr in (
            ("point", points),
            ("lat_deg", p_lat),
            ("lon_deg", p_lon),
            ("row", np.where(inside, r, -1)),
            ("col", np.where(inside, c, -1)),
            ("intensity", values),
        ):
            columns[key].append(arr)
    schema = {
        "time": pl.Datetime("us"),
        "point": pl.Int32,
        "lat_deg": pl.Float64,
        "lon_deg": pl.Float64,
        "row": pl.Int32,
        "col": pl.Int32,
        "intensity": pl.Float64,
    }
    if not columns["time"]:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame({k: np.concatenate(v) for k, v in columns.items()}).cast(schema)


def _title_dates(times: np.ndarray) -> str:
    if times.size == 0:
        return "no frames"
    first, last = (t.astype("datetime64[D]").astype(dt.date) for t in (times.min(), times.max()))
    return first.isoformat() if first == last else f"{first.isoformat()} – {last.isoformat()}"


COORDINATE_LABELS = {
    "lat_deg": "Geographic latitude",
    "lon_deg": "Geographic longitude",
    "row": "Image row (pixel)",
    "col": "Image column (pixel)",
    "mlat_deg": "Magnetic latitude, AACGM-v2 (°)",
}


def _downsample_time(g: GriddedKeogram, max_columns: int) -> GriddedKeogram:
    """Average blocks of consecutive slots (NaN-aware) so a figure has at most ``max_columns`` time columns."""
    factor = int(np.ceil(g.time.size / max_columns))
    if factor <= 1:
        return g
    n = (g.time.size // factor) * factor
    pad = g.time.size - n
    data = g.intensity
    if pad:
        extra = np.full((factor - pad, data.shape[1]), np.nan, np.float32)
        data = np.concatenate([data, extra])
    blocks = data.reshape(-1, factor, data.shape[1])
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(blocks).sum(axis=1)
        mean = np.where(counts > 0, np.nansum(blocks, axis=1) / np.maximum(counts, 1), np.nan).astype(np.float32)
    step = np.timedelta64(int(round(g.cadence_s * 1e6)), "us")
    time = g.time[::factor] + (factor - 1) * step / 2
    return GriddedKeogram(time, g.coordinate, g.coordinate_name, mean, g.cadence_s * factor, g.bin_edges)


def draw_keogram(
    ax,
    keo: Keogram | GriddedKeogram | pl.DataFrame,
    *,
    cadence_s: float | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    max_columns: int = 3000,
):
    """Draw a keogram into ``ax`` (pcolormesh on the regular grid; missing frames left blank); returns the mesh.
    Latitude/longitude axes are labelled in °N / °E–°W; the time axis is formatted for its span."""
    import matplotlib.dates as mdates

    from tame_assets.analysis.figures import geographic_ticks

    g = keo if isinstance(keo, GriddedKeogram) else grid_keogram(keo, cadence_s)
    g = _downsample_time(g, max_columns)
    values = np.ma.masked_invalid(g.intensity.T)
    finite = g.intensity[np.isfinite(g.intensity)]
    if finite.size:
        vmin = float(np.percentile(finite, 1)) if vmin is None else vmin
        vmax = float(np.percentile(finite, 99.5)) if vmax is None else vmax
    mesh = ax.pcolormesh(
        mdates.date2num(g.time_edges()),
        g.coordinate_edges(),
        values,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        shading="flat",
        rasterized=True,
    )
    ax.set_ylabel(COORDINATE_LABELS[g.coordinate_name])
    if g.coordinate_name in ("lat_deg", "lon_deg"):
        geographic_ticks(ax, lon=g.coordinate_name == "lon_deg", lat=g.coordinate_name == "lat_deg")
    if g.coordinate_name in ("row", "col"):
        ax.invert_yaxis()  # image row 0 at the top, as in the frame
    ax.xaxis_date()
    span_s = float((g.time[-1] - g.time[0]) / np.timedelta64(1, "s")) if g.time.size else 0.0
    ax.xaxis.set_major_formatter(mdates.DateFormatter(_time_format(span_s)))
    if _time_format(span_s) == "%b %d":  # one tick per day (at most ~12 ticks)
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, int(span_s // 86400) // 12 + 1)))
    return mesh


TIME_AXIS_LABEL = "Time (UTC)"
#: Frames further apart than this (s) start a new night: a keogram over several days shows each
#: stretch of data (up to ``max_panels``) in its own panel instead of a month of blank columns.
NIGHT_GAP_S = 6 * 3600.0


def _time_format(span_s: float) -> str:
    """Tick format for a time axis spanning ``span_s`` seconds: seconds below 15 min, dates above 2 days."""
    return "%H:%M:%S" if span_s < 900 else "%H:%M" if span_s <= 2 * 86400 else "%b %d"


def _slots(g: GriddedKeogram, lo: int, hi: int) -> GriddedKeogram:
    return GriddedKeogram(g.time[lo:hi], g.coordinate, g.coordinate_name, g.intensity[lo:hi], g.cadence_s, g.bin_edges)


def data_stretches(g: GriddedKeogram, gap_s: float = NIGHT_GAP_S) -> list[tuple[int, int]]:
    """``[lo, hi)`` slot ranges of the grid holding frames, split where frames are more than ``gap_s`` apart
    (leading and trailing empty slots dropped)."""
    has = np.flatnonzero(np.isfinite(g.intensity).any(axis=1)) if g.intensity.size else np.array([], int)
    if not has.size:
        return []
    t = g.time[has].astype("datetime64[us]").astype(np.int64)
    cut = np.flatnonzero(np.diff(t) > gap_s * 1e6)
    starts, ends = np.r_[has[0], has[cut + 1]], np.r_[has[cut], has[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist()))


def keogram_figure(
    keo: Keogram | GriddedKeogram | pl.DataFrame,
    *,
    station: str = "",
    wavelength: str = "",
    units: str = "counts",
    cadence_s: float | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    max_panels: int = 6,
):
    """Keogram figure: title "Ny-Ålesund (NYA) keogram, 2010-12-02, 557.7 nm" (station code → name via
    :func:`tame_assets.analysis.figures.station_label`), UTC time axis, latitude (°N) or pixel axis, colour
    bar in ``units``.

    Missing frames are blank (grey) columns of the regular time grid, not stretched neighbours. The time
    axis covers the frames only: over several days, each stretch of frames separated by more than
    :data:`NIGHT_GAP_S` gets its own panel (up to ``max_panels`` stretches; more are drawn on one axis
    from the first to the last frame), so an hour of data in a month is visible, not a sliver.
    """
    import matplotlib.pyplot as plt

    from tame_assets.analysis.figures import duration_text, station_label

    g = keo if isinstance(keo, GriddedKeogram) else grid_keogram(keo, cadence_s)
    stretches = data_stretches(g)
    if 1 < len(stretches) <= max_panels:
        panels = [_slots(g, lo, hi) for lo, hi in stretches]
    else:
        panels = [_slots(g, stretches[0][0], stretches[-1][1])] if stretches else [g]
    finite = g.intensity[np.isfinite(g.intensity)]
    if finite.size:
        vmin = float(np.percentile(finite, 1)) if vmin is None else vmin
        vmax = float(np.percentile(finite, 99.5)) if vmax is None else vmax
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(11, 2.2 + 2.6 * len(panels) if len(panels) > 1 else 4.4),
        layout="constrained",
        squeeze=False,
    )
    axes = axes[:, 0]
    mesh = None
    for ax, panel in zip(axes, panels):
        if panel.time.size:
            mesh = draw_keogram(ax, panel, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_facecolor("0.85")
        ax.set_xlabel(TIME_AXIS_LABEL)
        if len(panels) > 1:
            span_s = float((panel.time[-1] - panel.time[0]) / np.timedelta64(1, "s")) + panel.cadence_s
            ax.set_title(f"{_title_dates(panel.time)} ({duration_text(span_s)} of frames)", fontsize=9, loc="left")
    if mesh is not None:
        fig.colorbar(mesh, ax=list(axes), label=f"Intensity ({units})", pad=0.01)
    slice_name = "north–south" if g.coordinate_name in ("lat_deg", "row") else "east–west"
    slice_name = "magnetic meridian (AACGM-v2)" if g.coordinate_name == "mlat_deg" else slice_name
    what = ", ".join(
        part
        for part in (_title_dates(g.time[np.isfinite(g.intensity).any(axis=1)] if g.time.size else g.time), wavelength)
        if part
    )
    name = station_label(station) + " keogram" if station else "Keogram"
    cadence = f"frames every {duration_text(g.cadence_s)}" if g.time.size else "no frames"
    fig.suptitle(f"{name}, {what}\n{slice_name} slice through the zenith; {cadence}; grey = no frame", fontsize=10)
    return fig
