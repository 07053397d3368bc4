"""The paper's evaluation protocol and hyper-parameter searches (pure functions on X, y).

Protocol (Sado et al. 2022): for i = 0..9 rotate the index order by i·⌊N/10⌋, train on the first
70 %, test on the last 30 %; report mean ± std over the 10 rotations. Binary (aurora vs no aurora)
accuracy is read from the six-class confusion matrix: (Σ cm[:3, :3] + Σ cm[3:, 3:]) / Σ cm with
classes ordered arc, diffuse, discrete, cloudy, moon, clear. Features are used unscaled, as the paper.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import polars as pl
from joblib import Parallel, delayed
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import confusion_matrix
from sklearn.svm import SVC

from tame_assets.labels import OATH_CLASSES

LINEAR_C = np.unique(np.concatenate([np.logspace(-5, 0, 9), np.logspace(-4.3, -3.3, 9)]))
RBF_C = np.logspace(-1, 3, 13)
RBF_GAMMA = np.logspace(-6, -2, 13)


def rotation_splits(n: int, k: int = 10, train_frac: float = 0.7) -> list[tuple[np.ndarray, np.ndarray]]:
    """The paper's k rotations: order = roll(arange(n), −i·⌊n/k⌋); first 70 % train, rest test."""
    step, cut = n // k, int(round(train_frac * n))
    splits = []
    for i in range(k):
        order = np.roll(np.arange(n), -i * step)
        splits.append((order[:cut], order[cut:]))
    return splits


def binary_accuracy(cm: np.ndarray, n_auroral: int = 3) -> float:
    """Aurora vs no-aurora accuracy from a confusion matrix whose first ``n_auroral`` classes are auroral."""
    a = n_auroral
    return float((cm[:a, :a].sum() + cm[a:, a:].sum()) / cm.sum())


def protocol_scores(
    make_model: Callable[[], object],
    X: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str] = OATH_CLASSES,
    k: int = 10,
    n_auroral: int = 3,
) -> dict[str, float]:
    """Mean ± std multi-class ("acc6") and binary ("acc2") accuracy of ``make_model()`` under the
    rotation protocol; ``classes`` lists the first ``n_auroral`` auroral classes first."""
    acc6, acc2 = [], []
    for train, test in rotation_splits(len(y), k):
        model = make_model().fit(X[train], y[train])
        cm = confusion_matrix(y[test], model.predict(X[test]), labels=list(classes))
        acc6.append(np.trace(cm) / cm.sum())
        acc2.append(binary_accuracy(cm, n_auroral))
    return {
        "acc6_mean": float(np.mean(acc6)),
        "acc6_std": float(np.std(acc6)),
        "acc2_mean": float(np.mean(acc2)),
        "acc2_std": float(np.std(acc2)),
    }


def ridge_protocol(
    X: np.ndarray, y: np.ndarray, alpha: float = 0.03, classes: Sequence[str] = OATH_CLASSES, n_auroral: int = 3
) -> dict[str, float]:
    """Ridge classifier (alpha 0.03, unscaled features) under the paper's protocol."""
    return protocol_scores(lambda: RidgeClassifier(alpha=alpha), X, y, classes, n_auroral=n_auroral)


def _svm_point(X, y, kernel: str, C: float, gamma: float | None) -> dict:
    scores = protocol_scores(lambda: SVC(kernel=kernel, C=C, gamma=gamma if gamma else "scale"), X, y)
    return {"kernel": kernel, "C": float(C), "gamma": gamma, **scores}


def svm_search(X: np.ndarray, y: np.ndarray, n_jobs: int = 2) -> tuple[pl.DataFrame, float]:
    """Linear SVC over C = logspace(−5, 0, 9) ∪ logspace(−4.3, −3.3, 9) and RBF SVC over
    C = logspace(−1, 3, 13) × γ = logspace(−6, −2, 13) under the protocol (joblib-parallel).

    Returns the tidy table (kernel, C, gamma, acc6_mean, acc6_std, acc2_mean, acc2_std) and the best
    linear C (highest six-class mean accuracy).
    """
    grid = [("linear", c, None) for c in LINEAR_C] + [("rbf", c, g) for c in RBF_C for g in RBF_GAMMA]
    rows = Parallel(n_jobs=n_jobs)(delayed(_svm_point)(X, y, k, c, g) for k, c, g in grid)
    table = pl.DataFrame(
        rows,
        schema={
            "kernel": pl.Utf8,
            "C": pl.Float64,
            "gamma": pl.Float64,
            "acc6_mean": pl.Float64,
            "acc6_std": pl.Float64,
            "acc2_mean": pl.Float64,
            "acc2_std": pl.Float64,
        },
    )
    best = table.filter(pl.col("kernel") == "linear").sort(["acc6_mean", "C"], descending=[True, False])
    return table, float(best["C"][0])
