"""AWI ceilometer cloud-base height at Ny-Ålesund, PANGAEA tab-delimited text (``.tab``).

Source: Maturilli & Ebell (2018), "Twenty-five years of cloud base height measurements by
ceilometer in Ny-Ålesund, Svalbard", ESSD 10, 1451, data collection PANGAEA.880300 (one dataset
per month, 5-min resolution before July 1998, 1-min after). PANGAEA's text export is:

- a metadata block from ``/* DATA DESCRIPTION:`` to ``*/`` (citation, parameters, licence ...);
- one tab-separated header row with ``Date/Time`` (ISO 8601 UTC, ``2010-12-01T00:05`` — seconds
  optional) and ``CBH [m]`` (lowest cloud base height above ground); other columns are ignored;
- one row per record, the same number of tab-separated cells as the header.

Conventions implemented (explicit, not magic numbers):

- a numeric CBH → a cloud base at that height (m): ``cloud_detected = true``;
- a CBH of ``NaN``, ``inf``, a negative height or one above :data:`CBH_MAX_M` (20 km, beyond any
  ceilometer's range) is physically impossible: ``cbh_m`` and ``cloud_detected`` NULL (unknown,
  never a detection), ``missing = false``, counted by reason in the optional ``rejected`` counter
  (the raw asset reports it as metadata);
- an **empty** CBH cell → the ceilometer ran and saw **no cloud** (``cloud_detected = false``,
  ``cbh_m`` NULL) — the convention of the AWI files, where no-cloud records carry no value;
- a timestamp absent from the regular record cadence → **missing** (instrument not recording):
  an explicit row with ``missing = true``, ``cloud_detected`` and ``cbh_m`` NULL. The cadence is
  the file's median spacing, and gaps are only filled when the records are regular (≥ 90 % of the
  spacings are whole multiples of it), so irregular files are never padded with invented rows.

Table ``ceilometer``: time (UTC), site, cbh_m, cloud_detected, missing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import polars as pl

from tame_assets.months import month_bounds
from tame_assets.sources.errors import PangaeaFormatError
from tame_assets.sources.http import DownloadError, HttpClient, RefreshPolicy, sweep_stale_partials

CEILOMETER_SCHEMA = {
    "time": pl.Datetime("us"),
    "site": pl.Utf8,
    "cbh_m": pl.Float64,
    "cloud_detected": pl.Boolean,
    "missing": pl.Boolean,
}
TIME_COLUMN, CBH_PREFIX = "Date/Time", "CBH"
#: Fraction of record spacings that must be multiples of the median for gaps to count as "missing".
REGULAR_FRACTION = 0.9
#: Highest cloud base (m above ground) accepted; higher values are outside any ceilometer's range.
CBH_MAX_M = 20_000.0
#: Version of the parser's output rules (bump when the same file would give other rows); part of the
#: ``ceilometer`` asset's code_version.
PARSER_VERSION = "2"


def _read(path_or_text: str | Path, source_name: str | None) -> tuple[str, str]:
    if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
        path = Path(path_or_text)
        return path.read_text(encoding="utf-8", errors="replace"), source_name or str(path)
    return str(path_or_text), source_name or "<text>"


def parse_pangaea_tab(path_or_text: str | Path, site: str, source_name: str | None = None,
                      fill_missing: bool = True, grid: tuple[dt.datetime, dt.datetime] | None = None,
                      rejected: Counter | None = None) -> pl.DataFrame:
    """Parse a PANGAEA ``.tab`` file (path or text) into the ``ceilometer`` table (module docstring).

    ``grid`` = [start, end) extends the missing-row filling to that whole period (e.g. the month a
    monthly file covers), so an outage at the start or end of the file is reported too.
    ``rejected`` (optional) counts the impossible CBH values turned NULL, by reason.
    """
    text, source = _read(path_or_text, source_name)
    lines = text.splitlines()
    start = 0
    if lines and lines[0].lstrip().startswith("/*"):
        end = next((i for i, l in enumerate(lines) if l.rstrip().endswith("*/")), None)
        if end is None:
            raise PangaeaFormatError(source, 1, "metadata header '/*' is never closed by '*/'")
        start = end + 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines):
        raise PangaeaFormatError(source, None, "no column header after the metadata block")
    header = [h.strip() for h in lines[start].split("\t")]
    if TIME_COLUMN not in header or not any(h.startswith(CBH_PREFIX) for h in header):
        raise PangaeaFormatError(source, start + 1, f"expected '{TIME_COLUMN}' and 'CBH [m]' columns, got {header}")
    t_col, h_col = header.index(TIME_COLUMN), next(i for i, h in enumerate(header) if h.startswith(CBH_PREFIX))
    body = pl.DataFrame({"line": pl.Series(lines[start + 1:], dtype=pl.Utf8)}).with_row_index("number", offset=start + 2)
    body = body.filter(pl.col("line").str.strip_chars() != "")
    cells = body.select("number", pl.col("line").str.strip_chars_end("\r").str.split("\t").alias("cells"))
    counts = cells["cells"].list.len()
    if (counts != len(header)).any():
        row = cells.filter(counts != len(header)).row(0)
        raise PangaeaFormatError(source, row[0], f"expected {len(header)} tab-separated columns, found {len(row[1])}")
    values = cells.select(
        "number",
        pl.col("cells").list.get(t_col).str.strip_chars().alias("t"),
        pl.col("cells").list.get(h_col).str.strip_chars().alias("h"),
    ).with_columns(
        pl.coalesce(
            pl.col("t").str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False),
            pl.col("t").str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M", strict=False),
        ).alias("time"),
        pl.col("h").cast(pl.Float64, strict=False).alias("cbh_m"),
    )
    bad_time = values.filter(pl.col("time").is_null())
    if bad_time.height:
        raise PangaeaFormatError(source, bad_time["number"][0], f"invalid Date/Time {bad_time['t'][0]!r}")
    bad_cbh = values.filter(pl.col("cbh_m").is_null() & (pl.col("h") != ""))
    if bad_cbh.height:
        raise PangaeaFormatError(source, bad_cbh["number"][0], f"invalid CBH {bad_cbh['h'][0]!r}")
    duplicated = values.filter(pl.col("time").is_duplicated())
    if duplicated.height:
        raise PangaeaFormatError(source, duplicated["number"][1], f"duplicate Date/Time {duplicated['t'][1]!r}")
    h = pl.col("cbh_m")
    reason = (pl.when(h.is_nan()).then(pl.lit("CBH NaN"))
              .when(h.is_infinite()).then(pl.lit("CBH infinite"))
              .when(h < 0).then(pl.lit("CBH negative"))
              .when(h > CBH_MAX_M).then(pl.lit(f"CBH above {CBH_MAX_M:.0f} m")))
    values = values.with_columns(reason.alias("rejected"))
    if rejected is not None:
        rejected.update(dict(values["rejected"].drop_nulls().value_counts().iter_rows()))
    valid = pl.col("rejected").is_null()
    table = values.select(
        "time",
        pl.lit(site, dtype=pl.Utf8).alias("site"),
        pl.when(valid).then(h).alias("cbh_m"),
        pl.when(valid).then(h.is_not_null()).alias("cloud_detected"),
        pl.lit(False).alias("missing"),
    ).sort("time")
    return fill_missing_records(table, site, grid) if fill_missing else table


def regular_step(times: pl.Series) -> dt.timedelta | None:
    """The record cadence (median spacing) when ≥ REGULAR_FRACTION of the spacings are whole
    multiples of it (regular records with gaps), else None."""
    diffs = times.sort().diff().drop_nulls()
    if diffs.len() < 2:
        return None
    step = diffs.median()
    if not step or step <= dt.timedelta(0):
        return None
    step_us = int(step / dt.timedelta(microseconds=1))
    if ((diffs.dt.total_microseconds() % step_us) == 0).mean() < REGULAR_FRACTION:
        return None
    return step


def fill_missing_records(table: pl.DataFrame, site: str, grid: tuple[dt.datetime, dt.datetime] | None = None) -> pl.DataFrame:
    """Add explicit ``missing`` rows where records are absent from the regular cadence."""
    step = regular_step(table["time"])
    if step is None:
        return table
    first, last = table["time"].min(), table["time"].max()
    if grid is not None:  # extend to [start, end) in whole steps, keeping the file's phase
        n_before = (first - grid[0]) // step
        n_after = (grid[1] - dt.timedelta(microseconds=1) - last) // step
        first, last = first - n_before * step, last + max(n_after, 0) * step
    full = pl.DataFrame({"time": pl.datetime_range(first, last, step, eager=True, time_unit="us")})
    out = full.join(table, on="time", how="full", coalesce=True).sort("time")
    return out.with_columns(pl.lit(site, dtype=pl.Utf8).alias("site"), pl.col("missing").fill_null(True)).select(
        list(CEILOMETER_SCHEMA)
    )


def write_pangaea_tab(table: pl.DataFrame, path: Path, title: str = "Ceilometer cloud base height",
                      citation: str = "tame_assets sample archive (synthetic data in PANGAEA format)") -> Path:
    """Write rows (time, cbh_m[, missing]) as a PANGAEA ``.tab`` file, atomically: missing rows are
    omitted (absent records), NULL CBH is an empty cell (no cloud), CBH rounded to whole metres."""
    head = "\n".join([
        "/* DATA DESCRIPTION:",
        f"Citation:\t{citation}: {title}",
        "Parameter(s):\tDATE/TIME (Date/Time) * GEOCODE",
        "\tCloud base height (CBH) [m] * METHOD/DEVICE: Ceilometer",
        "License:\tCreative Commons Attribution 4.0 International (CC-BY-4.0)",
        "*/",
        f"{TIME_COLUMN}\tCBH [m]",
    ])
    rows = table.filter(~pl.col("missing")) if "missing" in table.columns else table
    body = rows.select(
        pl.concat_str(
            pl.col("time").dt.strftime("%Y-%m-%dT%H:%M"),
            pl.col("cbh_m").round(0).cast(pl.Int64).cast(pl.Utf8).fill_null(""),
            separator="\t",
        )
    ).to_series().to_list()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(head + "\n" + "".join(line + "\n" for line in body), encoding="utf-8")
    tmp.replace(path)
    return path


def fetch_month(client: HttpClient, url_template: str, site: str, month: str, dest_root: Path,
                refresh: RefreshPolicy | None = None, rejected: Counter | None = None) -> pl.DataFrame:
    """Download the ``.tab`` for ``month`` (``url_template`` may contain ``{site}`` and ``{month}``)
    to ``dest_root/<site>/`` and return the month's rows, gaps filled over the whole month.
    A 404 means no data for the month (empty table).

    A file already on disk is re-validated with the server when ``refresh`` (default:
    :class:`RefreshPolicy`, the current and previous month) applies to the month's last day.
    ``rejected`` counts the impossible CBH values turned NULL, by reason."""
    refresh = refresh or RefreshPolicy()
    sweep_stale_partials(Path(dest_root) / site)
    url = url_template.format(site=site, month=month)
    dest = Path(dest_root) / site / f"{site}_{month}.tab"
    start, end = month_bounds(month)
    try:
        client.download(url, dest, revalidate=refresh.applies((end - dt.timedelta(days=1)).date()))
    except DownloadError as exc:
        if exc.status == 404:
            return pl.DataFrame(schema=CEILOMETER_SCHEMA)
        raise
    table = parse_pangaea_tab(dest, site, grid=(start, end), rejected=rejected)
    return table.filter((pl.col("time") >= start) & (pl.col("time") < end))
