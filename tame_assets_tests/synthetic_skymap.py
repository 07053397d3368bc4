"""An ideal equidistant fisheye skymap for tests and benchmarks (geometry independent of the product code).

Zenith at the image centre, zenith angle proportional to the distance from it (90° at radius
``size / 2``), azimuth clockwise from north with north towards the top of the image rotated by
``rotation_deg``; lat/lon of each look direction on a spherical Earth at ``altitude_km``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class IdealSkymap:
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    altitude_km: float
    site_lat_deg: float
    site_lon_deg: float


def ideal_skymap(
    size: int = 64,
    site_lat_deg: float = 62.4,
    site_lon_deg: float = -145.2,
    altitude_km: float = 110.0,
    rotation_deg: float = 0.0,
    min_elevation_deg: float = 10.0,
) -> IdealSkymap:
    c = (size - 1) / 2
    r_idx, c_idx = np.mgrid[0:size, 0:size].astype(float)
    dy, dx = c - r_idx, c_idx - c  # up, right
    zenith_angle = np.hypot(dx, dy) / (size / 2) * 90.0
    elevation = 90.0 - zenith_angle
    azimuth = (np.degrees(np.arctan2(dx, dy)) + rotation_deg) % 360.0
    # Earth-central angle between the site and the point at altitude seen at this elevation.
    el = np.radians(elevation)
    psi = np.arccos(np.clip(EARTH_RADIUS_KM * np.cos(el) / (EARTH_RADIUS_KM + altitude_km), -1, 1)) - el
    lat0, lon0, az = np.radians(site_lat_deg), np.radians(site_lon_deg), np.radians(azimuth)
    lat = np.arcsin(np.sin(lat0) * np.cos(psi) + np.cos(lat0) * np.sin(psi) * np.cos(az))
    lon = lon0 + np.arctan2(np.sin(az) * np.sin(psi) * np.cos(lat0), np.cos(psi) - np.sin(lat0) * np.sin(lat))
    outside = elevation < min_elevation_deg
    out = {}
    for name, arr in (
        ("azimuth_deg", azimuth),
        ("elevation_deg", elevation),
        ("lat_deg", np.degrees(lat)),
        ("lon_deg", (np.degrees(lon) + 180.0) % 360.0 - 180.0),
    ):
        out[name] = np.where(outside, np.nan, arr)
    return IdealSkymap(altitude_km=altitude_km, site_lat_deg=site_lat_deg, site_lon_deg=site_lon_deg, **out)
