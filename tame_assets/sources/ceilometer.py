"""AWI ceilometer cloud-base height at Ny-Ålesund, PANGAEA tab-delimited text (``.tab``).

PANGAEA's text export: a ``/* DATA DESCRIPTION: ... */`` metadata block, then one tab-separated
header row (here ``Date/Time`` and ``CBH [m]``, other columns are ignored) and data rows
``2010-12-01T00:05<TAB>1234``. Conventions implemented (documented, not magic numbers):

- a numeric CBH → a cloud base at that height above ground (m), ``cloud_detected = true``;
- an empty CBH cell → the ceilometer ran and saw **no cloud** (``cloud_detected = false``,
  ``cbh_m`` NULL);
- a timestamp absent from the regular record cadence (median spacing of the file) → **missing**
  (instrument not recording): an explicit row with ``missing = true`` and NULL values.

Table ``ceilometer``: time (UTC), site, cbh_m, cloud_detected, missing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from tame_assets.sources.http import DownloadError, HttpClient

CEILOMETER_SCHEMA = {
    "time": pl.Datetime("us"),
    "site": pl.Utf8,
    "cbh_m": pl.Float64,
    "cloud_detected": pl.Boolean,
    "missing": pl.Boolean,
}


class PangaeaFormatError(ValueError):
    """A malformed PANGAEA file; names the file and line (1-based)."""

    def __init__(self, source: str, line: int | None, reason: str):
        super().__init__(f"{source}" + (f", line {line}" if line else "") + f": {reason}")


def parse_pangaea_tab(path_or_text: str | Path, site: str, source_name: str | None = None,
                      fill_missing: bool = True) -> pl.DataFrame:
    """Parse a PANGAEA ``.tab`` file into the ``ceilometer`` table (see module docstring)."""
    if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
        path = Path(path_or_text)
        text, source = path.read_text(encoding="utf-8"), source_name or str(path)
    else:
        text, source = str(path_or_text), source_name or "<text>"
    lines = text.splitlines()
    start = 0
    if lines and lines[0].startswith("/*"):
        end = next((i for i, l in enumerate(lines) if l.rstrip().endswith("*/")), None)
        if end is None:
            raise PangaeaFormatError(source, 1, "metadata header '/*' is never closed by '*/'")
        start = end + 1
    if start >= len(lines):
        raise PangaeaFormatError(source, None, "no column header after the metadata block")
    header = lines[start].split("\t")
    try:
        t_col = header.index("Date/Time")
        h_col = next(i for i, h in enumerate(header) if h.startswith("CBH"))
    except (ValueError, StopIteration):
        raise PangaeaFormatError(source, start + 1, f"expected 'Date/Time' and 'CBH [m]' columns, got {header}") from None
    times, heights = [], []
    for number, line in enumerate(lines[start + 1:], start=start + 2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise PangaeaFormatError(source, number, f"expected {len(header)} tab-separated columns, found {len(cells)}")
        try:
            times.append(dt.datetime.fromisoformat(cells[t_col]))
        except ValueError:
            raise PangaeaFormatError(source, number, f"invalid Date/Time {cells[t_col]!r}") from None
        value = cells[h_col].strip()
        try:
            heights.append(float(value) if value else None)
        except ValueError:
            raise PangaeaFormatError(source, number, f"invalid CBH {value!r}") from None
    table = pl.DataFrame({"time": times, "cbh_m": heights}, schema={"time": pl.Datetime("us"), "cbh_m": pl.Float64})
    table = table.with_columns(
        pl.lit(site).alias("site"), pl.col("cbh_m").is_not_null().alias("cloud_detected"), pl.lit(False).alias("missing")
    ).select(list(CEILOMETER_SCHEMA)).sort("time")
    return _fill_missing(table, site) if fill_missing else table


def _fill_missing(table: pl.DataFrame, site: str) -> pl.DataFrame:
    """Add explicit ``missing`` rows where records are absent from the regular cadence."""
    if table.height < 3:
        return table
    step = table["time"].diff().drop_nulls().median()
    if not step or step.total_seconds() <= 0:
        return table
    grid = pl.DataFrame({"time": pl.datetime_range(table["time"][0], table["time"][-1], step, eager=True)})
    grid = grid.with_columns(pl.col("time").cast(pl.Datetime("us")))
    out = grid.join(table, on="time", how="full", coalesce=True).sort("time")
    out = out.with_columns(pl.lit(site).alias("site"), pl.col("missing").fill_null(True))
    return out.with_columns(
        pl.when(pl.col("missing")).then(None).otherwise(pl.col("cloud_detected")).alias("cloud_detected")
    ).select(list(CEILOMETER_SCHEMA))


def write_pangaea_tab(table: pl.DataFrame, path: Path, title: str = "Ceilometer cloud base height") -> Path:
    """Write rows (time, cbh_m, missing) as a PANGAEA ``.tab`` file; missing rows are omitted."""
    lines = [
        "/* DATA DESCRIPTION:",
        f"Citation:\t{title} (synthetic sample in PANGAEA format, tame_assets)",
        "Parameter(s):\tDATE/TIME (Date/Time) * GEOCODE\n\tCloud base height (CBH) [m]",
        "License:\tCC-BY-4.0",
        "*/",
        "Date/Time\tCBH [m]",
    ]
    rows = table.filter(~pl.col("missing")) if "missing" in table.columns else table
    for t, h in zip(rows["time"].to_list(), rows["cbh_m"].to_list()):
        lines.append(f"{t:%Y-%m-%dT%H:%M}\t{'' if h is None else f'{h:.0f}'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def fetch_month(client: HttpClient, url_template: str, site: str, month: str, dest_root: Path) -> pl.DataFrame:
    """Download the ``.tab`` for ``month`` (``url_template`` may contain ``{site}`` and ``{month}``)
    and return its rows inside the month."""
    url = url_template.format(site=site, month=month)
    dest = Path(dest_root) / site / f"{site}_{month}.tab"
    try:
        client.download(url, dest)
    except DownloadError as exc:
        if exc.status == 404:
            return pl.DataFrame(schema=CEILOMETER_SCHEMA)
        raise
    start = dt.datetime.strptime(month, "%Y-%m")
    end = (start + dt.timedelta(days=32)).replace(day=1)
    table = parse_pangaea_tab(dest, site)
    return table.filter((pl.col("time") >= start) & (pl.col("time") < end))
