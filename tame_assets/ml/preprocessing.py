"""Image preprocessing as in the TAME paper (pure numpy; documented and unit-tested).

For an all-sky image of height h and width w:

1. greyscale at full depth — 16-bit images keep their 0–65535 range (the paper's code clipped
   16-bit images to 255; we do not);
2. circular field-of-view mask of radius (h − 1)/2 centred at ((h − 1)/2, (w − 1)/2);
3. clip to the 0.5th and 99.5th percentiles of the pixels inside the mask;
4. min–max scale to [0, 1] inside the mask (outside = 0);
5. the grey image goes into the G channel only (R = B = 0), as the 557.7 nm emission is green;
6. resize to the backbone's input size (bilinear, antialiased);
7. ImageNet mean/std normalisation per channel.

OATH images (RGB THEMIS crops) use their green channel and are rotated by their ``angle`` (degrees,
counter-clockwise) unless the provided rotated set is used. Histogram statistics are computed
on the scaled [0, 1] values inside the mask.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PREPROCESSING_VERSION = "tame-1"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CLIP_PERCENTILES = (0.5, 99.5)
HIST_BINS = 128
STAT_NAMES = ("min", "max", "median", "mean", "variance", "skewness", "kurtosis", "entropy", "energy")


def disk_mask(h: int, w: int) -> np.ndarray:
    """Boolean field-of-view mask: radius (h − 1)/2 around ((h − 1)/2, (w − 1)/2), edge included."""
    cy, cx, radius = (h - 1) / 2, (w - 1) / 2, (h - 1) / 2
    yy, xx = np.ogrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2 + 1e-9


def to_grey(image: np.ndarray, green: bool = False) -> np.ndarray:
    """2-D float32 at the image's full depth. RGB: the G channel when ``green`` (OATH), else luminance."""
    if image.ndim == 2:
        return image.astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    if green:
        return rgb[..., 1]
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def rotate(grey: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate counter-clockwise by ``angle_deg`` about the centre (bilinear, same size, 0 fill)."""
    if not angle_deg:
        return grey
    return np.asarray(Image.fromarray(grey.astype(np.float32), mode="F").rotate(angle_deg, resample=Image.BILINEAR))


def scale_to_unit(grey: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Percentile clip (0.5/99.5 inside the mask) and min–max scaling to [0, 1]; 0 outside the mask."""
    if mask is None:
        mask = disk_mask(*grey.shape)
    inside = grey[mask]
    if inside.size == 0:
        return np.zeros_like(grey, dtype=np.float32)
    lo, hi = np.percentile(inside, CLIP_PERCENTILES)
    if hi <= lo:
        return np.zeros_like(grey, dtype=np.float32)
    scaled = (np.clip(grey, lo, hi) - lo) / (hi - lo)
    return np.where(mask, scaled, 0.0).astype(np.float32)


def resize(unit: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (antialiased) resize of a float image to ``size`` × ``size``."""
    if unit.shape == (size, size):
        return unit.astype(np.float32)
    return np.asarray(Image.fromarray(unit.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))


def to_network_input(unit_resized: np.ndarray) -> np.ndarray:
    """(3, s, s) float32: grey in G only, R = B = 0, ImageNet-normalised per channel."""
    chw = np.zeros((3, *unit_resized.shape), dtype=np.float32)
    chw[1] = unit_resized
    return (chw - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]


def histogram_stats(unit: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Nine statistics of the scaled [0, 1] values inside the mask: min, max, median, mean,
    variance (population), skewness and excess kurtosis (Fisher, as ``scipy.stats``), and the
    entropy −Σ p·log2 p and energy Σ p² of their 128-bin histogram over [0, 1]."""
    if mask is None:
        mask = disk_mask(*unit.shape)
    v = unit[mask].astype(np.float64)
    if v.size == 0:
        return np.full(len(STAT_NAMES), np.nan, dtype=np.float32)
    mean, var = v.mean(), v.var()
    sd = np.sqrt(var)
    skew = ((v - mean) ** 3).mean() / sd**3 if sd > 0 else 0.0
    kurt = ((v - mean) ** 4).mean() / var**2 - 3.0 if var > 0 else 0.0
    counts, _ = np.histogram(v, bins=HIST_BINS, range=(0.0, 1.0))
    p = counts / counts.sum()
    nz = p[p > 0]
    entropy = -(nz * np.log2(nz)).sum()
    energy = (p**2).sum()
    return np.array([v.min(), v.max(), np.median(v), mean, var, skew, kurt, entropy, energy], dtype=np.float32)


def preprocess(image: np.ndarray, size: int, green: bool = False, angle_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Full paper preprocessing of one image → (resized unit image (size, size), 9 statistics).

    The network input is ``to_network_input`` of the first value (kept 1-channel until batching
    to save memory in data-loader workers).
    """
    grey = rotate(to_grey(image, green=green), angle_deg)
    mask = disk_mask(*grey.shape)
    unit = scale_to_unit(grey, mask)
    return resize(unit, size), histogram_stats(unit, mask)
