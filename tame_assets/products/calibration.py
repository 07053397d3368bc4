"""Calibration of p_aurora (the summed auroral-class probability) against binary truth (auroral = 1).

Definitions (``n_bins`` equal-width bins on [0, 1]; bin ``b`` holds ``b/n ≤ p < (b+1)/n``, and
``p = 1`` falls in the last bin):

- reliability curve: per bin, the number of predictions, their mean ``p`` and the fraction of
  positives (the observed frequency);
- expected calibration error ``ECE = Σ_b (n_b / N) · |mean_p_b − fraction_positive_b|`` (empty bins
  contribute nothing), a number in [0, 1]: 0 for perfectly calibrated scores.

Calibrators map a raw p to a calibrated one and serialise to JSON-able dicts:

- **isotonic**: the monotone non-decreasing step function minimising squared error (pool adjacent
  violators, ``scipy.optimize.isotonic_regression``), evaluated by linear interpolation between the
  fitted points and clipped to them outside;
- **Platt**: ``sigmoid(a · logit(p) + b)`` fitted by maximum likelihood (p clipped to [1e-6, 1 − 1e-6]).

:func:`fit_calibrator` with ``method="auto"`` estimates the held-out ECE of both by stratified k-fold
cross-validation on the given data and fits the one with the lower ECE (ties → Platt, two parameters)
on all of it. :func:`cross_validated_calibration` reports calibrated held-out probabilities with each
fold's calibrator fitted on the other folds only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import polars as pl

METHODS = ("isotonic", "platt")
_EPS = 1e-6


def _check(p: Any, y: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    p = np.asarray(p, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if bad.size:
        raise ValueError(f"p[{bad[0]}] = {p[bad[0]]}: not a probability in [0, 1]")
    if y is None:
        return p, None
    y = np.asarray(y).ravel()
    if y.size != p.size:
        raise ValueError(f"p has {p.size} values but y has {y.size}")
    y_f = y.astype(float)
    bad = np.flatnonzero((y_f != 0) & (y_f != 1))
    if bad.size:
        raise ValueError(f"y[{bad[0]}] = {y[bad[0]].item()!r}: truth must be 0/1 or boolean")
    return p, y_f


def _training_data(p: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p, y = _check(p, y)
    if p.size == 0:
        raise ValueError("cannot fit a calibrator on no predictions")
    return p, y


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def reliability_curve(p: Sequence[float], y: Sequence, n_bins: int = 10) -> pl.DataFrame:
    """``bin, p_lower, p_upper, count, mean_p, fraction_positive`` per bin (means null for empty bins)."""
    p, y = _check(p, y)
    b = _bin_index(p, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, weights=p, minlength=n_bins) / count
        frac = np.bincount(b, weights=y, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pl.DataFrame(
        {
            "bin": np.arange(n_bins),
            "p_lower": edges[:-1],
            "p_upper": edges[1:],
            "count": count,
            "mean_p": mean_p,
            "fraction_positive": frac,
        }
    ).with_columns(pl.col("mean_p", "fraction_positive").fill_nan(None))


def expected_calibration_error(p: Sequence[float], y: Sequence, n_bins: int = 10) -> float:
    """``Σ_b (n_b / N) |mean_p_b − fraction_positive_b|`` over equal-width bins (see module docstring)."""
    p, y = _check(p, y)
    if p.size == 0:
        raise ValueError("expected_calibration_error of no predictions")
    b = _bin_index(p, n_bins)
    gap = np.bincount(b, weights=p, minlength=n_bins) - np.bincount(b, weights=y, minlength=n_bins)
    return float(np.abs(gap).sum() / p.size)


@dataclass(frozen=True)
class IsotonicCalibrator:
    x: tuple[float, ...]  # fitted raw-p points, increasing
    y: tuple[float, ...]  # calibrated p at those points, non-decreasing
    heldout_ece: dict = field(default_factory=dict, compare=False)

    method = "isotonic"

    @classmethod
    def fit(cls, p: Sequence[float], y: Sequence) -> "IsotonicCalibrator":
        from scipy.optimize import isotonic_regression

        p, y = _training_data(p, y)
        xs, inverse = np.unique(p, return_inverse=True)
        weights = np.bincount(inverse.ravel()).astype(float)
        means = np.bincount(inverse.ravel(), weights=y) / weights
        fitted = isotonic_regression(means, weights=weights, increasing=True).x
        return cls(tuple(xs.tolist()), tuple(np.clip(fitted, 0, 1).tolist()))

    def transform(self, p: Sequence[float]) -> np.ndarray:
        p, _ = _check(p)
        return np.interp(p, self.x, self.y)

    def to_dict(self) -> dict:
        return {"method": self.method, "x": list(self.x), "y": list(self.y), "heldout_ece": dict(self.heldout_ece)}


@dataclass(frozen=True)
class PlattCalibrator:
    a: float  # slope on logit(p)
    b: float  # intercept
    heldout_ece: dict = field(default_factory=dict, compare=False)

    method = "platt"

    @classmethod
    def fit(cls, p: Sequence[float], y: Sequence) -> "PlattCalibrator":
        from scipy.optimize import minimize

        p, y = _training_data(p, y)
        z = _logit(p)

        def loss(params):
            a, b = params
            s = a * z + b
            # log-loss of sigmoid(s), written stably: log(1 + e^s) − y·s
            value = np.sum(np.logaddexp(0.0, s) - y * s)
            r = 1.0 / (1.0 + np.exp(-s)) - y
            return value, np.array([np.sum(r * z), np.sum(r)])

        fit = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        return cls(float(fit.x[0]), float(fit.x[1]))

    def transform(self, p: Sequence[float]) -> np.ndarray:
        p, _ = _check(p)
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))

    def to_dict(self) -> dict:
        return {"method": self.method, "a": self.a, "b": self.b, "heldout_ece": dict(self.heldout_ece)}


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q) - np.log1p(-q)


Calibrator = IsotonicCalibrator | PlattCalibrator
_CLASSES = {"isotonic": IsotonicCalibrator, "platt": PlattCalibrator}


def calibrator_from_dict(data: dict) -> Calibrator:
    """Rebuild a calibrator from :meth:`to_dict` output (e.g. read back from JSON)."""
    method = data.get("method")
    if method == "isotonic":
        return IsotonicCalibrator(
            tuple(map(float, data["x"])), tuple(map(float, data["y"])), dict(data.get("heldout_ece", {}))
        )
    if method == "platt":
        return PlattCalibrator(float(data["a"]), float(data["b"]), dict(data.get("heldout_ece", {})))
    raise ValueError(f"unknown calibrator method {method!r} (expected one of {METHODS})")


def stratified_folds(y: Sequence, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (0 … n_folds − 1) of each sample, positives and negatives spread evenly over folds."""
    y = np.asarray(y).astype(float).ravel()
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    for value in (0.0, 1.0):
        idx = np.flatnonzero(y == value)
        fold[rng.permutation(idx)] = np.arange(idx.size) % n_folds
    return fold


@dataclass(frozen=True)
class CrossValidatedCalibration:
    p_calibrated: np.ndarray  # held-out calibrated p, same order as the input
    ece_raw: float
    ece_calibrated: float
    method: str
    n_bins: int
    fold: np.ndarray


def cross_validated_calibration(
    p: Sequence[float], y: Sequence, method: str = "isotonic", n_folds: int = 5, n_bins: int = 10, seed: int = 0
) -> CrossValidatedCalibration:
    """Calibrate each fold with a ``method`` calibrator fitted on the other folds; ECE before and after."""
    p, y = _check(p, y)
    if method not in _CLASSES:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    fold = stratified_folds(y, n_folds, seed)
    out = np.empty_like(p)
    for k in range(n_folds):
        test = fold == k
        if test.any():
            out[test] = _CLASSES[method].fit(p[~test], y[~test]).transform(p[test])
    return CrossValidatedCalibration(
        out, expected_calibration_error(p, y, n_bins), expected_calibration_error(out, y, n_bins), method, n_bins, fold
    )


def fit_calibrator(
    p: Sequence[float], y: Sequence, method: str = "auto", n_folds: int = 5, n_bins: int = 10, seed: int = 0
) -> Calibrator:
    """Fit a calibrator on all of ``p, y``; ``"auto"`` picks the method with the lower cross-validated ECE.

    The held-out ECE of each method tried is kept in ``heldout_ece`` (and in ``to_dict()``).
    """
    p, y = _check(p, y)
    if method not in (*METHODS, "auto"):
        raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    tried = METHODS if method == "auto" else (method,)
    heldout = {}
    if min(int(y.sum()), int((1 - y).sum())) >= n_folds:
        heldout = {m: cross_validated_calibration(p, y, m, n_folds, n_bins, seed).ece_calibrated for m in tried}
    chosen = method if method != "auto" else min(reversed(METHODS), key=lambda m: heldout.get(m, np.inf))
    fitted = _CLASSES[chosen].fit(p, y)
    object.__setattr__(fitted, "heldout_ece", heldout)
    return fitted


def reliability_figure(
    p: Sequence[float],
    y: Sequence,
    p_calibrated: Sequence[float] | None = None,
    n_bins: int = 10,
    title: str = "p_aurora reliability",
):
    """Reliability diagram (observed auroral fraction vs mean predicted p per bin, with the diagonal),
    raw and (optionally) calibrated, ECE in the legend, and the count per bin below."""
    import matplotlib.pyplot as plt

    curves = {"raw p_aurora": p}
    if p_calibrated is not None:
        curves["calibrated (held-out)"] = p_calibrated
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(8, 7), height_ratios=(3, 1), sharex=True, layout="constrained")
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="perfect calibration")
    width = 1.0 / n_bins
    for offset, (name, values) in enumerate(curves.items()):
        curve = reliability_curve(values, y, n_bins).drop_nulls("mean_p")
        ece = expected_calibration_error(values, y, n_bins)
        ax.plot(curve["mean_p"], curve["fraction_positive"], marker="o", label=f"{name}, ECE {ece:.3f}")
        ax_n.bar(curve["p_lower"] + width * (0.25 + 0.5 * offset), curve["count"], width=width / 2, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed auroral fraction", title=f"{title} ({n_bins} bins, N = {len(y)})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_n.set(xlabel="predicted p_aurora (bin)", ylabel="frames per bin", yscale="log")
    ax_n.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig
