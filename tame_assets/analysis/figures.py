"""Figures (matplotlib, Agg): saved as PNG and SVG with a small inline PNG preview for Dagster.

Conventions for every figure: a title saying what and when (station, UTC date range or data set),
axes labelled with units, time axes as UTC dates labelled "Time (UTC)", captions of at least 8 pt,
stations in words ("Ny-Ålesund (NYA)"), counts next to fractions, legends outside the data, gaps in time
series drawn as gaps (the line breaks, the gap is shaded).
Helpers for these conventions live here; times are naive UTC.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tame_assets.files import atomic_path  # noqa: E402
from tame_assets.geometry.places import STATION_NAMES, lat_text, lon_text, station_label  # noqa: E402, F401

PREVIEW_WIDTH = 480  # px: the inline preview in the Dagster UI (its Overview metadata column is ~400–600 px)
UTC_TIME_LABEL = "Time (UTC)"
#: Smallest font of any figure text (pt): captions, tick labels, legends.
MIN_FONT_PT = 8.0
GAP_COLOUR = "#f2c4c0"  # light red: gaps stand out from grey shading (training blocks)


@dataclass(frozen=True)
class FigureFiles:
    """A saved figure: its PNG and SVG, a downscaled PNG (``preview_png``, at most PREVIEW_WIDTH px wide)
    and the same preview as base64 markdown (``md_preview``, for places without a file server)."""

    png: Path
    svg: Path
    md_preview: str
    preview_png: bytes = b""


def save_figure(fig, directory: str | Path, name: str, dpi: int = 110) -> FigureFiles:
    """Write ``name.png`` and ``name.svg`` atomically; return paths and a downscaled PNG preview
    (bytes, and as base64 markdown)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "svg"):
        target = directory / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        paths[ext] = target
    plt.close(fig)
    with Image.open(paths["png"]) as im:
        im = im.convert("RGB")
        if im.width > PREVIEW_WIDTH:
            im = im.resize((PREVIEW_WIDTH, round(im.height * PREVIEW_WIDTH / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    preview = f"![{name}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"
    return FigureFiles(paths["png"], paths["svg"], preview, buf.getvalue())


# ------------------------------------------------------------------------------ conventions
def duration_text(seconds: float) -> str:
    """A duration in words for captions: ``10 s``, ``5 min``, ``3 h``, ``2 days``."""
    s = float(seconds)
    if not np.isfinite(s):
        return "unknown"
    for unit, size in (("day", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= 2 * size or (unit != "day" and s >= size and s % size == 0):
            value = s / size
            text = f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
            return f"{text} {unit}{'s' if unit == 'day' and text != '1' else ''}"
    return f"{s:.0f} s" if s >= 1 else f"{s:.2g} s"


def geographic_ticks(ax, lon: bool = True, lat: bool = True) -> None:
    """Tick labels in °E/°W (x axis) and °N/°S (y axis), as maps print them."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    for axis, on in ((ax.xaxis, lon), (ax.yaxis, lat)):
        if on:  # whole or half degrees where the span allows: no 2.5° steps
            axis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10]))
    if lon:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: lon_text(v, 0 if float(v).is_integer() else 1)))
    if lat:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: lat_text(v, 0 if float(v).is_integer() else 1)))


def as_datetime64(times) -> np.ndarray:
    """Times (polars Series, list of datetimes or numpy array; naive UTC) as ``datetime64[ms]``."""
    values = times.to_numpy() if hasattr(times, "to_numpy") else times
    return np.asarray(values, dtype="datetime64[ms]")


def period_text(times) -> str:
    """UTC date range of ``times``: ``2010-12-03 to 2011-01-29`` (one date when they share a day)."""
    t = as_datetime64(times)
    t = t[~np.isnat(t)]
    if not t.size:
        return "no data"
    first, last = (str(v.astype("datetime64[D]")) for v in (t.min(), t.max()))
    return first if first == last else f"{first} to {last}"


def utc_time_axis(ax, label: str = UTC_TIME_LABEL) -> None:
    """Concise UTC date ticks on the x axis and its label. Day-level ticks name month starts with
    their year ("Jan 2011") instead of a corner offset that would name only the last tick's month."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(
            locator,
            zero_formats=["", "%Y", "%b %Y", "%b-%d", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d %H:%M"],
        )
    )
    ax.set_xlabel(label)


def legend_outside(ax, **kwargs):
    """Legend to the right of ``ax``, top-aligned, off the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, **kwargs)


def typical_step_s(times) -> float:
    """Median spacing of sorted ``times`` in seconds (NaN for fewer than two times)."""
    t = as_datetime64(times)
    t = np.sort(t[~np.isnat(t)])
    return (
        float(np.median(np.diff(t).astype("timedelta64[ms]").astype(np.int64)) / 1000) if t.size > 1 else float("nan")
    )


def gap_intervals(times, valid=None, max_gap_s: float | None = None, start=None, end=None) -> list[tuple]:
    """(last good time, next good time) wherever consecutive valid samples are more than
    ``max_gap_s`` apart (default three times the typical spacing); with ``start``/``end``, also the
    stretches before the first and after the last valid sample."""
    t = as_datetime64(times)
    ok = ~np.isnat(t) if valid is None else (~np.isnat(t) & np.asarray(valid, bool))
    t = np.sort(t[ok])
    if max_gap_s is None:
        max_gap_s = 3 * typical_step_s(t)
    gap = np.timedelta64(int(max_gap_s * 1000) if np.isfinite(max_gap_s) else 0, "ms")
    out = []
    if start is not None and (not t.size or t[0] - np.datetime64(start, "ms") > gap):
        out.append((np.datetime64(start, "ms"), t[0] if t.size else np.datetime64(end, "ms")))
    if t.size > 1 and np.isfinite(max_gap_s):
        out += [(t[i], t[i + 1]) for i in np.flatnonzero(np.diff(t) > gap)]
    if end is not None and t.size and np.datetime64(end, "ms") - t[-1] > gap:
        out.append((t[-1], np.datetime64(end, "ms")))
    return out


def break_at_gaps(times, values, max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Times and values with a NaN inserted wherever consecutive times are more than ``max_gap_s``
    apart, so a plotted line breaks there."""
    t = as_datetime64(times)
    v = np.asarray(values, dtype=float)
    if t.size < 2:
        return t, v
    steps = np.diff(t).astype("timedelta64[ms]").astype(np.int64) / 1000
    cut = np.flatnonzero(steps > max_gap_s) + 1
    midpoints = t[cut - 1] + (t[cut] - t[cut - 1]) / 2
    return np.insert(t, cut, midpoints), np.insert(v, cut, np.nan)


def shade_gaps(ax, intervals, label: str = "data gap") -> None:
    """Shade each (start, end) interval; one legend entry."""
    for k, (a, b) in enumerate(intervals):
        ax.axvspan(a, b, color=GAP_COLOUR, lw=0, zorder=0, label=label if k == 0 else "_nolegend_")


# ------------------------------------------------------------------------------------ figures
def confusion_matrices_figure(
    matrices: dict[str, np.ndarray], class_names: Sequence[str], title: str = "Confusion matrices"
):
    """One confusion-matrix panel per entry (panel title → matrix, rows = truth): numbers are image
    counts, colour is the fraction of the true class. ``title`` says which data set."""
    n = len(matrices)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols + 0.8, 3.9 * rows + 0.6), squeeze=False, layout="constrained"
    )
    image = None
    for ax, (panel, cm) in zip(axes.flat, matrices.items()):
        cm = np.asarray(cm, dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j, i, f"{int(v)}", ha="center", va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black"
            )
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="fraction of the true class")
    fig.suptitle(f"{title}\nnumbers: image counts; colour: fraction of the true class", fontsize=10)
    return fig


def svm_hyperparameter_figures(search, data_label: str = "OATH labelled set") -> dict:
    """Linear SVC accuracy vs C and the RBF C × γ accuracy map (six-class mean over the paper's 10
    rotations) from ``svm_search``; ``data_label`` names the data set in the titles."""
    import polars as pl

    lin = search.filter(pl.col("kernel") == "linear").sort("C")
    fig1, ax = plt.subplots(figsize=(6.2, 3.8), layout="constrained")
    for col, label in (("acc6_mean", "six-class"), ("acc2_mean", "aurora vs none")):
        ax.errorbar(lin["C"], lin[col], yerr=lin[col.replace("mean", "std")], marker="o", ms=3, capsize=2, label=label)
    ax.set(xscale="log", xlabel="C (regularisation, dimensionless)", ylabel="accuracy (fraction correct)")
    ax.set_title(f"Linear SVC accuracy vs C, {data_label}\nmean ± std over 10 rotations", fontsize=10)
    legend_outside(ax)
    rbf = search.filter(pl.col("kernel") == "rbf")
    cs, gs = np.sort(rbf["C"].unique().to_numpy()), np.sort(rbf["gamma"].unique().to_numpy())
    grid = np.full((len(gs), len(cs)), np.nan)
    for c, g, a in rbf.select("C", "gamma", "acc6_mean").iter_rows():
        grid[np.searchsorted(gs, g), np.searchsorted(cs, c)] = a
    fig2, ax = plt.subplots(figsize=(6, 4.8), layout="constrained")
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    xstep, ystep = max(1, len(cs) // 6), max(1, len(gs) // 6)
    ax.set_xticks(range(len(cs))[::xstep], [f"{c:.0e}" for c in cs[::xstep]], rotation=45, ha="right")
    ax.set_yticks(range(len(gs))[::ystep], [f"{g:.0e}" for g in gs[::ystep]])
    ax.set(xlabel="C (regularisation, dimensionless)", ylabel="γ (RBF kernel width, 1/feature²)")
    ax.set_title(f"RBF SVC six-class accuracy over C × γ, {data_label}", fontsize=10)
    fig2.colorbar(im, ax=ax, label="six-class accuracy (mean of 10 rotations)")
    return {"svm_linear_accuracy": fig1, "svm_rbf_map": fig2}


def backbone_tradeoff_figure(benchmark, data_label: str = "OATH labelled set"):
    """Runtime per image vs six-class accuracy (mean ± std) for every backbone (colour) and
    feature kind (marker)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2), layout="constrained")
    backbones = list(dict.fromkeys(benchmark["backbone"].to_list()))
    kinds = list(dict.fromkeys(benchmark["feature_kind"].to_list()))
    markers = "osD^v<>P*X"
    for row in benchmark.iter_rows(named=True):
        ax.errorbar(
            row["s_per_image"] * 1000,
            row["acc6_mean"],
            yerr=row["acc6_std"],
            capsize=2,
            fmt=markers[kinds.index(row["feature_kind"]) % len(markers)],
            color=f"C{backbones.index(row['backbone']) % 10}",
            label=f"{row['backbone']} / {row['feature_kind']}",
        )
    ax.set(xlabel="wall time per image (ms, decode + extraction)", ylabel="ridge six-class accuracy (fraction)")
    ax.set_title(f"Backbone runtime vs accuracy, {data_label}", fontsize=10)
    legend_outside(ax, title="backbone / features", title_fontsize=8)
    return fig


def magnetometer_quicklook_figure(table, station: str, month: str):
    """X, Y, Z and H = √(X²+Y²) (nT) of one station-month against UTC time, each minus its monthly
    median (the baseline, given in the title). Missing samples and NULLs are gaps: the line
    breaks and the gap is shaded (gaps longer than three sample spacings)."""
    from matplotlib.patches import Patch

    columns = ("x_nt", "y_nt", "z_nt", "h_nt")
    fig, axes = plt.subplots(4, 1, figsize=(9.5, 7), sharex=True, layout="constrained")
    times = as_datetime64(table["time"])
    start = np.datetime64(month, "M").astype("datetime64[ms]")
    end = (np.datetime64(month, "M") + 1).astype("datetime64[ms]")
    step = typical_step_s(times)
    medians = []
    for ax, column in zip(axes, columns):
        values = table[column].cast(float).fill_null(np.nan).to_numpy()
        ok = np.isfinite(values)
        median = float(np.median(values[ok])) if ok.any() else 0.0
        medians.append(median)
        t, v = break_at_gaps(times[ok], values[ok] - median, 3 * step)
        ax.plot(t, v, lw=0.5, color="k")
        shade_gaps(ax, gap_intervals(times, ok, 3 * step, start, end))
        ax.set_ylabel(f"{column[0].upper()} − median\n(nT)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_xlim(start, end - np.timedelta64(1, "m"))  # ends inside the month: the date offset names it
    utc_time_axis(axes[-1])
    axes[0].legend(
        handles=[Patch(color=GAP_COLOUR, label="data gap")],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        fontsize=8,
    )
    baselines = ", ".join(f"{c[0].upper()} {m:,.0f}" for c, m in zip(columns, medians))
    fig.suptitle(
        f"{station_label(station)} magnetometer, {month} (UTC), {step:.0f} s samples\n"
        f"baseline subtracted: monthly median ({baselines} nT)",
        fontsize=10,
    )
    return fig
