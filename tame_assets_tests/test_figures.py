"""Every figure function renders on small inputs built directly (no feature extraction) and is fit
for a paper: no two texts overlap and none leaves the figure (renderer text extents), every axes
with tick labels has an axis label, titles are non-empty and say when, time axes are UTC dates,
legends do not cover data, gaps are gaps, fractions come with counts."""

from __future__ import annotations

import datetime as dt
import re
from unittest.mock import patch

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from tame_assets.ml.tables import OATH_CLASSES

TOLERANCE_PX = 1.5
YEAR = re.compile(r"\b(19|20)\d\d\b")


# ------------------------------------------------------------------------------------ checker
def drawn_texts(fig) -> list[tuple[Text, object]]:
    """(Text, window extent) of every non-empty Text artist actually drawn by ``fig.canvas.draw()``
    (tick labels, titles, axis labels, legend texts, annotations)."""
    drawn = []
    original = Text.draw

    def recording_draw(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    with patch.object(Text, "draw", recording_draw):
        fig.canvas.draw()
    return drawn


def text_overlaps(fig, tol: float = TOLERANCE_PX) -> list[str]:
    """Pairs of drawn texts whose extents overlap by more than ``tol`` px in both directions, and
    texts reaching outside the figure."""
    texts = drawn_texts(fig)
    problems = []
    box = fig.bbox
    for t, e in texts:
        lines = [line for line in t.get_text().splitlines() if line.strip()]
        if len(set(lines)) < len(lines):
            problems.append(f"repeated lines in one text: {t.get_text()!r}")
        if e.x0 < box.x0 - tol or e.y0 < box.y0 - tol or e.x1 > box.x1 + tol or e.y1 > box.y1 + tol:
            problems.append(f"outside the figure: {t.get_text()!r} {e.bounds}")
    for i, (t1, e1) in enumerate(texts):
        for t2, e2 in texts[i + 1:]:
            w = min(e1.x1, e2.x1) - max(e1.x0, e2.x0)
            h = min(e1.y1, e2.y1) - max(e1.y0, e2.y0)
            if w > tol and h > tol:
                problems.append(f"overlap: {t1.get_text()!r} × {t2.get_text()!r}")
    return problems


def _has_ticklabels(axis) -> bool:
    return any(t.get_visible() and t.get_text().strip() for t in axis.get_ticklabels())


def unlabelled_axes(fig) -> list[str]:
    """Axes (or colour bars) showing tick labels without an axis label; image tiles without ticks pass."""
    fig.canvas.draw()
    problems = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:
            axis = ax.yaxis if colorbar.orientation == "vertical" else ax.xaxis
            if not axis.get_label_text().strip():
                problems.append("colour bar without a label")
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if _has_ticklabels(axis) and not axis.get_label_text().strip():
                problems.append(f"{name} axis without a label in axes titled {ax.get_title()!r}")
    return problems


def figure_title(fig) -> str:
    """The figure's overall title: its suptitle, else the title of its only axes."""
    if fig._suptitle is not None and fig._suptitle.get_text().strip():
        return fig._suptitle.get_text()
    data_axes = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
    return data_axes[0].get_title() if len(data_axes) == 1 else ""


def legend_covers_data(fig) -> list[str]:
    """Legends inside an axes whose box covers a plotted point, line vertex, bar or scatter marker."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for artist in ax.get_children():
            if isinstance(artist, Line2D) and artist.get_visible():
                xy = np.column_stack([mdates.date2num(v) if np.issubdtype(np.asarray(v).dtype, np.datetime64) else
                                      np.asarray(v, float) for v in artist.get_data()])
                pts = artist.get_transform().transform(xy[np.isfinite(xy).all(axis=1)])
            elif isinstance(artist, PathCollection):
                pts = artist.get_offset_transform().transform(artist.get_offsets())
            elif isinstance(artist, Rectangle) and artist is not ax.patch and artist.get_height():
                e = artist.get_window_extent(renderer)
                if box.overlaps(e):
                    problems.append(f"legend over a bar in {ax.get_title()!r}")
                continue
            else:
                continue
            inside = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            if inside.any():
                problems.append(f"legend over {int(inside.sum())} data point(s) of {artist.get_label()!r} in {ax.get_title()!r}")
    return problems


def date_axes(fig) -> list:
    """Axes whose x axis shows dates (a matplotlib.dates formatter)."""
    fig.canvas.draw()
    kinds = (mdates.DateFormatter, mdates.ConciseDateFormatter, mdates.AutoDateFormatter)
    return [ax for ax in fig.axes if isinstance(ax.xaxis.get_major_formatter(), kinds)]


def assert_fit_for_paper(fig, time_axis: bool = False, when: bool = True):
    problems = text_overlaps(fig) + unlabelled_axes(fig) + legend_covers_data(fig)
    title = figure_title(fig)
    if not title.strip():
        problems.append("no figure title")
    elif when and not YEAR.search(title):
        problems.append(f"title does not say when: {title!r}")
    if time_axis:
        axes = date_axes(fig)
        if not axes:
            problems.append("no UTC date axis")
        for ax in axes:
            if _has_ticklabels(ax.xaxis) and "UTC" not in ax.get_xlabel():
                problems.append(f"date axis label does not say UTC: {ax.get_xlabel()!r}")
    plt.close(fig)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- synthetic inputs
def _times(n: int, nights: int = 3, step_s: int = 60) -> list[dt.datetime]:
    """``n`` image times at ``step_s`` cadence from 18 UTC, spread over ``nights`` nights in Dec 2010."""
    per = int(np.ceil(n / nights))
    return [dt.datetime(2010, 12, 3 + i // per, 18) + dt.timedelta(seconds=step_s * (i % per)) for i in range(n)]


def predictions_table(n: int = 72, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(len(OATH_CLASSES), 0.6), size=n)
    times = _times(n)
    return pl.DataFrame({
        "time": times, "station": ["nya4"] * n,
        "file_name": [f"nya4_{t:%Y%m%d_%H%M%S}_5577.png" for t in times],
        "pred": [OATH_CLASSES[i] for i in proba.argmax(axis=1)],
        **{f"p_{c}": proba[:, j] for j, c in enumerate(OATH_CLASSES)},
        "p_aurora": proba[:, :3].sum(axis=1),
        "local_path": [f"img{i}" for i in range(n)],
    })


def fake_image(path: str, size: int = 48) -> np.ndarray:
    """A sky-like disc with a brightness set by the path (fast stand-in for decoding a file)."""
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    level = (sum(map(ord, path)) % 7 + 1) / 8
    return np.where(xx ** 2 + yy ** 2 < 1, level * np.exp(-4 * (yy - 0.2) ** 2), 0.0)


def ceilometer_matches(n: int = 400, seed: int = 1) -> pl.DataFrame:
    """An ``asim_ceilometer``-like table: cloudy rows at CBHs from 0 to 8 km (a few sparse bins)."""
    rng = np.random.default_rng(seed)
    preds = predictions_table(n, seed)
    cloud = rng.random(n) < 0.6
    cbh = np.where(cloud, rng.gamma(2.0, 900.0, n), np.nan)
    cbh[:3] = [7450.0, 7480.0, 7900.0]  # bins of 1–2 images
    cloud[:3] = True
    p_cloudy = np.clip(np.where(cloud & (cbh < 2000), 0.7, 0.2) + rng.normal(0, 0.2, n), 0, 1)
    return preds.with_columns(pl.Series("p_cloudy", p_cloudy), pl.Series("cloud_detected", cloud),
                              pl.Series("cbh_m", cbh).fill_nan(None), pl.Series("missing", np.zeros(n, bool)))


def magnetometer_rows(n: int = 330, seed: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    h = 40 * np.sin(t / 25) + rng.normal(0, 5, n)
    features = np.column_stack([h / 40 + rng.normal(0, 0.3, n) for _ in range(3)] + [rng.normal(size=(n, 5))])
    return pl.DataFrame({"time": _times(n), "pred": ["arc"] * n, "h_nt": 10_000 + h,
                         "features": features.tolist(), "cloud_detected": [False] * n,
                         "cbh_m": [None] * n}, schema_overrides={"cbh_m": pl.Float64})


def magnetometer_month(gap: bool = True) -> pl.DataFrame:
    """Two days of 1-minute X/Y/Z/H (nT) with a 6-hour hole (no rows) and a 2-hour run of NULLs."""
    times = [dt.datetime(2010, 12, 1) + dt.timedelta(minutes=m) for m in range(2 * 1440)]
    if gap:
        times = times[:600] + times[960:]
    n = len(times)
    t = np.arange(n)
    x = 10_500 + 30 * np.sin(t / 200)
    nulls = np.zeros(n, bool)
    if gap:
        nulls[1500:1620] = True
    col = lambda v: pl.Series(np.where(nulls, np.nan, v)).fill_nan(None)  # noqa: E731
    return pl.DataFrame({"time": times, "station": ["NAL"] * n, "x_nt": col(x), "y_nt": col(x * 0.1),
                         "z_nt": col(x * 5), "h_nt": col(np.hypot(x, x * 0.1))})


def svm_search_table() -> pl.DataFrame:
    rows = []
    for C in np.logspace(-3, 3, 13):
        rows.append({"kernel": "linear", "C": C, "gamma": None, "acc6_mean": 0.6 + 0.02 * np.log10(C + 1),
                     "acc6_std": 0.02, "acc2_mean": 0.9, "acc2_std": 0.01})
        for g in np.logspace(-5, 0, 11):
            rows.append({"kernel": "rbf", "C": C, "gamma": g, "acc6_mean": 0.5 + 0.1 * np.exp(-abs(np.log10(g) + 3)),
                         "acc6_std": 0.02, "acc2_mean": 0.9, "acc2_std": 0.01})
    return pl.DataFrame(rows)


def benchmark_table() -> pl.DataFrame:
    rows = [{"backbone": b, "feature_kind": k, "n_images": 300, "s_per_image": s * f, "acc6_mean": a + d,
             "acc6_std": 0.03}
            for b, s, a in (("efficientnet_lite0", 0.02, 0.71), ("efficientnet_lite1", 0.021, 0.72),
                            ("efficientnet_lite2", 0.035, 0.74))
            for k, f, d in (("pooled", 1.0, 0.0), ("concat", 1.02, 0.005))]
    return pl.DataFrame(rows)
