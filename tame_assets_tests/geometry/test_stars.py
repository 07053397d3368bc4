"""Star detection helpers of ``tame_assets.geometry.stars`` against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import median_filter

from tame_assets.geometry.stars import median_filter_7x7


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
@pytest.mark.parametrize("shape", [(5, 9), (70, 131), (200, 64)])
def test_median_filter_7x7_equals_scipys_with_mirrored_edges(dtype, shape):
    rng = np.random.default_rng(shape[0] * shape[1])
    high = np.iinfo(dtype).max if np.dtype(dtype).kind in "ui" else 4000
    image = rng.integers(0, high, size=shape, endpoint=True).astype(dtype)
    image[: shape[0] // 2, : shape[1] // 3] = 0  # a dark corner: many equal values, as outside the lit disk
    got = median_filter_7x7(image, rows_per_block=16)  # several blocks, the last one short
    assert got.dtype == np.float64 and got.shape == image.shape
    np.testing.assert_array_equal(got, median_filter(image.astype(float), size=7))
