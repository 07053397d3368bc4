"""Earth geometry for all-sky cameras: WGS84 geodetic ↔ ECEF and the line of sight of a pixel
intersected with a shell at a given emission altitude.

Written here in numpy (no pymap3d): WGS84 semi-major axis a = 6 378 137 m, flattening
f = 1/298.257223563. Latitudes are geodetic, longitudes east-positive, heights above the
ellipsoid, all in degrees and metres unless a name says ``_km``. Azimuth is measured from
geographic north through east (0–360°), elevation from the local horizontal plane (the plane
normal to the ellipsoid at the site).

The "shell" at altitude H is the surface of constant geodetic height H (not a sphere): the ray is
first intersected with the ellipsoid of semi-axes (a + H, b + H), then refined by Newton steps on
the exact geodetic height (converges to < 1 mm). ``earth_model="sphere"`` gives the textbook
spherical-Earth answer (radius 6371 km) for comparison.
"""

from __future__ import annotations

import numpy as np

WGS84_A_M = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_B_M = WGS84_A_M * (1 - WGS84_F)
WGS84_E2 = WGS84_F * (2 - WGS84_F)
SPHERE_RADIUS_M = 6_371_000.0
EARTH_MODELS = ("wgs84", "sphere")


def geodetic_to_ecef(lat_deg, lon_deg, height_m) -> np.ndarray:
    """WGS84 geodetic (deg, deg, m) → ECEF (…, 3) in metres."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    n = WGS84_A_M / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    x = (n + height_m) * np.cos(lat) * np.cos(lon)
    y = (n + height_m) * np.cos(lat) * np.sin(lon)
    z = (n * (1 - WGS84_E2) + height_m) * np.sin(lat)
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECEF (…, 3) in metres → WGS84 (lat_deg, lon_deg in −180..180, height_m).

    Bowring's iteration (6 rounds: sub-millimetre up to thousands of km); the height formula
    p·cos φ + z·sin φ − a·√(1 − e² sin² φ) stays accurate at the poles."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1 - WGS84_E2))
    for _ in range(6):
        sin_lat = np.sin(lat)
        n = WGS84_A_M / np.sqrt(1 - WGS84_E2 * sin_lat**2)
        height = p * np.cos(lat) + z * sin_lat - WGS84_A_M * np.sqrt(1 - WGS84_E2 * sin_lat**2)
        lat = np.arctan2(z, p * (1 - WGS84_E2 * n / (n + height)))
    sin_lat = np.sin(lat)
    height = p * np.cos(lat) + z * sin_lat - WGS84_A_M * np.sqrt(1 - WGS84_E2 * sin_lat**2)
    return np.degrees(lat), np.degrees(np.arctan2(y, x)), height


def enu_to_ecef_direction(azimuth_deg, elevation_deg, lat_deg, lon_deg) -> np.ndarray:
    """Unit line-of-sight vectors (…, 3) in ECEF for (azimuth, elevation) seen from (lat, lon)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    east, north, up = np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)
    dx = -np.sin(lon) * east - np.sin(lat) * np.cos(lon) * north + np.cos(lat) * np.cos(lon) * up
    dy = np.cos(lon) * east - np.sin(lat) * np.sin(lon) * north + np.cos(lat) * np.sin(lon) * up
    dz = np.cos(lat) * north + np.sin(lat) * up
    return np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1)


def _ray_ellipsoid_distance(origin: np.ndarray, direction: np.ndarray, a: float, b: float) -> np.ndarray:
    """Distance s > 0 along unit ``direction`` from ``origin`` (inside) to the ellipsoid (a, a, b)."""
    scale = np.array([1 / a, 1 / a, 1 / b])
    o, d = origin * scale, direction * scale
    qa = np.sum(d * d, axis=-1)
    qb = 2 * np.sum(o * d, axis=-1)
    qc = np.sum(o * o, axis=-1) - 1
    return (-qb + np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)


def look_to_geodetic(
    azimuth_deg,
    elevation_deg,
    site_lat_deg: float,
    site_lon_deg: float,
    site_alt_m: float,
    altitude_km: float,
    earth_model: str = "wgs84",
) -> tuple[np.ndarray, np.ndarray]:
    """Geodetic (lat_deg, lon_deg in −180..180) where the line of sight (azimuth, elevation in
    degrees, any shape) from the site crosses the emission shell at ``altitude_km`` above the
    ellipsoid (or the sphere of radius 6371 km with ``earth_model="sphere"``).

    NaN where azimuth/elevation is NaN. Rays below the horizon still meet the shell when the
    site is below it; callers mask low elevations themselves."""
    if earth_model not in EARTH_MODELS:
        raise ValueError(f"earth_model must be one of {EARTH_MODELS}, not {earth_model!r}")
    shell_m = float(altitude_km) * 1000.0
    if not np.isfinite(shell_m) or shell_m <= site_alt_m:
        raise ValueError(f"emission altitude {altitude_km} km must be finite and above the site ({site_alt_m} m)")
    az = np.asarray(azimuth_deg, dtype=float)
    el = np.asarray(elevation_deg, dtype=float)
    if earth_model == "sphere":
        return _look_to_sphere(az, el, site_lat_deg, site_lon_deg, site_alt_m, shell_m)
    origin = geodetic_to_ecef(site_lat_deg, site_lon_deg, site_alt_m)
    direction = enu_to_ecef_direction(az, el, site_lat_deg, site_lon_deg)
    s = _ray_ellipsoid_distance(origin, direction, WGS84_A_M + shell_m, WGS84_B_M + shell_m)
    for _ in range(3):  # Newton on the exact geodetic height: dh/ds = direction · local normal
        lat, lon, height = ecef_to_geodetic(origin + s[..., None] * direction)
        normal = enu_to_ecef_direction(0.0, 90.0, lat, lon)
        s = s - (height - shell_m) / np.sum(direction * normal, axis=-1)
    lat, lon, _ = ecef_to_geodetic(origin + s[..., None] * direction)
    return lat, lon


def _look_to_sphere(az, el, site_lat_deg, site_lon_deg, site_alt_m, shell_m):
    """Spherical Earth: site at radius R + h on its geodetic latitude, local vertical = radial."""
    r_site, r_shell = SPHERE_RADIUS_M + site_alt_m, SPHERE_RADIUS_M + shell_m
    origin = r_site * enu_to_ecef_direction(0.0, 90.0, site_lat_deg, site_lon_deg)
    direction = enu_to_ecef_direction(az, el, site_lat_deg, site_lon_deg)
    s = _ray_ellipsoid_distance(origin, direction, r_shell, r_shell)
    p = origin + s[..., None] * direction
    lat = np.degrees(np.arcsin(np.clip(p[..., 2] / r_shell, -1, 1)))
    return lat, np.degrees(np.arctan2(p[..., 1], p[..., 0]))


def ground_distance_km(lat1_deg, lon1_deg, lat2_deg, lon2_deg, altitude_km: float = 0.0) -> np.ndarray:
    """Great-circle distance in km between points on a sphere of radius 6371 km + ``altitude_km``
    (haversine; for comparing nearby grid points, < 0.5 % off the ellipsoidal distance)."""
    p1, p2 = np.radians(lat1_deg), np.radians(lat2_deg)
    dlat, dlon = p2 - p1, np.radians(np.asarray(lon2_deg) - np.asarray(lon1_deg))
    h = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * (SPHERE_RADIUS_M / 1000 + altitude_km) * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
