"""Ground magnetometer data: IAGA-2002 files and the IMAGE network's "column" ASCII format.

Table ``magnetometer``: time (naive UTC), station, x_nt, y_nt, z_nt, f_nt, h_nt — X geographic
north, Y east, Z down, F total field (nT) and h_nt = √(x² + y²).

IAGA-2002 component conversions, from the column names (or the ``Reported`` header):

- ``XYZF``/``XYZG``/``XYZS``: X, Y, Z as given.
- ``HDZF``: H in nT and D (declination) in **minutes of arc** → X = H·cos D, Y = H·sin D.
- ``EHZF``: E (east component, nT) and H (horizontal intensity, nT) → Y = E, X = √(H² − E²)
  (X ≥ 0 assumed; NULL where H < |E|).
- ``DHZF``/``HEZF``: the same with the other column order.

Missing values: IAGA-2002 uses 99999.00 (missing) and 88888.00 (element not recorded); any value
with magnitude ≥ 88888 (which covers the other 9-filled forms such as 99999.9 or 999999) becomes
NULL. The IMAGE column format uses 99999.9.

Rejected values (IAGA-2002): a literal ``NaN`` and physically impossible values — a component with
magnitude above :data:`EARTH_FIELD_MAX_NT` (70,000 nT; the geomagnetic field nowhere exceeds
~67,000 nT) or a negative total field F — become NULL and are counted by reason in the optional
``rejected`` counter (the raw asset reports it as metadata). A file with a column header and no
data rows, or a data line whose length differs from the file's other data lines (a value cut short
by a digit, a misaligned fixed-width column), is an error naming the file and line.

IMAGE "column" format (the service's ``column``/``column_old`` option): a header
``YYYY MM DD HH MM SS  NAL X  NAL Y  NAL Z ...``, a dashed line, then one row per sample with the
values in nT; missing = 99999.9.

Download: the IMAGE service has no static file tree; :func:`fetch_month` posts its request form
(``{base}/cgi-bin/imagecgi/image-data.cgi``) once per UT day and downloads the ``…col2[.gz]`` column
file the answer page links (see :func:`image_form_fields`). IAGA-2002 files are read from local folders.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urljoin, urlsplit

import numpy as np
import pandas as pd
import polars as pl
import requests

from tame_assets.files import write_text_atomic
from tame_assets.months import month_days
from tame_assets.sources.errors import MagnetometerFormatError
from tame_assets.sources.http import RETRY_STATUS, DownloadError, HttpClient, RefreshPolicy, sweep_stale_partials

#: Version of the parsers' output rules (bump when the same file would give other rows); part of the
#: ``magnetometer`` asset's code_version.
PARSER_VERSION = "2"
MISSING_THRESHOLD = 88888.0
#: Largest magnitude (nT) accepted for X, Y, Z, H or F; larger values are physically impossible.
EARTH_FIELD_MAX_NT = 70_000.0

MAGNETOMETER_SCHEMA = {
    "time": pl.Datetime("us"),
    "station": pl.Utf8,
    "x_nt": pl.Float64,
    "y_nt": pl.Float64,
    "z_nt": pl.Float64,
    "f_nt": pl.Float64,
    "h_nt": pl.Float64,
}


def _read_source(path_or_text: str | Path, source_name: str | None) -> tuple[str, str]:
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text):
        path = Path(path_or_text)
        return path.read_text(encoding="latin-1"), source_name or str(path)
    return str(path_or_text), source_name or "<text>"


def _header_value(lines: list[str], key: str) -> str | None:
    for line in lines:
        if line[:24].strip().upper() == key.upper():
            return line[24:].rstrip(" |\n").strip()
    return None


def _masked(values: np.ndarray) -> np.ndarray:
    out = values.astype(float)
    out[np.abs(out) >= MISSING_THRESHOLD] = np.nan
    return out


def _frame(times: np.ndarray, station: str, x, y, z, f) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "time": pl.Series(times).cast(pl.Datetime("us")),
            "station": station,
            "x_nt": x,
            "y_nt": y,
            "z_nt": z,
            "f_nt": f,
        },
        nan_to_null=True,
    )
    df = df.with_columns(
        pl.col(c).cast(pl.Float64).fill_nan(None) for c in ("x_nt", "y_nt", "z_nt", "f_nt")
    ).with_columns(((pl.col("x_nt") ** 2 + pl.col("y_nt") ** 2).sqrt()).alias("h_nt"))
    return df.select(list(MAGNETOMETER_SCHEMA)).sort("time")


def _parse_columns(data: str, n_cols: int, source: str, first_line: int) -> pd.DataFrame:
    """Whitespace-separated table as strings, fast (pandas C parser); on failure locate the line."""
    df = None
    if data.strip():
        try:
            df = pd.read_csv(io.StringIO(data), sep=r"\s+", header=None, dtype=str, engine="c", na_filter=False)
        except pd.errors.ParserError:
            df = None
    else:
        return pd.DataFrame(columns=range(n_cols), dtype=str)
    if df is None or df.shape[1] != n_cols or df.isna().any().any() or (df == "").any().any():
        for i, line in enumerate(data.splitlines()):
            if line.strip() and len(line.split()) != n_cols:
                raise MagnetometerFormatError(
                    source, first_line + i, f"expected {n_cols} columns, found {len(line.split())}: {line.strip()!r}"
                )
        raise MagnetometerFormatError(source, None, "unparsable data block")
    return df


def _data_line_numbers(data: str, first_line: int) -> np.ndarray:
    """1-based file line numbers of the non-blank lines of ``data`` (pandas skips blank lines)."""
    return np.asarray([first_line + i for i, line in enumerate(data.splitlines()) if line.strip()])


def _to_float(df: pd.DataFrame, columns: Iterable[int], source: str, lines: np.ndarray) -> list[np.ndarray]:
    out = []
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            row = int(bad[0])
            raise MagnetometerFormatError(source, int(lines[row]), f"not a number: {df.iloc[row, col]!r}")
        out.append(values.to_numpy(dtype=float))
    return out


def _to_times(text: pd.Series, fmt: str, source: str, lines: np.ndarray) -> np.ndarray:
    times = pd.to_datetime(text, format=fmt, errors="coerce")
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise MagnetometerFormatError(source, int(lines[row]), f"invalid timestamp {text.iloc[row]!r}")
    return times.to_numpy()


# ----------------------------------------------------------------------------------- IAGA-2002
def _check_line_lengths(data_lines: list[str], numbers: np.ndarray, source: str) -> None:
    """IAGA-2002 data lines are fixed width: one whose length differs from the file's usual length
    has a value cut short (or padded) — an error naming the line."""
    lengths = np.fromiter((len(ln.rstrip(" |\r")) for ln in data_lines), dtype=np.int64, count=len(data_lines))
    usual = np.bincount(lengths).argmax()
    odd = np.flatnonzero(lengths != usual)
    if odd.size:
        row = int(odd[0])
        raise MagnetometerFormatError(
            source,
            int(numbers[row]),
            f"data line has {lengths[row]} characters where the file's data lines have "
            f"{usual} (a value cut short or a misaligned column): {data_lines[row].strip()!r}",
        )


def _reject(values: np.ndarray, bad: np.ndarray, reason: str, rejected: Counter | None) -> np.ndarray:
    if bad.any():
        values = values.copy()
        values[bad] = np.nan
        if rejected is not None:
            rejected[reason] += int(bad.sum())
    return values


def parse_iaga2002(
    path_or_text: str | Path, source_name: str | None = None, rejected: Counter | None = None
) -> pl.DataFrame:
    """Parse an IAGA-2002 file (a path, or the file's text) into the ``magnetometer`` table.

    ``rejected`` (optional) counts the values turned NULL, by reason (module docstring)."""
    text, source = _read_source(path_or_text, source_name)
    lines = text.splitlines()
    header_idx = next((i for i, ln in enumerate(lines) if ln.startswith("DATE")), None)
    if header_idx is None:
        raise MagnetometerFormatError(source, None, "no 'DATE TIME DOY ...' column header: not IAGA-2002")
    station = (_header_value(lines[:header_idx], "IAGA CODE") or "").upper()
    columns = lines[header_idx].rstrip(" |").split()
    if len(columns) != 7 or columns[:3] != ["DATE", "TIME", "DOY"]:
        raise MagnetometerFormatError(source, header_idx + 1, f"unexpected column header {columns}")
    station = station or columns[3][:3].upper()
    elements = "".join(c[len(station) :] if c.upper().startswith(station) else c[-1] for c in columns[3:]).upper()
    reported = (_header_value(lines[:header_idx], "Reported") or elements).upper()
    data = "\n".join(lines[header_idx + 1 :])
    first_line = header_idx + 2
    if not data.strip():
        raise MagnetometerFormatError(source, header_idx + 1, "column header but no data rows")
    df = _parse_columns(data, 7, source, first_line)
    numbers = _data_line_numbers(data, first_line)
    times = _to_times(df[0] + " " + df[1], "%Y-%m-%d %H:%M:%S.%f", source, numbers)
    if "nan" in data.lower():  # rare: only then look for NaN cells
        nan_cells = df[[3, 4, 5, 6]].apply(lambda col: col.str.lower() == "nan")
        if rejected is not None:
            rejected["NaN value"] += int(nan_cells.to_numpy().sum())
        df[[3, 4, 5, 6]] = df[[3, 4, 5, 6]].mask(nan_cells, "99999.00")
    a, b, c, d = (_masked(v) for v in _to_float(df, (3, 4, 5, 6), source, numbers))
    _check_line_lengths([ln for ln in lines[header_idx + 1 :] if ln.strip()], numbers, source)
    x, y, z = _components(elements if len(elements) == 4 else reported, a, b, c, source)
    with np.errstate(invalid="ignore"):
        impossible = f"impossible value (|B| > {EARTH_FIELD_MAX_NT:.0f} nT or F < 0)"
        x, y, z = (_reject(v, np.abs(v) > EARTH_FIELD_MAX_NT, impossible, rejected) for v in (x, y, z))
        d = _reject(d, (np.abs(d) > EARTH_FIELD_MAX_NT) | (d < 0), impossible, rejected)
    return _frame(times, station, x, y, z, d)


def _components(elements: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, source: str):
    """(X, Y, Z) in nT from three columns in the order ``elements`` (see the module docstring)."""
    kind = elements[:3].upper()
    if kind == "XYZ":
        return a, b, c
    if kind in ("HDZ", "DHZ"):
        h, d = (a, b) if kind == "HDZ" else (b, a)
        d_rad = np.deg2rad(d / 60.0)  # D in minutes of arc
        return h * np.cos(d_rad), h * np.sin(d_rad), c
    if kind in ("EHZ", "HEZ"):
        e, h = (a, b) if kind == "EHZ" else (b, a)
        with np.errstate(invalid="ignore"):
            return np.sqrt(h**2 - e**2), e, c
    raise MagnetometerFormatError(source, None, f"unsupported component orientation {elements!r}")


def write_iaga2002(
    df: pl.DataFrame,
    path: Path,
    station: str,
    station_name: str = "",
    latitude: float = 0.0,
    longitude: float = 0.0,
    interval: str = "1-minute",
    source_of_data: str = "tame_assets",
) -> Path:
    """Write rows (time, x_nt, y_nt, z_nt[, f_nt]) as an XYZF IAGA-2002 file, atomically.

    NULL/NaN X, Y, Z → 99999.00 (missing); F NULL or absent → 88888.00 (not recorded). Header
    records are 70 characters: label in columns 2–24, value from column 25, ``|`` in column 70.
    """

    def head(key: str, value: str) -> str:
        return f" {key:<23}{value:<45}|"

    code = station.upper()
    lines = [
        head("Format", "IAGA-2002"),
        head("Source of Data", source_of_data),
        head("Station Name", station_name or code),
        head("IAGA CODE", code),
        head("Geodetic Latitude", f"{latitude:.3f}"),
        head("Geodetic Longitude", f"{longitude:.3f}"),
        head("Elevation", "0"),
        head("Reported", "XYZF"),
        head("Sensor Orientation", "XYZ"),
        head("Digital Sampling", "1 second"),
        head("Data Interval Type", interval),
        head("Data Type", "variation"),
        f"DATE       TIME         DOY     {code}X      {code}Y      {code}Z      {code}F   |",
    ]

    def val(column: str, fill: float) -> np.ndarray:
        if column not in df.columns:
            return np.full(df.height, fill)
        return df[column].cast(pl.Float64).fill_nan(None).fill_null(fill).to_numpy()

    x, y, z, f = val("x_nt", 99999.0), val("y_nt", 99999.0), val("z_nt", 99999.0), val("f_nt", 88888.0)
    stamps = df.select(
        pl.col("time").dt.strftime("%Y-%m-%d %H:%M:%S.000").alias("t"),
        pl.col("time").dt.ordinal_day().alias("doy"),
    )
    for t, doy, xi, yi, zi, fi in zip(stamps["t"].to_list(), stamps["doy"].to_list(), x, y, z, f):
        lines.append(f"{t} {doy:03d}   {xi:10.2f}{yi:10.2f}{zi:10.2f}{fi:10.2f}")
    return _write_atomic(Path(path), "\n".join(lines) + "\n")


def _write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text, encoding="ascii")


# ----------------------------------------------------------------------------------- IMAGE column
IMAGE_HEADER_RE = re.compile(r"^YYYY MM DD HH MM SS(?P<cols>.*)$")


def parse_image_column(
    path_or_text: str | Path, source_name: str | None = None, station: str | None = None
) -> pl.DataFrame:
    """Parse the IMAGE network's "column" ASCII format (module docstring).

    Old style: a verbal header ``YYYY MM DD HH MM SS     HAN X   HAN Y   HAN Z   NUR X ...``, a dashed
    line, then rows ``1999 02 03 04 00 00    13759.4  1715.1 49852.7 ...``. New style: a numeric first
    row of zeros then station latitudes/longitudes (stations must then be given in order via
    ``station``, comma-separated). Unit nT; missing = 99999.9.
    """
    text, source = _read_source(path_or_text, source_name)
    lines = text.splitlines()
    match = IMAGE_HEADER_RE.match(lines[0].strip()) if lines else None
    if match:
        names = match["cols"].split()
        if len(names) % 6 or not names:
            raise MagnetometerFormatError(source, 1, "header must list 'STA X STA Y STA Z' triples")
        stations = [names[i].upper() for i in range(0, len(names), 6)]
        start = 2 if len(lines) > 1 and set(lines[1].strip()) <= {"-"} else 1
    elif lines and lines[0].split()[:6] == ["0"] * 6:
        if not station:
            raise MagnetometerFormatError(source, 1, "new-style IMAGE column file: pass station=<code>[,<code>...]")
        stations = [s.strip().upper() for s in station.split(",")]
        start = 1 + sum(1 for ln in lines[1:3] if ln.split()[:6] == ["0"] * 6)
    else:
        raise MagnetometerFormatError(source, 1, "not an IMAGE column file (expected 'YYYY MM DD HH MM SS' header)")
    n_cols = 6 + 3 * len(stations)
    data = "\n".join(lines[start:])
    df = _parse_columns(data, n_cols, source, start + 1)
    numbers = _data_line_numbers(data, start + 1)
    stamp = (
        df[0] + df[1].str.zfill(2) + df[2].str.zfill(2) + df[3].str.zfill(2) + df[4].str.zfill(2) + df[5].str.zfill(2)
    )
    times = _to_times(stamp, "%Y%m%d%H%M%S", source, numbers)
    values = _to_float(df, range(6, n_cols), source, numbers)
    frames = []
    for k, name in enumerate(stations):
        if station and match and name != station.upper():
            continue
        x, y, z = (_masked(v) for v in values[3 * k : 3 * k + 3])
        frames.append(_frame(times, name, x, y, z, np.full(len(x), np.nan)))
    if not frames:
        raise MagnetometerFormatError(source, 1, f"station {station} not in file ({', '.join(stations)})")
    return pl.concat(frames).sort("time", "station")


# ----------------------------------------------------------------------------------- IMAGE column writer
IMAGE_COLUMN_MISSING = 99999.9


def write_image_column(df: pl.DataFrame, station: str) -> str:
    """Rows (time, x_nt, y_nt, z_nt) of one station as IMAGE "column" text (old-style verbal header,
    values in nT with 0.1 nT resolution, NULL → 99999.9) — what :func:`parse_image_column` reads."""
    code = station.upper()
    values = [
        df[c].cast(pl.Float64).fill_nan(None).fill_null(IMAGE_COLUMN_MISSING).to_numpy()
        for c in ("x_nt", "y_nt", "z_nt")
    ]
    header = f"YYYY MM DD HH MM SS   {code} X   {code} Y   {code} Z"
    stamps = df["time"].dt.strftime("%Y %m %d %H %M %S").to_list()
    rows = [f"{t} {x:10.1f}{y:10.1f}{z:10.1f}" for t, x, y, z in zip(stamps, *values)]
    return "\n".join([header, "-" * len(header), *rows]) + "\n"


# ----------------------------------------------------------------------------------- IMAGE request-form client
#: Path of the IMAGE data request CGI below ``image_base_url`` (the form the IMAGE web pages post to).
IMAGE_CGI_PATH = "/cgi-bin/imagecgi/image-data.cgi"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COL2_RE = re.compile(r"col2(\.gz)?$")


@dataclass(frozen=True)
class ImageRequester:
    """Who asks: the IMAGE form's ``yourname``, ``institute`` and ``email`` (the service records them)."""

    name: str
    institute: str
    email: str

    def check(self) -> "ImageRequester":
        """Self, or ValueError naming the settings that are empty or invalid."""
        missing = [
            f"image_requester_{k}"
            for k, v in (("name", self.name), ("institute", self.institute), ("email", self.email))
            if not v.strip()
        ]
        if missing:
            raise ValueError(
                "IMAGE magnetometer data are requested in the requester's name: "
                f"set {', '.join(missing)} in the configuration"
            )
        if not EMAIL_RE.match(self.email.strip()):
            raise ValueError(f"image_requester_email {self.email!r} is not an e-mail address")
        return self


def image_cgi_url(base: str) -> str:
    """``{base}/cgi-bin/imagecgi/image-data.cgi``."""
    return base.rstrip("/") + IMAGE_CGI_PATH


def image_form_fields(station: str, day: dt.date, requester: ImageRequester, compress: bool = True) -> dict[str, str]:
    """The form fields asking for one UT day (00–24 UT) of ``station`` in column format."""
    return {
        "start": f"{day:%Y%m%d}00",
        "eventlength": "24",
        "station": "mylist",
        "mystation": station.upper(),
        "column2": "on",
        "compression": "gz" if compress else "no",
        "yourname": requester.name,
        "institute": requester.institute,
        "email": requester.email,
    }


def _post_form(client: HttpClient, url: str, fields: dict[str, str]) -> str:
    """POST ``fields`` (urlencoded) with the client's timeouts; retries connection errors and HTTP
    429/5xx like :class:`HttpClient`; the answer page as text, or DownloadError naming the URL."""
    last: DownloadError | None = None
    for attempt in range(client.retries + 1):
        try:
            response = client.session.post(url, data=fields, timeout=client.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = DownloadError(url, f"{type(exc).__name__}: {exc}")
        else:
            if response.status_code < 400:
                return response.text
            reason = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason
            last = DownloadError(url, reason or "", response.status_code)
            if response.status_code not in RETRY_STATUS:
                raise last
        if attempt < client.retries:
            time.sleep(client.backoff_s * 2**attempt)
    assert last is not None
    raise last


def image_result_link(page: str, page_url: str) -> str | None:
    """Absolute URL of the generated ``…col2[.gz]`` file linked by an answer page; None when the page
    says there are no data; MagnetometerFormatError for any other page."""
    from tame_assets.sources.uio_asi import parse_listing

    links = [urljoin(page_url, link) for link in parse_listing(page) if _COL2_RE.search(urlsplit(link).path)]
    if links:
        return links[0]
    if "no data" in page.lower():
        return None
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())[:160]
    raise MagnetometerFormatError(page_url, None, f"answer page links no ...col2 file: {text!r}")


def fetch_image_day(
    client: HttpClient,
    base: str,
    station: str,
    day: dt.date,
    requester: ImageRequester,
    dest_dir: Path,
    compress: bool = True,
    refresh: RefreshPolicy | None = None,
) -> Path | None:
    """The column file of one UT ``day`` in ``dest_dir`` (``<station><YYYYMMDD>.col2[.gz]``): posted to
    the IMAGE form, the linked file downloaded. A cached file is reused without a request when it was
    fetched after the day had ended (UTC; its modification time), or when ``refresh`` does not apply
    to the day. None when the service has no data."""
    name = f"{station.lower()}{day:%Y%m%d}.col2" + (".gz" if compress else "")
    dest = Path(dest_dir) / name
    if dest.exists():
        fetched = dt.datetime.fromtimestamp(dest.stat().st_mtime, dt.timezone.utc).date()
        if fetched > day or not (refresh or RefreshPolicy()).applies(day):
            return dest
    url = image_cgi_url(base)
    link = image_result_link(_post_form(client, url, image_form_fields(station, day, requester.check(), compress)), url)
    if link is None:
        return None
    dest.unlink(missing_ok=True)  # an incomplete day fetched earlier
    client.download(link, dest)
    return dest


def read_image_column_file(path: Path, station: str) -> pl.DataFrame:
    """Parse a (possibly gzipped) IMAGE column file of ``station``."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise MagnetometerFormatError(str(path), None, f"not a gzip file ({exc})") from None
    return parse_image_column(raw.decode("latin-1"), source_name=str(path), station=station)


def reject_impossible(table: pl.DataFrame, rejected: Counter | None = None) -> pl.DataFrame:
    """Components whose magnitude exceeds ``EARTH_FIELD_MAX_NT`` (and negative F) → NULL, counted in ``rejected``."""
    out = table
    for column in ("x_nt", "y_nt", "z_nt", "f_nt", "h_nt"):
        if column not in out.columns:
            continue
        bad = (out[column].abs() > EARTH_FIELD_MAX_NT) | ((out[column] < 0) if column == "f_nt" else False)
        bad = bad.fill_null(False)
        if bad.any():
            if rejected is not None:
                rejected[f"|{column}| > {EARTH_FIELD_MAX_NT:.0f} nT or negative F (physically impossible)"] += int(
                    bad.sum()
                )
            out = out.with_columns(pl.when(bad).then(None).otherwise(pl.col(column)).alias(column))
    return out


def fetch_month(
    client: HttpClient,
    base: str,
    station: str,
    month: str,
    dest_root: Path,
    requester: ImageRequester,
    compress: bool = True,
    refresh: RefreshPolicy | None = None,
    rejected: Counter | None = None,
) -> pl.DataFrame:
    """One request per UT day of ``month`` to the IMAGE form (see :func:`fetch_image_day`), files kept
    in ``dest_root/<STATION>/<YYYY>/``; a day without data is a gap. Rows outside the month are
    dropped; duplicate times keep the last. Days still growing when last fetched are requested again
    when ``refresh`` (default: the current and previous month) applies; ``rejected`` counts values
    turned NULL."""
    requester.check()
    sweep_stale_partials(Path(dest_root) / station.upper() / month[:4])
    frames = []
    for day in month_days(month):
        path = fetch_image_day(
            client, base, station, day, requester, Path(dest_root) / station.upper() / f"{day:%Y}", compress, refresh
        )
        if path is not None:
            frames.append(reject_impossible(read_image_column_file(path, station), rejected))
    if not frames:
        return pl.DataFrame(schema=MAGNETOMETER_SCHEMA)
    table = pl.concat(frames).unique("time", keep="last").sort("time")
    return table.filter(pl.col("time").dt.strftime("%Y-%m") == month)
