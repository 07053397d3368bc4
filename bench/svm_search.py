"""The SVM hyper-parameter searches on precomputed kernel matrices against their definitions, on the
same feature matrix in one process: the paper's grid (``svm_search``, section 3) against one
``SVC(kernel, C, gamma)`` per grid point fitted on the features, and the C/γ choice of the shared SVM
recipe (``choose_rbf_params``: ``tame train``, the labelled-set evaluation's nested CV) against
sklearn's ``GridSearchCV``. Checks that the scores and the choice agree and prints the ratios.

Features: six Gaussian classes in CNN-logit-like dimensions (``--rows`` images × ``--dim`` features).

    .venv/bin/python bench/svm_search.py [--rows 300 --dim 1000 --repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl
from joblib import Parallel, delayed
from sklearn.svm import SVC

from tame_assets.labels import OATH_CLASSES
from tame_assets.ml.evaluation import LINEAR_C, RBF_C, RBF_GAMMA, protocol_scores, svm_search
from tame_assets.ml.svm import choose_rbf_params
from tame_assets_tests.ml.test_svm import grid_search_choice


def search_by_definition(X: np.ndarray, y: np.ndarray, n_jobs: int = 2) -> pl.DataFrame:
    """The grid as the previous release ran it: one SVC per point on the features, joblib-parallel."""
    grid = [("linear", c, None) for c in LINEAR_C] + [("rbf", c, g) for c in RBF_C for g in RBF_GAMMA]

    def point(kernel: str, C: float, gamma: float | None) -> dict:
        scores = protocol_scores(lambda: SVC(kernel=kernel, C=C, gamma=gamma or "scale"), X, y)
        return {"kernel": kernel, "C": float(C), "gamma": gamma, **scores}

    return pl.DataFrame(Parallel(n_jobs=n_jobs)(delayed(point)(*p) for p in grid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300, help="labelled images (the demo's OATH set: 300)")
    parser.add_argument("--dim", type=int, default=1000, help="feature dimension (logits: 1000)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = np.arange(args.rows) % 6
    X = rng.normal(scale=3.0, size=(6, args.dim))[labels] + rng.normal(scale=12.0, size=(args.rows, args.dim))
    y = np.asarray(OATH_CLASSES)[labels]
    Parallel(n_jobs=2)(delayed(abs)(i) for i in range(2))  # both runs use the same started worker processes
    times: dict[str, list[float]] = {"precomputed kernels": [], "SVC per point": []}
    tables = {}
    for _ in range(args.repeat):  # interleaved: a noisy machine slows both alike
        for name, run in (
            ("precomputed kernels", lambda: svm_search(X, y)[0]),
            ("SVC per point", lambda: search_by_definition(X, y)),
        ):
            started = time.perf_counter()
            tables[name] = run()
            times[name].append(time.perf_counter() - started)
    new, old = tables["precomputed kernels"], tables["SVC per point"]
    scores = ["acc6_mean", "acc6_std", "acc2_mean", "acc2_std"]
    assert new.select("kernel", "C", "gamma").equals(old.select("kernel", "C", "gamma"))
    worst = float(np.max(np.abs(new.select(scores).to_numpy() - old.select(scores).to_numpy())))
    fast, slow = (statistics.median(times[k]) for k in times)
    print(f"{args.rows} images × {args.dim} features, {new.height} grid points × 10 rotations")
    print(f"largest score difference between the two: {worst:.2g}")
    print(f"precomputed kernels (2 processes): {fast:7.2f} s (median of {args.repeat})")
    print(f"SVC per point (2 processes):     {slow:7.2f} s")
    print(f"svm_search: {slow / fast:.1f}x the per-point search")

    started = time.perf_counter()
    chosen = choose_rbf_params(X, y, 5, 0)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    expected, _ = grid_search_choice(X, y, 5, 0)
    slow = time.perf_counter() - started
    assert chosen == expected, (chosen, expected)
    print(f"C/γ choice, 5-fold CV over 15 points: precomputed kernels {fast:.2f} s, GridSearchCV {slow:.2f} s")
    print(f"choose_rbf_params: {slow / fast:.1f}x GridSearchCV, the same choice {chosen}")


if __name__ == "__main__":
    main()
