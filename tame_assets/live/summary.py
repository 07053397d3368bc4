"""The rolling daily summary of the live day: ``figures/live/<STATION>_daily_summary.png`` (+ .svg, atomic
replace by :func:`tame_assets.analysis.figures.save_figure`), the batch figure
(:func:`tame_assets.products.summary.daily_summary_figure`) drawn from the ``live_frames`` rows of one UT
day: the rolling keogram, predicted class and P(aurora) (plus calibrated P(aurora) when the calibration
is there), cloud base / flag and magnetometer H when the rows have them. The title says "live" and the
frame count. Unreadable frames and frames not yet arrived are gaps.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from tame_assets.products.keogram import Keogram

#: Columns of the live rows that are not a class probability.
_NOT_CLASSES = ("p_aurora", "p_aurora_calibrated")


def summary_inputs(rows: pl.DataFrame) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
    """(predictions, ceilometer, magnetometer) tables of :func:`daily_summary_figure` from live rows:
    the classified frames (``time, pred, p_<class>…, p_aurora``); the frames with a ceilometer match
    (``time, cbh_m, cloud_detected, missing``); the frames with H (``time, h_nt``). None where none has."""
    if rows.height == 0:
        return None, None, None
    ok = rows.filter(pl.col("ok")) if "ok" in rows.columns else rows.filter(pl.col("pred").is_not_null())
    classes = [c for c in rows.columns if c.startswith("p_") and c not in _NOT_CLASSES]
    predictions = ok.select("time", "pred", *classes, "p_aurora").sort("time") if ok.height else None
    ceilometer = magnetometer = None
    if {"cbh_m", "cloud_detected"} <= set(rows.columns):
        seen = rows.filter(pl.col("cloud_detected").is_not_null() | pl.col("cbh_m").is_not_null())
        if seen.height:
            ceilometer = seen.select(
                "time", pl.col("cbh_m").cast(pl.Float64), "cloud_detected", pl.lit(False).alias("missing")
            ).sort("time")
    if "h_nt" in rows.columns:
        with_h = rows.filter(pl.col("h_nt").is_not_null())
        magnetometer = with_h.select("time", pl.col("h_nt").cast(pl.Float64)).sort("time") if with_h.height else None
    return predictions, ceilometer, magnetometer


def live_summary_figure(
    rows: pl.DataFrame,
    station: str,
    day: dt.date,
    *,
    keogram: Keogram | None = None,
    magnetometer: pl.DataFrame | None = None,
):
    """The daily summary figure of ``station``'s live ``rows`` on ``day`` (UTC); ``keogram`` the rolling
    keogram's arrays, ``magnetometer`` (``time, h_nt``, nT) the station's magnetometer when the warehouse
    has it (else H from the rows)."""
    from tame_assets.products.summary import daily_summary_figure

    start = dt.datetime.combine(day, dt.time())
    on_day = rows.filter((pl.col("time") >= start) & (pl.col("time") < start + dt.timedelta(days=1)))
    predictions, ceilometer, h_rows = summary_inputs(on_day)
    fig = daily_summary_figure(
        keogram, predictions, ceilometer, magnetometer if magnetometer is not None else h_rows, station, day
    )
    if predictions is not None and "p_aurora_calibrated" in on_day.columns:
        _add_calibrated(fig, on_day.filter(pl.col("ok")) if "ok" in on_day.columns else on_day)
    frames = int(on_day["ok"].sum()) if "ok" in on_day.columns else on_day.height
    unreadable = on_day.height - frames
    latest = f"; latest frame {on_day['time'].max():%H:%M:%S} UTC" if on_day.height else ""
    more = f" ({unreadable} unreadable)" if unreadable else ""
    count = f"{frames} frame{'' if frames == 1 else 's'}"
    fig.suptitle(f"{fig.get_suptitle()} — live, {count}{more}{latest}", fontsize=12)
    return fig


def _add_calibrated(fig, rows: pl.DataFrame) -> None:
    """Calibrated P(aurora) as a second line on the class panel, with its legend entry."""
    from tame_assets.products.frame_stream import to_datetime64_array
    from tame_assets.products.summary import with_gaps

    values = rows["p_aurora_calibrated"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    if not np.isfinite(values).any():
        return
    ax = next((a for a in fig.axes if a.get_ylabel().startswith("P(aurora)")), None)
    legend = ax.get_legend() if ax is not None else None
    if legend is None:
        return
    t, p = with_gaps(to_datetime64_array(rows["time"]), values)
    (line,) = ax.plot(t, p, color="tab:orange", linewidth=0.8, linestyle="--", label="P(aurora), calibrated")
    ax.legend(
        handles=[*legend.legend_handles, line],
        labels=[*(text.get_text() for text in legend.get_texts()), line.get_label()],
        title=legend.get_title().get_text(),
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )


def draw_live_summary(
    rows: pl.DataFrame,
    station: str,
    day: dt.date,
    figures_dir: str | Path,
    *,
    keogram: Keogram | None = None,
    magnetometer: pl.DataFrame | None = None,
) -> Path | None:
    """Write ``<figures_dir>/<station>_daily_summary.png`` and ``.svg`` (atomic replace); the PNG's path,
    None without rows on ``day``."""
    if rows.height == 0:
        return None
    from tame_assets.analysis.figures import save_figure

    fig = live_summary_figure(rows, station, day, keogram=keogram, magnetometer=magnetometer)
    return save_figure(fig, figures_dir, f"{station}_daily_summary").png
