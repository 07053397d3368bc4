"""Synthetic all-sky images for the embedded sample archive (six OATH classes).

Everything is vectorised numpy on a unit disk (zenith at the centre, horizon at radius 1):
stars, airglow brighter towards the horizon, sensor noise, and per class: auroral arcs (long thin
east–west bands), diffuse glow (broad patchy emission), discrete forms (bright folded bands with
rays), clouds (fractal cover hiding the stars), moon (saturated disk with a glare halo) and clear
sky. Deterministic for a given ``numpy.random.Generator`` state. SAMPLE DATA, not observations.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LABELS = ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xx - c) / c, (yy - c) / c
    return x, y, np.hypot(x, y)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random ``cells``² grid upsampled with cubic splines."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    fine = ndimage.zoom(coarse, size / cells, order=3, mode="reflect")[:size, :size]
    fine -= fine.min()
    return fine / max(float(fine.max()), 1e-6)


def _fractal(rng: np.random.Generator, size: int, octaves=(3, 6, 12, 24)) -> np.ndarray:
    total = sum(_smooth_noise(rng, size, n) / (i + 1) for i, n in enumerate(octaves))
    total -= total.min()
    return total / total.max()


def _stars(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    img = np.zeros((size, size), np.float32)
    ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
    img[ys, xs] = rng.uniform(0.15, 1.0, n) ** 2
    return ndimage.gaussian_filter(img, 0.6) * 3.0


def _band(x, y, rng, width, amplitude, fold=0.0, tilt=None):
    """Brightness of a curved band ``y = y0 + tilt·x + curv·x² + fold·sin(k x + φ)``."""
    y0 = rng.uniform(-0.5, 0.5)
    tilt = rng.uniform(-0.3, 0.3) if tilt is None else tilt
    curv = rng.uniform(-0.4, 0.4)
    k, phase = rng.uniform(4, 9), rng.uniform(0, 2 * np.pi)
    centre = y0 + tilt * x + curv * x**2 + fold * np.sin(k * x + phase)
    along = 0.6 + 0.4 * np.sin(rng.uniform(1, 3) * x + rng.uniform(0, 6))
    return amplitude * along * np.exp(-(((y - centre) / width) ** 2))


def render_sky(label: str, rng: np.random.Generator, size: int = 192, bit_depth: int = 8) -> np.ndarray:
    """Greyscale all-sky image of class ``label``: uint8 (bit_depth 8) or uint16 (16, full range).
    Pixels outside the circular field of view (radius (size−1)/2) are 0."""
    if label not in LABELS:
        raise ValueError(f"unknown sky class {label!r}; expected one of {LABELS}")
    x, y, r = _grid(size)
    if rng.random() < 0.5:  # arbitrary azimuth: the sky has no preferred orientation in the image
        x, y = y, -x
    fov = r <= 1.0
    gain = rng.uniform(0.7, 1.3)
    sky = rng.uniform(0.02, 0.06) + 0.05 * r**2  # background + airglow towards the horizon
    n_stars = int(rng.integers(120, 260))
    stars = _stars(rng, size, n_stars)
    if label == "arc":
        sky = sky + sum(_band(x, y, rng, rng.uniform(0.03, 0.07), rng.uniform(0.35, 0.8)) for _ in range(rng.integers(1, 3)))
    elif label == "diffuse":
        patches = _smooth_noise(rng, size, int(rng.integers(3, 6)))
        sky = sky + rng.uniform(0.15, 0.35) * patches * (0.6 + 0.4 * np.exp(-r**2))
        stars *= 0.7
    elif label == "discrete":
        forms = sum(_band(x, y, rng, rng.uniform(0.02, 0.05), rng.uniform(0.5, 1.0), fold=rng.uniform(0.08, 0.25))
                    for _ in range(rng.integers(2, 4)))
        angle = np.arctan2(y, x)
        rays = 0.5 + 0.5 * np.sin(angle * rng.integers(30, 60) + rng.uniform(0, 6)) ** 2
        sky = sky + forms * rays
    elif label == "cloudy":
        cover = _fractal(rng, size)
        threshold = rng.uniform(0.2, 0.45)
        cloud = np.clip((cover - threshold) / (1 - threshold), 0, 1) ** 0.7
        sky = sky + rng.uniform(0.12, 0.3) * cloud + 0.04 * _smooth_noise(rng, size, 20)
        stars *= np.clip(1 - 2.5 * cloud, 0, 1)
    elif label == "moon":
        theta, rho = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.8)
        d = np.hypot(x - rho * np.cos(theta), y - rho * np.sin(theta))
        radius = rng.uniform(0.04, 0.07)
        sky = sky + np.where(d < radius, 3.0, 0.0) + rng.uniform(0.3, 0.6) * np.exp(-d / rng.uniform(0.15, 0.35))
        stars *= 0.35
    else:  # clear: stars, airglow and a faint Milky Way
        sky = sky + 0.03 * _band(x, y, rng, 0.25, 1.0)
    img = gain * (sky + 0.35 * stars)
    img = img + rng.normal(0, 0.008, img.shape) + np.sqrt(np.clip(img, 0, None)) * rng.normal(0, 0.01, img.shape)
    img = np.clip(np.where(fov, img, 0.0), 0.0, 1.0)
    if bit_depth == 16:
        return np.round(img * 65535).astype(np.uint16)
    if bit_depth == 8:
        return np.round(img * 255).astype(np.uint8)
    raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")


def render_oath(label: str, rng: np.random.Generator, size: int = 160) -> np.ndarray:
    """OATH-like THEMIS crop: (size, size, 3) uint8 RGB, the aurora in the green channel."""
    grey = render_sky(label, rng, size=size, bit_depth=8).astype(np.float32) / 255
    tint = rng.uniform(0.25, 0.45)
    rgb = np.stack([grey * tint + rng.normal(0, 0.01, grey.shape), grey,
                    grey * tint * 1.1 + rng.normal(0, 0.01, grey.shape)], axis=-1)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
