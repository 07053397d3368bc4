"""The greedy feature selection of the magnetometer model chooses what its definition (one sklearn
``Ridge`` fit per candidate and round) chooses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from tame_assets.analysis.magnetometer_model import greedy_features


def greedy_by_definition(X: np.ndarray, y: np.ndarray, max_features: int = 10, alpha: float = 1.0) -> list[int]:
    """Forward selection as the paper describes it: a ``Ridge`` per candidate, validation R² on the
    last 20 % of the rows; ties go to the higher column (``max`` over (score, column))."""
    cut = int(0.8 * len(y))
    chosen: list[int] = []
    best_score = -np.inf
    for _ in range(max_features):
        trials = []
        for j in range(X.shape[1]):
            if j in chosen:
                continue
            cols = chosen + [j]
            model = Ridge(alpha=alpha).fit(X[:cut, cols], y[:cut])
            trials.append((r2_score(y[cut:], model.predict(X[cut:, cols])), j))
        score, j = max(trials)
        if score <= best_score:
            break
        chosen.append(j)
        best_score = score
    return chosen


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alpha", [0.1, 1.0, 30.0])
def test_greedy_selection_equals_one_ridge_fit_per_candidate(seed, alpha):
    rng = np.random.default_rng(seed)
    n, p = 240, 30
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 20, size=p)  # features on very different scales
    y = X[:, [3, 17, 28]] @ np.array([2.0, -1.0, 0.5]) + rng.normal(scale=5.0, size=n)
    chosen = greedy_features(X, y, alpha=alpha)
    assert chosen == greedy_by_definition(X, y, alpha=alpha)
    assert {3, 17} <= set(chosen)  # the informative columns are found


def test_selection_stops_when_no_candidate_improves():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 8))
    y = 3.0 * X[:, 5] + rng.normal(scale=0.01, size=200)
    chosen = greedy_features(X, y, max_features=8)
    assert chosen == greedy_by_definition(X, y, max_features=8)
    assert chosen[0] == 5 and len(chosen) < 8


def test_fewer_columns_than_rounds_ends_with_every_column():
    X = np.random.default_rng(1).normal(size=(50, 3))
    y = X.sum(axis=1)
    assert sorted(greedy_features(X, y, max_features=10)) == [0, 1, 2]
