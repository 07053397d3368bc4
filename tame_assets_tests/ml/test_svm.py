"""The shared SVM recipe (``tame_assets.ml.svm``) against sklearn's own search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tame_assets.ml.svm import RBF_GRID_C, RBF_GRID_GAMMA, choose_rbf_params


def grid_search_choice(X, y, folds: int, seed: int) -> tuple[dict, np.ndarray]:
    """The definition: sklearn's GridSearchCV over the standardised RBF SVC (C, γ best mean accuracy)."""
    search = GridSearchCV(
        make_pipeline(StandardScaler(), SVC(kernel="rbf")),
        {"svc__C": list(RBF_GRID_C), "svc__gamma": list(RBF_GRID_GAMMA)},
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
    ).fit(X, y)
    return {k.split("__")[-1]: v for k, v in search.best_params_.items()}, search.cv_results_["mean_test_score"]


@pytest.mark.parametrize("case", range(8))
def test_choice_equals_grid_search_on_random_problems(case):
    """Random class counts, dimensions, scales and noise (some with equal best means: the tie rule)."""
    rng = np.random.default_rng(case)
    n_classes, dim = int(rng.integers(2, 6)), int(rng.choice([3, 40, 300]))
    labels = np.arange(int(rng.integers(60, 140))) % n_classes
    centres = rng.normal(scale=rng.uniform(0.3, 3.0), size=(n_classes, dim))
    X = (centres[labels] + rng.normal(size=(len(labels), dim))) * rng.uniform(0.01, 100.0, size=dim)
    X = X.astype(np.float32) if case % 2 else X  # CNN features are float32: scaled in float32, as the pipeline does
    y = np.asarray(["arc", "diffuse", "discrete", "cloudy", "clear"])[labels]
    folds, seed = int(rng.integers(2, 6)), int(rng.integers(0, 100))
    expected, means = grid_search_choice(X, y, folds, seed)
    assert choose_rbf_params(X, y, folds, seed) == expected, means
