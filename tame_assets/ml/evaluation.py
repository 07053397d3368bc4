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
import sklearn
from joblib import Parallel, delayed
from sklearn.linear_model import RidgeClassifier
from sklearn.svm import SVC

from tame_assets.labels import OATH_CLASSES
from tame_assets.ml.svm import rbf_kernel

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


def class_confusion(true: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Confusion matrix (rows true, columns predicted) in the order of ``classes``; pairs with a label
    outside ``classes`` are left out (as ``sklearn.metrics.confusion_matrix(labels=classes)``)."""
    index = {label: i for i, label in enumerate(classes)}
    t = np.fromiter((index.get(v, -1) for v in np.asarray(true).tolist()), dtype=np.int64, count=len(true))
    p = np.fromiter((index.get(v, -1) for v in np.asarray(predicted).tolist()), dtype=np.int64, count=len(predicted))
    kept = (t >= 0) & (p >= 0)
    n = len(classes)
    return np.bincount(t[kept] * n + p[kept], minlength=n * n).reshape(n, n)


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

    def predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return make_model().fit(X[train], y[train]).predict(X[test])

    return _rotation_scores(predict, y, classes, k, n_auroral)


def _rotation_scores(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    y: np.ndarray,
    classes: Sequence[str],
    k: int,
    n_auroral: int,
) -> dict[str, float]:
    """The protocol's scores from ``predict(train_index, test_index)`` → predicted labels of the test rows."""
    acc6, acc2 = [], []
    for train, test in rotation_splits(len(y), k):
        cm = class_confusion(y[test], predict(train, test), classes)
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


def svm_search(X: np.ndarray, y: np.ndarray, n_jobs: int = 2) -> tuple[pl.DataFrame, float]:
    """Linear SVC over C = logspace(−5, 0, 9) ∪ logspace(−4.3, −3.3, 9) and RBF SVC over
    C = logspace(−1, 3, 13) × γ = logspace(−6, −2, 13) under the protocol.

    Every grid point fits the same SVC as ``SVC(kernel=…, C=…, gamma=…)`` on the features, but from a
    kernel matrix computed once per kernel (libsvm's own formulas: x·x' and :func:`~tame_assets.ml.svm.rbf_kernel`),
    so no fit recomputes feature dot products; ``n_jobs`` processes share the kernels (joblib
    memory-maps the Gram matrix to them).

    Returns the tidy table (kernel, C, gamma, acc6_mean, acc6_std, acc2_mean, acc2_std) and the best
    linear C (highest six-class mean accuracy).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    gram = X @ X.T
    per_kernel = Parallel(n_jobs=n_jobs)(delayed(_kernel_rows)(gram, y, g) for g in [None, *map(float, RBF_GAMMA)])
    linear_rows, *rbf_rows = per_kernel  # rows in the grid's order: linear C, then RBF C-major, γ-minor
    rbf_by_point = {(r["C"], r["gamma"]): r for rows in rbf_rows for r in rows}
    table = pl.DataFrame(
        linear_rows + [rbf_by_point[(float(c), float(g))] for c in RBF_C for g in RBF_GAMMA],
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


def _kernel_rows(gram: np.ndarray, y: np.ndarray, gamma: float | None) -> list[dict]:
    """The grid rows of one kernel (linear when ``gamma`` is None, else RBF), from the Gram matrix x·x'."""
    if gamma is None:
        kernel, matrix, grid_c = "linear", gram, LINEAR_C
    else:
        squared = np.diag(gram)
        kernel, grid_c, matrix = "rbf", RBF_C, rbf_kernel(gamma, squared, squared, gram)
    return [{"kernel": kernel, "C": float(c), "gamma": gamma, **_precomputed_svc_scores(matrix, y, c)} for c in grid_c]


def _precomputed_svc_scores(kernel: np.ndarray, y: np.ndarray, C: float) -> dict[str, float]:
    """Protocol scores of an SVC with penalty ``C`` on a precomputed (n, n) kernel matrix."""

    def predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        model = SVC(kernel="precomputed", C=C).fit(kernel[np.ix_(train, train)], y[train])
        return model.predict(kernel[np.ix_(test, train)])

    # the matrices are finite and the parameters fixed here: sklearn's per-call checks cost ~3× libsvm's fit
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        return _rotation_scores(predict, y, OATH_CLASSES, 10, 3)
