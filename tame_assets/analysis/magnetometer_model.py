"""Can images predict magnetic disturbance? Ridge regression from CNN features to the horizontal
field at the magnetometer (paper section 5).

Target: H − mean(H) in nT, H = √(X² + Y²), on images predicted auroral (arc, diffuse, discrete)
under a clear sky (ceilometer: no cloud or CBH ≥ 2000 m), in time order.

Split (paper): a contiguous block of 70 % of the rows is the training set; its start is chosen so
that the block's target distribution best matches the whole series: the L1 distance between the
normalised log(1 + counts) histograms (30 bins over the full target range) of block and series is
minimised over all starts. The remaining rows (before and after the block) are the test set.
Scores: MSE (nT²), MAE (nT) and R², raw and after Savitzky–Golay smoothing (window 51, order 5;
the window shrinks to the largest odd length available for short series) of both series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from scipy.signal import savgol_filter
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from tame_assets.labels import AURORAL_CLASSES

SG_WINDOW, SG_ORDER = 51, 5
HIST_BINS = 30
TRAIN_FRACTION = 0.7


@dataclass
class MagnetometerModel:
    n_rows: int
    n_train: int
    train_start: int
    features_used: list[int]
    scores: dict
    series: pl.DataFrame  # time, h_obs_nt, h_pred_nt, split, smoothed versions
    extra: dict = field(default_factory=dict)


def select_rows(table: pl.DataFrame) -> pl.DataFrame:
    """Auroral predictions under a clear sky with a magnetometer match, sorted by time."""
    clear = (~pl.col("cloud_detected")) | (pl.col("cbh_m") >= 2000.0) if "cbh_m" in table.columns else pl.lit(True)
    return (table.filter(pl.col("pred").is_in(list(AURORAL_CLASSES)) & pl.col("h_nt").is_not_null()
                         & pl.col("features").is_not_null() & clear.fill_null(False))
            .sort("time"))


def choose_train_block(y: np.ndarray, fraction: float = TRAIN_FRACTION) -> int:
    """Start index of the contiguous training block whose log-histogram best matches the whole."""
    n, m = len(y), int(round(fraction * len(y)))
    edges = np.linspace(y.min(), y.max() + 1e-9, HIST_BINS + 1)

    def loghist(v):
        h = np.log1p(np.histogram(v, bins=edges)[0])
        return h / max(h.sum(), 1e-12)

    whole = loghist(y)
    distances = [np.abs(loghist(y[s:s + m]) - whole).sum() for s in range(n - m + 1)]
    return int(np.argmin(distances))


def _smooth(v: np.ndarray) -> np.ndarray:
    window = min(SG_WINDOW, len(v) if len(v) % 2 else len(v) - 1)
    if window <= SG_ORDER:
        return v.copy()
    return savgol_filter(v, window, SG_ORDER)


def _scores(y: np.ndarray, p: np.ndarray) -> dict:
    return {"mse_nt2": float(mean_squared_error(y, p)), "mae_nt": float(mean_absolute_error(y, p)),
            "r2": float(r2_score(y, p)) if len(y) > 1 else float("nan")}


def greedy_features(X: np.ndarray, y: np.ndarray, max_features: int = 10, alpha: float = 1.0) -> list[int]:
    """Forward selection on the training block: fit on its first 80 %, validate (R²) on the rest."""
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


def magnetometer_model(table: pl.DataFrame, feature_subset: str = "all", alpha: float = 1.0) -> MagnetometerModel:
    """Fit and score the ridge model (see module docstring). ``feature_subset``: ``all`` or ``greedy``."""
    rows = select_rows(table)
    if rows.height < 10:
        raise ValueError(f"magnetometer model needs ≥ 10 auroral clear-sky images with a magnetometer match, got {rows.height}")
    X = np.asarray(rows["features"].to_list(), dtype=np.float64)
    h = rows["h_nt"].to_numpy()
    y = h - h.mean()
    start = choose_train_block(y)
    m = int(round(TRAIN_FRACTION * len(y)))
    train = np.zeros(len(y), bool)
    train[start:start + m] = True
    cols = greedy_features(X[train], y[train], alpha=alpha) if feature_subset == "greedy" else list(range(X.shape[1]))
    model = Ridge(alpha=alpha).fit(X[train][:, cols], y[train])
    pred = model.predict(X[:, cols])
    test = ~train
    scores = {"raw_train": _scores(y[train], pred[train]), "raw_test": _scores(y[test], pred[test]),
              "smoothed_test": _scores(_smooth(y[test]), _smooth(pred[test])),
              "smoothed_train": _scores(_smooth(y[train]), _smooth(pred[train]))}
    series = pl.DataFrame({"time": rows["time"], "h_obs_nt": y, "h_pred_nt": pred,
                           "split": np.where(train, "train", "test")})
    return MagnetometerModel(len(y), int(m), start, cols, scores, series, {"h_mean_nt": float(h.mean()), "alpha": alpha})


def magnetometer_figures(result: MagnetometerModel, name: str = "magnetometer_model") -> dict[str, plt.Figure]:
    s = result.series
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    idx = np.arange(s.height)
    for ax, smooth in zip(axes, (False, True)):
        obs, pred = s["h_obs_nt"].to_numpy(), s["h_pred_nt"].to_numpy()
        if smooth:
            obs, pred = _smooth(obs), _smooth(pred)
        ax.plot(idx, obs, lw=0.8, label="observed H − mean")
        ax.plot(idx, pred, lw=0.8, label="predicted")
        train = (s["split"] == "train").to_numpy()
        ax.fill_between(idx, obs.min(), obs.max(), where=train, color="grey", alpha=0.12, label="training block")
        ax.set_ylabel("nT")
        r2 = result.scores["smoothed_test" if smooth else "raw_test"]["r2"]
        ax.set_title(f"{'Savitzky–Golay smoothed' if smooth else 'raw'}: test R² = {r2:.2f}", fontsize=9)
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("image index (time order, auroral clear-sky images)")
    fig.tight_layout()
    fig2, ax = plt.subplots(figsize=(4.2, 4))
    test = s.filter(pl.col("split") == "test")
    ax.scatter(test["h_obs_nt"], test["h_pred_nt"], s=8)
    lim = [min(test["h_obs_nt"].min(), test["h_pred_nt"].min()), max(test["h_obs_nt"].max(), test["h_pred_nt"].max())]
    ax.plot(lim, lim, "k:")
    ax.set(xlabel="observed H − mean (nT)", ylabel="predicted (nT)", title="Test rows")
    return {f"{name}_series": fig, f"{name}_scatter": fig2}
