"""Montages for search by example and novelty: a query frame and its nearest neighbours, and a
month's most unusual frames. Each tile is the frame (grey, its 1st–99.5th percentile stretched), above it
the rank and the number that put it there, below it station, date and time (UTC) and the catalog class."""

from __future__ import annotations

from typing import Callable

import numpy as np
import polars as pl

from tame_assets.analysis.figures import MIN_FONT_PT, as_datetime64, plt, station_label


def stretch(image: np.ndarray | None) -> np.ndarray | None:
    """Grey frame → float 0..1 between its 1st and 99.5th percentile (None stays None)."""
    if image is None:
        return None
    a = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(a, [1.0, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _stamp(time) -> str:
    text = str(as_datetime64([time])[0].astype("datetime64[s]"))
    return f"{text[:10]} {text[11:]}"


def _tile(ax, image, top: str, bottom: str, highlight: str | None = None) -> None:
    ax.set_xticks([]), ax.set_yticks([])
    if image is None:
        ax.text(0.5, 0.5, "frame\nunreadable", ha="center", va="center", fontsize=MIN_FONT_PT, transform=ax.transAxes)
    else:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_title(top, fontsize=MIN_FONT_PT, pad=2)
    ax.set_xlabel(bottom, fontsize=MIN_FONT_PT, labelpad=1)
    if highlight:
        for spine in ax.spines.values():
            spine.set_edgecolor(highlight), spine.set_linewidth(2.5)


def _caption(row: dict) -> str:
    where = str(row.get("station") or "")
    klass = row.get("pred")
    return f"{where} {_stamp(row['time'])}" + (f"\nclass {klass}" if klass else "")


def similarity_montage(
    query_image: np.ndarray | None,
    query_caption: str,
    neighbours: pl.DataFrame,
    load: Callable[[dict], np.ndarray | None],
    title: str,
    columns: int = 5,
):
    """The query (first tile, outlined) and ``neighbours`` (rows of a search result: rank, similarity,
    time, station, pred…) in rank order; ``load(row)`` gives a neighbour's grey frame."""
    rows = neighbours.to_dicts()
    n = len(rows) + 1
    columns = n if n <= 6 else min(columns, n)
    lines = -(-n // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(columns * 2.0, lines * 2.6 + 0.7), squeeze=False)
    axes = axes.ravel()
    _tile(axes[0], stretch(query_image), "query", query_caption, highlight="#d62728")
    for ax, row in zip(axes[1:], rows):
        _tile(ax, stretch(load(row)), f"#{row['rank']}  cos {row['similarity']:.3f}", _caption(row))
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def novelty_montage(frames: pl.DataFrame, load: Callable[[dict], np.ndarray | None], month: str, columns: int = 3):
    """The most unusual frames of a station's month (rows of ``frame_embeddings`` with ``novelty`` and
    ``novelty_score``, most unusual first)."""
    rows = frames.to_dicts()
    n = max(len(rows), 1)
    columns = min(columns, n)
    lines = -(-n // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(columns * 2.2, lines * 2.75 + 0.8), squeeze=False)
    axes = axes.ravel()
    for i, (ax, row) in enumerate(zip(axes, rows)):
        top = f"#{i + 1}  novelty {row['novelty']:.3f}\n(distance {row['novelty_score']:.3f})"
        _tile(ax, stretch(load(row)), top, _caption(row))
    for ax in axes[len(rows) :]:
        ax.set_axis_off()
    station = station_label(str(rows[0]["station"])) if rows else ""
    fig.suptitle(
        f"Most unusual frames, {station} {month}: novelty = percentile of the mean cosine distance to the\n"
        "10 nearest reference (labelled-set) frames among the reference frames' own (1.0 = beyond all of them)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
