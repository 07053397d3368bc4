"""Skymap access by duck typing and nearest-pixel look-up on the emission shell.

A skymap is any object with H×W arrays ``azimuth_deg``, ``elevation_deg``, ``lat_deg``, ``lon_deg``
(degrees; NaN outside the field of view) and ``altitude_km`` (the emission altitude the lat/lon were
computed at), e.g. :class:`tame_assets.geometry.skymap.Skymap`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Mean Earth radius (km) for distances on the emission shell.
EARTH_RADIUS_KM = 6371.0

SKYMAP_ARRAYS = ("azimuth_deg", "elevation_deg", "lat_deg", "lon_deg")


@dataclass(frozen=True)
class SkymapArrays:
    """The four H×W float64 arrays of a skymap and its emission altitude (km)."""

    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    altitude_km: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.lat_deg.shape

    @property
    def valid(self) -> np.ndarray:
        """Pixels with finite azimuth, elevation, latitude and longitude (inside the field of view)."""
        return (
            np.isfinite(self.lat_deg)
            & np.isfinite(self.lon_deg)
            & np.isfinite(self.azimuth_deg)
            & np.isfinite(self.elevation_deg)
        )

    @property
    def zenith_pixel(self) -> tuple[int, int]:
        """(row, col) of the highest-elevation pixel."""
        el = np.where(self.valid, self.elevation_deg, -np.inf)
        r, c = np.unravel_index(int(np.argmax(el)), el.shape)
        return int(r), int(c)


def skymap_arrays(skymap: Any) -> SkymapArrays:
    """Read and check the skymap attributes; ValueError naming the missing/mismatched attribute."""
    if isinstance(skymap, SkymapArrays):
        return skymap
    arrays = {}
    for name in SKYMAP_ARRAYS:
        if not hasattr(skymap, name):
            raise ValueError(
                f"skymap {type(skymap).__name__} has no attribute {name!r} "
                f"(needs {', '.join(SKYMAP_ARRAYS)}, altitude_km)"
            )
        arrays[name] = np.asarray(getattr(skymap, name), dtype=np.float64)
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1 or arrays["lat_deg"].ndim != 2:
        raise ValueError(f"skymap arrays must be equal 2-D shapes, got {shapes}")
    altitude = float(getattr(skymap, "altitude_km", np.nan))
    if not np.isfinite(altitude):
        raise ValueError(f"skymap {type(skymap).__name__} has no finite altitude_km")
    if not np.isfinite(arrays["lat_deg"]).any():
        raise ValueError("skymap has no pixel with a finite latitude")
    return SkymapArrays(altitude_km=altitude, **arrays)


def shell_xyz(lat_deg: np.ndarray, lon_deg: np.ndarray, altitude_km: float) -> np.ndarray:
    """Cartesian (…, 3) positions (km) on a sphere of radius Earth + ``altitude_km``."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    r = EARTH_RADIUS_KM + altitude_km
    return np.stack([r * np.cos(lat) * np.cos(lon), r * np.cos(lat) * np.sin(lon), r * np.sin(lat)], axis=-1)


def footprint_km(xyz: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per pixel, the largest distance (km) to its valid 4-connected neighbours (0 for an isolated pixel)."""
    out = np.zeros(valid.shape)
    for axis in (0, 1):
        step = np.linalg.norm(np.diff(xyz, axis=axis), axis=-1)
        both = valid.take(range(1, valid.shape[axis]), axis=axis) & valid.take(range(valid.shape[axis] - 1), axis=axis)
        step = np.where(both, step, 0.0)
        lower = [slice(None)] * 2
        upper = [slice(None)] * 2
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        out[tuple(lower)] = np.maximum(out[tuple(lower)], step)
        out[tuple(upper)] = np.maximum(out[tuple(upper)], step)
    return out


class PixelLocator:
    """Nearest field-of-view pixel to geographic points on the emission shell.

    A point is inside the field of view when its distance to the nearest pixel centre is at most that
    pixel's footprint size: the largest distance from it to its valid 4-connected image neighbours
    (the radial spacing, which grows towards the horizon).
    """

    def __init__(self, skymap: Any):
        from scipy.spatial import cKDTree

        self.skymap = skymap_arrays(skymap)
        valid = self.skymap.valid
        self.flat_index = np.flatnonzero(valid)
        xyz = shell_xyz(self.skymap.lat_deg, self.skymap.lon_deg, self.skymap.altitude_km)
        self.tree = cKDTree(xyz.reshape(-1, 3)[self.flat_index])
        self.spacing_km = footprint_km(xyz, valid).reshape(-1)[self.flat_index]

    def nearest(self, lat_deg, lon_deg) -> tuple[np.ndarray, np.ndarray]:
        """Flat pixel index (-1 outside the field of view) and distance (km) for each point."""
        lat, lon = np.broadcast_arrays(np.asarray(lat_deg, float), np.asarray(lon_deg, float))
        xyz = shell_xyz(lat.ravel(), lon.ravel(), self.skymap.altitude_km)
        finite = np.isfinite(xyz).all(axis=1)
        dist = np.full(lat.size, np.inf)
        which = np.zeros(lat.size, dtype=np.int64)
        if finite.any():
            dist[finite], which[finite] = self.tree.query(xyz[finite])
        inside = finite & (dist <= self.spacing_km[which])
        flat = np.where(inside, self.flat_index[which], -1)
        return flat.reshape(lat.shape), dist.reshape(lat.shape)
