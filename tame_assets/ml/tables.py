"""Conversions between ML results (numpy) and warehouse tables (polars), no torch needed."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from tame_assets.ml.preprocessing import STAT_NAMES

#: Version of the classifier recipe (training and prediction, features → calibrated SVM); part of the
#: ``oath_classifier`` and ``asim_predictions`` code_version.
CLASSIFIER_VERSION = "1"


def features_frame(result, features: np.ndarray | None = None) -> pl.DataFrame:
    """One row per input path: features (FLOAT[], NULL when unreadable; ``features`` overrides
    ``result.features``), stat_* columns, ok, error."""
    features = np.asarray(result.features if features is None else features, dtype=np.float32)
    ok = np.asarray(result.ok, dtype=bool)
    rows = [features[i].tolist() if ok[i] else None for i in range(len(ok))]
    stats = np.asarray(result.stats, dtype=np.float32).reshape(len(ok), len(STAT_NAMES))
    columns = {
        "features": pl.Series("features", rows, dtype=pl.List(pl.Float32)),
        **{f"stat_{name}": pl.Series(stats[:, j]) for j, name in enumerate(STAT_NAMES)},
        "ok": pl.Series("ok", ok),
        "error": pl.Series("error", list(result.errors), dtype=pl.Utf8),
    }
    return pl.DataFrame(columns)


def feature_matrix(table: pl.DataFrame, label_column: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """(X float32 [n, d], y labels) from rows with features; rows without features are skipped."""
    rows = table.filter(pl.col("features").is_not_null())
    X = np.asarray(rows["features"].to_list(), dtype=np.float32)
    return X, rows[label_column].to_numpy()


def oath_feature_inputs(oath: pl.DataFrame) -> tuple[list[str], list[float] | None]:
    """Image paths for OATH feature extraction: the provided rotated set when present, else the
    unrotated crops with their ``angle`` (degrees) to rotate by."""
    if "path_rotated" in oath.columns and oath["path_rotated"].null_count() == 0:
        return oath["path_rotated"].to_list(), None
    return oath["path"].to_list(), [float(a or 0.0) for a in oath["angle"].to_list()]


def predictions_frame(
    features: pl.DataFrame, clf, keys: Sequence[str] = ("time", "station", "file_name")
) -> pl.DataFrame:
    """Classifier output for an ``asim_features`` table, one row per input row (same order)."""
    classes = list(clf.classes)
    ok = features["features"].is_not_null().to_numpy()
    proba = np.full((features.height, len(classes)), np.nan, dtype=np.float64)
    preds: list[str | None] = [None] * features.height
    if ok.any():
        X = np.asarray(features.filter(pl.col("features").is_not_null())["features"].to_list(), dtype=np.float32)
        names, p = clf.predict_features(X)
        proba[ok] = p
        for i, name in zip(np.flatnonzero(ok), names):
            preds[i] = str(name)
    auroral = [i for i, c in enumerate(classes) if c in clf.aurora_classes]
    out = features.select(list(keys)).with_columns(pl.Series("pred", preds, dtype=pl.Utf8))
    out = out.with_columns([pl.Series(f"p_{c}", proba[:, j]).fill_nan(None) for j, c in enumerate(classes)])
    p_aurora = proba[:, auroral].sum(axis=1)
    error = features["error"] if "error" in features.columns else pl.Series([None] * features.height, dtype=pl.Utf8)
    return out.with_columns(pl.Series("p_aurora", p_aurora).fill_nan(None), error.alias("error"))
