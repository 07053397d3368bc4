"""Greedy feature selection of the magnetometer model (paper section 5): the batched normal-equation
solve (tame_assets) against the definition, one sklearn ``Ridge`` fit per candidate and round, on the
same random problem in one process. Checks that both choose the same columns and prints the ratio.

    .venv/bin/python bench/greedy_features.py [--rows 700 --features 1000 --repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tame_assets.analysis.magnetometer_model import greedy_features
from tame_assets_tests.analysis.test_magnetometer_model import greedy_by_definition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=700, help="training-block rows (sample pipeline: ~700)")
    parser.add_argument("--features", type=int, default=1000, help="feature columns (logits: 1000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, args.features))
    y = X[:, [1, 5, 9]] @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=args.rows)
    times = {"batched": [], "ridge per candidate": []}
    chosen = {}
    for _ in range(args.repeat):  # interleaved: a noisy machine slows both alike
        for name, select in (("batched", greedy_features), ("ridge per candidate", greedy_by_definition)):
            started = time.perf_counter()
            chosen[name] = select(X, y)
            times[name].append(time.perf_counter() - started)
    assert chosen["batched"] == chosen["ridge per candidate"], chosen
    fast, slow = (statistics.median(times[k]) for k in ("batched", "ridge per candidate"))
    print(f"{args.rows} rows × {args.features} features, {len(chosen['batched'])} columns chosen (the same by both)")
    print(f"batched normal equations: {fast * 1e3:8.1f} ms (median of {args.repeat})")
    print(f"Ridge per candidate:      {slow * 1e3:8.1f} ms")
    print(f"ratio: {slow / fast:.0f}× faster")


if __name__ == "__main__":
    main()
