"""UiO all-sky imager archive (University of Oslo, http://tid.uio.no/plasma/aurora).

Layout: ``{base}/{camera}/{wl}/{YYYY}/{YYYYMMDD}/ut{HH}/{camera}_{YYYYMMDD}_{HHMMSS}_{wl}_cal.png``
where ``camera`` is station + camera number (``nya4``, ``nya6``) and ``wl`` the wavelength in
Ångström (``5577`` = 557.7 nm). Listings are HTML directory index pages; a day page lists hour
folders ``utHH/`` (files placed directly in the day page are accepted too). Times are UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urljoin

import polars as pl

from tame_assets.sources.http import DownloadError, HttpClient
from tame_assets.sources.images import check_image

FILENAME_RE = re.compile(
    r"^(?P<camera>(?P<site>[a-z]{3})\d*)_(?P<date>\d{8})_(?P<time>\d{6})_(?P<wl>\d{4})(?P<cal>_cal)?\.png$"
)

ASIM_IMAGES_SCHEMA = {
    "time": pl.Datetime("us"),
    "station": pl.Utf8,
    "camera": pl.Utf8,
    "wavelength_nm": pl.Float64,
    "file_name": pl.Utf8,
    "url": pl.Utf8,
    "local_path": pl.Utf8,
    "bytes": pl.Int64,
    "sha256": pl.Utf8,
    "valid": pl.Boolean,
}


@dataclass(frozen=True)
class AsiFileName:
    camera: str
    station: str
    time: dt.datetime
    wavelength_nm: float
    calibrated: bool


def parse_asi_filename(name: str) -> AsiFileName:
    """``nya6_20141020_165407_5577_cal.png`` → camera nya6, station NYA, 2014-10-20 16:54:07 UTC,
    557.7 nm, calibrated. Raises ValueError naming the file for any other pattern."""
    match = FILENAME_RE.match(Path(name).name)
    if not match:
        raise ValueError(f"{name}: not a UiO all-sky image name (expected e.g. nya4_20101207_233450_5577_cal.png)")
    try:
        time = dt.datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise ValueError(f"{name}: invalid date/time in file name ({exc})") from None
    return AsiFileName(
        camera=match["camera"],
        station=match["site"].upper(),
        time=time,
        wavelength_nm=int(match["wl"]) / 10.0,
        calibrated=bool(match["cal"]),
    )


def wavelength_code(wavelength_nm: float) -> str:
    """557.7 nm → ``"5577"`` (0.1 nm units, as in the archive's paths and names)."""
    return f"{round(wavelength_nm * 10):04d}"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href and not href.startswith(("?", "/", "#")) and href not in ("../", "./"):
                self.links.append(unquote(href))


def parse_listing(html_text: str) -> list[str]:
    """Relative links of an HTML directory index page (parent/sort links dropped)."""
    parser = _Links()
    parser.feed(html_text)
    return parser.links


def _get_listing(client: HttpClient, url: str) -> list[str] | None:
    try:
        return parse_listing(client.get_text(url))
    except DownloadError as exc:
        if exc.status == 404:
            return None
        raise


def month_url(base: str, camera: str, wavelength_nm: float, year: int) -> str:
    return f"{base.rstrip('/')}/{camera}/{wavelength_code(wavelength_nm)}/{year:04d}/"


def list_month_days(client: HttpClient, base: str, camera: str, wavelength_nm: float, month: str) -> list[str]:
    """Days ``YYYYMMDD`` of ``month`` (``YYYY-MM``) that have a folder in the archive."""
    year = int(month[:4])
    links = _get_listing(client, month_url(base, camera, wavelength_nm, year)) or []
    prefix = month.replace("-", "")
    return sorted(l.rstrip("/") for l in links if re.fullmatch(r"\d{8}/?", l) and l.startswith(prefix))


def list_day(client: HttpClient, base: str, camera: str, wavelength_nm: float, day: str) -> list[str]:
    """URLs of every image of ``day`` (``YYYYMMDD``); empty when the day has no folder (404)."""
    day_url = f"{month_url(base, camera, wavelength_nm, int(day[:4]))}{day}/"
    links = _get_listing(client, day_url)
    if links is None:
        return []
    urls = [urljoin(day_url, l) for l in links if l.endswith(".png")]
    for hour in (l for l in links if re.fullmatch(r"ut\d{2}/", l)):
        hour_url = urljoin(day_url, hour)
        urls += [urljoin(hour_url, l) for l in (_get_listing(client, hour_url) or []) if l.endswith(".png")]
    return sorted(urls)


def fetch_month(
    client: HttpClient,
    base: str,
    camera: str,
    wavelengths_nm: list[float],
    month: str,
    dest_root: Path,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Download every image of ``month`` to ``dest_root/<station>/<YYYY>/<MM>/<DD>/``.

    Returns (``asim_images`` table sorted by time, quarantine rows). Every downloaded file has a
    row; files that fail to decode as images keep their row with ``valid = false`` and get a
    quarantine row (time, station, file, reason). Names that do not follow the convention cannot
    be placed in time: they are only quarantined.
    """
    urls: list[str] = []
    for wavelength in wavelengths_nm:
        for day in list_month_days(client, base, camera, wavelength, month):
            urls += list_day(client, base, camera, wavelength, day)
    rows, quarantine = [], []
    for i, url in enumerate(urls):
        name = url.rsplit("/", 1)[-1]
        try:
            parsed = parse_asi_filename(name)
        except ValueError as exc:
            quarantine.append({"time": None, "station": None, "file": url, "reason": str(exc)})
            continue
        dest = Path(dest_root) / parsed.station / parsed.time.strftime("%Y/%m/%d") / name
        result = client.download(url, dest)
        problem = check_image(dest)
        if problem:
            quarantine.append({"time": parsed.time, "station": parsed.station, "file": name, "reason": problem})
        rows.append({
            "time": parsed.time, "station": parsed.station, "camera": parsed.camera,
            "wavelength_nm": parsed.wavelength_nm, "file_name": name, "url": url,
            "local_path": str(dest), "bytes": result.bytes, "sha256": result.sha256, "valid": problem is None,
        })
        if progress:
            progress(i + 1, len(urls))
    table = pl.DataFrame(rows, schema=ASIM_IMAGES_SCHEMA).sort("time", "wavelength_nm")
    start = dt.datetime.strptime(month, "%Y-%m")
    table = table.filter(pl.col("time").dt.strftime("%Y-%m") == start.strftime("%Y-%m"))
    q = pl.DataFrame(quarantine, schema={"time": pl.Datetime("us"), "station": pl.Utf8, "file": pl.Utf8, "reason": pl.Utf8})
    return table, q
