"""Can images predict magnetic disturbance? Ridge regression from CNN features to the horizontal
field at the magnetometer (paper section 5).

Target: H − mean(H) in nT, H = √(X² + Y²), on images predicted auroral (arc, diffuse, discrete)
under a clear sky (ceilometer: no cloud or CBH ≥ 2000 m), in time order.

Split (paper): a contiguous block of 70 % of the rows is the training set; its start is chosen so
that the block's target distribution best matches the whole series: the L1 distance between the
normalised log(1 + counts) histograms (30 bins over the full target range) of block and series is
minimised over all starts. The remaining rows (before and after the block) are the test set.
Scores: MSE (nT²), MAE (nT) and R², raw and after Savitzky–Golay smoothing (window 51 images,
order 5) of both series. Smoothing runs within each contiguous block of the image sequence (the
test rows before the training block, the training block, the test rows after it), never across a
block boundary, and only where the whole window fits inside the block: the first and last 25
rows of each block (and every row of a block shorter than 51) have no smoothed value and are
left out of the smoothed scores (``n`` says how many rows were scored).
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
    return table.filter(
        pl.col("pred").is_in(list(AURORAL_CLASSES))
        & pl.col("h_nt").is_not_null()
        & pl.col("features").is_not_null()
        & clear.fill_null(False)
    ).sort("time")


def choose_train_block(y: np.ndarray, fraction: float = TRAIN_FRACTION) -> int:
    """Start index of the contiguous training block whose log-histogram best matches the whole."""
    n, m = len(y), int(round(fraction * len(y)))
    edges = np.linspace(y.min(), y.max() + 1e-9, HIST_BINS + 1)

    def loghist(v):
        h = np.log1p(np.histogram(v, bins=edges)[0])
        return h / max(h.sum(), 1e-12)

    whole = loghist(y)
    distances = [np.abs(loghist(y[s : s + m]) - whole).sum() for s in range(n - m + 1)]
    return int(np.argmin(distances))


def contiguous_blocks(split: np.ndarray) -> np.ndarray:
    """Block number per row: a new block starts wherever ``split`` changes value."""
    split = np.asarray(split)
    return np.concatenate([[0], np.cumsum(split[1:] != split[:-1])]) if split.size else np.zeros(0, int)


def smooth_in_blocks(
    values: np.ndarray, blocks: np.ndarray, window: int = SG_WINDOW, order: int = SG_ORDER
) -> np.ndarray:
    """Savitzky–Golay (``window`` rows, ``order``) within each block of ``blocks``; NaN where the
    window does not fit inside the block (no edge extrapolation, nothing smoothed across blocks)."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    half = window // 2
    for block in np.unique(blocks):
        idx = np.flatnonzero(blocks == block)
        if idx.size >= window:
            out[idx[half : idx.size - half]] = savgol_filter(values[idx], window, order)[half : idx.size - half]
    return out


def _scores(y: np.ndarray, p: np.ndarray) -> dict:
    """MSE (nT²), MAE (nT), R² and n over the rows where both are finite (NaN when fewer than 2)."""
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    if len(y) < 2:
        return {"mse_nt2": float("nan"), "mae_nt": float("nan"), "r2": float("nan"), "n": int(len(y))}
    return {
        "mse_nt2": float(mean_squared_error(y, p)),
        "mae_nt": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)),
        "n": int(len(y)),
    }


def greedy_features(X: np.ndarray, y: np.ndarray, max_features: int = 10, alpha: float = 1.0) -> list[int]:
    """Forward selection on the training block: fit on its first 80 %, validate (R²) on the rest.

    Each round adds the feature whose ridge model (``alpha``, with intercept: sklearn's ``Ridge``)
    scores the best validation R², until ``max_features`` or no gain; ties go to the higher column.
    Every candidate of a round is solved at once from the centred Gram matrix (the normal equations
    sklearn's Cholesky solver forms): ~300× faster than a ``Ridge`` fit per candidate (bench/greedy_features.py)."""
    cut = int(0.8 * len(y))
    X_fit, y_fit, X_val, y_val = X[:cut], y[:cut], X[cut:], y[cut:]
    mean = X_fit.mean(axis=0)
    Xc, yc, Vc = X_fit - mean, y_fit - y_fit.mean(), X_val - mean
    gram, moment = Xc.T @ Xc, Xc.T @ yc
    ss_total = float(((y_val - y_val.mean()) ** 2).sum())
    chosen: list[int] = []
    best_score = -np.inf
    for _ in range(max_features):
        candidates = np.setdiff1d(np.arange(X.shape[1]), chosen)
        if not candidates.size:
            break
        cols = np.column_stack([np.tile(chosen, (candidates.size, 1)).astype(int), candidates])  # (m, k+1)
        systems = gram[cols[:, :, None], cols[:, None, :]] + alpha * np.eye(cols.shape[1])
        coef = np.linalg.solve(systems, moment[cols][:, :, None])[:, :, 0]  # (m, k+1)
        pred = Vc[:, chosen] @ coef[:, :-1].T + Vc[:, candidates] * coef[:, -1] + y_fit.mean()  # (n_val, m)
        ss_residual = ((y_val[:, None] - pred) ** 2).sum(axis=0)
        scores = 1.0 - ss_residual / ss_total if ss_total > 0 else np.where(ss_residual == 0, 1.0, 0.0)
        best = int(np.flatnonzero(scores == scores.max())[-1])
        if scores[best] <= best_score:
            break
        chosen.append(int(candidates[best]))
        best_score = float(scores[best])
    return chosen


def magnetometer_model(table: pl.DataFrame, feature_subset: str = "all", alpha: float = 1.0) -> MagnetometerModel:
    """Fit and score the ridge model (see module docstring). ``feature_subset``: ``all`` or ``greedy``."""
    rows = select_rows(table)
    if rows.height < 10:
        raise ValueError(
            f"magnetometer model needs ≥ 10 auroral clear-sky images with a magnetometer match, got {rows.height}"
        )
    X = np.asarray(rows["features"].to_list(), dtype=np.float64)
    h = rows["h_nt"].to_numpy()
    y = h - h.mean()
    start = choose_train_block(y)
    m = int(round(TRAIN_FRACTION * len(y)))
    train = np.zeros(len(y), bool)
    train[start : start + m] = True
    cols = greedy_features(X[train], y[train], alpha=alpha) if feature_subset == "greedy" else list(range(X.shape[1]))
    model = Ridge(alpha=alpha).fit(X[train][:, cols], y[train])
    pred = model.predict(X[:, cols])
    test = ~train
    blocks = contiguous_blocks(train)
    y_smooth, pred_smooth = smooth_in_blocks(y, blocks), smooth_in_blocks(pred, blocks)
    scores = {
        "raw_train": _scores(y[train], pred[train]),
        "raw_test": _scores(y[test], pred[test]),
        "smoothed_test": _scores(y_smooth[test], pred_smooth[test]),
        "smoothed_train": _scores(y_smooth[train], pred_smooth[train]),
    }
    series = pl.DataFrame(
        {
            "time": rows["time"],
            "h_obs_nt": y,
            "h_pred_nt": pred,
            "h_obs_smoothed_nt": y_smooth,
            "h_pred_smoothed_nt": pred_smooth,
            "split": np.where(train, "train", "test"),
        }
    ).with_columns(pl.col("h_obs_smoothed_nt", "h_pred_smoothed_nt").fill_nan(None))
    stations = ", ".join(sorted(map(str, rows["station"].unique()))) if "station" in rows.columns else ""
    return MagnetometerModel(
        len(y),
        int(m),
        start,
        cols,
        scores,
        series,
        {"h_mean_nt": float(h.mean()), "alpha": alpha, "asi_stations": stations},
    )


def magnetometer_figures(
    result: MagnetometerModel, name: str = "magnetometer_model", magnetometer_station: str = ""
) -> dict[str, plt.Figure]:
    """``<name>_series``: observed and predicted H − mean against UTC time, raw and smoothed, training
    block shaded; lines break where images are more than three typical spacings apart.
    ``<name>_scatter``: predicted vs observed on the test rows."""
    from tame_assets.analysis.figures import (
        as_datetime64,
        break_at_gaps,
        legend_outside,
        period_text,
        typical_step_s,
        utc_time_axis,
    )

    s = result.series
    times = as_datetime64(s["time"])
    max_gap_s = 3 * typical_step_s(times)
    train = (s["split"] == "train").to_numpy()
    n_features = len(result.features_used)
    where = f"{result.extra.get('asi_stations', '')} ASI, {magnetometer_station} magnetometer".replace(
        " ,", ","
    ).lstrip(", ")
    when = f"{period_text(times)} (UTC)"
    fig, axes = plt.subplots(2, 1, figsize=(9.5, 5.8), sharex=True, layout="constrained")
    panels = (
        (False, "h_obs_nt", "h_pred_nt", "raw_test", "raw"),
        (
            True,
            "h_obs_smoothed_nt",
            "h_pred_smoothed_nt",
            "smoothed_test",
            f"Savitzky–Golay ({SG_WINDOW} images, order {SG_ORDER}) within each block, edges left out",
        ),
    )
    for ax, (_smoothed, obs_col, pred_col, key, label) in zip(axes, panels):
        ax.axvspan(times[train][0], times[train][-1], color="0.9", lw=0, label="training block")
        for col, text, colour in ((obs_col, "observed H − mean", "k"), (pred_col, "predicted", "C1")):
            t, v = break_at_gaps(times, s[col].cast(float).fill_null(np.nan).to_numpy(), max_gap_s)
            ax.plot(t, v, lw=0.8, marker=".", ms=2, color=colour, label=text)
        score = result.scores[key]
        scored = (
            f"test R² = {score['r2']:.2f} (n = {score['n']})"
            if score["n"] >= 2
            else f"no smoothed test score (no test block of ≥ {SG_WINDOW} images)"
        )
        ax.set_title(f"{label}: {scored}", fontsize=9)
        ax.set_ylabel("H − mean (nT)")
        ax.grid(alpha=0.3)
    legend_outside(axes[0])
    utc_time_axis(axes[1], "time (UTC; line breaks = no auroral clear-sky images)")
    fig.suptitle(
        f"Ridge model of H from ASI features ({n_features} features): {where}, {when}\n"
        f"auroral clear-sky images, H mean {result.extra.get('h_mean_nt', float('nan')):,.0f} nT removed",
        fontsize=10,
    )
    fig2, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    test = s.filter(pl.col("split") == "test")
    ax.scatter(test["h_obs_nt"], test["h_pred_nt"], s=8)
    lim = [min(test["h_obs_nt"].min(), test["h_pred_nt"].min()), max(test["h_obs_nt"].max(), test["h_pred_nt"].max())]
    ax.plot(lim, lim, "k:", label="1:1")
    ax.set(xlabel="observed H − mean (nT)", ylabel="predicted H − mean (nT)")
    ax.set_title(f"Ridge model, test rows (n = {test.height}, {n_features} features)\n{where}, {when}", fontsize=9)
    return {f"{name}_series": fig, f"{name}_scatter": fig2}
