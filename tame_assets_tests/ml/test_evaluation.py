"""The paper's evaluation protocol, the SVM search and the backbone benchmark.

Expected values are computed independently: splits by explicit modular arithmetic, ridge by its
closed-form solution with numpy, binary accuracy from the label vectors, SVM points by a direct
sklearn fit on hand-made splits.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.svm import SVC

from tame_assets.labels import OATH_CLASSES
from tame_assets.ml.evaluation import (
    LINEAR_C,
    RBF_C,
    RBF_GAMMA,
    binary_accuracy,
    ridge_protocol,
    rotation_splits,
    svm_search,
)


def synthetic(n: int = 90, d: int = 6, noise: float = 1.2, seed: int = 0):
    """Six Gaussian classes in the paper's class order (labels cycle so every rotation sees all)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(6, d))
    y_idx = np.arange(n) % 6
    X = centres[y_idx] + rng.normal(scale=noise, size=(n, d))
    return X, np.asarray(OATH_CLASSES)[y_idx]


@pytest.mark.parametrize("n", [100, 37])
def test_rotation_splits_match_modular_arithmetic(n):
    splits = rotation_splits(n)
    assert len(splits) == 10
    step, cut = n // 10, int(round(0.7 * n))
    for i, (train, test) in enumerate(splits):
        expected = [(i * step + j) % n for j in range(n)]
        assert train.tolist() == expected[:cut]
        assert test.tolist() == expected[cut:]
        assert sorted(train.tolist() + test.tolist()) == list(range(n))


def test_binary_accuracy_from_confusion_blocks():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 6, 500)
    pred = np.where(rng.random(500) < 0.6, truth, rng.integers(0, 6, 500))
    cm = np.zeros((6, 6), int)
    np.add.at(cm, (truth, pred), 1)
    direct = np.mean((truth < 3) == (pred < 3))
    assert binary_accuracy(cm) == pytest.approx(direct)


def _ridge_closed_form(Xtr, ytr, Xte, alpha, classes):
    """RidgeClassifier's model written out: ±1 one-hot targets, centred least squares + αI."""
    Y = np.where(ytr[:, None] == np.asarray(classes)[None, :], 1.0, -1.0)
    xm, ym = Xtr.mean(0), Y.mean(0)
    W = np.linalg.solve((Xtr - xm).T @ (Xtr - xm) + alpha * np.eye(Xtr.shape[1]), (Xtr - xm).T @ (Y - ym))
    return np.asarray(classes)[((Xte - xm) @ W + ym).argmax(1)]


def test_ridge_protocol_matches_closed_form():
    X, y = synthetic()
    scores = ridge_protocol(X, y, alpha=0.03)
    n, acc6, acc2 = len(y), [], []
    for i in range(10):
        order = np.roll(np.arange(n), -i * (n // 10))
        tr, te = order[:63], order[63:]
        pred = _ridge_closed_form(X[tr], y[tr], X[te], 0.03, OATH_CLASSES)
        acc6.append(np.mean(pred == y[te]))
        aur = np.isin(pred, OATH_CLASSES[:3]) == np.isin(y[te], OATH_CLASSES[:3])
        acc2.append(np.mean(aur))
    assert scores["acc6_mean"] == pytest.approx(np.mean(acc6))
    assert scores["acc6_std"] == pytest.approx(np.std(acc6))
    assert scores["acc2_mean"] == pytest.approx(np.mean(acc2))
    assert scores["acc2_std"] == pytest.approx(np.std(acc2))
    assert 0.3 < scores["acc6_mean"] < 1.0  # the data is neither trivial nor random


def test_svm_search_grid_table_and_best_c():
    X, y = synthetic(n=60, d=4, noise=1.5, seed=3)
    table, best_c = svm_search(X, y, n_jobs=2)
    assert table.columns == ["kernel", "C", "gamma", "acc6_mean", "acc6_std", "acc2_mean", "acc2_std"]
    linear, rbf = table.filter(pl.col("kernel") == "linear"), table.filter(pl.col("kernel") == "rbf")
    np.testing.assert_allclose(sorted(linear["C"]), np.sort(np.r_[np.logspace(-5, 0, 9), np.logspace(-4.3, -3.3, 9)]))
    assert linear.height == len(LINEAR_C) == 18 and linear["gamma"].null_count() == 18
    assert rbf.height == len(RBF_C) * len(RBF_GAMMA) == 169
    # best C: the highest mean six-class accuracy among the linear rows (smallest C on ties)
    top = linear["acc6_mean"].max()
    assert best_c == min(c for c, a in zip(linear["C"], linear["acc6_mean"]) if a == top)
    # one RBF point recomputed by hand on the protocol's splits
    row = rbf.sort(["C", "gamma"]).row(100, named=True)
    accs = []
    for i in range(10):
        order = np.roll(np.arange(60), -i * 6)
        model = SVC(kernel="rbf", C=row["C"], gamma=row["gamma"]).fit(X[order[:42]], y[order[:42]])
        accs.append(np.mean(model.predict(X[order[42:]]) == y[order[42:]]))
    assert row["acc6_mean"] == pytest.approx(np.mean(accs))


def test_svm_search_finds_separable_data():
    rng = np.random.default_rng(4)
    y = np.asarray(OATH_CLASSES)[np.arange(60) % 6]
    X = np.eye(6)[np.arange(60) % 6] * 10 + rng.normal(scale=0.1, size=(60, 6))
    table, best_c = svm_search(X, y)
    assert table.filter((pl.col("kernel") == "linear") & (pl.col("C") == best_c))["acc6_mean"][0] == 1.0
    assert table.filter(pl.col("kernel") == "linear")["acc6_mean"].min() == 1.0
    assert best_c == pytest.approx(1e-5)  # ties are broken towards the smallest C
