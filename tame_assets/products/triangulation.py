"""Emission height from two overlapping all-sky cameras by triangulation.

A feature of the aurora (an arc) is a thin emitting layer at some height h. Each camera's frame
projected onto a geographic latitude/longitude grid at an *assumed* height H puts the feature where
that camera's lines of sight meet the shell at H; seen from two sites, the two projections coincide
only when H = h (for a site at P and an emission point X, the projection at H lands near
P + (X − P)·H/h, so the two copies are offset by about (P_A − P_B)·(1 − H/h): ~70 km for a 266-km
baseline, h = 150 km and H = 110 km). :class:`StereoPair` projects both frames at candidate heights
(80–250 km, every 5 km, then every 1 km around the best), scores each by the normalised
cross-correlation (Pearson) of the two projections over the cells both cameras see, and refines the
best height with a parabola through the scores around it.

Before projecting, each frame is high-passed (minus a normalised Gaussian blur of ``smooth_px``) so
smooth backgrounds that differ between the cameras (airglow, vignetting, moonlight) do not count as
agreement; only pixels at or above ``min_elevation_deg`` are used (every ``stride``-th row and column).

Projection at height h is exact (WGS84 geodetic height, as :func:`tame_assets.geometry.earth.look_to_geodetic`):
the ray–ellipsoid (a + h, b + h) intersection plus one Newton step on the geodetic height (the ray's
origin and direction are computed once per camera, so a height costs one intersection).

:func:`misalignment_km`: how far apart two cameras place the same emission point when both project
at a height H — the mosaic misalignment the measured height removes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tame_assets.geometry.earth import (
    WGS84_A_M,
    WGS84_B_M,
    ecef_to_geodetic,
    enu_to_ecef_direction,
    geodetic_to_ecef,
    ground_distance_km,
    look_to_geodetic,
)
from tame_assets.products.projection import LatLonGrid, Projection

#: Candidate heights of the coarse search (km) and the assumed emission height of the mapped products.
HEIGHTS_KM = np.arange(80.0, 250.0 + 1e-9, 5.0)
ASSUMED_HEIGHT_KM = 110.0
#: Spacing (km) of the heights at which :class:`ShellRays` computes the shell points exactly.
KNOT_STEP_KM = 10.0
#: Below this peak correlation the two frames share no feature: no height is reported.
MIN_NCC = 0.3


class ShellRays:
    """The lines of sight of a skymap's pixels (those at or above ``min_elevation_deg``, every
    ``stride``-th row and column): where they meet the shell at a height, as geodetic lat/lon."""

    def __init__(self, skymap: Any, min_elevation_deg: float = 15.0, stride: int = 1):
        el = np.asarray(skymap.elevation_deg, float)
        az = np.asarray(skymap.azimuth_deg, float)
        keep = np.zeros(el.shape, bool)
        keep[::stride, ::stride] = True
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(el) & np.isfinite(az) & (el >= min_elevation_deg)
        self.shape = el.shape
        self.pixel = np.flatnonzero(keep)
        self.elevation_deg = el.reshape(-1)[self.pixel]
        self.site = (float(skymap.site_lat_deg), float(skymap.site_lon_deg), float(getattr(skymap, "site_alt_m", 0.0)))
        self.origin = geodetic_to_ecef(*self.site)
        self.direction = enu_to_ecef_direction(az.reshape(-1)[self.pixel], self.elevation_deg, *self.site[:2])
        self._knots: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def lat_lon(self, height_km: float) -> tuple[np.ndarray, np.ndarray]:
        """(lat_deg, lon_deg) of each ray at geodetic height ``height_km``: exact at the knots (every
        :data:`KNOT_STEP_KM`, computed once each), between them the cubic through the four nearest knots
        (< 1 m from the exact point between 80 and 250 km, tested)."""
        h = float(height_km)
        lower = np.floor(h / KNOT_STEP_KM) * KNOT_STEP_KM
        if np.isclose(h, lower) or np.isclose(h, lower + KNOT_STEP_KM):
            return self._knot(round(h / KNOT_STEP_KM) * KNOT_STEP_KM)
        knots = lower + KNOT_STEP_KM * np.arange(-1, 3)
        if knots[0] <= KNOT_STEP_KM:  # near the ground: the four knots above
            knots = knots - knots[0] + KNOT_STEP_KM
        weights = [np.prod([(h - k) / (kj - k) for k in knots if k != kj]) for kj in knots]
        points = [self._knot(k) for k in knots]
        lat = sum(w * p[0] for w, p in zip(weights, points))
        lon0 = points[0][1]
        lon = lon0 + sum(w * ((p[1] - lon0 + 180.0) % 360.0 - 180.0) for w, p in zip(weights, points))
        return lat, (lon + 180.0) % 360.0 - 180.0

    def _knot(self, height_km: float) -> tuple[np.ndarray, np.ndarray]:
        key = round(float(height_km), 6)
        if key not in self._knots:
            self._knots[key] = self.exact_lat_lon(key)
        return self._knots[key]

    def exact_lat_lon(self, height_km: float) -> tuple[np.ndarray, np.ndarray]:
        """(lat_deg, lon_deg) of each ray at geodetic height ``height_km`` (WGS84), computed."""
        shell = float(height_km) * 1000.0
        scale = np.array([1 / (WGS84_A_M + shell), 1 / (WGS84_A_M + shell), 1 / (WGS84_B_M + shell)])
        o, d = self.origin * scale, self.direction * scale
        qa, qb, qc = np.sum(d * d, axis=-1), 2 * np.sum(o * d, axis=-1), np.sum(o * o) - 1
        s = (-qb + np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
        lat, lon, height = ecef_to_geodetic(self.origin + s[:, None] * self.direction)
        normal = enu_to_ecef_direction(0.0, 90.0, lat, lon)
        s = s - (height - shell) / np.sum(self.direction * normal, axis=-1)
        lat, lon, _ = ecef_to_geodetic(self.origin + s[:, None] * self.direction)
        return lat, lon


def highpass(frame: np.ndarray, smooth_px: float) -> np.ndarray:
    """``frame`` minus its Gaussian blur of ``smooth_px`` normalised inside the lit disk (frame > 0):
    smooth backgrounds removed, features (arcs) kept; 0 outside the disk."""
    from scipy import ndimage

    f = np.asarray(frame, np.float64)
    lit = (f > 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = ndimage.gaussian_filter(f * lit, smooth_px) / ndimage.gaussian_filter(lit, smooth_px)
    return np.where(lit > 0, f - np.nan_to_num(smooth), 0.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class HeightEstimate:
    """Result of :meth:`StereoPair.estimate`: the height (km, NaN when the peak correlation is below
    :data:`MIN_NCC` or at the edge of the searched range), the peak correlation, the correlation at the
    assumed :data:`ASSUMED_HEIGHT_KM`, and every scored height with its correlation."""

    height_km: float
    ncc: float
    ncc_assumed: float
    heights_km: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)

    @property
    def found(self) -> bool:
        return bool(np.isfinite(self.height_km))


class StereoPair:
    """Two overlapping cameras (skymaps with site positions, e.g. :class:`~tame_assets.geometry.Skymap`)
    projected onto one grid at any height (cached per height): the emission height of a pair of
    near-simultaneous frames (:meth:`estimate`) and projections for mosaics (:meth:`projection`)."""

    def __init__(
        self,
        sky_a: Any,
        sky_b: Any,
        cell_deg: float = 0.05,
        min_elevation_deg: float = 15.0,
        stride: int = 2,
        smooth_px: float = 8.0,
    ):
        self.cell_deg, self.min_elevation_deg, self.smooth_px = cell_deg, min_elevation_deg, smooth_px
        self.rays = (ShellRays(sky_a, min_elevation_deg, stride), ShellRays(sky_b, min_elevation_deg, stride))
        self.grid = self._overlap_grid(max(HEIGHTS_KM))
        self._cells: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _overlap_grid(self, height_km: float) -> LatLonGrid:
        """The grid over the two fields of view's common part at ``height_km`` (the largest extent)."""
        (lat_a, lon_a), (lat_b, lon_b) = (r.lat_lon(height_km) for r in self.rays)
        lat_lo, lat_hi = max(lat_a.min(), lat_b.min()), min(lat_a.max(), lat_b.max())
        lon_lo, lon_hi = max(lon_a.min(), lon_b.min()), min(lon_a.max(), lon_b.max())
        if not (lat_lo < lat_hi and lon_lo < lon_hi):
            raise ValueError("the two cameras' fields of view do not overlap")
        return LatLonGrid.regular(lat_lo, lat_hi, lon_lo, lon_hi, self.cell_deg)

    def cells(self, height_km: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At ``height_km``: per camera the grid cell of each used pixel whose cell both cameras see (as an
        index into the common cells), and the pixel count of each common cell per camera (2, n_common)."""
        key = round(float(height_km), 3)
        if key not in self._cells:
            n = self.grid.shape[0] * self.grid.shape[1]
            flat = [self.grid.cell_index(*r.lat_lon(key)) for r in self.rays]
            counts = [np.bincount(c[c >= 0], minlength=n) for c in flat]
            common = np.flatnonzero((counts[0] > 0) & (counts[1] > 0))
            position = np.full(n + 1, -1)
            position[common] = np.arange(common.size)
            self._cells[key] = (position[flat[0]], position[flat[1]], np.stack([c[common] for c in counts]))
        return self._cells[key]

    def _values(self, frame_a: np.ndarray, frame_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for frame, rays in zip((frame_a, frame_b), self.rays):
            if np.shape(frame) != rays.shape:
                raise ValueError(f"frame shape {np.shape(frame)} differs from its skymap's {rays.shape}")
            out.append(highpass(frame, self.smooth_px).reshape(-1)[rays.pixel])
        return out[0], out[1]

    def score(self, values_a: np.ndarray, values_b: np.ndarray, height_km: float) -> float:
        """Pearson correlation of the two (high-passed) projections at ``height_km`` over the common cells."""
        cells_a, cells_b, counts = self.cells(height_km)
        if counts.shape[1] <= 10:
            return float("nan")
        means = []
        for values, cells, count in zip((values_a, values_b), (cells_a, cells_b), counts):
            ok = cells >= 0
            means.append(np.bincount(cells[ok], weights=values[ok], minlength=count.size) / count)
        return _pearson(*means)

    def estimate(self, frame_a: np.ndarray, frame_b: np.ndarray, fine_step_km: float = 1.0) -> HeightEstimate:
        """The emission height of the feature both frames show (see the module docstring)."""
        va, vb = self._values(frame_a, frame_b)
        scored = {float(h): self.score(va, vb, h) for h in HEIGHTS_KM}
        coarse = max(scored, key=lambda h: -np.inf if np.isnan(scored[h]) else scored[h])
        step = float(HEIGHTS_KM[1] - HEIGHTS_KM[0])
        for h in np.arange(coarse - step + fine_step_km, coarse + step - 1e-9, fine_step_km):
            if HEIGHTS_KM[0] <= h <= HEIGHTS_KM[-1]:
                scored.setdefault(round(float(h), 3), self.score(va, vb, h))
        heights = np.array(sorted(scored))
        scores = np.array([scored[h] for h in heights])
        if np.isnan(scores).all():  # too few cells seen by both cameras at every height
            return HeightEstimate(float("nan"), float("nan"), float("nan"), heights, scores)
        best = int(np.nanargmax(scores))
        height = float(heights[best])
        if 0 < best < len(heights) - 1 and np.isfinite(scores[best - 1 : best + 2]).all():
            (h0, h1, h2), (s0, s1, s2) = heights[best - 1 : best + 2], scores[best - 1 : best + 2]
            curvature = (s2 - s1) / (h2 - h1) - (s1 - s0) / (h1 - h0)
            if curvature < 0:  # vertex of the parabola through the three points
                num = (h1 - h0) ** 2 * (s1 - s2) - (h1 - h2) ** 2 * (s1 - s0)
                den = (h1 - h0) * (s1 - s2) - (h1 - h2) * (s1 - s0)
                height = float(np.clip(h1 - 0.5 * num / den, h0, h2))
        at_edge = best in (0, len(heights) - 1)
        if scores[best] < MIN_NCC or at_edge:
            height = float("nan")
        assumed = scored.get(ASSUMED_HEIGHT_KM)
        if assumed is None:
            assumed = self.score(va, vb, ASSUMED_HEIGHT_KM)
        return HeightEstimate(height, float(scores[best]), float(assumed), heights, scores)


def rays_projection(rays: ShellRays, grid: LatLonGrid, height_km: float) -> Projection:
    """A "mean" :class:`~tame_assets.products.projection.Projection` of the camera's used pixels onto
    ``grid`` at ``height_km`` (exact WGS84 shell; cells take the mean of the pixels whose centre falls in them)."""
    cell = grid.cell_index(*rays.lat_lon(height_km))
    ok = cell >= 0
    n = grid.shape[0] * grid.shape[1]
    counts = np.bincount(cell[ok], minlength=n).astype(np.float64)
    el_sum = np.bincount(cell[ok], weights=rays.elevation_deg[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        elevation = np.where(counts > 0, el_sum / counts, np.nan).reshape(grid.shape)
    return Projection(grid, "mean", rays.shape, rays.pixel[ok], cell[ok], counts, elevation)


def look_from(skymap: Any, lat_deg, lon_deg, height_km: float) -> tuple[np.ndarray, np.ndarray]:
    """(azimuth_deg, elevation_deg) of geodetic points at ``height_km`` seen from the skymap's site (WGS84)."""
    lat0, lon0, alt0 = float(skymap.site_lat_deg), float(skymap.site_lon_deg), float(getattr(skymap, "site_alt_m", 0.0))
    point = geodetic_to_ecef(np.asarray(lat_deg, float), np.asarray(lon_deg, float), float(height_km) * 1000.0)
    v = point - geodetic_to_ecef(lat0, lon0, alt0)
    east, north, up = (enu_to_ecef_direction(a, e, lat0, lon0) for a, e in ((90.0, 0.0), (0.0, 0.0), (0.0, 90.0)))
    az = np.degrees(np.arctan2(v @ east, v @ north)) % 360.0
    return az, np.degrees(np.arctan2(v @ up, np.hypot(v @ east, v @ north)))


def misalignment_km(sky_a: Any, sky_b: Any, lat_deg, lon_deg, true_height_km: float, height_km: float) -> np.ndarray:
    """Per emission point (``lat_deg``, ``lon_deg`` at ``true_height_km``): the distance (km, on the shell)
    between where camera A and camera B place it when both project their lines of sight to it at
    ``height_km`` — 0 at the true height; the misalignment of a mosaic made at ``height_km``."""
    placed = []
    for sky in (sky_a, sky_b):
        az, el = look_from(sky, lat_deg, lon_deg, true_height_km)
        site = (float(sky.site_lat_deg), float(sky.site_lon_deg), float(getattr(sky, "site_alt_m", 0.0)))
        placed.append(look_to_geodetic(az, el, *site, height_km))
    (lat_a, lon_a), (lat_b, lon_b) = placed
    return ground_distance_km(lat_a, lon_a, lat_b, lon_b, altitude_km=height_km)
