"""Frames projected onto a regular geographic latitude/longitude grid at the emission altitude, mosaics.

A pixel's position is the skymap's ``lat_deg``/``lon_deg`` (where its look direction meets the
emission shell at ``skymap.altitude_km``). Two projection methods:

- ``"mean"``: a cell is the mean of all pixels whose centre falls inside it (``[lower, upper)`` in
  latitude and longitude); cells no pixel centre falls in are NaN. Exact to the pixels; near the
  horizon, where a pixel is larger than a cell, leaves holes between pixel centres.
- ``"nearest"``: a cell takes the pixel nearest to its centre on the emission shell, when that
  distance is at most the pixel's footprint (largest distance to its 4-connected neighbour pixels);
  fills the cells of the field of view without holes.

Mosaic: where fields of view overlap, the station whose pixel is seen at the higher elevation
(mean elevation of the cell's pixels, or the nearest pixel's) wins the cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from tame_assets.products.frame_stream import to_datetime64
from tame_assets.products.pixels import PixelLocator, SkymapArrays, skymap_arrays

METHODS = ("mean", "nearest")


@dataclass(frozen=True)
class LatLonGrid:
    """Regular grid by cell edges (degrees; longitudes east, increasing, may run past 180)."""

    lat_edges: np.ndarray
    lon_edges: np.ndarray

    def __post_init__(self):
        for name in ("lat_edges", "lon_edges"):
            edges = np.asarray(getattr(self, name), dtype=float)
            if edges.ndim != 1 or edges.size < 2 or not (np.diff(edges) > 0).all():
                raise ValueError(f"{name} must be at least two increasing values (degrees)")
            object.__setattr__(self, name, edges)
        if self.lat_edges[0] < -90 or self.lat_edges[-1] > 90:
            raise ValueError("lat_edges must lie within −90…90°")

    @classmethod
    def regular(
        cls,
        lat_min: float,
        lat_max: float,
        lon_min: float,
        lon_max: float,
        lat_step_deg: float,
        lon_step_deg: float | None = None,
    ) -> "LatLonGrid":
        """Cells of ``lat_step_deg`` × ``lon_step_deg`` (default: ``lat_step_deg / cos(mid-latitude)``, ~square)."""
        if not lat_step_deg > 0:
            raise ValueError(f"lat_step_deg must be positive, got {lat_step_deg}")
        if lon_step_deg is None:
            lon_step_deg = lat_step_deg / max(np.cos(np.radians((lat_min + lat_max) / 2)), 0.05)
        lat = np.arange(lat_min, lat_max + lat_step_deg / 2, lat_step_deg)
        lon = np.arange(lon_min, lon_max + lon_step_deg / 2, lon_step_deg)
        return cls(np.round(lat, 9), np.round(lon, 9))

    @property
    def lat_centres(self) -> np.ndarray:
        return (self.lat_edges[:-1] + self.lat_edges[1:]) / 2

    @property
    def lon_centres(self) -> np.ndarray:
        return (self.lon_edges[:-1] + self.lon_edges[1:]) / 2

    @property
    def shape(self) -> tuple[int, int]:
        """(n_lat, n_lon): projected images are indexed [lat, lon], latitude ascending."""
        return self.lat_edges.size - 1, self.lon_edges.size - 1

    def wrap_lon(self, lon_deg: np.ndarray) -> np.ndarray:
        """Longitudes moved by multiples of 360° into ``[lon_edges[0], lon_edges[0] + 360)``."""
        return (np.asarray(lon_deg, float) - self.lon_edges[0]) % 360.0 + self.lon_edges[0]

    def cell_index(self, lat_deg, lon_deg) -> np.ndarray:
        """Flat cell index (``i_lat * n_lon + i_lon``) of each point; -1 outside the grid or NaN."""
        lat = np.asarray(lat_deg, float)
        lon = self.wrap_lon(lon_deg)
        i = np.searchsorted(self.lat_edges, lat, side="right") - 1
        j = np.searchsorted(self.lon_edges, lon, side="right") - 1
        n_lat, n_lon = self.shape
        ok = np.isfinite(lat) & np.isfinite(lon) & (i >= 0) & (i < n_lat) & (j >= 0) & (j < n_lon)
        return np.where(ok, i * n_lon + j, -1)


def grid_for_skymaps(
    skymaps: Sequence[Any],
    lat_step_deg: float = 0.1,
    lon_step_deg: float | None = None,
    min_elevation_deg: float | None = None,
) -> LatLonGrid:
    """The regular grid covering the fields of view of ``skymaps`` (above ``min_elevation_deg``)."""
    lats, lons, reach_lat, reach_lon = [], [], [0.0], [0.0]
    for skymap in skymaps:
        sky = skymap_arrays(skymap)
        valid = sky.valid if min_elevation_deg is None else sky.valid & (sky.elevation_deg >= min_elevation_deg)
        lats.append(sky.lat_deg[valid])
        lons.append(sky.lon_deg[valid])
        lat_v = np.where(valid, sky.lat_deg, np.nan)
        lon_v = np.where(valid, sky.lon_deg, np.nan)
        lon_v = (lon_v - np.nanmedian(lon_v) + 180.0) % 360.0 - 180.0
        with np.errstate(invalid="ignore"):  # the largest pixel footprint (neighbour spacing, degrees)
            for axis in (0, 1):
                reach_lat.append(float(np.nanmax(np.abs(np.diff(lat_v, axis=axis)), initial=0.0)))
                reach_lon.append(float(np.nanmax(np.abs(np.diff(lon_v, axis=axis)), initial=0.0)))
    lat, lon = np.concatenate(lats), np.concatenate(lons)
    centre = float(np.median(lon))
    lon = (lon - centre + 180.0) % 360.0 - 180.0 + centre  # continuous across ±180°
    step = lat_step_deg
    # beyond the outermost pixel centres: the largest pixel footprint plus one empty cell on every side, so
    # the field of view ("nearest" fills cells up to a footprint away) is never cut flat by the grid's edge
    pad_lat = max(reach_lat)
    lat_min = np.floor((lat.min() - pad_lat) / step) * step - step
    lat_max = np.ceil((lat.max() + pad_lat) / step) * step + step
    if lon_step_deg is None:  # as LatLonGrid.regular: ~square cells at the mid-latitude
        lon_step_deg = lat_step_deg / max(np.cos(np.radians((lat_min + lat_max) / 2)), 0.05)
    pad_lon = max(reach_lon)
    lon_min = np.floor((lon.min() - pad_lon) / step) * step - lon_step_deg
    n_lon = int(np.ceil((lon.max() + pad_lon + lon_step_deg - lon_min) / lon_step_deg - 1e-9))
    return LatLonGrid.regular(
        max(lat_min, -90.0), min(lat_max, 90.0), lon_min, lon_min + n_lon * lon_step_deg, lat_step_deg, lon_step_deg
    )


@dataclass(frozen=True)
class Projection:
    """Precomputed pixel → cell mapping of one skymap onto one grid; apply it to any number of frames."""

    grid: LatLonGrid
    method: str
    shape: tuple[int, int]  # frame shape
    pixel: np.ndarray  # flat pixel indices used
    cell: np.ndarray  # flat cell index of each used pixel
    counts: np.ndarray  # (n_cells,) pixels per cell
    elevation_deg: np.ndarray  # grid.shape: mean elevation of the cell's pixels, NaN where empty

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The frame on the grid (float64, [lat, lon]); NaN where no pixel."""
        frame = np.asarray(frame)
        if frame.shape != self.shape:
            raise ValueError(f"frame shape {frame.shape} differs from the skymap's {self.shape}")
        values = frame.reshape(-1)[self.pixel].astype(np.float64)
        sums = np.bincount(self.cell, weights=values, minlength=self.counts.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(self.counts > 0, sums / self.counts, np.nan)
        return out.reshape(self.grid.shape)


def projection_for(
    skymap: Any, grid: LatLonGrid, method: str = "mean", min_elevation_deg: float | None = None
) -> Projection:
    """Build the pixel → cell mapping (``method`` ``"mean"`` or ``"nearest"``, see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    sky = skymap_arrays(skymap)
    valid = sky.valid if min_elevation_deg is None else sky.valid & (sky.elevation_deg >= min_elevation_deg)
    n_cells = grid.shape[0] * grid.shape[1]
    if method == "mean":
        pixel = np.flatnonzero(valid)
        cell = grid.cell_index(sky.lat_deg.reshape(-1)[pixel], sky.lon_deg.reshape(-1)[pixel])
        pixel, cell = pixel[cell >= 0], cell[cell >= 0]
    else:
        masked = sky if min_elevation_deg is None else _masked_skymap(sky, valid)
        lat_c, lon_c = np.meshgrid(grid.lat_centres, grid.lon_centres, indexing="ij")
        nearest, _ = PixelLocator(masked).nearest(lat_c.ravel(), lon_c.ravel())
        cell = np.flatnonzero(nearest >= 0)
        pixel = nearest[cell]
    counts = np.bincount(cell, minlength=n_cells).astype(np.float64)
    el_sum = np.bincount(cell, weights=sky.elevation_deg.reshape(-1)[pixel], minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        elevation = np.where(counts > 0, el_sum / counts, np.nan).reshape(grid.shape)
    return Projection(grid, method, sky.shape, pixel, cell, counts, elevation)


def _masked_skymap(sky: SkymapArrays, valid: np.ndarray) -> SkymapArrays:
    return SkymapArrays(
        *(np.where(valid, a, np.nan) for a in (sky.azimuth_deg, sky.elevation_deg, sky.lat_deg, sky.lon_deg)),
        altitude_km=sky.altitude_km,
    )


def project_frame(
    frame: np.ndarray, skymap: Any, grid: LatLonGrid, method: str = "mean", min_elevation_deg: float | None = None
) -> np.ndarray:
    """One frame on ``grid`` ([lat, lon], float64, NaN outside the field of view)."""
    return projection_for(skymap, grid, method, min_elevation_deg).apply(frame)


@dataclass(frozen=True)
class Mosaic:
    """Several stations on one grid: per cell the value, the winning input's index (-1: none) and its elevation."""

    image: np.ndarray
    source: np.ndarray
    elevation_deg: np.ndarray
    grid: LatLonGrid


def mosaic(
    frames_and_skymaps: Iterable[tuple[np.ndarray, Any]],
    grid: LatLonGrid,
    method: str = "mean",
    min_elevation_deg: float | None = None,
) -> Mosaic:
    """Project each ``(frame, skymap)`` and keep, per cell, the one seen at the higher elevation."""
    return mosaic_of_projections(
        ((frame, projection_for(skymap, grid, method, min_elevation_deg)) for frame, skymap in frames_and_skymaps),
        grid,
    )


def mosaic_of_projections(frames_and_projections: Iterable[tuple[np.ndarray, Projection]], grid: LatLonGrid) -> Mosaic:
    """:func:`mosaic` of frames with their precomputed projections onto ``grid``."""
    image = np.full(grid.shape, np.nan)
    source = np.full(grid.shape, -1, dtype=np.int64)
    best_el = np.full(grid.shape, -np.inf)
    for index, (frame, projection) in enumerate(frames_and_projections):
        if projection.grid.shape != grid.shape:
            raise ValueError(f"mosaic input {index}: projected onto another grid")
        try:
            values = projection.apply(frame)
        except ValueError as exc:
            raise ValueError(f"mosaic input {index}: {exc}") from None
        wins = np.isfinite(values) & (projection.elevation_deg > best_el)
        image[wins], source[wins], best_el[wins] = values[wins], index, projection.elevation_deg[wins]
    return Mosaic(image, source, np.where(source >= 0, best_el, np.nan), grid)


def land_mask(grid: LatLonGrid, max_points: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(lat, lon, is_land)`` on a fine grid over ``grid`` from ``global_land_mask`` (offline 1 km mask), or None
    when the package is not installed."""
    try:
        from global_land_mask import globe
    except ImportError:
        return None
    lat = np.linspace(grid.lat_edges[0], grid.lat_edges[-1], min(max_points, int((np.ptp(grid.lat_edges)) / 0.01) + 2))
    lon = np.linspace(grid.lon_edges[0], grid.lon_edges[-1], min(max_points, int((np.ptp(grid.lon_edges)) / 0.01) + 2))
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    return lat, lon, globe.is_land(lat2, (lon2 + 180.0) % 360.0 - 180.0)


def map_caption(pred: str | None, p_aurora: float | None, auroral: bool, altitude_km: float | None = None) -> str:
    """The second title line of a day's map: which frame it is and why. A frame is called the most
    auroral one only when its predicted class is auroral; otherwise the day had no auroral frame."""
    p = "" if p_aurora is None else f", P(aurora) = {p_aurora:.2f}"
    where = "" if altitude_km is None else f"; projected to {altitude_km:.0f} km altitude"
    if auroral:
        return f"most auroral frame of the day (predicted {pred}{p}){where}"
    return f"no auroral frame on this day: the frame with the highest P(aurora) is shown\n(predicted {pred}{p}){where}"


def map_figure(
    image: np.ndarray | Mosaic,
    grid: LatLonGrid | None = None,
    *,
    stations: str | Sequence[str] = "",
    time: Any = None,
    units: str = "counts",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    coastlines: bool = True,
    caption: str = "",
    product: str = "all-sky map",
):
    """Map of a projected image or mosaic: longitude/latitude axes with ticks in °E/°W and °N, colour bar
    in ``units``, the coastline (``global_land_mask``, where installed), a margin around the field of
    view. Title: station(s) in words (codes → names), ``product``, UTC time; ``caption`` a second line."""
    import matplotlib.pyplot as plt

    from tame_assets.analysis.figures import geographic_ticks, station_label

    if isinstance(image, Mosaic):
        grid, image = image.grid, image.image
    if grid is None:
        raise ValueError("map_figure needs the LatLonGrid of the image")
    finite = image[np.isfinite(image)]
    if finite.size:
        vmin = float(np.percentile(finite, 1)) if vmin is None else vmin
        vmax = float(np.percentile(finite, 99.5)) if vmax is None else vmax
    fig, ax = plt.subplots(figsize=(7.5, 6.8), layout="constrained")
    mesh = ax.pcolormesh(
        grid.lon_edges,
        grid.lat_edges,
        np.ma.masked_invalid(image),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        shading="flat",
        rasterized=True,
    )
    fig.colorbar(mesh, ax=ax, label=f"Intensity ({units})", shrink=0.8)
    outline = land_mask(grid) if coastlines else None
    if outline is not None and 0 < outline[2].mean() < 1:
        lat, lon, is_land = outline
        for colour, width in (("black", 1.8), ("white", 0.7)):  # visible on dark and bright pixels
            ax.contour(lon, lat, is_land.astype(float), levels=[0.5], colors=colour, linewidths=width)
    pad_lon, pad_lat = 0.04 * np.ptp(grid.lon_edges), 0.04 * np.ptp(grid.lat_edges)
    ax.set_xlim(grid.lon_edges[0] - pad_lon, grid.lon_edges[-1] + pad_lon)
    ax.set_ylim(max(grid.lat_edges[0] - pad_lat, -90.0), min(grid.lat_edges[-1] + pad_lat, 90.0))
    ax.set_aspect(1.0 / max(np.cos(np.radians(grid.lat_centres.mean())), 0.05))
    geographic_ticks(ax)
    ax.set_xlabel("Geographic longitude")
    ax.set_ylabel("Geographic latitude")
    ax.set_facecolor("0.9")
    codes = [stations] if isinstance(stations, str) else list(stations)
    names = ", ".join(station_label(code) for code in codes if code)
    when = "" if time is None else f", {_utc_text(time)} UTC"
    lines = [f"{names + ' ' if names else ''}{product}{when}"]
    extra = "; ".join(part for part in (caption, "outline: coastline" if outline is not None else "") if part)
    if extra:
        lines.append(extra)
    ax.set_title("\n".join(lines), fontsize=9)
    return fig


def _utc_text(time: Any) -> str:
    return str(to_datetime64(time).astype("datetime64[s]")).replace("T", " ")
