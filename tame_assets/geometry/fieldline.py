"""Magnetic footprints: a point in space traced along the geomagnetic field down (or up) to a given
geodetic height, with two independent tracers.

- :func:`trace_igrf` (ours, the one the pipeline uses): IGRF from ``ppigrf`` (bundled coefficients),
  classical RK4 on the unit field direction in Earth-centred Earth-fixed (ECEF) km, all points at
  once; the step is a Newton step on the WGS84 geodetic height (gap / rate of height change along
  the line, at most ``max_step_km``), repeated until the height is within 1 m of the target, so
  the last step ends on the shell (no interpolation). One IGRF epoch per call (the times'
  median; the secular change within a day moves a LEO footprint by metres).
- :func:`trace_geopack` (the reference): ``geopack`` 1.0.10's IGRF-13 (``igrf_gsm``) plus, by
  default, its T89 external field (``iopt`` 1, quietest), integrated by geopack's own adaptive
  Runge–Kutta–Merson stepper (``geopack.step``) in GSM at fixed 0.002 Re steps (12.7 km) until the
  geodetic height crosses the target (from above or below), then linear interpolation between the
  last two points.
  We do not call ``geopack.trace`` itself: from low Earth orbit it takes a first step of 0.5 Re
  (its "moving outward" test treats an inward start as outward) and, in 1.0.10, returns the first
  point below ``r0`` without the interpolation its docstring describes (``xr`` is reset to the
  current point each loop). ``external=None`` zeroes the external field (IGRF only) by swapping
  geopack's external-model dispatcher for a zero field during the call (geopack keeps its state
  in module globals, so calls are serialised with a lock).

Agreement (tests): for a satellite at 800 km above the sample station GILL (56.4 N, 94.6 W) and
NYA the two footprints at 110 km agree within 10 m with IGRF only (measured ≤ 1 m) and within
1 km with T89 (quiet) added in geopack (measured 0.13–0.30 km: the external field's effect at LEO),
:data:`TRACER_TOLERANCE_KM`. Inputs: geodetic latitude / east longitude (degrees),
heights in km above WGS84, times naive UTC. ``hemisphere="north"`` follows the field vector
(field lines enter the Earth in the north), ``"south"`` goes against it.
"""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from tame_assets.geometry.earth import ecef_to_geodetic, enu_to_ecef_direction, geodetic_to_ecef

#: Earth radius geopack and IGRF use as their length unit (km).
RE_KM = 6371.2
HEMISPHERES = ("north", "south")
#: Footprint agreement of the two tracers the tests hold them to (km): IGRF only / with T89.
TRACER_TOLERANCE_KM = {"igrf": 0.01, "t89": 1.0}
_GEOPACK_LOCK = threading.Lock()


def _check(hemisphere: str, target_km: float) -> None:
    if hemisphere not in HEMISPHERES:
        raise ValueError(f"hemisphere must be one of {HEMISPHERES}, not {hemisphere!r}")
    if not 0.0 <= float(target_km) <= 5000.0:
        raise ValueError(f"footprint height must be between 0 and 5000 km, not {target_km!r}")


def _epoch(when) -> dt.datetime:
    times = np.atleast_1d(np.asarray(when, dtype="datetime64[us]"))
    times = times[~np.isnat(times)]
    if not times.size:
        raise ValueError("no valid time to take the IGRF epoch from")
    return np.sort(times)[times.size // 2].astype(dt.datetime)


@lru_cache(maxsize=16)
def _igrf_coefficients(epoch: dt.datetime):
    """``ppigrf``'s IGRF coefficients interpolated to ``epoch`` (as ``ppigrf.igrf_gc`` does it, read
    and interpolated once per epoch instead of per call): (g·h row (1, 2K), n, m, keys)."""
    from ppigrf import ppigrf as pp

    g, h = pp.read_shc(pp.shc_fn)
    date = np.array([epoch])
    index = g.index.union(date)
    g = g.reindex(index).groupby(index).first().interpolate(method="time").loc[date, :]
    h = h.reindex(index).groupby(index).first().interpolate(method="time").loc[date, :]
    n, m = np.array(list(g.columns)).T
    return np.hstack((g.values, h.values)), n.reshape(1, -1), m.reshape(1, -1), g.keys()


def igrf_gc(r_km, theta_deg, phi_deg, epoch: dt.datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IGRF (Br, Btheta, Bphi) in nT at geocentric radius (km), colatitude and east longitude (deg):
    ``ppigrf.igrf_gc``'s formulas and Legendre functions with the coefficients cached per epoch
    (the same numbers, tested; ~10× faster for repeated calls)."""
    from ppigrf import ppigrf as pp

    gh, n, m, keys = _igrf_coefficients(epoch)
    r, theta, phi = (np.asarray(x, dtype=float).reshape(-1, 1) for x in (r_km, theta_deg, phi_deg))
    P, dP = pp.get_legendre(theta, keys)
    cosmphi, sinmphi = np.cos(np.radians(phi) * m), np.sin(np.radians(phi) * m)
    nn, mm = np.tile(n, 2), np.tile(m, 2)
    ratio = pp.RE / r
    br = ((ratio ** (nn + 2)) * (nn + 1) * np.hstack((P * cosmphi, P * sinmphi))) @ gh.T
    bt = (-(ratio ** (nn + 1)) * np.hstack((dP * cosmphi, dP * sinmphi)) * ratio) @ gh.T
    bp = (-(ratio ** (nn + 1)) * mm * np.hstack((-P * sinmphi, P * cosmphi)) * ratio / np.sin(np.radians(theta))) @ gh.T
    return br[:, 0], bt[:, 0], bp[:, 0]


def igrf_ecef(points_km: np.ndarray, when: dt.datetime) -> np.ndarray:
    """IGRF field (…, 3) in nT, ECEF components, at ECEF positions (…, 3) in km (:func:`igrf_gc`)."""
    p = np.asarray(points_km, dtype=float).reshape(-1, 3)
    r = np.linalg.norm(p, axis=1)
    theta = np.arccos(np.clip(p[:, 2] / r, -1, 1))
    phi = np.arctan2(p[:, 1], p[:, 0])
    br, bt, bp = igrf_gc(r, np.degrees(theta), np.degrees(phi), when)
    st, ct, sp, cp = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    bx = br * st * cp + bt * ct * cp - bp * sp
    by = br * st * sp + bt * ct * sp + bp * cp
    bz = br * ct - bt * st
    return np.stack([bx, by, bz], axis=-1).reshape(np.shape(points_km))


def trace_igrf(
    lat_deg,
    lon_deg,
    height_km,
    when,
    target_km: float = 110.0,
    hemisphere: str = "north",
    max_step_km: float = 500.0,
    max_steps: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Geodetic (lat_deg, lon_deg) where the IGRF field line through each point crosses ``target_km``
    (see the module docstring); NaN where it does not within ``max_steps`` steps or the input is NaN.
    ``when``: one time or one per point (the median is the IGRF epoch)."""
    _check(hemisphere, target_km)
    epoch = _epoch(when)
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=float))
    lon = np.broadcast_to(np.asarray(lon_deg, dtype=float), lat.shape)
    height = np.broadcast_to(np.asarray(height_km, dtype=float), lat.shape)
    p = geodetic_to_ecef(lat, lon, height * 1000.0).reshape(-1, 3) / 1000.0
    sign = 1.0 if hemisphere == "north" else -1.0
    out = np.full(p.shape[0], np.nan), np.full(p.shape[0], np.nan)
    active = np.flatnonzero(np.isfinite(p).all(axis=1))

    def direction(q):
        b = igrf_ecef(q, epoch)
        return sign * b / np.linalg.norm(b, axis=-1, keepdims=True)

    for _ in range(max_steps):
        if not active.size:
            break
        q = p[active]
        glat, glon, gh = ecef_to_geodetic(q * 1000.0)
        gap = gh / 1000.0 - target_km
        done = np.abs(gap) < 1e-3
        out[0][active[done]], out[1][active[done]] = glat[done], glon[done]
        active, q, gap = active[~done], q[~done], gap[~done]
        glat, glon = glat[~done], glon[~done]
        if not active.size:
            break
        k1 = direction(q)
        rate = np.sum(k1 * enu_to_ecef_direction(0.0, 90.0, glat, glon), axis=-1)  # d(height)/ds
        newton = -gap / np.where(np.abs(rate) > 0.05, rate, np.nan)
        ds = np.where(np.isfinite(newton), np.clip(newton, -max_step_km, max_step_km), max_step_km)
        ds = ds[:, None]
        k2 = direction(q + 0.5 * ds * k1)
        k3 = direction(q + 0.5 * ds * k2)
        k4 = direction(q + ds * k3)
        p[active] = q + ds / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return out[0].reshape(lat.shape), out[1].reshape(lat.shape)


def _zero_field(exname, parmod, ps, x, y, z):
    return 0.0, 0.0, 0.0


@contextmanager
def _geopack(external: str | None):
    """geopack's module with the external field ``external`` ("t89", "t96", …) or zeroed (None)."""
    import geopack.geopack as gp

    with _GEOPACK_LOCK:
        original = gp.call_external_model
        if external is None:
            gp.call_external_model = _zero_field
        try:
            yield gp
        finally:
            gp.call_external_model = original


def trace_geopack(
    lat_deg,
    lon_deg,
    height_km,
    when,
    target_km: float = 110.0,
    hemisphere: str = "north",
    external: str | None = "t89",
    parmod=1,
    step_re: float = 0.002,
    max_steps: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """The reference footprint tracer (geopack 1.0.10, see the module docstring): geodetic
    (lat_deg, lon_deg) at ``target_km``; one point at a time (pure Python, ~0.1 s per LEO point)."""
    _check(hemisphere, target_km)
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=float))
    lon = np.broadcast_to(np.asarray(lon_deg, dtype=float), lat.shape)
    height = np.broadcast_to(np.asarray(height_km, dtype=float), lat.shape)
    times = np.broadcast_to(np.asarray(when, dtype="datetime64[us]"), lat.shape)
    out_lat, out_lon = np.full(lat.shape, np.nan), np.full(lat.shape, np.nan)
    # geopack.step moves by −ds along the field direction: ds < 0 follows B (north).
    ds = -step_re if hemisphere == "north" else step_re
    with _geopack(external) as gp:
        for i in np.ndindex(lat.shape):
            if not (np.isfinite(lat[i]) and np.isfinite(lon[i]) and np.isfinite(height[i]) and not np.isnat(times[i])):
                continue
            ut = (times[i] - np.datetime64("1970-01-01T00:00:00", "us")) / np.timedelta64(1, "s")
            gp.recalc(float(ut))
            x0 = geodetic_to_ecef(lat[i], lon[i], height[i] * 1000.0) / (RE_KM * 1000.0)
            x, y, z = gp.geogsm(*x0, 1)
            prev, prev_h, side = None, None, np.sign(height[i] - target_km)
            for _ in range(max_steps):
                geo = np.array(gp.geogsm(x, y, z, -1)) * RE_KM * 1000.0
                glat, glon, gh = ecef_to_geodetic(geo)
                h = gh / 1000.0
                if np.sign(h - target_km) != side:  # crossed the target height (from above or below)
                    if prev is None:
                        break  # started on the target
                    f = (prev_h - target_km) / (prev_h - h)
                    point = prev + f * (geo - prev)
                    flat, flon, _ = ecef_to_geodetic(point)
                    out_lat[i], out_lon[i] = flat, flon
                    break
                prev, prev_h = geo, h
                stepped = gp.step(x, y, z, ds, 1e-4, parmod, external or "t89", "igrf")
                if stepped is None:
                    break
                x, y, z = stepped
    return out_lat, out_lon
