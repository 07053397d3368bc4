"""Does the classifier filter clouds? Predictions vs ceilometer cloud base (paper section 4).

Ground truth "clear" = no cloud detected, or cloud base height ≥ 2000 m; records flagged missing
(or with no ceilometer match) are excluded. Score for "clear" = 1 − p_cloudy.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import classification_report, roc_auc_score, roc_curve

from tame_assets.labels import OATH_CLASSES

CLEAR_CBH_M = 2000.0
CBH_BIN_M = 200.0


@dataclass
class CloudValidation:
    n: int
    auc: float
    best_accuracy: float
    best_threshold: float
    threshold_at_tpr95: float
    fpr_at_tpr95: float
    threshold_at_fpr05: float
    tpr_at_fpr05: float
    report: dict
    roc: pl.DataFrame
    accuracy_curve: pl.DataFrame
    daily_clear_fraction: pl.DataFrame
    class_fractions_by_cbh: pl.DataFrame

    def numbers(self) -> dict:
        return {k: getattr(self, k) for k in ("n", "auc", "best_accuracy", "best_threshold", "threshold_at_tpr95",
                                               "fpr_at_tpr95", "threshold_at_fpr05", "tpr_at_fpr05")}


def ground_truth_clear(table: pl.DataFrame) -> pl.DataFrame:
    """Rows with a usable ceilometer match, with ``clear`` = no cloud or CBH ≥ 2000 m."""
    usable = table.filter(pl.col("p_cloudy").is_not_null() & pl.col("missing").eq(False) & pl.col("cloud_detected").is_not_null())
    return usable.with_columns(((~pl.col("cloud_detected")) | (pl.col("cbh_m") >= CLEAR_CBH_M)).alias("clear"))


def cloud_validation(asim_ceilometer: pl.DataFrame) -> CloudValidation:
    """ROC/AUC of 1 − p_cloudy for clear sky, accuracy vs threshold (0..1 step 0.001), operating
    points at TPR 0.95 and FPR 0.05, classification report at the best threshold, daily clear-sky
    fraction and class fractions per 200 m CBH bin."""
    data = ground_truth_clear(asim_ceilometer)
    truth = data["clear"].to_numpy()
    score = 1.0 - data["p_cloudy"].to_numpy()
    if data.height == 0 or truth.all() or not truth.any():
        raise ValueError(f"cloud validation needs both clear and cloudy ceilometer matches (got {data.height} rows)")
    fpr, tpr, thr = roc_curve(truth, score)
    thresholds = np.round(np.arange(0, 1.0005, 0.001), 3)
    accuracy = np.array([np.mean((score >= t) == truth) for t in thresholds])
    best = int(accuracy.argmax())
    i95 = int(np.argmax(tpr >= 0.95))
    i05 = int(np.flatnonzero(fpr <= 0.05)[-1])
    pred = score >= thresholds[best]
    report = classification_report(truth, pred, labels=[False, True], target_names=["cloudy", "clear"],
                                   output_dict=True, zero_division=0)
    daily = (data.group_by(pl.col("time").dt.date().alias("date"))
             .agg(pl.col("clear").mean().alias("clear_fraction_ceilometer"),
                  (1 - pl.col("p_cloudy")).mean().alias("mean_clear_score"),
                  pl.len().alias("n")).sort("date"))
    cloudy = data.filter(pl.col("cloud_detected"))
    by_bin = (cloudy.with_columns((pl.col("cbh_m") // CBH_BIN_M * CBH_BIN_M).alias("cbh_bin_m"))
              .group_by("cbh_bin_m").agg([(pl.col("pred") == c).mean().alias(c) for c in OATH_CLASSES] + [pl.len().alias("n")])
              .sort("cbh_bin_m"))
    return CloudValidation(
        n=data.height, auc=float(roc_auc_score(truth, score)), best_accuracy=float(accuracy[best]),
        best_threshold=float(thresholds[best]), threshold_at_tpr95=float(thr[i95]), fpr_at_tpr95=float(fpr[i95]),
        threshold_at_fpr05=float(thr[i05]), tpr_at_fpr05=float(tpr[i05]), report=report,
        roc=pl.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, 0, 1)}),
        accuracy_curve=pl.DataFrame({"threshold": thresholds, "accuracy": accuracy}),
        daily_clear_fraction=daily, class_fractions_by_cbh=by_bin,
    )


def cloud_validation_figures(result: CloudValidation) -> dict[str, plt.Figure]:
    """ROC curve, accuracy vs threshold, daily clear fraction, class fractions per CBH bin."""
    figs = {}
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(result.roc["fpr"], result.roc["tpr"], label=f"AUC = {result.auc:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot(result.fpr_at_tpr95, 0.95, "o", label="TPR 0.95")
    ax.plot(0.05, result.tpr_at_fpr05, "s", label="FPR 0.05")
    ax.set(xlabel="false positive rate (clear)", ylabel="true positive rate (clear)", title="Clear sky: 1 − p_cloudy vs ceilometer")
    ax.legend(loc="lower right")
    figs["cloud_roc"] = fig
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(result.accuracy_curve["threshold"], result.accuracy_curve["accuracy"])
    ax.axvline(result.best_threshold, color="k", ls=":", label=f"max {result.best_accuracy:.3f} at {result.best_threshold:.3f}")
    ax.set(xlabel="threshold on 1 − p_cloudy", ylabel="accuracy", title="Accuracy vs threshold")
    ax.legend()
    figs["cloud_accuracy_threshold"] = fig
    fig, ax = plt.subplots(figsize=(7, 3.2))
    d = result.daily_clear_fraction
    ax.plot(d["date"], d["clear_fraction_ceilometer"], ".-", label="ceilometer (CBH ≥ 2000 m or none)")
    ax.plot(d["date"], d["mean_clear_score"], ".-", label="classifier mean 1 − p_cloudy")
    ax.set(ylabel="clear-sky fraction", title="Daily clear-sky fraction (UTC days)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    figs["cloud_daily_clear_fraction"] = fig
    fig, ax = plt.subplots(figsize=(7, 3.5))
    b = result.class_fractions_by_cbh
    bottom = np.zeros(b.height)
    for c in OATH_CLASSES:
        ax.bar(b["cbh_bin_m"], b[c], width=CBH_BIN_M * 0.9, bottom=bottom, align="edge", label=c)
        bottom += b[c].to_numpy()
    ax.set(xlabel="cloud base height bin (m)", ylabel="fraction of images", title="Predicted classes per 200 m CBH bin")
    ax.legend(fontsize=7, ncol=3)
    figs["cloud_class_fractions_by_cbh"] = fig
    return figs
