"""The daily summary figure: one station, one UT day, all data on one UTC time axis.

Panels, top to bottom (shared x axis 00:00–24:00 UTC):

1. keogram (north–south slice; latitude or image row), colour bar at the right;
2. predicted class per frame as a coloured strip above the p_aurora line (0–1);
3. ceilometer cloud base height (m, dots) with the cloud flag strip on top (grey = cloud, blue = no
   cloud, blank = instrument missing or no record);
4. magnetometer H minus its day median (nT; the median is given in the label);
5. dH/dt (nT/min) from 1-minute means of H: the difference of consecutive minutes
   (:func:`~tame_assets.products.catalog.minute_dh_dt`, as in ``aurora_catalog``).

Missing data are gaps: a line connects consecutive samples and breaks only where they are more than
:data:`GAP_CADENCES` cadences apart (cadence = median spacing; frames without a probability are
skipped, not gaps); strips cover one cadence per sample. Cloud-base dots are drawn only for records
flagged "cloud detected". Legends sit outside the data, at the right. Labels are words with units
("P(aurora)", "Cloud base height (m)"), not column names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from tame_assets.labels import OATH_CLASSES
from tame_assets.products.catalog import minute_dh_dt
from tame_assets.products.frame_stream import infer_cadence_s, to_datetime64_array
from tame_assets.products.keogram import GriddedKeogram, Keogram, draw_keogram

#: Strip colours of the OATH classes (greens for the auroral ones), in the order of OATH_CLASSES.
CLASS_COLOURS = dict(zip(OATH_CLASSES, ("#1b9e77", "#a6d854", "#00441b", "#8c8c8c", "#e6ab02", "#253494")))
_OTHER_COLOURS = ("#e7298a", "#7570b3", "#d95f02", "#66a61e", "#a6761d", "#666666")
CLOUD_COLOURS = {True: "0.55", False: "#9ecae1"}
#: A line breaks where consecutive samples are more than this many cadences apart (a real gap).
GAP_CADENCES = 3.0


def _day_bounds(day: dt.date | str) -> tuple[dt.date, np.datetime64, np.datetime64]:
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"day {day!r}: expected YYYY-MM-DD") from None
    if isinstance(day, dt.datetime):
        day = day.date()
    start = np.datetime64(day, "us")
    return day, start, start + np.timedelta64(1, "D")


def _on_day(table: pl.DataFrame | None, start, end, needed: tuple[str, ...], name: str) -> pl.DataFrame | None:
    if table is None or table.height == 0:
        return None
    missing = set(needed) - set(table.columns)
    if missing:
        raise ValueError(f"{name} table lacks columns {sorted(missing)} (has {table.columns})")
    lo, hi = start.astype(dt.datetime), end.astype(dt.datetime)
    day = table.filter((pl.col("time") >= lo) & (pl.col("time") < hi)).sort("time")
    return day if day.height else None


def with_gaps(
    times: np.ndarray, values: np.ndarray, cadence_s: float | None = None, gap_cadences: float = GAP_CADENCES
) -> tuple[np.ndarray, np.ndarray]:
    """Drop NaN samples and insert a NaN point inside every spacing longer than ``gap_cadences`` cadences
    (cadence = median spacing unless given), so a plotted line is continuous over contiguous samples and
    breaks only at real gaps."""
    t = to_datetime64_array(times)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & ~np.isnat(t)
    t, v = t[ok], v[ok]
    if np.unique(t).size < 2:
        return t, v
    cadence = infer_cadence_s(t) if cadence_s is None else cadence_s
    gap = np.flatnonzero(np.diff(t.astype("int64")) > gap_cadences * cadence * 1e6)
    mid = t[gap] + (t[gap + 1] - t[gap]) / 2
    return np.insert(t, gap + 1, mid), np.insert(v, gap + 1, np.nan)


def _runs(times: np.ndarray, labels: list, gap_cadences: float = GAP_CADENCES) -> dict[Any, list[tuple[float, float]]]:
    """Per label, (start, width) in matplotlib date numbers of runs of consecutive samples. A sample
    covers the time from half a cadence before it to half a cadence before the next sample, or one
    cadence when the next one is more than ``gap_cadences`` cadences away (a gap stays blank); jitter
    in the spacing therefore leaves no holes. ``None`` labels are blank."""
    import matplotlib.dates as mdates

    t = to_datetime64_array(times)
    order = np.argsort(t, kind="stable")
    t, labels = t[order], [labels[i] for i in order]
    if not t.size:
        return {}
    cadence = infer_cadence_s(t) if np.unique(t).size > 1 else 60.0
    half = np.timedelta64(int(round(cadence * 5e5)), "us")
    starts = t - half
    following = np.append(t[1:], t[-1] + np.timedelta64(10**15, "us"))
    near = (following - t).astype("int64") <= gap_cadences * cadence * 1e6
    ends = np.where(near, following - half, t + half)
    runs: dict[Any, list[tuple[float, float]]] = {}
    run_start = 0
    for i in range(1, t.size + 1):
        if i == t.size or labels[i] != labels[run_start] or not near[i - 1]:
            if labels[run_start] is not None:
                lo, hi = mdates.date2num(starts[run_start]), mdates.date2num(ends[i - 1])
                runs.setdefault(labels[run_start], []).append((lo, hi - lo))
            run_start = i
    return runs


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} on this day", transform=ax.transAxes, ha="center", va="center", color="0.4")


def _class_order(predictions: pl.DataFrame) -> list[str]:
    from_columns = [c[2:] for c in predictions.columns if c.startswith("p_") and c != "p_aurora"]
    seen = set(predictions["pred"].drop_nulls().unique().to_list()) - set(from_columns)
    return from_columns + [c for c in CLASS_COLOURS if c in seen] + sorted(seen - set(CLASS_COLOURS))


def daily_summary_figure(
    keogram_table: pl.DataFrame | Keogram | GriddedKeogram | None,
    predictions: pl.DataFrame | None,
    ceilometer: pl.DataFrame | None,
    magnetometer: pl.DataFrame | None,
    station: str,
    day: dt.date | str,
    *,
    keogram_units: str = "counts",
):
    """One figure per station and UT day (see the module docstring); any input may be None or empty.

    Tables use the project's columns: predictions ``time, pred, p_<class>…, p_aurora``; ceilometer
    ``time, cbh_m, cloud_detected, missing``; magnetometer ``time, h_nt``; keogram: the long table of
    :func:`tame_assets.products.keogram.keogram` (or its arrays).
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from tame_assets.analysis.figures import station_label

    day, start, end = _day_bounds(day)
    fig, axes = plt.subplots(5, 1, figsize=(13, 12), sharex=True, height_ratios=(3, 1.3, 1.3, 1.3, 1.1))
    fig.subplots_adjust(left=0.08, right=0.8, top=0.93, bottom=0.06, hspace=0.12)
    ax_keo, ax_cls, ax_ceil, ax_h, ax_dh = axes
    legend_at = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False}

    # 1. keogram
    keo = keogram_table
    if isinstance(keo, pl.DataFrame):
        keo = _on_day(keo, start, end, ("time", "intensity"), "keogram")
    elif isinstance(keo, Keogram):  # arrays of a longer interval: this day's frames only
        on_day = (keo.time >= start) & (keo.time < end)
        keo = Keogram(keo.time[on_day], keo.coordinate, keo.coordinate_name, keo.intensity[on_day], keo.bin_edges)
    if keo is not None and (isinstance(keo, pl.DataFrame) or keo.time.size > 0):
        mesh = draw_keogram(ax_keo, keo)
        ax_keo.set_facecolor("0.85")
        cax = ax_keo.inset_axes((1.01, 0.0, 0.015, 1.0))
        fig.colorbar(mesh, cax=cax, label=f"Intensity ({keogram_units})")
        ax_keo.set_title("Keogram, north–south slice through the zenith (grey = no frame)", fontsize=9, loc="left")
    else:
        _no_data(ax_keo, "all-sky frames")

    # 2. classes and p_aurora
    pred = _on_day(predictions, start, end, ("time", "pred"), "predictions")
    if pred is not None:
        times = to_datetime64_array(pred["time"])
        labels = pred["pred"].to_list()
        classes = _class_order(pred)
        colours = {c: CLASS_COLOURS.get(c, _OTHER_COLOURS[i % len(_OTHER_COLOURS)]) for i, c in enumerate(classes)}
        for label, runs in _runs(times, labels).items():
            ax_cls.broken_barh(runs, (1.06, 0.3), facecolors=colours.get(label, "k"))
        if "p_aurora" in pred.columns:
            t, p = with_gaps(times, pred["p_aurora"].cast(pl.Float64).fill_null(np.nan).to_numpy())
            ax_cls.plot(t, p, color="k", linewidth=0.8, marker=".", markersize=2.5)  # dots: isolated frames too
        handles = [Patch(color=colours[c], label=c) for c in classes]
        handles.append(plt.Line2D([], [], color="k", linewidth=0.8, marker=".", markersize=2.5, label="P(aurora)"))
        ax_cls.legend(handles=handles, title="predicted class", title_fontsize=8, **legend_at)
    else:
        _no_data(ax_cls, "predictions")
    ax_cls.set_ylim(0, 1.4)
    ax_cls.set_yticks([0, 0.5, 1.0, 1.21], ["0", "0.5", "1", "class"])
    ax_cls.set_ylabel("P(aurora)\n(probability)", fontsize=9)

    # 3. ceilometer
    ceil = _on_day(ceilometer, start, end, ("time", "cbh_m", "cloud_detected", "missing"), "ceilometer")
    if ceil is not None:
        c_times = to_datetime64_array(ceil["time"])
        flags = [
            None if m else c
            for m, c in zip(ceil["missing"].fill_null(True).to_list(), ceil["cloud_detected"].to_list())
        ]
        for flag, runs in _runs(c_times, flags).items():
            ax_ceil.broken_barh(
                runs, (0.88, 0.12), facecolors=CLOUD_COLOURS[bool(flag)], transform=ax_ceil.get_xaxis_transform()
            )
        cloud = pl.col("cloud_detected").fill_null(False) & ~pl.col("missing").fill_null(True)
        base = ceil.with_columns(pl.col("cbh_m").cast(pl.Float64)).filter(  # a cloud base only where a cloud is
            pl.col("cbh_m").is_not_null() & cloud
        )
        ax_ceil.plot(
            to_datetime64_array(base["time"]) if base.height else [],
            base["cbh_m"].to_numpy(),
            ".",
            markersize=2.5,
            color="tab:blue",
        )
        top = float(base["cbh_m"].max()) if base.height else 1000.0
        ax_ceil.set_ylim(0, top / 0.8)
        ax_ceil.legend(
            handles=[
                plt.Line2D([], [], marker=".", linestyle="", color="tab:blue", label="Cloud base"),
                Patch(color=CLOUD_COLOURS[True], label="Cloud detected"),
                Patch(color=CLOUD_COLOURS[False], label="No cloud"),
                Patch(facecolor="white", edgecolor="0.6", label="Missing (blank)"),
            ],
            **legend_at,
        )
    else:
        _no_data(ax_ceil, "ceilometer records")
    ax_ceil.set_ylabel("Cloud base\nheight (m)", fontsize=9)

    # 4–5. magnetometer
    mag = _on_day(magnetometer, start, end, ("time", "h_nt"), "magnetometer")
    mag = mag.drop_nulls("h_nt") if mag is not None else None
    if mag is not None and mag.height:
        median = float(mag["h_nt"].median())
        t, h = with_gaps(to_datetime64_array(mag["time"]), mag["h_nt"].to_numpy() - median)
        ax_h.plot(t, h, color="tab:purple", linewidth=0.8)
        ax_h.set_ylabel(f"H − median (nT)\nmedian {median:.1f} nT", fontsize=9)
        ax_h.axhline(0, color="0.6", linewidth=0.6)
        dh = minute_dh_dt(mag).drop_nulls("dh_dt_nt_per_min")
        if dh.height:
            t, d = with_gaps(to_datetime64_array(dh["time"]), dh["dh_dt_nt_per_min"].to_numpy(), 60.0)
            ax_dh.plot(t, d, color="tab:red", linewidth=0.8)
            ax_dh.axhline(0, color="0.6", linewidth=0.6)
        else:
            _no_data(ax_dh, "consecutive magnetometer minutes")
    else:
        _no_data(ax_h, "magnetometer data")
        _no_data(ax_dh, "magnetometer data")
        ax_h.set_ylabel("H − median (nT)")
    ax_dh.set_ylabel("dH/dt (nT/min)\n1-min means", fontsize=9)

    ax_dh.set_xlim(mdates.date2num(start), mdates.date2num(end))
    ax_dh.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 3)))
    ax_dh.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax_dh.set_xlabel("Time (UTC)")
    for ax in axes[1:]:  # no grid lines over the keogram
        ax.grid(axis="x", color="0.85", linewidth=0.5)
    fig.suptitle(f"{station_label(station)} daily summary, {day.isoformat()} (UTC)", fontsize=12)
    return fig
