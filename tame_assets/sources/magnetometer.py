"""Ground magnetometer data: IAGA-2002 files and the IMAGE network's column ASCII format.

Table ``magnetometer``: time (UTC), station, x_nt, y_nt, z_nt, f_nt, h_nt with X geographic north,
Y east, Z down (nT) and h_nt = √(x² + y²). Component conversions from the IAGA-2002 ``Reported``
header:

- ``XYZF``/``XYZG``: X, Y, Z as given.
- ``HDZF``: H in nT and D in **minutes of arc** → X = H·cos D, Y = H·sin D.
- ``EHZF``: E (east, nT) and H (horizontal intensity, nT) → Y = E, X = √(H² − E²).
- ``DHZF`` is treated as ``HDZF`` with the column order of the header.

Missing values: IAGA-2002 uses 99999.00 (missing) and 88888.00 (element not recorded); both become
NULL, as does any value ≥ 88888. IMAGE column files use 99999.9.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import polars as pl

from tame_assets.sources.http import DownloadError, HttpClient

MISSING_THRESHOLD = 88888.0

MAGNETOMETER_SCHEMA = {
    "time": pl.Datetime("us"),
    "station": pl.Utf8,
    "x_nt": pl.Float64,
    "y_nt": pl.Float64,
    "z_nt": pl.Float64,
    "f_nt": pl.Float64,
    "h_nt": pl.Float64,
}


class MagnetometerFormatError(ValueError):
    """A malformed magnetometer file; names the file and line (1-based)."""

    def __init__(self, source: str, line: int | None, reason: str):
        self.source, self.line = source, line
        super().__init__(f"{source}" + (f", line {line}" if line else "") + f": {reason}")


def _read_source(path_or_text: str | Path, source_name: str | None) -> tuple[str, str]:
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text):
        path = Path(path_or_text)
        return path.read_text(encoding="ascii", errors="replace"), source_name or str(path)
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
        {"time": pl.Series(times).cast(pl.Datetime("us")), "station": station,
         "x_nt": x, "y_nt": y, "z_nt": z, "f_nt": f},
        nan_to_null=True,
    )
    df = df.with_columns(
        pl.col(c).cast(pl.Float64).fill_nan(None) for c in ("x_nt", "y_nt", "z_nt", "f_nt")
    ).with_columns(((pl.col("x_nt") ** 2 + pl.col("y_nt") ** 2).sqrt()).alias("h_nt"))
    return df.select(list(MAGNETOMETER_SCHEMA)).sort("time")


def _parse_columns(data: str, n_cols: int, source: str, first_line: int) -> pd.DataFrame:
    """Whitespace-separated numeric table, fast (pandas C parser); on failure locate the line."""
    try:
        df = pd.read_csv(io.StringIO(data), sep=r"\s+", header=None, dtype=str, engine="c")
    except pd.errors.ParserError:
        df = None
    if df is None or df.shape[1] != n_cols or df.isna().any().any():
        for i, line in enumerate(data.splitlines()):
            if line.strip() and len(line.split()) != n_cols:
                raise MagnetometerFormatError(source, first_line + i, f"expected {n_cols} columns, found {len(line.split())}: {line.strip()!r}")
        raise MagnetometerFormatError(source, None, "unparsable data block")
    return df


def _to_float(df: pd.DataFrame, columns: Iterable[int], source: str, first_line: int) -> list[np.ndarray]:
    out = []
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            row = int(bad[0])
            raise MagnetometerFormatError(source, first_line + row, f"not a number: {df.iloc[row, col]!r}")
        out.append(values.to_numpy(dtype=float))
    return out


def _to_times(text: pd.Series, fmt: str, source: str, first_line: int) -> np.ndarray:
    times = pd.to_datetime(text, format=fmt, errors="coerce")
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise MagnetometerFormatError(source, first_line + row, f"invalid timestamp {text.iloc[row]!r}")
    return times.to_numpy()


def parse_iaga2002(path_or_text: str | Path, source_name: str | None = None) -> pl.DataFrame:
    """Parse an IAGA-2002 file (path or its text) into the ``magnetometer`` table."""
    text, source = _read_source(path_or_text, source_name)
    lines = text.splitlines()
    header_idx = next((i for i, l in enumerate(lines) if l.startswith("DATE")), None)
    if header_idx is None:
        raise MagnetometerFormatError(source, None, "no 'DATE TIME DOY ...' column header: not IAGA-2002")
    station = (_header_value(lines[:header_idx], "IAGA CODE") or "").upper()
    columns = lines[header_idx].rstrip(" |").split()
    if len(columns) != 7 or columns[:3] != ["DATE", "TIME", "DOY"]:
        raise MagnetometerFormatError(source, header_idx + 1, f"unexpected column header {columns}")
    station = station or columns[3][:3]
    elements = "".join(c[len(station):] if c.startswith(station) else c[-1] for c in columns[3:]).upper()
    reported = (_header_value(lines[:header_idx], "Reported") or elements).upper()
    data = "\n".join(lines[header_idx + 1:])
    first_line = header_idx + 2
    df = _parse_columns(data, 7, source, first_line)
    times = _to_times(df[0] + " " + df[1], "%Y-%m-%d %H:%M:%S.%f", source, first_line)
    a, b, c, d = (_masked(v) for v in _to_float(df, (3, 4, 5, 6), source, first_line))
    x, y, z = _components(elements or reported, a, b, c, source)
    return _frame(times, station, x, y, z, d)


def _components(elements: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, source: str):
    kind = elements[:3]
    if kind == "XYZ":
        return a, b, c
    if kind in ("HDZ", "DHZ"):
        h, d_arcmin = (a, b) if kind == "HDZ" else (b, a)
        d = np.deg2rad(d_arcmin / 60.0)
        return h * np.cos(d), h * np.sin(d), c
    if kind in ("EHZ", "HEZ"):
        e, h = (a, b) if kind == "EHZ" else (b, a)
        with np.errstate(invalid="ignore"):
            return np.sqrt(h**2 - e**2), e, c
    raise MagnetometerFormatError(source, None, f"unsupported component orientation {elements!r}")


def write_iaga2002(df: pl.DataFrame, path: Path, station: str, station_name: str = "", latitude: float = 0.0,
                   longitude: float = 0.0, interval: str = "1-minute") -> Path:
    """Write an XYZF IAGA-2002 file (NULL → 99999.00, missing F → 88888.00)."""
    def head(key: str, value: str) -> str:
        return f" {key:<22} {value:<44}|"

    lines = [
        head("Format", "IAGA-2002"), head("Source of Data", "tame_assets sample archive (synthetic)"),
        head("Station Name", station_name or station), head("IAGA CODE", station),
        head("Geodetic Latitude", f"{latitude:.3f}"), head("Geodetic Longitude", f"{longitude:.3f}"),
        head("Elevation", "0"), head("Reported", "XYZF"), head("Sensor Orientation", "XYZ"),
        head("Digital Sampling", "1 second"), head("Data Interval Type", interval),
        head("Data Type", "variation"),
        f"DATE       TIME         DOY     {station}X      {station}Y      {station}Z      {station}F   |",
    ]

    def val(column: str, fill: float) -> np.ndarray:
        return df[column].fill_null(fill).fill_nan(fill).to_numpy()

    x, y, z = val("x_nt", 99999.0), val("y_nt", 99999.0), val("z_nt", 99999.0)
    f = val("f_nt", 88888.0) if "f_nt" in df.columns else np.full(df.height, 88888.0)
    for t, xi, yi, zi, fi in zip(df["time"].to_list(), x, y, z, f):
        lines.append(f"{t:%Y-%m-%d %H:%M:%S}.000 {t.timetuple().tm_yday:03d}   {xi:10.2f}{yi:10.2f}{zi:10.2f}{fi:10.2f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
    tmp.replace(path)
    return path


IMAGE_HEADER_RE = re.compile(r"^YYYY MM DD HH MM SS(?P<cols>.*)$")


def parse_image_column(path_or_text: str | Path, source_name: str | None = None, station: str | None = None) -> pl.DataFrame:
    """Parse the IMAGE network's "column" ASCII format (http://www.geo.fmi.fi/image/column.html).

    Old style: a verbal header ``YYYY MM DD HH MM SS     HAN X   HAN Y   HAN Z   NUR X ...``, a dashed
    line, then rows ``1999 02 03 04 00 00    13759.4  1715.1 49852.7 ...``. New style: a numeric first
    row of zeros then station latitudes/longitudes (stations must then be given in order via
    ``station``). Unit nT; missing = 99999.9. Returns rows for every station in the file (or only
    ``station`` when given for an old-style file).
    """
    text, source = _read_source(path_or_text, source_name)
    lines = text.splitlines()
    match = IMAGE_HEADER_RE.match(lines[0].strip()) if lines else None
    if match:
        names = match["cols"].split()
        if len(names) % 6:
            raise MagnetometerFormatError(source, 1, "header must list 'STA X STA Y STA Z' triples")
        stations = [names[i] for i in range(0, len(names), 6)]
        start = 2 if len(lines) > 1 and set(lines[1].strip()) <= {"-"} else 1
    elif lines and lines[0].split()[:6] == ["0"] * 6:
        if not station:
            raise MagnetometerFormatError(source, 1, "new-style IMAGE column file: pass station=<code>")
        stations = [s.strip().upper() for s in station.split(",")]
        start = 1
    else:
        raise MagnetometerFormatError(source, 1, "not an IMAGE column file (expected 'YYYY MM DD HH MM SS' header)")
    n_cols = 6 + 3 * len(stations)
    data = "\n".join(lines[start:])
    df = _parse_columns(data, n_cols, source, start + 1)
    stamp = df[0] + df[1].str.zfill(2) + df[2].str.zfill(2) + df[3].str.zfill(2) + df[4].str.zfill(2) + df[5].str.zfill(2)
    times = _to_times(stamp, "%Y%m%d%H%M%S", source, start + 1)
    values = _to_float(df, range(6, n_cols), source, start + 1)
    frames = []
    for k, name in enumerate(stations):
        if station and match and name != station.upper():
            continue
        x, y, z = (_masked(v) for v in values[3 * k:3 * k + 3])
        frames.append(_frame(times, name, x, y, z, np.full(len(x), np.nan)))
    if not frames:
        raise MagnetometerFormatError(source, 1, f"station {station} not in file ({', '.join(stations)})")
    return pl.concat(frames).sort("time", "station")


def iaga_day_url(base: str, station: str, day: dt.date) -> str:
    return f"{base.rstrip('/')}/iaga2002/{station.upper()}/{day:%Y}/{station.lower()}{day:%Y%m%d}vmin.min"


def fetch_month(client: HttpClient, base: str, station: str, month: str, dest_root: Path) -> pl.DataFrame:
    """Download and parse the daily IAGA-2002 files of ``month``; a missing day (404) is a gap."""
    start = dt.date.fromisoformat(f"{month}-01")
    end = (start + dt.timedelta(days=32)).replace(day=1)
    frames = []
    day = start
    while day < end:
        url = iaga_day_url(base, station, day)
        dest = Path(dest_root) / station.upper() / f"{day:%Y}" / url.rsplit("/", 1)[-1]
        try:
            client.download(url, dest)
        except DownloadError as exc:
            if exc.status != 404:
                raise
        else:
            frames.append(parse_iaga2002(dest))
        day += dt.timedelta(days=1)
    if not frames:
        return pl.DataFrame(schema=MAGNETOMETER_SCHEMA)
    return pl.concat(frames).unique("time", keep="last").sort("time")
