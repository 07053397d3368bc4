"""Image preprocessing as in the TAME paper (numpy, two compiled loops; documented and unit-tested).

For an all-sky image of height h and width w (``PREPROCESSING_VERSION = "tame-1"``):

1. greyscale at full depth — 16-bit images keep their 0–65535 range (the paper's code clipped
   16-bit images to 255; we do not). OATH images (RGB THEMIS crops) use their green channel and are
   rotated by their ``angle`` (degrees, counter-clockwise, bilinear, 0 fill) unless the provided
   rotated set is used;
2. circular field-of-view mask of radius (h − 1)/2 centred at ((h − 1)/2, (w − 1)/2), edge included;
3. clip to the 0.5th and 99.5th percentiles of the pixels inside the mask (numpy's default "linear"
   percentile definition);
4. min–max scale the clipped values to [0, 1]: ``(clip(g, lo, hi) − lo) / (hi − lo)`` computed in
   float64, stored as float32; outside the mask = 0; an image with ``hi == lo`` is all 0;
5. the grey image goes into the G channel only (R = B = 0), as the 557.7 nm emission is green;
6. resize to the backbone's input size (bilinear, antialiased: PIL ``BILINEAR`` on float32);
7. ImageNet mean/std normalisation per channel → float32 CHW.

``histogram_stats`` gives nine statistics of the scaled [0, 1] values inside the mask.

Speed: integer images (uint8/uint16, i.e. everything except rotated OATH images) take an exact
histogram path — one count of the grey levels of the masked pixels gives the percentiles (order
statistics from the cumulative counts), the scaled values (a look-up table per grey level) and all
statistics (weighted sums over the grey levels) — about 4× faster than the sort/partition path for
float images, with the same results (tested). The count and the look-up are compiled loops (numba,
one pass over the pixels each: ~1 ms less per 469×469 image than ``bincount(grey[mask])`` and
``take`` plus a mask multiply). No BLAS calls (``np.dot`` on a busy 2-core machine spins BLAS
threads: 17 ms instead of 0.2 ms).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from tame_assets.jit import compiled

PREPROCESSING_VERSION = "tame-1"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CLIP_PERCENTILES = (0.5, 99.5)
HIST_BINS = 128
STAT_NAMES = ("min", "max", "median", "mean", "variance", "skewness", "kurtosis", "entropy", "energy")
#: Integer images with at most this many grey levels use the histogram path.
_MAX_LEVELS = 1 << 16


# ----------------------------------------------------------------------------- steps
@lru_cache(maxsize=32)
def _disk_mask(h: int, w: int) -> np.ndarray:
    cy, cx, radius = (h - 1) / 2, (w - 1) / 2, (h - 1) / 2
    yy, xx = np.ogrid[:h, :w]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2 + 1e-9
    mask.flags.writeable = False
    return mask


def disk_mask(h: int, w: int) -> np.ndarray:
    """Boolean field-of-view mask: radius (h − 1)/2 around ((h − 1)/2, (w − 1)/2), edge included
    (read-only, cached per shape)."""
    return _disk_mask(int(h), int(w))


def to_grey(image: np.ndarray, green: bool = False) -> np.ndarray:
    """2-D image at full depth (dtype kept). RGB: the G channel when ``green`` (OATH), else BT.601
    luminance 0.299 R + 0.587 G + 0.114 B (float32)."""
    if image.ndim == 2:
        return image
    if green:
        return image[..., 1]
    rgb = image[..., :3].astype(np.float32)
    return rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)


def rotate(grey: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate counter-clockwise by ``angle_deg`` about the centre (bilinear, same size, 0 fill);
    returns float32 (the input unchanged when the angle is 0)."""
    if not angle_deg:
        return grey
    return np.asarray(Image.fromarray(grey.astype(np.float32), mode="F").rotate(angle_deg, resample=Image.BILINEAR))


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's percentile interpolation (``a + (b − a)·t``, from ``b`` when t ≥ 0.5)."""
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _positions(n: int) -> list[tuple[int, float]]:
    out = []
    for q in CLIP_PERCENTILES:
        pos = q / 100 * (n - 1)
        k = int(np.floor(pos))
        out.append((k, pos - k))
    return out


def clip_limits(grey: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The 0.5th and 99.5th percentiles (numpy "linear") of the pixels inside ``mask``."""
    return (
        _limits_from_histogram(*_level_histogram(grey, mask)) if _is_levels(grey) else _limits_from_values(grey[mask])
    )


def _limits_from_values(v: np.ndarray) -> tuple[float, float]:
    n = v.size
    pos = _positions(n)
    ks = sorted({min(k + d, n - 1) for k, _ in pos for d in (0, 1)})
    part = np.partition(v, ks)
    return tuple(_lerp(float(part[k]), float(part[min(k + 1, n - 1)]), t) for k, t in pos)


def _is_levels(grey: np.ndarray) -> bool:
    return grey.dtype in (np.uint8, np.uint16)


def _masked_level_counts(grey, mask, counts):
    """``counts[level] += 1`` for every pixel inside the mask (flat arrays; compiled)."""
    for i in range(grey.size):
        if mask[i]:
            counts[grey[i]] += 1


def _masked_lookup_loop(grey, mask, lut, out):
    """``out = lut[grey]`` inside the mask, 0 outside (flat arrays; compiled)."""
    for i in range(grey.size):
        out[i] = lut[grey[i]] if mask[i] else np.float32(0.0)


def prepare() -> None:
    """Load the compiled loops into this process now (numba's on-disk cache): call before starting
    worker processes, so that forked workers inherit them."""
    mask = np.ones((1, 1), bool)
    for grey in (np.zeros((1, 1), np.uint16), np.zeros((1, 1), np.uint8)):  # one machine-code version per dtype
        _masked_lookup(grey, mask, _scale_values(np.arange(1), 0.0, 0.0))
        _level_histogram(grey, mask)


def _check_mask(grey: np.ndarray, mask: np.ndarray) -> None:
    if mask.shape != grey.shape or mask.dtype != bool:
        raise ValueError(f"mask {mask.shape} {mask.dtype} for an image of shape {grey.shape}: need bool, same shape")


def _level_histogram(grey: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grey levels present inside the mask, their counts), levels ascending (integer images)."""
    _check_mask(grey, mask)
    counts = np.zeros(np.iinfo(grey.dtype).max + 1, np.int64)
    compiled(_masked_level_counts)(np.ravel(grey), np.ravel(mask), counts)
    levels = np.flatnonzero(counts)
    return levels, counts[levels]


def _masked_lookup(grey: np.ndarray, mask: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """float32 image: ``lut[grey]`` inside the mask, 0 outside (where levels may exceed the LUT)."""
    _check_mask(grey, mask)
    out = np.empty(grey.shape, np.float32)
    compiled(_masked_lookup_loop)(np.ravel(grey), np.ravel(mask), lut, out.reshape(-1))
    return out


def _order_stat(cum: np.ndarray, levels: np.ndarray, k: int) -> float:
    """The k-th smallest value (0-based) given ascending levels and their cumulative counts."""
    return float(levels[np.searchsorted(cum, k, side="right")])


def _limits_from_histogram(levels: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    cum = np.cumsum(counts)
    n = int(cum[-1])
    return tuple(
        _lerp(_order_stat(cum, levels, k), _order_stat(cum, levels, min(k + 1, n - 1)), t) for k, t in _positions(n)
    )


def _scale_values(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(values.shape, np.float32)
    return ((np.clip(values.astype(np.float64), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def scale_to_unit(grey: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Percentile clip (0.5/99.5 inside the mask) and min–max scaling to [0, 1]; 0 outside the mask."""
    return _scaled(grey, disk_mask(*grey.shape) if mask is None else mask)[0]


def _scaled(grey: np.ndarray, mask: np.ndarray):
    """(unit image, level histogram and LUT for integer images, else None)."""
    if not mask.any():
        return np.zeros(grey.shape, np.float32), None
    if _is_levels(grey):
        levels, counts = _level_histogram(grey, mask)
        lo, hi = _limits_from_histogram(levels, counts)
        lut = _scale_values(np.arange(int(levels[-1]) + 1), lo, hi)
        return _masked_lookup(grey, mask, lut), (lut[levels], counts)
    lo, hi = _limits_from_values(grey[mask])
    unit = _scale_values(grey, lo, hi)
    unit *= mask
    return unit, None


def resize(unit: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (antialiased, PIL) resize of a float image to ``size`` × ``size``."""
    if unit.shape == (size, size):
        return unit.astype(np.float32)
    return np.asarray(Image.fromarray(np.asarray(unit, np.float32), mode="F").resize((size, size), Image.BILINEAR))


def to_network_input(unit_resized: np.ndarray) -> np.ndarray:
    """(3, s, s) float32: grey in G only, R = B = 0, ImageNet-normalised per channel."""
    chw = np.zeros((3, *unit_resized.shape), dtype=np.float32)
    chw[1] = unit_resized
    return (chw - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]


# ----------------------------------------------------------------------------- statistics
def _stats_from_weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The nine statistics of a sample given as distinct ascending ``values`` with ``weights`` counts."""
    v = values.astype(np.float64)
    w = weights.astype(np.float64)
    n = w.sum()
    mean = (v * w).sum() / n
    d = v - mean
    d2w = d * d * w
    var = d2w.sum() / n
    skew = (d2w * d).sum() / n / var**1.5 if var > 0 else 0.0
    kurt = (d2w * d * d).sum() / n / var**2 - 3.0 if var > 0 else 0.0
    cum = np.cumsum(weights)
    total = int(cum[-1])
    half = total // 2
    median = _order_stat(cum, v, half) if total % 2 else (_order_stat(cum, v, half - 1) + _order_stat(cum, v, half)) / 2
    # 128 equal bins over [0, 1]; the value 1.0 falls in the last bin (as numpy.histogram)
    bins = np.minimum((values.astype(np.float32) * np.float32(HIST_BINS)).astype(np.int64), HIST_BINS - 1)
    p = np.bincount(bins, weights=w, minlength=HIST_BINS) / n
    nz = p[p > 0]
    entropy = -(nz * np.log2(nz)).sum()
    energy = (p * p).sum()
    return np.array([v[0], v[-1], median, mean, var, skew, kurt, entropy, energy], dtype=np.float32)


def histogram_stats(unit: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Nine statistics of the scaled [0, 1] values inside the mask, in ``STAT_NAMES`` order:
    min, max, median, mean, variance (population, ddof = 0), skewness (Fisher–Pearson, biased, as
    ``scipy.stats.skew``), excess kurtosis (Fisher, biased, as ``scipy.stats.kurtosis``), and the
    entropy −Σ p·log2 p (bits; 0·log 0 = 0) and energy Σ p² of the probabilities p of a 128-bin
    histogram over [0, 1] (bin i = [i/128, (i+1)/128), the value 1.0 in the last bin).
    All NaN when the mask is empty."""
    if mask is None:
        mask = disk_mask(*unit.shape)
    v = unit[mask]
    if v.size == 0:
        return np.full(len(STAT_NAMES), np.nan, dtype=np.float32)
    values, counts = np.unique(v, return_counts=True)
    return _stats_from_weighted(values, counts)


def preprocess(
    image: np.ndarray, size: int, green: bool = False, angle_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Full paper preprocessing of one image → (resized unit image (size, size) float32, 9 stats).

    The network input is ``to_network_input`` of the first value (kept 1-channel until batching to
    save memory and inter-process traffic in data-loader workers).
    """
    grey = rotate(to_grey(image, green=green), angle_deg)
    mask = disk_mask(*grey.shape)
    unit, hist = _scaled(grey, mask)
    if hist is not None:
        stats = _stats_from_weighted(*hist) if hist[1].size else np.full(len(STAT_NAMES), np.nan, np.float32)
    else:
        stats = histogram_stats(unit, mask)
    return resize(unit, size), stats


def preprocess_reference(
    image: np.ndarray, size: int, green: bool = False, angle_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Straightforward implementation of the same steps (float64, ``np.percentile``, sorting): the
    independent reference for tests and the naive path of the benchmark."""
    grey = to_grey(image, green=green)
    if angle_deg:
        grey = rotate(grey, angle_deg)
    grey = grey.astype(np.float64)
    h, w = grey.shape
    yy, xx = np.mgrid[:h, :w]
    mask = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= ((h - 1) / 2) ** 2 + 1e-9
    inside = grey[mask]
    lo, hi = np.percentile(inside, CLIP_PERCENTILES)
    unit = np.where(mask, (np.clip(grey, lo, hi) - lo) / (hi - lo), 0.0) if hi > lo else np.zeros_like(grey)
    unit = unit.astype(np.float32)
    from scipy import stats as sps

    v = unit[mask].astype(np.float64)
    counts, _ = np.histogram(unit[mask], bins=HIST_BINS, range=(0.0, 1.0))
    p = counts / counts.sum()
    stats = np.array(
        [
            v.min(),
            v.max(),
            np.median(v),
            v.mean(),
            v.var(),
            sps.skew(v),
            sps.kurtosis(v),
            sps.entropy(p, base=2),
            (p**2).sum(),
        ],
        dtype=np.float32,
    )
    return resize(unit, size), stats
