"""Mosaics of overlapping cameras: per group of stations whose fields of view overlap and per time step
(near-simultaneous frames), every camera's frame projected onto one latitude/longitude grid, the
camera seeing a cell at the higher elevation winning it
(:func:`~tame_assets.products.projection.mosaic_of_projections`).

The emission height the frames are projected at is the wavelength's assumed one (110 km for white
light and 557.7 nm), or measured per time step from the group's first two stations by triangulation
(:class:`~tame_assets.products.triangulation.StereoPair`; the assumed height where no common feature
is found). Projections are exact (WGS84) and cached per height rounded to :data:`HEIGHT_STEP_KM`; a
cell takes the mean of the pixels whose centre falls in it, one-cell gaps near the horizon are filled
from their neighbours (:func:`fill_gaps`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl

from tame_assets.geometry.earth import ground_distance_km
from tame_assets.products.projection import LatLonGrid, Mosaic, mosaic_of_projections
from tame_assets.products.triangulation import ShellRays, StereoPair, rays_projection

#: Mosaic grid cell (degrees of latitude; longitude cells about as wide on the ground), lowest elevation used.
MOSAIC_CELL_DEG, MOSAIC_MIN_ELEVATION_DEG = 0.1, 10.0
#: Frames of two stations at most this far apart in time (s) make one time step.
MATCH_TOLERANCE_S = 30.0
#: Measured heights are rounded to this (km) for the projection (cached per height).
HEIGHT_STEP_KM = 2.0
#: Two stations are never paired beyond this site distance (km): no shared sky at auroral heights.
MAX_PAIR_DISTANCE_KM = 1500.0

SCHEMA = {
    "group": pl.Utf8,
    "station": pl.Utf8,
    "time": pl.Datetime("us"),
    "height_km": pl.Float64,
    "height_source": pl.Utf8,
    "ncc": pl.Float64,
    "ncc_assumed": pl.Float64,
    "lat_deg": pl.Float64,
    "lon_deg": pl.Float64,
    "intensity": pl.Float64,
    "source_station": pl.Utf8,
}


def overlaps(sky_a: Any, sky_b: Any, height_km: float = 110.0, min_elevation_deg: float = 15.0) -> bool:
    """True when the two cameras see a common part of the shell at ``height_km`` (pixels at or above
    ``min_elevation_deg``, 0.2° cells)."""
    distance = ground_distance_km(sky_a.site_lat_deg, sky_a.site_lon_deg, sky_b.site_lat_deg, sky_b.site_lon_deg)
    if distance > MAX_PAIR_DISTANCE_KM:
        return False
    rays = [ShellRays(sky, min_elevation_deg, stride=4) for sky in (sky_a, sky_b)]
    points = [r.lat_lon(height_km) for r in rays]
    if min(p[0].size for p in points) == 0:
        return False
    lat = np.concatenate([p[0] for p in points])
    lon = np.concatenate([p[1] for p in points])
    grid = LatLonGrid.regular(lat.min(), lat.max() + 0.2, lon.min(), lon.max() + 0.4, 0.2)
    cells = [set(grid.cell_index(*p).tolist()) - {-1} for p in points]
    return bool(cells[0] & cells[1])


def overlap_groups(skymaps: dict[str, Any]) -> list[tuple[str, ...]]:
    """Groups of stations connected by overlapping fields of view (:func:`overlaps`), members in the
    order of ``skymaps`` (station code → skymap; None = no geometry, never grouped); singletons left out."""
    codes = [c for c, s in skymaps.items() if s is not None]
    parent = {c: c for c in codes}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            if root(a) != root(b) and overlaps(skymaps[a], skymaps[b]):
                parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for c in codes:
        groups.setdefault(root(c), []).append(c)
    return [tuple(g) for g in groups.values() if len(g) > 1]


def match_times(anchor: Sequence[Any], other: Sequence[Any], tolerance_s: float = MATCH_TOLERANCE_S) -> np.ndarray:
    """For each anchor time the index of the nearest ``other`` time within ``tolerance_s`` (-1: none)."""
    a = np.asarray(anchor, dtype="datetime64[us]").astype(np.int64)
    o = np.asarray(other, dtype="datetime64[us]").astype(np.int64)
    if not o.size:
        return np.full(a.size, -1)
    order = np.argsort(o)
    o = o[order]
    i = np.clip(np.searchsorted(o, a), 1, max(o.size - 1, 1)) if o.size > 1 else np.zeros(a.size, int)
    left = np.maximum(i - 1, 0)
    nearest = np.where(np.abs(o[left] - a) <= np.abs(o[i] - a), left, i)
    ok = np.abs(o[nearest] - a) <= tolerance_s * 1e6
    return np.where(ok, order[nearest], -1)


@dataclass(frozen=True)
class MosaicStep:
    """One time step of a group: its mosaic and the height it was projected at."""

    time: dt.datetime
    mosaic: Mosaic
    height_km: float
    height_source: str  # "measured" | "assumed"
    ncc: float  # the pair's correlation at the height used (NaN: not measured)
    ncc_assumed: float  # … at the assumed height (NaN: not measured)


def fill_gaps(m: Mosaic, min_neighbours: int = 4) -> Mosaic:
    """``m`` with its one-cell gaps filled: near the horizon a camera's pixel centres are farther apart
    than a cell, so the mean projection leaves empty cells between them; an empty cell with at least
    ``min_neighbours`` of its 8 neighbours seen takes their mean value, and the station and elevation of
    its nearest seen neighbour."""
    from scipy import ndimage

    seen = m.source >= 0
    kernel = np.ones((3, 3))
    kernel[1, 1] = 0
    count = ndimage.convolve(seen.astype(float), kernel, mode="constant")
    total = ndimage.convolve(np.where(seen, m.image, 0.0), kernel, mode="constant")
    fill = ~seen & (count >= min_neighbours)
    if not fill.any():
        return m
    _, (rows, cols) = ndimage.distance_transform_edt(~seen, return_indices=True)
    image, source, elevation = m.image.copy(), m.source.copy(), m.elevation_deg.copy()
    image[fill] = total[fill] / count[fill]
    source[fill] = m.source[rows[fill], cols[fill]]
    elevation[fill] = m.elevation_deg[rows[fill], cols[fill]]
    return Mosaic(image, source, elevation, m.grid)


class GroupMosaicker:
    """The projections of a group's cameras onto one grid (covering their fields of view up to 160 km),
    cached per height, and the group's first two cameras as a :class:`StereoPair` for measured heights."""

    def __init__(self, skymaps: Sequence[Any], assumed_km: float = 110.0):
        self.assumed_km = float(assumed_km)
        self.rays = [ShellRays(sky, MOSAIC_MIN_ELEVATION_DEG, stride=1) for sky in skymaps]
        points = [r.lat_lon(160.0) for r in self.rays]
        lat = np.concatenate([p[0] for p in points])
        lon = np.concatenate([p[1] for p in points])
        self.grid = LatLonGrid.regular(lat.min(), lat.max(), lon.min(), lon.max(), MOSAIC_CELL_DEG)
        self.skymaps = list(skymaps)
        self._pair: StereoPair | None = None
        self._projections: dict[float, list] = {}

    @property
    def pair(self) -> StereoPair:
        if self._pair is None:
            self._pair = StereoPair(self.skymaps[0], self.skymaps[1])
        return self._pair

    def projections(self, height_km: float) -> list:
        key = round(float(height_km) / HEIGHT_STEP_KM) * HEIGHT_STEP_KM
        if key not in self._projections:
            self._projections[key] = [rays_projection(r, self.grid, key) for r in self.rays]
        return self._projections[key]

    def step(self, time: dt.datetime, frames: Sequence[np.ndarray], measure: bool) -> MosaicStep:
        """The mosaic of ``frames`` (one per camera, None where a camera has no frame at this time)."""
        height, source, ncc, ncc_assumed = self.assumed_km, "assumed", float("nan"), float("nan")
        if measure and frames[0] is not None and frames[1] is not None:
            estimate = self.pair.estimate(frames[0], frames[1])
            ncc_assumed = estimate.ncc_assumed
            if estimate.found:
                height, source, ncc = round(estimate.height_km, 1), "measured", estimate.ncc
            else:
                ncc = ncc_assumed
        used = [(f, p) for f, p in zip(frames, self.projections(height)) if f is not None]
        return MosaicStep(time, fill_gaps(mosaic_of_projections(used, self.grid)), height, source, ncc, ncc_assumed)


def step_table(step: MosaicStep, group: Sequence[str], station: str) -> pl.DataFrame:
    """The cells of a step's mosaic that some camera sees, as rows of :data:`SCHEMA`."""
    m = step.mosaic
    seen = m.source >= 0
    lat, lon = np.meshgrid(m.grid.lat_centres, m.grid.lon_centres, indexing="ij")
    n = int(seen.sum())
    return pl.DataFrame(
        {
            "group": ["+".join(group)] * n,
            "station": [station] * n,
            "time": [step.time] * n,
            "height_km": np.full(n, step.height_km),
            "height_source": [step.height_source] * n,
            "ncc": np.full(n, step.ncc),
            "ncc_assumed": np.full(n, step.ncc_assumed),
            "lat_deg": lat[seen],
            "lon_deg": lon[seen],
            "intensity": m.image[seen],
            "source_station": np.asarray(group)[m.source[seen]],
        },
        schema=SCHEMA,
    )


def group_steps(
    mosaicker: GroupMosaicker,
    frames: Sequence[Sequence[tuple[Any, np.ndarray]]],
    measure: bool,
    tolerance_s: float = MATCH_TOLERANCE_S,
) -> Iterable[MosaicStep]:
    """A mosaic per frame of the group's last camera (``frames[-1]``, (time, frame) pairs) that at least
    one other camera has a frame within ``tolerance_s`` of."""
    anchor = frames[-1]
    times = [t for t, _ in anchor]
    matches = [match_times(times, [t for t, _ in other], tolerance_s) for other in frames[:-1]]
    for k, (time, frame) in enumerate(anchor):
        others = [other[m[k]][1] if m[k] >= 0 else None for other, m in zip(frames[:-1], matches)]
        if all(o is None for o in others):
            continue
        yield mosaicker.step(time, [*others, frame], measure)


@lru_cache(maxsize=32)
def cached_station_skymap(station: Any, wavelength_0_1nm: int):
    """:func:`~tame_assets.geometry.station_skymap` at the wavelength's emission altitude, cached per process."""
    from tame_assets.geometry import station_skymap

    return station_skymap(station, wavelength_0_1nm)


def mosaic_caption(step: MosaicStep) -> str:
    """The second title line of a mosaic figure: the height and where it comes from."""
    if step.height_source == "measured":
        how = f"triangulated: correlation {step.ncc:.2f}, {step.ncc_assumed:.2f} at the assumed height"
    else:
        how = "assumed"
    return f"projected at {step.height_km:.0f} km ({how}); where fields overlap the higher elevation wins"
