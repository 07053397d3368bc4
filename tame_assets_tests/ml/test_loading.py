"""Blank and tiny images (issue 25): they used to be classified "moon" without a flag; the loader now
refuses them with the reason, so features are NULL (``ok = false``), ``pred`` is NULL and ``error``
says why — in ``asim_features`` / ``asim_predictions`` and in ``tame classify`` alike."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tame_assets.ml.loading import ImageDataset
from tame_assets.ml.tables import predictions_frame
from tame_assets.sources.images import unclassifiable_reason


@pytest.mark.parametrize(
    "array, reason",
    [
        (np.zeros((64, 64), np.uint16), "blank image: every pixel is 0"),
        (np.full((32, 48, 3), 17, np.uint8), "blank image: every pixel is 17"),
        (np.full((1, 1), 200, np.uint8), "image too small: 1×1 pixels (classified from 8×8 up)"),
        (np.arange(12, dtype=np.uint8).reshape(3, 4), "image too small: 4×3 pixels (classified from 8×8 up)"),
        (np.eye(8, dtype=np.uint8), None),
    ],
)
def test_unclassifiable_reason(array, reason):
    assert unclassifiable_reason(array) == reason


def test_blank_and_tiny_files_get_no_features_and_no_class(tmp_path):
    paths = []
    for name, array in [
        ("blank.png", np.zeros((64, 64), np.uint16)),
        ("tiny.png", np.full((1, 1), 200, np.uint8)),
        ("sky.png", np.random.default_rng(0).integers(0, 4000, (64, 64), dtype=np.uint16)),
    ]:
        Image.fromarray(array).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    dataset = ImageDataset(paths, size=32)
    items = [dataset[i] for i in range(3)]
    assert [item[3] for item in items] == [
        f"{paths[0]}: blank image: every pixel is 0",
        f"{paths[1]}: image too small: 1×1 pixels (classified from 8×8 up)",
        "",
    ]
    assert np.isnan(items[0][2]).all() and np.isfinite(items[2][2]).all()

    class AlwaysMoon:  # what a featureless input used to become
        classes = ["arc", "moon"]
        aurora_classes = ["arc"]

        def predict_features(self, X):
            return np.array(["moon"] * len(X)), np.tile([0.1, 0.9], (len(X), 1))

    features = pl.DataFrame(
        {
            "time": [None, None, None],
            "station": ["NYA"] * 3,
            "file_name": ["blank.png", "tiny.png", "sky.png"],
            "features": pl.Series([None, None, [0.0, 1.0]], dtype=pl.List(pl.Float32)),
            "error": [items[0][3], items[1][3], None],
        }
    )
    predictions = predictions_frame(features, AlwaysMoon())
    assert predictions["pred"].to_list() == [None, None, "moon"]
    assert predictions["error"].to_list()[:2] == [items[0][3], items[1][3]]
