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
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from tame_assets.files import write_text_atomic
from tame_assets.months import month_bounds
from tame_assets.sources.errors import PangaeaFormatError
from tame_assets.sources.http import HttpClient, RefreshPolicy, sweep_stale_partials

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


def parse_pangaea_tab(
    path_or_text: str | Path,
    site: str,
    source_name: str | None = None,
    fill_missing: bool = True,
    grid: tuple[dt.datetime, dt.datetime] | None = None,
    rejected: Counter | None = None,
) -> pl.DataFrame:
    """Parse a PANGAEA ``.tab`` file (path or text) into the ``ceilometer`` table (module docstring).

    ``grid`` = [start, end) extends the missing-row filling to that whole period (e.g. the month a
    monthly file covers), so an outage at the start or end of the file is reported too.
    ``rejected`` (optional) counts the impossible CBH values turned NULL, by reason.
    """
    text, source = _read(path_or_text, source_name)
    lines = text.splitlines()
    start = _after_metaheader(lines, source)
    header = [h.strip() for h in lines[start].split("\t")]
    if TIME_COLUMN not in header or not any(h.startswith(CBH_PREFIX) for h in header):
        raise PangaeaFormatError(source, start + 1, f"expected '{TIME_COLUMN}' and 'CBH [m]' columns, got {header}")
    t_col, h_col = header.index(TIME_COLUMN), next(i for i, h in enumerate(header) if h.startswith(CBH_PREFIX))
    body = pl.DataFrame({"line": pl.Series(lines[start + 1 :], dtype=pl.Utf8)}).with_row_index(
        "number", offset=start + 2
    )
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
    reason = (
        pl.when(h.is_nan())
        .then(pl.lit("CBH NaN"))
        .when(h.is_infinite())
        .then(pl.lit("CBH infinite"))
        .when(h < 0)
        .then(pl.lit("CBH negative"))
        .when(h > CBH_MAX_M)
        .then(pl.lit(f"CBH above {CBH_MAX_M:.0f} m"))
    )
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


def fill_missing_records(
    table: pl.DataFrame, site: str, grid: tuple[dt.datetime, dt.datetime] | None = None
) -> pl.DataFrame:
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


def write_pangaea_tab(
    table: pl.DataFrame,
    path: Path,
    title: str = "Ceilometer cloud base height",
    citation: str = "tame_assets sample archive (synthetic data in PANGAEA format)",
) -> Path:
    """Write rows (time, cbh_m[, missing]) as a PANGAEA ``.tab`` file, atomically: missing rows are
    omitted (absent records), NULL CBH is an empty cell (no cloud), CBH rounded to whole metres."""
    head = "\n".join(
        [
            "/* DATA DESCRIPTION:",
            f"Citation:\t{citation}: {title}",
            "Parameter(s):\tDATE/TIME (Date/Time) * GEOCODE",
            "\tCloud base height (CBH) [m] * METHOD/DEVICE: Ceilometer",
            "License:\tCreative Commons Attribution 4.0 International (CC-BY-4.0)",
            "*/",
            f"{TIME_COLUMN}\tCBH [m]",
        ]
    )
    rows = table.filter(~pl.col("missing")) if "missing" in table.columns else table
    body = (
        rows.select(
            pl.concat_str(
                pl.col("time").dt.strftime("%Y-%m-%dT%H:%M"),
                pl.col("cbh_m").round(0).cast(pl.Int64).cast(pl.Utf8).fill_null(""),
                separator="\t",
            )
        )
        .to_series()
        .to_list()
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, head + "\n" + "".join(line + "\n" for line in body))


# ----------------------------------------------------------------------------------- collection → child
#: A PANGAEA DOI inside a cell (bare ``10.1594/PANGAEA.n``, ``doi:…`` or a doi.org / doi.pangaea.de URL).
PANGAEA_DOI_RE = re.compile(r"10\.1594/PANGAEA\.(\d+)")
MONTH_IN_TEXT_RE = re.compile(r"\((\d{4})-(\d{2})\)")


@dataclass(frozen=True)
class PangaeaChild:
    """One child dataset of a PANGAEA collection: its dataset number and the period [start, end] (UTC)
    its records cover; ``line`` is its row in the collection export."""

    dataset_id: int
    start: dt.datetime
    end: dt.datetime
    line: int

    @property
    def doi(self) -> str:
        return f"10.1594/PANGAEA.{self.dataset_id}"


@dataclass(frozen=True)
class CeilometerMonth:
    """A month of the ``ceilometer`` table, the child dataset it came from (None: the collection has
    no child for the month) and a one-line note on where the rows came from."""

    table: pl.DataFrame
    child: PangaeaChild | None
    note: str


def _iso(text: str) -> dt.datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return None


def parse_collection_index(path_or_text: str | Path, source_name: str | None = None) -> list[PangaeaChild]:
    """The children listed by a PANGAEA collection's text export (``?format=textfile``).

    Layout read: the ``/* DATA DESCRIPTION: … */`` metaheader, then a tab-separated table with a
    header row and one row per child dataset. A row's child is the PANGAEA DOI (``10.1594/PANGAEA.n``,
    bare or as a URL) in the column headed ``DOI``/``URL``, else in the first cell holding one; its period
    comes from columns whose header contains
    ``start`` and ``end`` (ISO 8601 date or date-time), else from a ``(YYYY-MM)`` month in any cell
    (PANGAEA titles of monthly children). A row without either is an error naming its line.
    """
    text, source = _read(path_or_text, source_name)
    lines = text.splitlines()
    start = _after_metaheader(lines, source)
    header = [h.strip().lower() for h in lines[start].split("\t")]
    start_col = next((i for i, h in enumerate(header) if "start" in h), None)
    end_col = next((i for i, h in enumerate(header) if "end" in h), None)
    doi_col = next((i for i, h in enumerate(header) if h in ("doi", "url") or "doi" in h), None)
    children = []
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        doi = PANGAEA_DOI_RE.search(cells[doi_col]) if doi_col is not None and doi_col < len(cells) else None
        doi = doi or next((m for m in map(PANGAEA_DOI_RE.search, cells) if m), None)
        if doi is None:
            raise PangaeaFormatError(source, number, "no child dataset DOI (10.1594/PANGAEA.n) in the row")
        period = None
        if start_col is not None and end_col is not None and max(start_col, end_col) < len(cells):
            first, last = _iso(cells[start_col]), _iso(cells[end_col])
            if first and last:
                period = (
                    first,
                    last if len(cells[end_col].strip()) > 10 else last + dt.timedelta(days=1, microseconds=-1),
                )
        if period is None:
            month = next((m for m in map(MONTH_IN_TEXT_RE.search, cells) if m), None)
            if month is None:
                raise PangaeaFormatError(source, number, "no period: neither start/end columns nor a (YYYY-MM) month")
            first, end = month_bounds(f"{month[1]}-{month[2]}")
            period = (first, end - dt.timedelta(microseconds=1))
        children.append(PangaeaChild(int(doi[1]), period[0], period[1], number))
    return children


def _after_metaheader(lines: list[str], source: str) -> int:
    """Index of the table's header row: the first non-blank line after an optional ``/* … */`` block."""
    start = 0
    if lines and lines[0].lstrip().startswith("/*"):
        end = next((i for i, ln in enumerate(lines) if ln.rstrip().endswith("*/")), None)
        if end is None:
            raise PangaeaFormatError(source, 1, "metadata header '/*' is never closed by '*/'")
        start = end + 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines):
        raise PangaeaFormatError(source, None, "no column header after the metadata block")
    return start


def resolve_child(children: list[PangaeaChild], month: str) -> PangaeaChild | None:
    """The child whose period overlaps ``month`` (``YYYY-MM``) the most; None when none does."""
    first, end = month_bounds(month)
    overlap = {c: min(c.end, end) - max(c.start, first) for c in children}
    best = max((c for c in children if overlap[c] >= dt.timedelta(0)), key=lambda c: overlap[c], default=None)
    return best


def child_url(collection_url: str, child: PangaeaChild) -> str:
    """The child's text export on the collection's server: ``…/10.1594/PANGAEA.<n>?format=textfile``."""
    parts = urlsplit(collection_url)
    match = PANGAEA_DOI_RE.search(parts.path)
    if match is None:
        raise ValueError(f"{collection_url}: not a PANGAEA dataset URL (expected .../10.1594/PANGAEA.<number>)")
    path = parts.path[: match.start()] + child.doi
    return urlunsplit((parts.scheme, parts.netloc, path, "format=textfile", ""))


def fetch_month(
    client: HttpClient,
    collection_url: str,
    site: str,
    month: str,
    dest_root: Path,
    refresh: RefreshPolicy | None = None,
    rejected: Counter | None = None,
) -> CeilometerMonth:
    """The ``month`` (``YYYY-MM``) of ``site`` from a PANGAEA collection: its text export (saved as
    ``dest_root/<site>/collection_<n>.tab``) lists the children; the child covering the month is
    downloaded (``dest_root/<site>/PANGAEA.<n>.tab``) and its rows in the month returned, gaps
    filled over the whole month. No child for the month → an empty table and a note saying so.

    A child already on disk is re-validated with the server when ``refresh`` (default:
    :class:`RefreshPolicy`, the current and previous month) applies to the month's last day.
    ``rejected`` counts the impossible CBH values turned NULL, by reason."""
    refresh = refresh or RefreshPolicy()
    site_dir = Path(dest_root) / site
    sweep_stale_partials(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    index_text = client.get_text(collection_url)
    own = PANGAEA_DOI_RE.search(urlsplit(collection_url).path)
    index_path = write_text_atomic(site_dir / f"collection_{own[1] if own else 'index'}.tab", index_text)
    child = resolve_child(parse_collection_index(index_path), month)
    if child is None:
        return CeilometerMonth(
            pl.DataFrame(schema=CEILOMETER_SCHEMA),
            None,
            f"no ceilometer data for {month} (no child of {collection_url} covers it)",
        )
    url = child_url(collection_url, child)
    dest = site_dir / f"PANGAEA.{child.dataset_id}.tab"
    start, end = month_bounds(month)
    client.download(url, dest, revalidate=refresh.applies((end - dt.timedelta(days=1)).date()))
    table = parse_pangaea_tab(dest, site, grid=(start, end), rejected=rejected)
    table = table.filter((pl.col("time") >= start) & (pl.col("time") < end))
    return CeilometerMonth(table, child, f"{table.height} rows for {month} from doi:{child.doi}")
