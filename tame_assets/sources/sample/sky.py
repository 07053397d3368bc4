"""Synthetic all-sky images for the embedded sample archive (the six OATH classes).

SAMPLE DATA, not observations. Everything is vectorised numpy on the unit disk of a fisheye
image (zenith at the centre, horizon at radius 1, pixels outside radius (size − 1)/2 are 0).
Intensities are built in relative units where 1.0 is the sensor's saturation level, then
quantised to 8 or 16 bits.

Every image has a random camera azimuth (the geomagnetic east–west axis ``u`` is rotated by a
random angle), a random exposure gain, a night-sky background with airglow brightening towards
the horizon (van Rhijn), stars (point sources blurred by the optics) and sensor noise (read noise
plus shot noise). Per class:

- ``arc``: one or two long thin east–west bands, curved, with a sharp lower (equatorward) edge, a
  width and brightness varying along the band; sometimes a faint diffuse background;
- ``diffuse``: broad, smooth, patchy glow (a broad band and/or pulsating patches);
- ``discrete``: bright folded and curled forms (folds, a spiral curl, field-aligned rays
  converging to the magnetic zenith, sometimes a corona), several bright features;
- ``cloudy``: textured grey fractal cloud cover hiding the stars, often lit from below
  (settlement lights near one horizon), sometimes a faint aurora glowing through;
- ``moon``: a saturated moon disk with blooming, a large glare halo, a brighter sky and fewer
  visible stars, sometimes a lens-flare ghost;
- ``clear``: dark sky with stars, faint airglow and a faint textured Milky Way.

All randomness comes from the given ``numpy.random.Generator``: the same generator state gives the
same image.

Overlapping cameras (:func:`render_shell_sky`): an arc is a thin emitting layer at a known height in
geographic coordinates (:class:`ShellArc`); each camera's frame is rendered through its own geometry
(line of sight of every pixel → where it meets the layer), so two cameras see the same 3-D sky.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LABELS = ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")

#: Fraction of an OATH (THEMIS "cropped_scaled") frame spanned by the circular field of view.
OATH_FOV_FRACTION = 0.85


# ------------------------------------------------------------------------------------ helpers
def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-disk coordinates (x to the right, y down) and radius, float32, centre (size−1)/2."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xx - c) / c, (yy - c) / c
    return x, y, np.hypot(x, y)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random ``cells``² grid upsampled with cubic splines."""
    cells = int(max(2, min(cells, size // 2)))
    coarse = rng.random((cells, cells)).astype(np.float32)
    fine = ndimage.zoom(coarse, size / cells, order=3, mode="reflect", grid_mode=True)
    fine = fine[:size, :size]
    if fine.shape != (size, size):  # rounding in zoom: pad by edge values
        fine = np.pad(fine, ((0, size - fine.shape[0]), (0, size - fine.shape[1])), mode="edge")
    fine -= fine.min()
    return fine / max(float(fine.max()), 1e-6)


def _fractal(rng: np.random.Generator, size: int, octaves=(3, 6, 12, 24), persistence=0.55) -> np.ndarray:
    """Fractal (1/f-like) noise in [0, 1]: octaves of smooth noise, amplitude × ``persistence`` each."""
    total = sum(_smooth_noise(rng, size, n) * persistence**i for i, n in enumerate(octaves))
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _periodic_noise(rng: np.random.Generator, angle: np.ndarray, n: int) -> np.ndarray:
    """Random function of an angle (radians), periodic, ``n`` knots, values in [0, 1]."""
    knots = rng.random(n + 1)
    knots[-1] = knots[0]
    return np.interp(np.mod(angle, 2 * np.pi), np.linspace(0, 2 * np.pi, n + 1), knots).astype(np.float32)


def _stars(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """Star field: ``n`` points with a steep brightness distribution, blurred by the optics."""
    img = np.zeros((size, size), np.float32)
    ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
    img[ys, xs] = rng.uniform(0.12, 1.0, n) ** 3
    return ndimage.gaussian_filter(img, 0.6) * 4.0


def _band(u, v, rng, width, amplitude, fold=0.0, sharp_lower=True):
    """A band along ``u`` centred on ``v = v0 + tilt·u + curv·u² + fold·sin(k u + φ)``.

    Width and brightness vary along the band; with ``sharp_lower`` the profile is asymmetric
    (sharp edge at larger ``v``, gradual at smaller ``v``), as auroral arcs have a sharp lower
    border.
    """
    v0, tilt, curv = rng.uniform(-0.55, 0.55), rng.uniform(-0.25, 0.25), rng.uniform(-0.45, 0.45)
    k, phase = rng.uniform(3, 9), rng.uniform(0, 2 * np.pi)
    centre = v0 + tilt * u + curv * u**2 + fold * np.sin(k * u + phase)
    w = width * (1 + 0.45 * np.sin(rng.uniform(1, 4) * u + rng.uniform(0, 6)))
    d = v - centre
    if sharp_lower:
        w = np.where(d > 0, 0.6 * w, 1.6 * w)
    along = 0.55 + 0.45 * np.sin(rng.uniform(1, 3.5) * u + rng.uniform(0, 6))
    start, end = np.sort(rng.uniform(-1.6, 1.6, 2)) if rng.random() < 0.3 else (-3.0, 3.0)
    ends = 1 / (1 + np.exp(-(u - start) / 0.08)) / (1 + np.exp((u - end) / 0.08))  # faded ends
    return amplitude * along * ends * np.exp(-((d / w) ** 2))


def _spiral(u, v, rng, width, amplitude):
    """An auroral curl: an Archimedean spiral ρ = a + bθ of 1–2 turns around a random point."""
    cx, cy = rng.uniform(-0.5, 0.5, 2)
    theta = np.arctan2(v - cy, u - cx)
    rho = np.hypot(u - cx, v - cy)
    a, b = rng.uniform(0.02, 0.08), rng.uniform(0.04, 0.08)
    turns = rng.uniform(1.0, 2.0)
    n = np.round((rho - a - b * theta) / (2 * np.pi * b))  # nearest winding
    phi = theta + 2 * np.pi * n
    d = rho - (a + b * phi)
    on = (phi >= -np.pi) & (phi <= -np.pi + 2 * np.pi * turns)
    fade = np.clip(1.0 - (phi + np.pi) / (2 * np.pi * turns), 0.2, 1.0)
    return np.where(on, amplitude * fade * np.exp(-((d / width) ** 2)), 0.0).astype(np.float32)


def _rays(u, v, rng, centre, n_knots):
    """Field-aligned ray pattern: brightness modulation by angle around the magnetic zenith."""
    angle = np.arctan2(v - centre[1], u - centre[0])
    return 0.35 + 0.65 * _periodic_noise(rng, angle, n_knots) ** 1.5


# ------------------------------------------------------------------------------------ classes
def _arc(u, v, r, rng, size):
    emission = sum(
        _band(u, v, rng, rng.uniform(0.025, 0.07), rng.uniform(0.06, 0.7) ** 1.2 + 0.04)
        for _ in range(int(rng.integers(1, 3)))
    )
    if rng.random() < 0.5:  # diffuse background poleward/equatorward of the arc
        emission = emission + rng.uniform(0.02, 0.12) * _smooth_noise(rng, size, int(rng.integers(3, 6)))
    return emission, 1.0


def _diffuse(u, v, r, rng, size):
    glow = rng.uniform(0.06, 0.3) * _fractal(rng, size, (2, 4, 8), persistence=0.5) ** 1.3
    if rng.random() < 0.6:  # broad diffuse band, sometimes narrow enough to resemble a faint arc
        glow = glow + _band(u, v, rng, rng.uniform(0.12, 0.4), rng.uniform(0.06, 0.2), sharp_lower=False)
    if rng.random() < 0.4:  # pulsating patches
        patches = np.clip(_smooth_noise(rng, size, int(rng.integers(6, 12))) - 0.55, 0, None) / 0.45
        glow = glow + rng.uniform(0.05, 0.2) * patches
    return glow, rng.uniform(0.55, 0.95)


def _discrete(u, v, r, rng, size):
    forms = sum(
        _band(u, v, rng, rng.uniform(0.02, 0.06), rng.uniform(0.2, 0.8), fold=rng.uniform(0.02, 0.25))
        for _ in range(int(rng.integers(1, 4)))
    )
    if rng.random() < 0.5:
        forms = forms + _spiral(u, v, rng, rng.uniform(0.015, 0.035), rng.uniform(0.3, 0.8))
    zenith = rng.uniform(-0.25, 0.25, 2)
    forms = forms * _rays(u, v, rng, zenith, int(rng.integers(30, 100)))
    if rng.random() < 0.25:  # corona: rays radiating from the magnetic zenith
        rho = np.hypot(u - zenith[0], v - zenith[1])
        forms = forms + rng.uniform(0.1, 0.3) * _rays(u, v, rng, zenith, 60) ** 3 * np.exp(-((rho / 0.4) ** 2))
    forms = forms + rng.uniform(0.0, 0.1) * _smooth_noise(rng, size, 4)
    return forms, rng.uniform(0.7, 1.0)


def _cloudy(u, v, r, rng, size):
    cover = _fractal(rng, size, (3, 6, 12, 24, 48), persistence=rng.uniform(0.45, 0.65))
    threshold = rng.uniform(0.05, 0.55)
    cloud = np.clip((cover - threshold) / (1 - threshold), 0, 1) ** 0.6
    level = rng.uniform(0.04, 0.25)
    if rng.random() < 0.6:  # lit from below: settlement lights beyond one horizon
        az = rng.uniform(0, 2 * np.pi)
        along = (u * np.cos(az) + v * np.sin(az) + 1) / 2
        level = level * (0.5 + rng.uniform(1.0, 3.0) * along**2)
    light = level * cloud
    if rng.random() < 0.3:  # aurora glowing through the cloud
        light = light + _band(u, v, rng, rng.uniform(0.06, 0.2), rng.uniform(0.05, 0.2), sharp_lower=False) * (
            1 - 0.6 * cloud
        )
    return light, np.clip(1 - rng.uniform(2.5, 5) * cloud, 0, 1)


def _moon(u, v, r, rng, size):
    theta, rho = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.05)  # > 1: just below the horizon
    mx, my = rho * np.cos(theta), rho * np.sin(theta)
    d = np.hypot(u - mx, v - my)
    radius = rng.uniform(0.04, 0.09)  # disk plus blooming
    glare = rng.uniform(0.3, 0.9) * np.exp(-d / rng.uniform(0.1, 0.3)) + rng.uniform(0.03, 0.15) / (1 + (d / 0.3) ** 2)
    light = np.where(d < radius, 4.0, 0.0) + glare + rng.uniform(0.02, 0.1)  # scattered moonlight
    if rng.random() < 0.5:  # lens-flare ghost mirrored through the optical axis
        g = np.hypot(u + 0.7 * mx, v + 0.7 * my)
        light = light + rng.uniform(0.05, 0.15) * np.exp(-((g / rng.uniform(0.05, 0.1)) ** 4))
    transmission = rng.uniform(0.15, 0.5)
    if rng.random() < 0.3:  # thin moonlit cloud
        cloud = np.clip(_fractal(rng, size, (3, 6, 12, 24)) - rng.uniform(0.3, 0.6), 0, None)
        light = light + rng.uniform(0.1, 0.3) * cloud * (0.3 + glare)
        transmission = transmission * np.clip(1 - 3 * cloud, 0, 1)
    return light.astype(np.float32), transmission


def _clear(u, v, r, rng, size):
    milky = _band(u, v, rng, rng.uniform(0.15, 0.32), 1.0, sharp_lower=False)
    milky = rng.uniform(0.02, 0.08) * milky * (0.4 + _fractal(rng, size, (6, 12, 24)))
    waves = rng.uniform(0.0, 0.01) * (1 + np.sin(rng.uniform(8, 20) * u + rng.uniform(0, 6)))  # airglow waves
    return milky + waves, 1.0


_CLASSES = {"arc": _arc, "diffuse": _diffuse, "discrete": _discrete, "cloudy": _cloudy, "moon": _moon, "clear": _clear}


# ------------------------------------------------------------------------------------ public
def render_sky_float(label: str, rng: np.random.Generator, size: int = 192) -> np.ndarray:
    """All-sky image of class ``label`` as float32 in [0, 1] (1 = saturation), 0 outside the disk."""
    if label not in _CLASSES:
        raise ValueError(f"unknown sky class {label!r}; expected one of {LABELS}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, not {size}")
    x, y, r = _grid(size)
    az = rng.uniform(0, 2 * np.pi)  # camera azimuth: geomagnetic east–west axis u, north–south v
    u = (x * np.cos(az) + y * np.sin(az)).astype(np.float32)
    v = (-x * np.sin(az) + y * np.cos(az)).astype(np.float32)
    fov = r <= 1.0
    zenith_angle = np.clip(r, 0, 1) * (np.pi / 2)
    van_rhijn = 1 / np.sqrt(1 - 0.94 * np.sin(zenith_angle) ** 2)  # airglow path length, 1 → ~4
    sky = rng.uniform(0.015, 0.04) + rng.uniform(0.006, 0.015) * van_rhijn
    stars = _stars(rng, size, int(rng.integers(120, 280) * (size / 192) ** 2))
    emission, star_transmission = _CLASSES[label](u, v, r, rng, size)
    gain = rng.uniform(0.7, 1.3)
    vignette = 1 - 0.25 * r**2
    img = gain * vignette * (sky + emission + 0.3 * stars * star_transmission)
    read_noise = rng.uniform(0.004, 0.01)
    img = img + read_noise * rng.standard_normal(img.shape, dtype=np.float32)
    img = img + 0.012 * np.sqrt(np.clip(img, 0, None)) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.where(fov, img, 0.0), 0.0, 1.0).astype(np.float32)


def quantise(img: np.ndarray, bit_depth: int) -> np.ndarray:
    """[0, 1] float → uint8 (bit_depth 8) or uint16 over the full 0–65535 range (16)."""
    if bit_depth == 16:
        return np.round(img * 65535).astype(np.uint16)
    if bit_depth == 8:
        return np.round(img * 255).astype(np.uint8)
    raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")


def render_sky(label: str, rng: np.random.Generator, size: int = 192, bit_depth: int = 8) -> np.ndarray:
    """Greyscale all-sky image of class ``label`` (see module doc): (size, size) uint8 for
    ``bit_depth=8`` or uint16 using the full 0–65535 range for 16. Saturation maps to the top
    value; pixels outside the circular field of view (radius (size − 1)/2) are 0."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")
    return quantise(render_sky_float(label, rng, size), bit_depth)


def render_oath(label: str, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """OATH-like THEMIS "cropped_scaled" image: (size, size, 3) uint8 RGB.

    The all-sky circle spans ``OATH_FOV_FRACTION`` of the frame (black around it), contrast is
    stretched so the brightest 0.2 % saturate, THEMIS-like noise is added, and the image is in the
    green channel with weak red/blue tint noise (the real OATH crops have R = B = 0; callers wanting
    that exactly can zero those channels).
    """
    inner = int(round(size * OATH_FOV_FRACTION)) | 1  # odd: centred exactly in an even frame ±½ px
    grey = render_sky_float(label, rng, size=inner)
    fov = _grid(inner)[2] <= 1.0
    grey = grey + np.where(fov, rng.normal(0, 0.006, grey.shape), 0.0)  # THEMIS CCD noise
    top = max(float(np.percentile(grey[fov], 99.8)), 1e-3)
    grey = np.clip(grey / top, 0, 1)
    frame = np.zeros((size, size), np.float32)
    off = (size - inner) // 2
    frame[off : off + inner, off : off + inner] = grey
    tint = rng.uniform(0.0, 0.08)
    mask = frame > 0
    red = np.where(mask, tint * frame + np.abs(rng.normal(0, 0.01, frame.shape)), 0.0)
    blue = np.where(mask, tint * frame + np.abs(rng.normal(0, 0.01, frame.shape)), 0.0)
    rgb = np.stack([red, frame, blue], axis=-1)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


# ------------------------------------------------------------------- overlapping cameras: one 3-D sky
#: Earth radius (km) of the sample's shell renderer (a sphere: the same computation as
#: ``geometry.earth.look_to_geodetic(..., earth_model="sphere")``, which a test checks; the sources layer
#: cannot import the geometry layer).
EARTH_RADIUS_KM = 6371.0
#: Latitude degree in km on that sphere.
KM_PER_DEG = np.pi * EARTH_RADIUS_KM / 180.0


def fisheye_look(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(azimuth_deg, elevation_deg) of every pixel of the sample's THEMIS frames: a centred equidistant
    fisheye (zenith at the centre, horizon at radius (size − 1)/2), north up, east left — the lens models
    ``gill``/``chur`` of ``geometry.lens.CAMERA_LENSES``; NaN outside the disk."""
    x, y, r = (a.astype(np.float64) for a in _grid(size))
    psi = np.degrees(np.arctan2(x, -y))  # clockwise from "up"
    outside = r > 1.0
    return np.where(outside, np.nan, np.mod(-psi, 360.0)), np.where(outside, np.nan, 90.0 - 90.0 * r)


def shell_lat_lon(
    azimuth_deg, elevation_deg, site_lat_deg: float, site_lon_deg: float, site_alt_m: float, height_km: float
) -> tuple[np.ndarray, np.ndarray]:
    """Where each line of sight (degrees) from the site meets the sphere of radius Earth + ``height_km``
    (spherical Earth of radius :data:`EARTH_RADIUS_KM`, the site at its latitude, vertical = radial):
    (lat_deg, lon_deg in −180..180); NaN for NaN directions."""
    az, el = np.radians(np.asarray(azimuth_deg, float)), np.radians(np.asarray(elevation_deg, float))
    lat0, lon0 = np.radians(site_lat_deg), np.radians(site_lon_deg)
    up = np.array([np.cos(lat0) * np.cos(lon0), np.cos(lat0) * np.sin(lon0), np.sin(lat0)])
    east = np.array([-np.sin(lon0), np.cos(lon0), 0.0])
    north = np.cross(up, east)
    d = (
        (np.cos(el) * np.sin(az))[..., None] * east
        + (np.cos(el) * np.cos(az))[..., None] * north
        + np.sin(el)[..., None] * up
    )
    r_site, r_shell = EARTH_RADIUS_KM + site_alt_m / 1000.0, EARTH_RADIUS_KM + float(height_km)
    b = r_site * np.sum(d * up, axis=-1)
    s = -b + np.sqrt(b * b - (r_site**2 - r_shell**2))
    p = r_site * up + s[..., None] * d
    lat = np.degrees(np.arcsin(np.clip(p[..., 2] / r_shell, -1.0, 1.0)))
    return lat, np.degrees(np.arctan2(p[..., 1], p[..., 0]))


def layer_path_factor(elevation_deg, height_km: float, cap: float = 4.0) -> np.ndarray:
    """Brightening of a thin emitting layer at ``height_km`` seen at ``elevation_deg``: 1 / cos χ, χ the
    zenith angle of the line of sight where it crosses the layer (sin χ = R cos(el) / (R + h)), capped."""
    sin_chi = EARTH_RADIUS_KM * np.cos(np.radians(elevation_deg)) / (EARTH_RADIUS_KM + height_km)
    return np.minimum(1.0 / np.sqrt(np.clip(1.0 - sin_chi**2, 1e-6, None)), cap)


@dataclass(frozen=True)
class ShellArc:
    """An auroral arc as a thin emitting layer at ``height_km`` (SAMPLE DATA): a band along the curve
    lat(λ) = ``lat0_deg`` + ``tilt``·(λ − ``lon0_deg``) + ``curvature``·(λ − ``lon0_deg``)² (degrees of
    latitude and longitude), sharp equatorward edge (Gaussian half-width 0.6·``width_km``), gradual
    poleward one (1.6·``width_km``), brightness (1 = saturation) varying along the arc by ± ``ripple``
    with period ``period_deg`` of longitude."""

    height_km: float
    lat0_deg: float
    lon0_deg: float
    tilt: float = 0.0
    curvature: float = 0.0
    width_km: float = 12.0
    brightness: float = 0.4
    ripple: float = 0.35
    period_deg: float = 3.0
    phase: float = 0.0

    def emission(self, lat_deg, lon_deg) -> np.ndarray:
        """Brightness of the layer at (lat, lon) on it (0 where NaN)."""
        dlon = np.asarray(lon_deg, float) - self.lon0_deg
        centre = self.lat0_deg + self.tilt * dlon + self.curvature * dlon**2
        d_km = (np.asarray(lat_deg, float) - centre) * KM_PER_DEG
        w = np.where(d_km < 0, 0.6 * self.width_km, 1.6 * self.width_km)
        along = 1.0 + self.ripple * np.sin(2 * np.pi * dlon / self.period_deg + self.phase)
        return np.nan_to_num(self.brightness * along * np.exp(-((d_km / w) ** 2)))


def random_shell_arc(rng: np.random.Generator, height_km: float, lat0_deg: float, lon0_deg: float) -> ShellArc:
    """A :class:`ShellArc` with random shape (tilt, curvature, width 8–20 km, brightness, ripple)."""
    return ShellArc(
        height_km=float(height_km),
        lat0_deg=float(lat0_deg),
        lon0_deg=float(lon0_deg),
        tilt=float(rng.uniform(-0.15, 0.15)),
        curvature=float(rng.uniform(-0.03, 0.03)),
        width_km=float(rng.uniform(8.0, 20.0)),
        brightness=float(rng.uniform(0.2, 0.6)),
        ripple=float(rng.uniform(0.1, 0.5)),
        period_deg=float(rng.uniform(1.5, 5.0)),
        phase=float(rng.uniform(0, 2 * np.pi)),
    )


def render_shell_sky(
    lat_deg: np.ndarray, lon_deg: np.ndarray, elevation_deg: np.ndarray, arcs, rng: np.random.Generator
) -> np.ndarray:
    """One camera's all-sky frame (float32 in [0, 1], 0 outside the field of view) of the ``arcs``
    (:class:`ShellArc`, all at the height ``lat_deg``/``lon_deg`` are given for: where each pixel's line
    of sight meets the layer), seen through that camera's geometry: layer brightness × path factor
    (:func:`layer_path_factor`), night sky with van Rhijn airglow, stars, gain, vignetting and sensor
    noise as :func:`render_sky_float`. The same arcs rendered for two cameras are one 3-D sky."""
    el = np.asarray(elevation_deg, float)
    fov = np.isfinite(el)
    size = el.shape[0]
    zenith_angle = np.radians(90.0 - np.where(fov, el, 0.0))
    van_rhijn = 1 / np.sqrt(1 - 0.94 * np.sin(zenith_angle) ** 2)
    sky = rng.uniform(0.015, 0.03) + rng.uniform(0.006, 0.012) * van_rhijn
    emission = sum(a.emission(lat_deg, lon_deg) * layer_path_factor(np.where(fov, el, 0.0), a.height_km) for a in arcs)
    stars = _stars(rng, size, int(rng.integers(120, 280) * (size / 192) ** 2))
    r = (90.0 - np.where(fov, el, 90.0)) / 90.0
    img = rng.uniform(0.85, 1.15) * (1 - 0.25 * r**2) * (sky + emission + 0.3 * stars)
    img = img + rng.uniform(0.004, 0.008) * rng.standard_normal(img.shape)
    img = img + 0.012 * np.sqrt(np.clip(img, 0, None)) * rng.standard_normal(img.shape)
    return np.clip(np.where(fov, img, 0.0), 0.0, 1.0).astype(np.float32)
