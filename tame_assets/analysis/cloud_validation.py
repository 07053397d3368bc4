"""Does the classifier filter clouds? Predictions vs ceilometer cloud base (paper section 4).

Ground truth "clear" = no cloud detected, or cloud base height ≥ 2000 m; records flagged missing
(or with no ceilometer match) are excluded. Score for "clear" = 1 − p_cloudy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import classification_report, roc_auc_score, roc_curve

from tame_assets.labels import OATH_CLASSES

CLEAR_CBH_M = 2000.0
CBH_BIN_M = 200.0
#: CBH bins with fewer images are hatched in the class-fraction figure (their fractions are noise).
MIN_BIN_IMAGES = 10
#: Ceilometer categories of the cloud-example figure: (label, lowest CBH m, highest CBH m) for
#: cloudy records; "no cloud detected" is the ceilometer's cloud-free record.
CBH_CATEGORIES = (
    ("cloud base < 2 km", 0.0, 2000.0),
    ("cloud base 2–5 km", 2000.0, 5000.0),
    ("cloud base ≥ 5 km", 5000.0, float("inf")),
)
NO_CLOUD = "no cloud detected"


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
    first_time: dt.datetime | None = None
    last_time: dt.datetime | None = None
    stations: str = ""

    def when(self) -> str:
        """Station(s), UTC date range and number of images, for figure titles."""
        from tame_assets.analysis.figures import period_text

        return f"{self.stations} ASI, {period_text([self.first_time, self.last_time])} (UTC), {self.n} images".lstrip()

    def numbers(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "n",
                "auc",
                "best_accuracy",
                "best_threshold",
                "threshold_at_tpr95",
                "fpr_at_tpr95",
                "threshold_at_fpr05",
                "tpr_at_fpr05",
            )
        }


def ground_truth_clear(table: pl.DataFrame) -> pl.DataFrame:
    """Rows with a usable ceilometer match, with ``clear`` = no cloud or CBH ≥ 2000 m."""
    usable = table.filter(
        pl.col("p_cloudy").is_not_null() & pl.col("missing").eq(False) & pl.col("cloud_detected").is_not_null()
    )
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
    report = classification_report(
        truth, pred, labels=[False, True], target_names=["cloudy", "clear"], output_dict=True, zero_division=0
    )
    daily = (
        data.group_by(pl.col("time").dt.date().alias("date"))
        .agg(
            pl.col("clear").mean().alias("clear_fraction_ceilometer"),
            (1 - pl.col("p_cloudy")).mean().alias("mean_clear_score"),
            pl.len().alias("n"),
        )
        .sort("date")
    )
    cloudy = data.filter(pl.col("cloud_detected"))
    by_bin = (
        cloudy.with_columns((pl.col("cbh_m") // CBH_BIN_M * CBH_BIN_M).alias("cbh_bin_m"))
        .group_by("cbh_bin_m")
        .agg([(pl.col("pred") == c).mean().alias(c) for c in OATH_CLASSES] + [pl.len().alias("n")])
        .sort("cbh_bin_m")
    )
    return CloudValidation(
        n=data.height,
        auc=float(roc_auc_score(truth, score)),
        best_accuracy=float(accuracy[best]),
        best_threshold=float(thresholds[best]),
        threshold_at_tpr95=float(thr[i95]),
        fpr_at_tpr95=float(fpr[i95]),
        threshold_at_fpr05=float(thr[i05]),
        tpr_at_fpr05=float(tpr[i05]),
        report=report,
        roc=pl.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, 0, 1)}),
        accuracy_curve=pl.DataFrame({"threshold": thresholds, "accuracy": accuracy}),
        daily_clear_fraction=daily,
        class_fractions_by_cbh=by_bin,
        first_time=data["time"].min(),
        last_time=data["time"].max(),
        stations=", ".join(sorted(map(str, data["station"].unique()))) if "station" in data.columns else "",
    )


def cloud_validation_figures(result: CloudValidation) -> dict[str, plt.Figure]:
    """ROC curve, accuracy vs threshold, daily clear fraction (with images per day; days without
    images are gaps) and predicted-class fractions per CBH bin (with images per bin; bins under
    ``MIN_BIN_IMAGES`` hatched)."""
    from tame_assets.analysis.figures import legend_outside

    when = result.when()
    figs = {}
    fig, ax = plt.subplots(figsize=(5.2, 5.0), layout="constrained")
    ax.plot(result.roc["fpr"], result.roc["tpr"], label=f"AUC = {result.auc:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
    ax.plot(result.fpr_at_tpr95, 0.95, "o", label="TPR 0.95")
    ax.plot(0.05, result.tpr_at_fpr05, "s", label="FPR 0.05")
    ax.set(xlabel="false positive rate (clear, fraction)", ylabel="true positive rate (clear, fraction)")
    ax.set_title(f"Clear sky: ROC of 1 − P(cloudy) vs ceilometer\n{when}", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    figs["cloud_roc"] = fig
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    ax.plot(result.accuracy_curve["threshold"], result.accuracy_curve["accuracy"], label="accuracy")
    ax.axvline(
        result.best_threshold,
        color="k",
        ls=":",
        label=f"max {result.best_accuracy:.3f}\nat {result.best_threshold:.3f}",
    )
    ax.set(xlabel="threshold on 1 − P(cloudy) (clear if above)", ylabel="accuracy (fraction correct)")
    ax.set_title(f"Clear-sky accuracy vs threshold\n{when}", fontsize=9)
    legend_outside(ax)
    figs["cloud_accuracy_threshold"] = fig
    figs["cloud_daily_clear_fraction"] = _daily_figure(result.daily_clear_fraction, when)
    figs["cloud_class_fractions_by_cbh"] = _cbh_bins_figure(result.class_fractions_by_cbh, when)
    return figs


def _daily_figure(daily: pl.DataFrame, when: str) -> plt.Figure:
    from tame_assets.analysis.figures import legend_outside, utc_time_axis

    days = pl.DataFrame({"date": pl.date_range(daily["date"].min(), daily["date"].max(), "1d", eager=True)})
    d = days.join(daily, on="date", how="left").sort("date")
    dates = d["date"].cast(pl.Datetime("ms")).to_numpy() + np.timedelta64(12, "h")  # plotted at noon UTC
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(8.5, 4.6), sharex=True, height_ratios=[2.2, 1], layout="constrained")
    for column, label in (
        ("clear_fraction_ceilometer", "ceilometer (no cloud\nor CBH ≥ 2000 m)"),
        ("mean_clear_score", "classifier mean\n1 − p_cloudy"),
    ):
        ax.plot(dates, d[column].cast(float).fill_null(np.nan).to_numpy(), ".-", label=label)
    ax.set(ylabel="clear-sky fraction", ylim=(-0.03, 1.03))
    legend_outside(ax)
    axn.bar(dates, d["n"].fill_null(0).to_numpy(), width=0.8, color="0.5")
    axn.set_ylabel("images\nper day")
    utc_time_axis(axn, "date (UTC days; no line = no images)")
    fig.suptitle(f"Daily clear-sky fraction, {when}", fontsize=9)
    return fig


def _cbh_bins_figure(bins: pl.DataFrame, when: str) -> plt.Figure:
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    fig, (ax, axn) = plt.subplots(2, 1, figsize=(8.5, 5.2), sharex=True, height_ratios=[2.2, 1], layout="constrained")
    left = bins["cbh_bin_m"].to_numpy()
    counts = bins["n"].to_numpy()
    sparse = counts < MIN_BIN_IMAGES
    bottom = np.zeros(bins.height)
    for k, c in enumerate(OATH_CLASSES):
        values = bins[c].to_numpy()
        colours = [to_rgba(f"C{k}", 0.35 if s else 1.0) for s in sparse]
        ax.bar(left, values, width=CBH_BIN_M * 0.9, bottom=bottom, align="edge", label=c, color=colours)
        bottom += values
    for x in left[sparse]:
        ax.bar(x, 1.0, width=CBH_BIN_M * 0.9, align="edge", fill=False, hatch="///", edgecolor="0.3", lw=0)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="///"))
    labels.append(f"< {MIN_BIN_IMAGES} images")
    ax.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        title="predicted class",
        title_fontsize=8,
    )
    ax.set(ylabel="fraction of images", ylim=(0, 1))
    axn.bar(left, counts, width=CBH_BIN_M * 0.9, align="edge", color=np.where(sparse, "0.75", "0.4"))
    axn.axhline(MIN_BIN_IMAGES, color="k", ls=":", lw=0.8)
    axn.set(yscale="log", ylabel="images\nper bin", xlabel=f"cloud base height, {CBH_BIN_M:.0f} m bins (m)")
    fig.suptitle(
        f"Predicted class per {CBH_BIN_M:.0f} m cloud-base-height bin (cloudy ceilometer records)\n{when}", fontsize=9
    )
    return fig


def cloud_category(table: pl.DataFrame) -> pl.Series:
    """Ceilometer category per row: ``NO_CLOUD`` or one of ``CBH_CATEGORIES``'s labels (null when
    the record is missing or there is no ceilometer match)."""
    expr = pl.when(pl.col("missing").fill_null(True) | pl.col("cloud_detected").is_null()).then(None)
    expr = expr.when(~pl.col("cloud_detected")).then(pl.lit(NO_CLOUD))
    for label, low, high in CBH_CATEGORIES:
        expr = expr.when((pl.col("cbh_m") >= low) & (pl.col("cbh_m") < high)).then(pl.lit(label))
    return table.select(expr.otherwise(None).alias("cloud_category"))["cloud_category"]


def cloud_examples(table: pl.DataFrame, per_category: int = 4) -> pl.DataFrame:
    """``per_category`` example images per ceilometer category (``NO_CLOUD`` first, then
    ``CBH_CATEGORIES``), spread evenly in time over each category's images (deterministic).
    ``table``: ``asim_ceilometer`` rows (time, file_name, pred, p_cloudy, cloud_detected, cbh_m,
    missing) with ``local_path``. Adds ``cloud_category`` and ``n_in_category``."""
    data = table.filter(pl.col("pred").is_not_null() & pl.col("local_path").is_not_null())
    data = data.with_columns(cloud_category(data)).filter(pl.col("cloud_category").is_not_null()).sort("time")
    parts = []
    for label in [NO_CLOUD] + [c[0] for c in CBH_CATEGORIES]:
        rows = data.filter(pl.col("cloud_category") == label)
        if rows.height:
            picks = np.unique(np.linspace(0, rows.height - 1, min(per_category, rows.height)).round().astype(int))
            parts.append(rows[picks].with_columns(pl.lit(rows.height, pl.Int64).alias("n_in_category")))
    if not parts:
        raise ValueError("no image has a usable ceilometer match: nothing to show per cloud category")
    return pl.concat(parts, how="diagonal_relaxed")


def cloud_examples_figure(
    examples: pl.DataFrame, load: Callable[[str], np.ndarray], per_category: int = 4, period: str | None = None
) -> plt.Figure:
    """Example ASI frames (from ``cloud_examples``), one row per ceilometer category: above each tile
    its UTC time, below it the predicted class, p_cloudy and the cloud base height. ``period``
    (for the title) defaults to the examples' UTC date range."""
    from tame_assets.analysis.figures import MIN_FONT_PT, as_datetime64, period_text, station_label

    categories = [NO_CLOUD] + [c[0] for c in CBH_CATEGORIES]
    fig, axes = plt.subplots(
        len(categories),
        per_category,
        squeeze=False,
        layout="constrained",
        figsize=(2.3 * per_category + 1.1, 2.3 * len(categories) + 1.0),
    )
    for r, label in enumerate(categories):
        rows = examples.filter(pl.col("cloud_category") == label)
        n = int(rows["n_in_category"][0]) if rows.height else 0
        axes[r, 0].set_ylabel(f"{label}\n({n} images)", fontsize=8)
        for j, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if j >= rows.height:
                ax.set_frame_on(False)
                continue
            row = rows.row(j, named=True)
            ax.imshow(load(row["local_path"]), cmap="gray")
            stamp = str(as_datetime64([row["time"]])[0].astype("datetime64[s]")).replace("T", " ")
            where = str(row.get("station") or "")
            ax.set_title(f"{where} {stamp}".strip(), fontsize=MIN_FONT_PT, pad=2)
            cbh = "no cloud" if row["cbh_m"] is None or not row["cloud_detected"] else f"CBH {row['cbh_m']:,.0f} m"
            ax.set_xlabel(f"{row['pred']}, P(cloudy) {row['p_cloudy']:.2f}\n{cbh}", fontsize=MIN_FONT_PT, labelpad=2)
    stations = (
        ", ".join(station_label(s) for s in sorted(map(str, examples["station"].unique())))
        if "station" in examples.columns
        else ""
    )
    fig.suptitle(
        f"All-sky frames per ceilometer cloud category: {stations or 'all-sky'} images, "
        f"{period or period_text(examples['time'])} (UTC)\n"
        f"above: station, image time (UTC); below: predicted class, P(cloudy), cloud base height (CBH)\n"
        f"(the validation counts no cloud and CBH ≥ {CLEAR_CBH_M / 1000:.0f} km as clear)",
        fontsize=9,
    )
    return fig
