"""UiO all-sky imager archive (University of Oslo, http://tid.uio.no/plasma/aurora).

Layout: ``{base}/{camera}/{wl}/{YYYY}/{YYYYMMDD}/ut{HH}/{camera}_{YYYYMMDD}_{HHMMSS}_{wl}_cal.png``
where ``camera`` is the station letters plus a camera number (``nya4``, ``nya6``) and ``wl`` the
wavelength in Ångström (0.1 nm: ``5577`` = 557.7 nm, ``6300`` = 630.0 nm). Listings are Apache HTML
index pages; a day page lists hour folders ``utHH/`` (files placed directly in a day page are
accepted too). Times are UTC.

Table ``asim_images`` (one row per downloaded image file, sorted by time): time, station, camera,
wavelength_nm, file_name, url, local_path, bytes, sha256, valid. A file that does not decode
(truncated/corrupt PNG) or whose header declares more pixels than the cap (a decompression bomb)
keeps its row with ``valid = false`` — the file↔row mapping stays complete — and also gets a
quarantine row (time, station, file, reason). A listed name that does not follow the
naming convention cannot be placed in time: it is not downloaded and only quarantined.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urljoin, urlsplit

import polars as pl

from tame_assets.files import write_text_atomic
from tame_assets.sources.errors import QUARANTINE_SCHEMA, SourceFormatError
from tame_assets.sources.http import DownloadError, HttpClient, RefreshPolicy, sweep_stale_partials
from tame_assets.sources.images import check_image

#: Version of the listing/index rules; part of the ``asim_images`` asset's code_version.
INDEX_VERSION = "1"

FILENAME_RE = re.compile(
    r"^(?P<camera>(?P<site>[a-z]+)\d*)_(?P<date>\d{8})_(?P<time>\d{6})_(?P<wl>\d{4})(?P<cal>_cal)?\.png$"
)

#: ``network`` of UiO frames.
NETWORK = "uio"

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
    base = Path(name).name
    match = FILENAME_RE.match(base)
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


def wavelength_code(wavelength: float | int | str) -> str:
    """Archive wavelength code in Ångström: 557.7 (nm) → ``"5577"``; ``5577``/``"5577"`` pass through.

    Numbers below 1000 are taken as nm, larger ones (and 4-digit strings) as Ångström.
    """
    if isinstance(wavelength, str) and re.fullmatch(r"\d{4}", wavelength.strip()):
        return wavelength.strip()
    value = float(wavelength)
    return f"{round(value * 10 if value < 1000 else value):04d}"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag != "a":
            return
        href = dict(attrs).get("href")
        if not href or href.startswith(("?", "#", "mailto:")) or href in ("../", "./", "/"):
            return
        self.links.append(unquote(href))


def parse_listing(html_text: str) -> list[str]:
    """Links of an HTML directory index page, as written (parent/sort links dropped)."""
    parser = _Links()
    parser.feed(html_text)
    return parser.links


def _children(page_url: str, links: list[str]) -> list[str]:
    """Names directly inside ``page_url`` (``name`` or ``name/``), whether links are relative or absolute."""
    base_path = urlsplit(page_url).path
    out = []
    for link in links:
        path = urlsplit(urljoin(page_url, link)).path
        if path.startswith(base_path) and path != base_path:
            rest = path[len(base_path) :]
            if rest.count("/") == 0 or (rest.count("/") == 1 and rest.endswith("/")):
                out.append(rest)
    return sorted(set(out))


def _get_listing(client: HttpClient, url: str) -> list[str] | None:
    """Child names of the index page ``url``; None when it does not exist (404)."""
    try:
        return _children(url, parse_listing(client.get_text(url)))
    except DownloadError as exc:
        if exc.status == 404:
            return None
        raise


def year_url(base: str, camera: str, wavelength: float | int | str, year: int) -> str:
    return f"{base.rstrip('/')}/{camera}/{wavelength_code(wavelength)}/{year:04d}/"


#: Former name of :func:`year_url`.
month_url = year_url


def list_month_days(client: HttpClient, base: str, camera: str, wavelength: float | int | str, month: str) -> list[str]:
    """Days ``YYYYMMDD`` of ``month`` (``YYYY-MM``) that have a folder in the archive."""
    links = _get_listing(client, year_url(base, camera, wavelength, int(month[:4]))) or []
    prefix = month.replace("-", "")
    return sorted(ln.rstrip("/") for ln in links if re.fullmatch(r"\d{8}/?", ln) and ln.startswith(prefix))


def list_day(client: HttpClient, base: str, camera: str, wavelength: float | int | str, day: str) -> list[str]:
    """URLs of every ``.png`` of ``day`` (``YYYYMMDD``), from the ``utHH/`` pages and the day page
    itself; empty when the day has no folder (404 = no data that day). ``wavelength``: nm or Å code."""
    day_url = f"{year_url(base, camera, wavelength, int(day[:4]))}{day}/"
    links = _get_listing(client, day_url)
    if links is None:
        return []
    urls = {urljoin(day_url, ln) for ln in links if ln.lower().endswith(".png")}
    for hour in (ln for ln in links if re.fullmatch(r"ut\d{2}/", ln)):
        hour_url = urljoin(day_url, hour)
        urls |= {urljoin(hour_url, ln) for ln in (_get_listing(client, hour_url) or []) if ln.lower().endswith(".png")}
    return sorted(urls)


# ----------------------------------------------------------------------------------- availability index
#: File name of the archive's availability index, at the archive root (``{base}/avail.csv``).
AVAIL_CSV = "avail.csv"
AVAIL_COLUMNS = ("camera", "wavelength", "date")


def avail_url(base: str) -> str:
    return f"{base.rstrip('/')}/{AVAIL_CSV}"


def parse_avail_csv(text: str, source: str = AVAIL_CSV) -> pl.DataFrame:
    """Rows (camera, wavelength code in Å, day ``YYYYMMDD``) of an availability index.

    Format (designed here; the layout of UiO's own ``avail.csv`` could not be checked): comma-
    separated, a header row naming at least ``camera``, ``wavelength`` (Å code ``5577`` or nm
    ``557.7``) and ``date`` (``YYYYMMDD`` or ``YYYY-MM-DD``), then one row per camera, wavelength and
    day with images; other columns (e.g. ``images``, the number of files) are ignored. Lines starting
    with ``#`` are comments. A malformed row is an error naming its line.
    """
    rows, header = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if header is None:
            header = [c.lower() for c in cells]
            missing = [c for c in AVAIL_COLUMNS if c not in header]
            if missing:
                raise SourceFormatError(
                    source, number, f"header lacks column(s) {', '.join(missing)}: {line.strip()!r}"
                )
            continue
        if len(cells) != len(header):
            raise SourceFormatError(source, number, f"expected {len(header)} comma-separated cells, found {len(cells)}")
        record = dict(zip(header, cells))
        day = record["date"].replace("-", "")
        try:
            dt.datetime.strptime(day, "%Y%m%d")
            code = wavelength_code(record["wavelength"])
        except ValueError:
            raise SourceFormatError(source, number, f"invalid date or wavelength: {line.strip()!r}") from None
        rows.append({"camera": record["camera"].lower(), "wavelength": code, "date": day})
    if header is None:
        raise SourceFormatError(source, None, "empty availability index")
    return pl.DataFrame(rows, schema={"camera": pl.Utf8, "wavelength": pl.Utf8, "date": pl.Utf8})


def write_avail_csv(images: pl.DataFrame, path: Path) -> Path:
    """Write the availability index of (camera, wavelength_nm, time) image rows, atomically:
    ``camera,wavelength,date,images`` sorted by camera, wavelength, date."""
    counts = (
        images.group_by(
            "camera",
            pl.col("wavelength_nm").map_elements(wavelength_code, return_dtype=pl.Utf8).alias("wavelength"),
            pl.col("time").dt.strftime("%Y%m%d").alias("date"),
        )
        .len("images")
        .sort("camera", "wavelength", "date")
    )
    lines = [",".join(("camera", "wavelength", "date", "images"))]
    lines += [",".join(map(str, row)) for row in counts.iter_rows()]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, "\n".join(lines) + "\n", encoding="ascii")


@dataclass(frozen=True)
class ArchiveDays:
    """Days (``YYYYMMDD``) with images, and how they were found: ``"avail.csv"`` or ``"listing"``."""

    days: list[str]
    source: str


def archive_days(
    client: HttpClient, base: str, camera: str, wavelengths: list[float | int | str], months: list[str]
) -> ArchiveDays:
    """Days of ``months`` with images of ``camera`` at any of ``wavelengths``: from ``{base}/avail.csv``
    when the archive serves it (one request), else (404) from the year listing pages."""
    try:
        text = client.get_text(avail_url(base))
    except DownloadError as exc:
        if exc.status != 404:
            raise
    else:
        index = parse_avail_csv(text, avail_url(base))
        prefixes = tuple(m.replace("-", "") for m in months)
        codes = [wavelength_code(w) for w in wavelengths]
        days = index.filter((pl.col("camera") == camera.lower()) & pl.col("wavelength").is_in(codes))
        return ArchiveDays(sorted({d for d in days["date"] if d.startswith(prefixes)}), AVAIL_CSV)
    found = {d for month in months for w in wavelengths for d in list_month_days(client, base, camera, w, month)}
    return ArchiveDays(sorted(found), "listing")


def local_image_path(dest_root: Path, parsed: AsiFileName, name: str) -> Path:
    """``dest_root/<station>/<YYYY>/<MM>/<DD>/<file>``."""
    return Path(dest_root) / parsed.station / parsed.time.strftime("%Y/%m/%d") / name


def fetch_month(
    client: HttpClient,
    base: str,
    camera: str,
    wavelengths_nm: list[float],
    month: str,
    dest_root: Path,
    progress: Callable[[int, int], None] | None = None,
    refresh: RefreshPolicy | None = None,
    max_image_pixels: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Download every image of ``month`` (``YYYY-MM``) to ``dest_root/<station>/<YYYY>/<MM>/<DD>/``.

    Returns (``asim_images``, quarantine rows); see the module docstring for the rules. Files already
    on disk are not downloaded again (an archive image never changes once complete), except that an
    image on disk that fails the image check and whose day ``refresh`` applies to (default:
    :class:`RefreshPolicy`, the current and previous month) is re-validated with the server — the
    archive may have replaced a partial upload (a 304 keeps the file). An image that is truncated, corrupt or
    above ``max_image_pixels`` (width ×
    height, checked from its header; default :func:`~tame_assets.sources.images.default_max_pixels`)
    keeps its row with ``valid = false`` and gets a quarantine row naming the file; it never aborts the
    month. ``progress(done, total)`` is called after each listed file.
    """
    refresh = refresh or RefreshPolicy()
    for month_dir in Path(dest_root).glob(f"*/{month[:4]}/{month[5:7]}"):
        sweep_stale_partials(month_dir)
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
            quarantine.append({"time": None, "station": None, "file": name, "reason": f"{exc} [{url}]"})
        else:
            if parsed.time.strftime("%Y-%m") == month:
                dest = local_image_path(dest_root, parsed, name)
                problem = check_image(dest, max_pixels=max_image_pixels) if dest.exists() else "absent"
                result = client.download(
                    url,
                    dest,
                    revalidate=problem != "absent" and problem is not None and refresh.applies(parsed.time.date()),
                )
                if problem is not None:  # new or re-fetched
                    problem = check_image(dest, max_pixels=max_image_pixels)
                if problem:
                    quarantine.append({"time": parsed.time, "station": parsed.station, "file": name, "reason": problem})
                rows.append(
                    {
                        "time": parsed.time,
                        "station": parsed.station,
                        "camera": parsed.camera,
                        "wavelength_nm": parsed.wavelength_nm,
                        "file_name": name,
                        "url": url,
                        "local_path": str(dest),
                        "bytes": result.bytes,
                        "sha256": result.sha256,
                        "valid": problem is None,
                    }
                )
        if progress:
            progress(i + 1, len(urls))
    table = pl.DataFrame(rows, schema=ASIM_IMAGES_SCHEMA).sort("time", "wavelength_nm", "file_name")
    return table, pl.DataFrame(quarantine, schema=QUARANTINE_SCHEMA)
