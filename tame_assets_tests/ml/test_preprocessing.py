"""Paper preprocessing on synthetic arrays with results computed by hand or by independent formulas
(numpy.percentile, scipy.stats, numpy.histogram), plus real 16-bit UiO images and OATH RGB PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from tame_assets.ml import preprocessing as pp
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.frame_reader import load_frame


def _hand_mask(h: int, w: int) -> np.ndarray:
    return np.array(
        [[(y - (h - 1) / 2) ** 2 + (x - (w - 1) / 2) ** 2 <= ((h - 1) / 2) ** 2 for x in range(w)] for y in range(h)]
    )


def test_disk_mask_radius_and_centre():
    mask = pp.disk_mask(9, 9)  # radius 4 around (4, 4): the four edge midpoints are inside, corners not
    assert mask[4, 0] and mask[0, 4] and mask[8, 4] and mask[4, 8]
    assert not mask[0, 0] and not mask[1, 1] and not mask[0, 3]
    assert mask.sum() == 49  # lattice points with y² + x² ≤ 16, counted by hand: 1 + 4·4 + 4·(3+3+2) = 49
    for h, w in [(10, 10), (469, 469), (471, 469), (8, 12)]:  # even size: centre between pixels
        np.testing.assert_array_equal(pp.disk_mask(h, w), _hand_mask(h, w))


def test_percentile_clip_and_min_max_scaling_on_a_ramp():
    h = 41
    mask = pp.disk_mask(h, h)
    n = int(mask.sum())
    grey = np.full((h, h), 60000, np.uint16)  # bright corners outside the mask must not matter
    grey[mask] = np.arange(n) * 10  # each value once: percentiles of a ramp by hand (linear interpolation)
    lo, hi = 0.005 * (n - 1) * 10, 0.995 * (n - 1) * 10
    assert pp.clip_limits(grey, mask) == pytest.approx((lo, hi), rel=1e-12)
    unit = pp.scale_to_unit(grey, mask)
    np.testing.assert_allclose(unit[mask], np.clip((grey[mask] - lo) / (hi - lo), 0, 1), atol=1e-7)
    assert (unit[~mask] == 0).all() and unit.max() == 1.0 and unit.min() == 0.0
    # the clip really happens: about 0.5 % of the pixels sit at each end
    assert (unit[mask] == 0).sum() == pytest.approx(0.005 * n, abs=2) and (unit[mask] == 1).sum() == pytest.approx(
        0.005 * n, abs=2
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_clip_limits_equal_numpy_percentile(dtype):
    rng = np.random.default_rng(7)
    top = 255 if dtype == np.uint8 else 65535
    for h, w in [(37, 37), (64, 80), (3, 3)]:
        grey = rng.integers(0, top + 1, (h, w)).astype(dtype)
        mask = pp.disk_mask(h, w)
        np.testing.assert_allclose(
            pp.clip_limits(grey, mask), np.percentile(grey[mask], pp.CLIP_PERCENTILES), rtol=1e-12
        )


def test_16bit_values_up_to_65535_are_not_saturated():
    # signal entirely above 255: the paper's code clipped 16-bit images to 255 (all white); we keep it
    ramp = np.tile(np.linspace(1000, 65535, 64), (64, 1)).astype(np.uint16)
    unit, stats = pp.preprocess(ramp, 64)
    inside = unit[pp.disk_mask(64, 64)]
    assert len(np.unique(np.round(inside, 4))) > 50 and inside.std() > 0.2
    # the same picture on the 8-bit and on the full 16-bit scale gives the same result
    img8 = np.random.default_rng(0).integers(0, 256, (50, 50)).astype(np.uint8)
    u8, s8 = pp.preprocess(img8, 32)
    u16, s16 = pp.preprocess(img8.astype(np.uint16) * 257, 32)  # 255 · 257 = 65535
    np.testing.assert_allclose(u8, u16, atol=1e-6)
    np.testing.assert_allclose(s8, s16, rtol=1e-5, atol=1e-7)


def test_constant_image_is_all_zero_and_stats_are_finite():
    unit, stats = pp.preprocess(np.full((20, 20), 4000, np.uint16), 16)
    assert (unit == 0).all()
    assert stats[pp.STAT_NAMES.index("entropy")] == 0 and stats[pp.STAT_NAMES.index("energy")] == 1


def test_network_input_is_green_only_and_imagenet_normalised():
    unit = np.random.default_rng(1).random((6, 6)).astype(np.float32)
    chw = pp.to_network_input(unit)
    assert chw.shape == (3, 6, 6) and chw.dtype == np.float32
    # undo the normalisation: R = B = 0, G = the grey image
    raw = (
        chw * np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
        + np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    )
    np.testing.assert_allclose(raw[0], 0, atol=1e-6)
    np.testing.assert_allclose(raw[2], 0, atol=1e-6)
    np.testing.assert_allclose(raw[1], unit, atol=1e-6)


def test_resize_is_antialiased_bilinear():
    # a 2×2 checkerboard of 1-pixel squares averages to 0.5 when halved (antialiased), not to 0 or 1
    board = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)
    small = pp.resize(board, 32)
    assert small.shape == (32, 32)
    np.testing.assert_allclose(small[4:-4, 4:-4], 0.5, atol=1e-5)
    np.testing.assert_array_equal(pp.resize(board, 64), board)


def test_histogram_stats_against_scipy_and_numpy():
    rng = np.random.default_rng(3)
    unit = rng.beta(2, 5, (50, 50)).astype(np.float32)
    unit[25, 25] = 1.0  # a pixel with value 1.0 belongs to the last bin
    mask = pp.disk_mask(50, 50)
    v = unit[mask].astype(np.float64)
    got = dict(zip(pp.STAT_NAMES, pp.histogram_stats(unit, mask)))
    counts, _ = np.histogram(v, bins=128, range=(0, 1))
    assert counts.sum() == v.size
    p = counts / v.size
    assert got["min"] == pytest.approx(v.min()) and got["max"] == 1.0
    assert got["median"] == pytest.approx(np.median(v), rel=1e-6) and got["mean"] == pytest.approx(v.mean(), rel=1e-6)
    assert got["variance"] == pytest.approx(v.var(), rel=1e-5)
    assert got["skewness"] == pytest.approx(scipy_stats.skew(v), rel=1e-5)
    assert got["kurtosis"] == pytest.approx(scipy_stats.kurtosis(v), rel=1e-5)
    assert got["entropy"] == pytest.approx(scipy_stats.entropy(p, base=2), rel=1e-6)
    assert got["energy"] == pytest.approx((p**2).sum(), rel=1e-6)


def test_two_level_image_stats_by_hand():
    # inside the mask: half the pixels 0, half 1 (up to one) → entropy 1 bit, energy 1/2, variance 1/4
    h = 30
    mask = pp.disk_mask(h, h)
    unit = np.zeros((h, h), np.float32)
    idx = np.flatnonzero(mask.ravel())
    unit.ravel()[idx[: len(idx) // 2]] = 1.0
    s = dict(zip(pp.STAT_NAMES, pp.histogram_stats(unit, mask)))
    assert s["entropy"] == pytest.approx(1.0) and s["energy"] == pytest.approx(0.5)
    assert (
        s["variance"] == pytest.approx(0.25)
        and s["mean"] == pytest.approx(0.5)
        and s["skewness"] == pytest.approx(0, abs=1e-6)
    )
    assert s["kurtosis"] == pytest.approx(-2.0)  # a symmetric two-point distribution: excess kurtosis −2


def test_fast_histogram_path_equals_reference(real_dir):
    """Integer images take the bincount path; it matches the float/partition path and the
    straightforward float64 reference (np.percentile, np.histogram, scipy.stats) on real images."""
    images = sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))[:6]
    for path in images:
        grey = pp.to_grey(load_frame(path))
        assert grey.dtype == np.uint16 and grey.max() > 255
        fast_unit, fast_stats = pp.preprocess(grey, 224)
        float_unit, float_stats = pp.preprocess(grey.astype(np.float32), 224)
        ref_unit, ref_stats = pp.preprocess_reference(grey, 224)
        np.testing.assert_array_equal(fast_unit, ref_unit)
        np.testing.assert_array_equal(float_unit, ref_unit)
        np.testing.assert_allclose(fast_stats, ref_stats, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(float_stats, ref_stats, rtol=1e-5, atol=1e-7)


def test_oath_green_channel_and_rotation(tmp_path):
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 255  # red and blue must be ignored for OATH images
    rgb[..., 2] = 17
    rgb[10:14, 20:30, 1] = 200  # a bar right of the centre, above it
    path = tmp_path / "00001.png"
    Image.fromarray(rgb).save(path)
    grey = pp.to_grey(load_frame(path), green=True)
    np.testing.assert_array_equal(grey, rgb[..., 1])
    # counter-clockwise by 90°: the bar's centroid (row 11.5, col 24.5) = 8 px up and 5 px right of the
    # centre (19.5, 19.5) moves to 8 px left and 5 px up: (row 14.5, col 11.5)
    rotated = pp.rotate(grey, 90)
    ys, xs = np.nonzero(rotated > 100)
    assert ys.mean() == pytest.approx(14.5, abs=0.6) and xs.mean() == pytest.approx(11.5, abs=0.6)
    unit, stats = pp.preprocess(rgb, 32, green=True, angle_deg=90)
    unit_ref, stats_ref = pp.preprocess_reference(rgb, 32, green=True, angle_deg=90)
    np.testing.assert_allclose(unit, unit_ref, atol=1e-6)
    np.testing.assert_allclose(stats, stats_ref, rtol=1e-5, atol=1e-6)


def test_real_oath_png_is_green_only(real_dir):
    path = sorted((real_dir / "oath" / "images" / "cropped_scaled").glob("*.png"))[0]
    rgb = load_frame(path)
    assert rgb.shape == (256, 256, 3)
    np.testing.assert_array_equal(pp.to_grey(rgb, green=True), rgb[..., 1])


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "truncated.png"
    Image.fromarray(np.zeros((64, 64), np.uint16)).save(bad)
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="truncated.png"):
        load_frame(bad)
    with pytest.raises(ImageReadError, match="missing.png"):
        load_frame(tmp_path / "missing.png")


def test_a_mask_of_another_shape_is_refused_not_read_out_of_bounds():
    grey = np.arange(64, dtype=np.uint16).reshape(8, 8)
    with pytest.raises(ValueError, match=r"mask \(6, 6\) bool for an image of shape \(8, 8\)"):
        pp.scale_to_unit(grey, pp.disk_mask(6, 6))
    with pytest.raises(ValueError, match="need bool"):
        pp.clip_limits(grey, np.ones((8, 8), np.uint8))
