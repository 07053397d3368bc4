"""The paper's evaluation protocol, the SVM search and the backbone benchmark.

Expected values are computed independently: splits by explicit modular arithmetic, ridge by its
closed-form solution with numpy, binary accuracy from the label vectors, SVM points by a direct
sklearn fit on hand-made splits.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import confusion_matrix
from sklearn.svm import SVC

from tame_assets.labels import OATH_CLASSES
from tame_assets.ml.evaluation import (
    LINEAR_C,
    RBF_C,
    RBF_GAMMA,
    binary_accuracy,
    class_confusion,
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
    # rows in the grid's order (linear C, then RBF C-major), and points recomputed by a direct SVC fit
    # on the features (the search fits on precomputed kernel matrices) on the protocol's splits
    assert table["kernel"].to_list() == ["linear"] * 18 + ["rbf"] * 169
    assert rbf["C"].to_list() == [float(c) for c in RBF_C for _ in RBF_GAMMA]
    assert rbf["gamma"].to_list() == [float(g) for _ in RBF_C for g in RBF_GAMMA]
    for row in (rbf.row(100, named=True), rbf.row(40, named=True), linear.row(12, named=True)):
        assert row["acc6_mean"] == pytest.approx(svm_point_by_definition(X, y, row["kernel"], row["C"], row["gamma"]))


def svm_point_by_definition(X, y, kernel: str, C: float, gamma: float | None) -> float:
    """Mean six-class accuracy of ``SVC(kernel, C, gamma)`` fitted on the features, by hand-made rotations."""
    n, accs = len(y), []
    for i in range(10):
        order = np.roll(np.arange(n), -i * (n // 10))
        train, test = order[: round(0.7 * n)], order[round(0.7 * n) :]
        model = SVC(kernel=kernel, C=C, gamma=gamma or "scale").fit(X[train], y[train])
        accs.append(np.mean(model.predict(X[test]) == y[test]))
    return float(np.mean(accs))


def test_svm_search_finds_separable_data():
    rng = np.random.default_rng(4)
    y = np.asarray(OATH_CLASSES)[np.arange(60) % 6]
    X = np.eye(6)[np.arange(60) % 6] * 10 + rng.normal(scale=0.1, size=(60, 6))
    table, best_c = svm_search(X, y)
    assert table.filter((pl.col("kernel") == "linear") & (pl.col("C") == best_c))["acc6_mean"][0] == 1.0
    assert table.filter(pl.col("kernel") == "linear")["acc6_mean"].min() == 1.0
    assert best_c == pytest.approx(1e-5)  # ties are broken towards the smallest C


def test_class_confusion_equals_sklearn_including_labels_outside_the_classes():
    rng = np.random.default_rng(7)
    pool = np.asarray([*OATH_CLASSES, "unknown"])
    for _ in range(20):
        true, predicted = rng.choice(pool, 50), rng.choice(pool, 50)
        expected = confusion_matrix(true, predicted, labels=list(OATH_CLASSES))
        np.testing.assert_array_equal(class_confusion(true, predicted, OATH_CLASSES), expected)
