"""What the archive holds: per station × month, the frames in the catalog — a table, a figure and the
links that take a user of the Dagster UI straight to a materialized partition (the UI's partition lists
run over every month since 2010, newest first, so a few materialized months are hard to find there)."""

from __future__ import annotations

import contextlib
import urllib.parse

import numpy as np
import polars as pl

from tame_assets.geometry.places import station_label
from tame_assets.warehouse.sql import load_sql
from tame_assets.warehouse.store import Warehouse

#: p_aurora (calibrated when available) from which a frame counts as auroral.
AURORAL_P = 0.5

COVERAGE_SCHEMA = {
    "station": pl.Utf8,
    "month": pl.Utf8,
    "frames": pl.Int64,
    "days": pl.Int64,
    "first_time": pl.Datetime("us"),
    "last_time": pl.Datetime("us"),
    "auroral_frames": pl.Int64,
    "cloud_free_frames": pl.Int64,
}


def coverage_table(warehouse: Warehouse) -> pl.DataFrame:
    """Per station and month (``YYYY-MM`` of the frame's UTC time) of the warehouse's ``aurora_catalog``:
    frames, UT days with frames, first and last frame time (UTC), frames with p_aurora ≥
    :data:`AURORAL_P` (calibrated when present) and frames whose ceilometer match saw no cloud
    (``sql/archive_coverage.sql``). Empty (with the columns) before the first catalog partition."""
    if "aurora_catalog" not in warehouse.tables():
        return pl.DataFrame(schema=COVERAGE_SCHEMA)
    with contextlib.closing(warehouse.connect()) as con:
        table = con.sql(load_sql("archive_coverage.sql"), params={"auroral_p": AURORAL_P}).pl()
    return table.select([pl.col(c).cast(t) for c, t in COVERAGE_SCHEMA.items()])


def partition_url(asset: str, station: str, month: str, base: str = "") -> str:
    """Dagster UI address of one station × month partition of ``asset`` (multi-partition keys are the
    dimension values in dimension-name order, ``month|station``); ``base``: the UI's root URL."""
    key = urllib.parse.quote(f"{month}|{station}", safe="")
    return f"{base}/assets/{urllib.parse.quote(asset)}?view=partitions&partition={key}"


def coverage_markdown(table: pl.DataFrame, assets: tuple[str, ...] = ("aurora_catalog", "keograms")) -> str:
    """A Markdown table of :func:`coverage_table` with a link per partition to each of ``assets``."""
    head = "| station | month | frames | days | auroral | cloud-free | open |\n|---|---|---|---|---|---|---|"
    rows = [
        f"| {r['station']} | {r['month']} | {r['frames']} | {r['days']} | {r['auroral_frames']} | "
        f"{r['cloud_free_frames']} | "
        + " · ".join(f"[{a}]({partition_url(a, r['station'], r['month'])})" for a in assets)
        + " |"
        for r in table.iter_rows(named=True)
    ]
    return "\n".join([head, *rows]) if rows else "No frames in the catalog yet."


def month_range(months: list[str]) -> list[str]:
    """Every month from the first to the last of ``months`` (``YYYY-MM``), so a figure shows the gaps."""
    if not months:
        return []
    start, end = min(months), max(months)
    year, month, out = int(start[:4]), int(start[5:]), []
    while f"{year:04d}-{month:02d}" <= end:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def coverage_figure(table: pl.DataFrame):
    """Station × month grid coloured by frames in the catalog (log scale); months without frames are
    left white and marked "no data", each cell printed with its frame count and auroral share."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    stations = sorted(table["station"].unique().to_list()) if table.height else []
    months = month_range(table["month"].to_list()) if table.height else []
    grid = np.full((len(stations), len(months)), np.nan)
    for r in table.iter_rows(named=True):
        grid[stations.index(r["station"]), months.index(r["month"])] = r["frames"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(months) + 3.5), 1.4 + 0.55 * max(len(stations), 1)))
    if stations:
        image = ax.imshow(
            np.ma.masked_invalid(grid),
            aspect="auto",
            cmap="viridis",
            norm=LogNorm(vmin=1, vmax=max(np.nanmax(grid), 2)),
        )
        fig.colorbar(image, ax=ax, label="frames in the catalog", pad=0.02)
        for r in table.iter_rows(named=True):
            i, j = stations.index(r["station"]), months.index(r["month"])
            share = r["auroral_frames"] / r["frames"] if r["frames"] else 0.0
            bright = sum(image.cmap(image.norm(r["frames"]))[:3]) > 1.8  # dark text on the yellow end
            ax.text(
                j,
                i,
                f"{r['frames']}\n{share:.0%} auroral",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if bright else "white",
            )
        for i, j in zip(*np.nonzero(np.isnan(grid))):
            ax.text(j, i, "no data", ha="center", va="center", fontsize=8, color="0.4")
        ax.set_xticks(range(len(months)), months)
        ax.set_yticks(range(len(stations)), [station_label(s) for s in stations])
    else:
        ax.text(0.5, 0.5, "no frames in the catalog yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel("Month (UTC)")
    period = f"{months[0]} to {months[-1]}" if months else "empty"
    ax.set_title(f"Archive coverage, {period}\nframes per station and month in the aurora catalog", fontsize=11)
    fig.tight_layout()
    return fig
