"""Figures (matplotlib, Agg): saved as PNG and SVG with a small inline PNG preview for Dagster."""

from __future__ import annotations

import base64
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

PREVIEW_WIDTH = 480


@dataclass(frozen=True)
class FigureFiles:
    png: Path
    svg: Path
    md_preview: str


def save_figure(fig, directory: str | Path, name: str, dpi: int = 110) -> FigureFiles:
    """Write ``name.png`` and ``name.svg`` atomically; return paths and a markdown preview
    (a downscaled PNG embedded as base64)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "svg"):
        target = directory / f"{name}.{ext}"
        tmp = directory / f".{name}.{uuid.uuid4().hex}.{ext}"
        fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, target)
        paths[ext] = target
    plt.close(fig)
    with Image.open(paths["png"]) as im:
        im = im.convert("RGB")
        if im.width > PREVIEW_WIDTH:
            im = im.resize((PREVIEW_WIDTH, round(im.height * PREVIEW_WIDTH / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    preview = f"![{name}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"
    return FigureFiles(paths["png"], paths["svg"], preview)


def confusion_matrices_figure(matrices: dict[str, np.ndarray], class_names: Sequence[str]):
    """One normalised confusion-matrix panel per entry (title → matrix, rows = truth)."""
    n = len(matrices)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (title, cm) in zip(axes.flat, matrices.items()):
        cm = np.asarray(cm, dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def svm_hyperparameter_figures(search) -> dict:
    """Linear SVC accuracy vs C and the RBF C × γ accuracy map (six-class mean) from ``svm_search``."""
    import polars as pl

    lin = search.filter(pl.col("kernel") == "linear").sort("C")
    fig1, ax = plt.subplots(figsize=(5, 3.5))
    for col, label in (("acc6_mean", "six-class"), ("acc2_mean", "binary")):
        ax.errorbar(lin["C"], lin[col], yerr=lin[col.replace("mean", "std")], marker="o", ms=3, capsize=2, label=label)
    ax.set(xscale="log", xlabel="C", ylabel="accuracy (10 rotations)", title="Linear SVC")
    ax.legend()
    rbf = search.filter(pl.col("kernel") == "rbf")
    cs, gs = np.sort(rbf["C"].unique().to_numpy()), np.sort(rbf["gamma"].unique().to_numpy())
    grid = np.full((len(gs), len(cs)), np.nan)
    for c, g, a in rbf.select("C", "gamma", "acc6_mean").iter_rows():
        grid[np.searchsorted(gs, g), np.searchsorted(cs, c)] = a
    fig2, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(cs))[::2], [f"{c:.2g}" for c in cs[::2]], rotation=45)
    ax.set_yticks(range(len(gs))[::2], [f"{g:.1e}" for g in gs[::2]])
    ax.set(xlabel="C", ylabel="γ", title="RBF SVC six-class accuracy")
    fig2.colorbar(im, ax=ax)
    return {"svm_linear_accuracy": fig1, "svm_rbf_map": fig2}


def backbone_tradeoff_figure(benchmark):
    """Runtime per image vs six-class accuracy for every backbone and feature kind."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for row in benchmark.iter_rows(named=True):
        ax.errorbar(row["s_per_image"] * 1000, row["acc6_mean"], yerr=row["acc6_std"], fmt="o", capsize=2)
        ax.annotate(f"{row['backbone']}/{row['feature_kind']}", (row["s_per_image"] * 1000, row["acc6_mean"]),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="wall time per image (ms, extraction incl. decode)", ylabel="ridge six-class accuracy",
           title="Backbone runtime vs accuracy")
    return fig


def magnetometer_quicklook_figure(table, station: str, month: str):
    """X, Y, Z and H = √(X²+Y²) (nT, UTC) of one station-month, each minus its monthly median."""
    fig, axes = plt.subplots(4, 1, figsize=(9, 6.5), sharex=True)
    times = table["time"].to_numpy()
    for ax, column in zip(axes, ("x_nt", "y_nt", "z_nt", "h_nt")):
        values = table[column].cast(float).to_numpy()
        median = np.nanmedian(values) if np.isfinite(values).any() else 0.0
        ax.plot(times, values - median, lw=0.5, color="k")
        ax.set_ylabel(f"{column[0].upper()} − {median:,.0f}\n(nT)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{station} magnetometer, {month} (UTC)")
    fig.autofmt_xdate()
    return fig
