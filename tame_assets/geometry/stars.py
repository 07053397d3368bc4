"""Bright stars as a check (and calibration) of camera geometry.

Star directions: J2000 catalogue positions (Yale Bright Star values, to 0.001 h / 0.001°)
precessed to the date (IAU 1976 ζ, z, θ), Greenwich mean sidereal time from UTC (UT1 ≈ UTC,
< 1 s), local azimuth/elevation on the WGS84 normal, plus Bennett's mean refraction. Nutation and
aberration (≤ 0.01°) are ignored: good to ~0.02°, far below an all-sky pixel (0.3–0.7°).

:func:`match_stars` finds each predicted star's nearest point source in an image (high-pass
significance peak, 3×3 centroid) so that :func:`tame_assets.geometry.lens.fit_lens_model` can fit
a lens to them, or a skymap can be checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

#: name → (right ascension J2000 [h], declination J2000 [deg], visual magnitude)
BRIGHT_STARS: dict[str, tuple[float, float, float]] = {
    "Sirius": (6.7525, -16.716, -1.46),
    "Arcturus": (14.2610, 19.182, -0.05),
    "Vega": (18.6156, 38.784, 0.03),
    "Capella": (5.2782, 45.998, 0.08),
    "Rigel": (5.2423, -8.202, 0.13),
    "Procyon": (7.6550, 5.225, 0.34),
    "Betelgeuse": (5.9195, 7.407, 0.50),
    "Altair": (19.8464, 8.868, 0.76),
    "Aldebaran": (4.5987, 16.509, 0.86),
    "Spica": (13.4199, -11.161, 0.97),
    "Pollux": (7.7553, 28.026, 1.14),
    "Deneb": (20.6905, 45.280, 1.25),
    "Regulus": (10.1395, 11.967, 1.35),
    "Castor": (7.5767, 31.888, 1.58),
    "Elnath": (5.4382, 28.608, 1.65),
    "Alioth": (12.9005, 55.960, 1.77),
    "Dubhe": (11.0621, 61.751, 1.79),
    "Mirfak": (3.4054, 49.861, 1.79),
    "Alkaid": (13.7923, 49.313, 1.86),
    "Menkalinan": (5.9921, 44.947, 1.90),
    "Polaris": (2.5302, 89.264, 1.98),
    "Hamal": (2.1196, 23.463, 2.00),
    "Mizar": (13.3988, 54.925, 2.04),
    "Kochab": (14.8451, 74.155, 2.08),
    "Rasalhague": (17.5822, 12.560, 2.08),
    "Algol": (3.1361, 40.956, 2.09),
    "Almach": (2.0650, 42.330, 2.10),
    "Denebola": (11.8177, 14.572, 2.14),
    "Gamma Cas": (0.9451, 60.717, 2.15),
    "Alpheratz": (0.1398, 29.091, 2.06),
    "Sadr": (20.3705, 40.257, 2.23),
    "Eltanin": (17.9434, 51.489, 2.23),
    "Schedar": (0.6751, 56.537, 2.24),
    "Mirach": (1.1622, 35.621, 2.05),
    "Caph": (0.1529, 59.150, 2.28),
    "Merak": (11.0307, 56.382, 2.37),
    "Alderamin": (21.3096, 62.586, 2.45),
    "Phecda": (11.8972, 53.695, 2.44),
    "Altais": (19.2093, 67.662, 3.07),
    "Pherkad": (15.3455, 71.834, 3.00),
    "Muscida": (8.5044, 60.718, 3.35),
}

_J2000 = datetime(2000, 1, 1, 12)


def _precess(ra_deg: np.ndarray, dec_deg: np.ndarray, when: datetime) -> tuple[np.ndarray, np.ndarray]:
    """J2000 → mean equator and equinox of ``when`` (IAU 1976 precession angles)."""
    t = (when - _J2000).total_seconds() / 86400 / 36525
    arcsec = np.pi / 180 / 3600
    zeta = (2306.2181 * t + 0.30188 * t**2 + 0.017998 * t**3) * arcsec
    z = (2306.2181 * t + 1.09468 * t**2 + 0.018203 * t**3) * arcsec
    theta = (2004.3109 * t - 0.42665 * t**2 - 0.041833 * t**3) * arcsec
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    a = np.cos(dec) * np.sin(ra + zeta)
    b = np.cos(theta) * np.cos(dec) * np.cos(ra + zeta) - np.sin(theta) * np.sin(dec)
    c = np.sin(theta) * np.cos(dec) * np.cos(ra + zeta) + np.cos(theta) * np.sin(dec)
    return np.degrees(np.arctan2(a, b) + z) % 360.0, np.degrees(np.arcsin(np.clip(c, -1, 1)))


def star_directions(
    when_utc: datetime, lat_deg: float, lon_deg: float, max_magnitude: float = 2.5
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, azimuth_deg, apparent elevation_deg) of the :data:`BRIGHT_STARS` not fainter than
    ``max_magnitude`` seen at naive-UTC ``when_utc`` from (lat, lon east-positive), all of them
    (including those below the horizon; filter on elevation yourself)."""
    names = [n for n, (_, _, mag) in BRIGHT_STARS.items() if mag <= max_magnitude]
    ra_h = np.array([BRIGHT_STARS[n][0] for n in names])
    dec = np.array([BRIGHT_STARS[n][1] for n in names])
    ra, dec = _precess(ra_h * 15.0, dec, when_utc)
    days = (when_utc - _J2000).total_seconds() / 86400
    gmst = (280.46061837 + 360.98564736629 * days) % 360.0
    hour_angle, lat, d = np.radians(gmst + lon_deg - ra), np.radians(lat_deg), np.radians(dec)
    el = np.degrees(np.arcsin(np.sin(lat) * np.sin(d) + np.cos(lat) * np.cos(d) * np.cos(hour_angle)))
    az = (
        np.degrees(
            np.arctan2(
                -np.sin(hour_angle) * np.cos(d), np.cos(lat) * np.sin(d) - np.sin(lat) * np.cos(d) * np.cos(hour_angle)
            )
        )
        % 360.0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        refraction = np.where(el > -1.0, 1.0 / np.tan(np.radians(el + 7.31 / (el + 4.4))) / 60.0, 0.0)
    return names, az, el + refraction


@dataclass(frozen=True)
class StarMatch:
    """A star found in an image: pixel (row, col, float centroid), its true direction, name, S/N."""

    row: float
    col: float
    azimuth_deg: float
    elevation_deg: float
    name: str
    significance: float


def point_source_significance(image: np.ndarray) -> np.ndarray:
    """Image minus its 7×7 median, in units of the robust noise (1.4826·MAD) of the lit pixels."""
    img = np.asarray(image, dtype=float)
    high_pass = img - median_filter_7x7(image)
    lit = img > 0
    mad = np.median(np.abs(high_pass[lit] if lit.any() else high_pass)) * 1.4826
    return high_pass / (mad if mad > 0 else 1.0)


def median_filter_7x7(image: np.ndarray, rows_per_block: int = 64) -> np.ndarray:
    """``scipy.ndimage.median_filter(image, size=7)`` (edges mirrored) as float. Integer images (the
    cameras' 8/16-bit counts) are filtered in their own type by a partial sort of each pixel's 49
    neighbours, ~4× faster than scipy's rank filter and equal to it; other types go to scipy."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype.kind not in "ui":
        from scipy.ndimage import median_filter

        return median_filter(np.asarray(image, dtype=float), size=7)
    padded = np.pad(image, 3, mode="symmetric")  # scipy's "reflect": the edge pixel repeated
    windows = np.lib.stride_tricks.sliding_window_view(padded, (7, 7))
    out = np.empty(image.shape, dtype=float)
    for start in range(0, image.shape[0], rows_per_block):  # bounded memory: 49 values per pixel per block
        block = windows[start : start + rows_per_block].reshape(-1, image.shape[1], 49)
        out[start : start + rows_per_block] = np.partition(block, 24, axis=-1)[..., 24]
    return out


def match_stars(
    image: np.ndarray,
    when_utc: datetime,
    lat_deg: float,
    lon_deg: float,
    to_pixel,
    min_elevation_deg: float = 12.0,
    window_px: int = 3,
    min_significance: float = 6.0,
    max_magnitude: float = 2.5,
    significance: np.ndarray | None = None,
) -> list[StarMatch]:
    """Stars found near where ``to_pixel(azimuth_deg, elevation_deg) → (rows, cols)`` predicts them:
    the significance peak within ±``window_px`` of the prediction if ≥ ``min_significance``
    (``significance``: :func:`point_source_significance` of ``image`` if already computed)."""
    sig = point_source_significance(image) if significance is None else significance
    names, az, el = star_directions(when_utc, lat_deg, lon_deg, max_magnitude)
    up = el >= min_elevation_deg
    rows, cols = to_pixel(az[up], el[up])
    n_rows, n_cols = sig.shape
    found = []
    for r, c, a, e, name in zip(rows, cols, az[up], el[up], np.asarray(names)[up]):
        if not (np.isfinite(r) and np.isfinite(c)):
            continue
        ri, ci = int(round(r)), int(round(c))
        if not (window_px + 1 <= ri < n_rows - window_px - 1 and window_px + 1 <= ci < n_cols - window_px - 1):
            continue
        win = sig[ri - window_px : ri + window_px + 1, ci - window_px : ci + window_px + 1]
        k = np.unravel_index(np.argmax(win), win.shape)
        if win[k] < min_significance:
            continue
        pr, pc = ri - window_px + k[0], ci - window_px + k[1]
        weights = np.clip(sig[pr - 1 : pr + 2, pc - 1 : pc + 2], 0, None)
        dy, dx = np.mgrid[-1:2, -1:2]
        total = weights.sum()
        found.append(
            StarMatch(
                pr + (weights * dy).sum() / total,
                pc + (weights * dx).sum() / total,
                float(a),
                float(e),
                str(name),
                float(win[k]),
            )
        )
    return found


def calibrate_lens(
    frames,
    lat_deg: float,
    lon_deg: float,
    initial_lens,
    projection: str = "equisolid",
    windows_px: tuple[int, ...] = (6, 4, 3),
    max_magnitude: float = 2.5,
):
    """Refine a lens model on stars: for each search window (px, shrinking), match stars in every
    ``(image, when_utc)`` of ``frames`` with the current model, fit centre/radius/rotation/east
    side (:func:`~tame_assets.geometry.lens.fit_lens_model`), drop matches worse than
    max(3 × median, 0.5°) and refit. Returns (LensFit, matches used)."""
    from tame_assets.geometry.lens import fit_lens_model

    frames = [(point_source_significance(image), when) for image, when in frames]
    lens, fit, used = initial_lens, None, []
    for window in windows_px:
        matches = [
            m
            for sig, when in frames
            for m in match_stars(
                sig,
                when,
                lat_deg,
                lon_deg,
                lens.look_to_pixel,
                window_px=window,
                max_magnitude=max_magnitude,
                significance=sig,
            )
        ]
        if len(matches) < 8:
            raise ValueError(
                f"only {len(matches)} stars matched within {window} px; initial lens too far off or no clear frames"
            )
        points = np.array([(m.row, m.col, m.azimuth_deg, m.elevation_deg) for m in matches])
        fit = fit_lens_model(*points.T, lens.image_shape, projection, initial=lens)
        keep = fit.residual_deg <= max(3 * np.median(fit.residual_deg), 0.5)
        fit = fit_lens_model(*points[keep].T, lens.image_shape, projection, initial=fit.lens)
        used = [m for m, k in zip(matches, keep) if k]
        lens = fit.lens
    return fit, used
