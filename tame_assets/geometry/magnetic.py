"""Magnetic coordinates: AACGM-v2 latitude/longitude and magnetic local time (MLT) via ``aacgmv2``.

AACGM-v2 (Shepherd 2014, JGR 119) with the coefficients bundled in the ``aacgmv2`` wheel (works
offline), evaluated at the epoch of the data (the coefficients are interpolated in time by the
library; :func:`aacgm` sets them for the date given). Inputs are geodetic latitude / east longitude
in degrees and height in km above the WGS84 ellipsoid (``aacgmv2``'s default: it converts geodetic
to geocentric itself); outputs AACGM latitude and longitude in degrees (longitude −180..180) and MLT
in hours 0–24. NaN in → NaN out. Heights above 2000 km are refused by AACGM's coefficient fit.

Reference values (tested): Ny-Ålesund 78.92 N 11.93 E, 110 km, 2010-12-02 18:00 UT → AACGM latitude
76.42°, MLT 20.49 h; the ``aacgmv2`` test suite's 60 N 0 E 300 km 2015-01-01 → 58.2268°, 81.1613°.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

#: Highest height (km) the AACGM-v2 coefficients are fitted for.
AACGM_MAX_HEIGHT_KM = 2000.0
#: Spacing of the UT grid :func:`zenith_mlt` evaluates MLT on before interpolating to each time.
MLT_GRID_S = 600


def _as_datetime(when) -> dt.datetime:
    if isinstance(when, np.datetime64):
        return when.astype("datetime64[us]").astype(dt.datetime)
    if isinstance(when, dt.datetime):
        return when.replace(tzinfo=None)
    if isinstance(when, dt.date):
        return dt.datetime.combine(when, dt.time())
    raise TypeError(f"a time must be a datetime, date or numpy datetime64, not {type(when).__name__}")


def aacgm(lat_deg, lon_deg, height_km, when) -> tuple[np.ndarray, np.ndarray]:
    """AACGM-v2 (mlat_deg, mlon_deg) of geodetic points (any shape; NaN where the input is NaN or
    AACGM is undefined, e.g. near the magnetic equator) at ``when`` (one time)."""
    import aacgmv2

    lat = np.asarray(lat_deg, dtype=float)
    lon = np.broadcast_to(np.asarray(lon_deg, dtype=float), lat.shape)
    height = np.broadcast_to(np.asarray(height_km, dtype=float), lat.shape)
    if np.nanmax(height, initial=0.0) > AACGM_MAX_HEIGHT_KM:
        raise ValueError(f"AACGM-v2 is fitted up to {AACGM_MAX_HEIGHT_KM:.0f} km, not {np.nanmax(height):.0f} km")
    mlat = np.full(lat.shape, np.nan)
    mlon = np.full(lat.shape, np.nan)
    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(height)
    if ok.any():
        out_lat, out_lon, _ = aacgmv2.convert_latlon_arr(
            lat[ok], lon[ok], height[ok], _as_datetime(when), method_code="G2A"
        )
        mlat[ok], mlon[ok] = out_lat, out_lon
    return mlat, mlon


def mlt_hours(mlon_deg, when) -> np.ndarray:
    """Magnetic local time (h, 0–24) of AACGM longitudes at one time or one time per value."""
    import aacgmv2

    mlon = np.asarray(mlon_deg, dtype=float)
    times = [_as_datetime(t) for t in when] if isinstance(when, (list, tuple, np.ndarray)) else _as_datetime(when)
    out = np.asarray(aacgmv2.convert_mlt(np.atleast_1d(mlon), times, m2a=False), dtype=float)
    return out.reshape(mlon.shape)


def zenith_mlt(lat_deg: float, lon_deg: float, height_km: float, times) -> tuple[np.ndarray, np.ndarray]:
    """(mlat_deg, mlt_h) of a station's zenith at ``height_km`` for every time (datetime64 array or
    datetimes; NaT → NaN), vectorised for a month of frames: the AACGM position once per UT day
    (the coefficients' secular change within a day moves it < 0.001°), MLT on a
    :data:`MLT_GRID_S` grid spanning the times, unwrapped and interpolated linearly to each time
    (within 0.002 h of a direct per-frame evaluation, see tests)."""
    t = np.asarray(times, dtype="datetime64[us]")
    mlat = np.full(t.shape, np.nan)
    mlt = np.full(t.shape, np.nan)
    ok = ~np.isnat(t)
    if not ok.any():
        return mlat, mlt
    days = t[ok].astype("datetime64[D]")
    mlon_of = np.full(t.shape, np.nan)
    for day in np.unique(days):
        lat, lon = aacgm([lat_deg], [lon_deg], [height_km], day)
        sel = np.zeros(t.shape, dtype=bool)
        sel[ok] = days == day
        mlat[sel], mlon_of[sel] = lat[0], lon[0]
    if np.isnan(mlon_of[ok]).all():
        return mlat, mlt
    step = np.timedelta64(MLT_GRID_S, "s")
    start = t[ok].min().astype("datetime64[s]")
    grid = np.arange(start, t[ok].max().astype("datetime64[s]") + 2 * step, step)
    # MLT = (mlon − mlon of the subsolar point)/15 + 12: evaluate it for mlon 0 on the grid, then add mlon/15.
    base = np.unwrap(mlt_hours(np.zeros(grid.size), grid.astype(dt.datetime)), period=24.0)
    seconds = (t[ok] - start).astype("timedelta64[us]").astype(np.int64) / 1e6
    grid_s = (grid - start).astype(np.int64)
    mlt[ok] = (np.interp(seconds, grid_s, base) + mlon_of[ok] / 15.0) % 24.0
    return mlat, mlt


def skymap_aacgm(skymap, when) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel AACGM (mlat_deg, mlon_deg) of a skymap's ``lat_deg``/``lon_deg`` at its emission
    altitude ``altitude_km`` at ``when`` (NaN where the skymap's latitude is NaN)."""
    return aacgm(skymap.lat_deg, skymap.lon_deg, float(skymap.altitude_km), when)


def magnetic_azimuth_deg(skymap, mlat_deg: np.ndarray, mlon_deg: np.ndarray) -> float:
    """Geographic azimuth (deg from north through east) of the AACGM magnetic meridian at the
    skymap's zenith, pointing to increasing AACGM latitude: the direction along which AACGM
    longitude stays constant (perpendicular to its gradient, fitted on the emission shell over the
    pixels within 3 of the zenith pixel)."""
    from tame_assets.geometry.earth import ground_distance_km

    el = np.where(np.isfinite(mlat_deg), skymap.elevation_deg, -np.inf)
    r, c = np.unravel_index(int(np.argmax(el)), el.shape)
    lat, lon = skymap.lat_deg, skymap.lon_deg
    rows, cols = slice(max(r - 3, 0), r + 4), slice(max(c - 3, 0), c + 4)
    mlon_unwrapped = (mlon_deg[rows, cols] - mlon_deg[r, c] + 180.0) % 360.0 - 180.0
    la, lo = lat[rows, cols].ravel(), lon[rows, cols].ravel()
    ml, mo = mlat_deg[rows, cols].ravel(), mlon_unwrapped.ravel()
    keep = np.isfinite(la) & np.isfinite(lo) & np.isfinite(ml) & np.isfinite(mo)
    la, lo, ml, mo = la[keep], lo[keep], ml[keep], mo[keep]
    north = np.sign(la - lat[r, c]) * ground_distance_km(lat[r, c], lon[r, c], la, lon[r, c])
    east = np.sign(((lo - lon[r, c] + 180) % 360) - 180) * ground_distance_km(la, lon[r, c], la, lo)
    design = np.column_stack([east, north, np.ones_like(east)])
    (lon_e, lon_n, _), *_ = np.linalg.lstsq(design, mo, rcond=None)
    (lat_e, lat_n, _), *_ = np.linalg.lstsq(design, ml, rcond=None)
    along_e, along_n = -lon_n, lon_e  # perpendicular to grad(mlon)
    if along_e * lat_e + along_n * lat_n < 0:
        along_e, along_n = -along_e, -along_n
    return float(np.degrees(np.arctan2(along_e, along_n)) % 360.0)
