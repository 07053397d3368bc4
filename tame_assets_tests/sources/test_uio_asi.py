"""UiO all-sky archive: file names (incl. the real ones), listings and monthly download over HTTP."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tame_assets.sources import uio_asi
from tame_assets.sources.http import DownloadError, HttpClient


# ----------------------------------------------------------------------------- file names
def test_real_file_names_parse_and_agree_with_labels_csv(real_dir):
    folder = real_dir / "uio_asi_nya6"
    with open(folder / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300
    for row in rows:  # the CSV's own columns are an independent statement of what the name encodes
        parsed = uio_asi.parse_asi_filename(row["filename"])
        assert parsed.camera == row["station"] == "nya6" and parsed.station == "NYA" and parsed.calibrated
        assert parsed.time == dt.datetime.fromisoformat(row["datetime_utc"])
        assert parsed.wavelength_nm == int(row["wavelength_0.1nm"]) / 10
    on_disk = sorted(p.name for p in (folder / "images").glob("*.png"))
    assert {uio_asi.parse_asi_filename(n).wavelength_nm for n in on_disk} == {557.7, 630.0}


def test_file_name_fields():
    p = uio_asi.parse_asi_filename("nya4_20101207_233450_4278.png")
    assert (p.camera, p.station, p.time, p.wavelength_nm, p.calibrated) == (
        "nya4",
        "NYA",
        dt.datetime(2010, 12, 7, 23, 34, 50),
        427.8,
        False,
    )
    assert uio_asi.parse_asi_filename("http://x/y/lyr5_20111111_000001_6300_cal.png").station == "LYR"


@pytest.mark.parametrize(
    "name",
    [
        "nya6_2014_165407_5577_cal.png",
        "image.png",
        "nya6_20141340_165407_5577_cal.png",
        "nya6_20141020_165407_5577_cal.jpg",
        "NYA6_20141020_165407_5577_cal.png",
    ],
)
def test_unknown_file_name_is_a_clear_error(name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        uio_asi.parse_asi_filename(name)


@pytest.mark.parametrize(
    "value,code", [(557.7, "5577"), (630.0, "6300"), (427.8, "4278"), (5577, "5577"), ("6300", "6300")]
)
def test_wavelength_code(value, code):
    assert uio_asi.wavelength_code(value) == code


def test_apache_listing_parsing():
    page = (
        '<html><body><h1>Index of /x</h1><table><tr><th><a href="?C=N;O=D">Name</a></th></tr>'
        '<tr><td><a href="/plasma/aurora/nya4/5577/2010/">Parent Directory</a></td></tr>'
        '<tr><td><a href="ut00/">ut00/</a></td></tr><tr><td><a href="a%20b.png">a b.png</a></td></tr>'
        "</table></body></html>"
    )
    assert uio_asi.parse_listing(page) == ["/plasma/aurora/nya4/5577/2010/", "ut00/", "a b.png"]
    assert uio_asi._children("http://h/plasma/aurora/nya4/5577/2010/20101201/", uio_asi.parse_listing(page)) == [
        "a b.png",
        "ut00/",
    ]


# ----------------------------------------------------------------------------- archive over HTTP
def _png(path: Path, seed: int, bits: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 2**bits, (32, 32), dtype=np.uint16 if bits == 16 else np.uint8)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def archive(tmp_path):
    """A small UiO tree: 2010-12-01 with hour folders, 2010-12-02 with files in the day page,
    a corrupt image, a name that does not parse, and a day of another month."""
    root = tmp_path / "aurora"
    year = root / "nya4" / "5577" / "2010"
    _png(year / "20101201" / "ut00" / "nya4_20101201_000010_5577_cal.png", 1, 16)
    _png(year / "20101201" / "ut00" / "nya4_20101201_005950_5577_cal.png", 2)
    _png(year / "20101201" / "ut23" / "nya4_20101201_230000_5577_cal.png", 3)
    (year / "20101201" / "ut23" / "notes.txt").write_text("not an image")
    _png(year / "20101202" / "nya4_20101202_120000_5577_cal.png", 4)
    _png(year / "20101202" / "nya4_20101202_130000_5577_cal.png", 5)
    broken = year / "20101202" / "nya4_20101202_140000_5577_cal.png"
    _png(broken, 6)
    broken.write_bytes(broken.read_bytes()[:100])
    _png(year / "20101202" / "snapshot_latest.png", 7)
    _png(year / "20101103" / "ut01" / "nya4_20101103_010000_5577_cal.png", 8)
    return root


def test_listing_of_days(archive, loopback_server):
    served = loopback_server(archive)
    client = HttpClient(backoff_s=0.01)
    assert uio_asi.list_month_days(client, served.url, "nya4", 557.7, "2010-12") == ["20101201", "20101202"]
    assert uio_asi.list_month_days(client, served.url, "nya4", 557.7, "2011-01") == []  # no year folder
    urls = uio_asi.list_day(client, served.url, "nya4", "5577", "20101201")
    assert [u.rsplit("/", 1)[-1] for u in urls] == [
        "nya4_20101201_000010_5577_cal.png",
        "nya4_20101201_005950_5577_cal.png",
        "nya4_20101201_230000_5577_cal.png",
    ]
    assert urls[0] == f"{served.url}/nya4/5577/2010/20101201/ut00/nya4_20101201_000010_5577_cal.png"
    assert len(uio_asi.list_day(client, served.url, "nya4", 557.7, "20101202")) == 4  # files in the day page
    assert uio_asi.list_day(client, served.url, "nya4", 557.7, "20101205") == []  # 404: no data that day


def test_fetch_month_downloads_indexes_and_quarantines(archive, loopback_server, tmp_path):
    served = loopback_server(archive)
    calls = []
    images, quarantine = uio_asi.fetch_month(
        HttpClient(backoff_s=0.01),
        served.url,
        "nya4",
        [557.7],
        "2010-12",
        tmp_path / "raw",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert images.columns == list(uio_asi.ASIM_IMAGES_SCHEMA) and images.schema == pl.Schema(uio_asi.ASIM_IMAGES_SCHEMA)
    assert images.height == 6 and images["time"].is_sorted()
    assert calls == [(i, 7) for i in range(1, 8)]
    assert images.filter(~pl.col("valid"))["file_name"].to_list() == ["nya4_20101202_140000_5577_cal.png"]
    q = {r["file"]: r for r in quarantine.iter_rows(named=True)}
    assert set(q) == {"nya4_20101202_140000_5577_cal.png", "snapshot_latest.png"}
    assert q["nya4_20101202_140000_5577_cal.png"]["time"] == dt.datetime(2010, 12, 2, 14)
    assert (
        "not a UiO all-sky image name" in q["snapshot_latest.png"]["reason"]
        and q["snapshot_latest.png"]["time"] is None
    )
    for row in images.iter_rows(named=True):
        local = Path(row["local_path"])
        assert local == tmp_path / "raw" / "NYA" / "2010" / "12" / f"{row['time']:%d}" / row["file_name"]
        served_file = archive / row["url"].removeprefix(served.url + "/")
        assert local.read_bytes() == served_file.read_bytes() and row["bytes"] == served_file.stat().st_size
        assert row["sha256"] == hashlib.sha256(served_file.read_bytes()).hexdigest()
        assert row["station"] == "NYA" and row["camera"] == "nya4" and row["wavelength_nm"] == 557.7
    assert not (tmp_path / "raw" / "NYA" / "2010" / "12" / "02" / "snapshot_latest.png").exists()
    # a second run finds every file on disk: no image is downloaded again
    before = sum(1 for p, _ in served.requests if p.endswith(".png"))
    again, _ = uio_asi.fetch_month(HttpClient(), served.url, "nya4", [557.7], "2010-12", tmp_path / "raw")
    assert again.equals(images) and sum(1 for p, _ in served.requests if p.endswith(".png")) == before


def test_listing_server_error_names_url(archive, loopback_server, tmp_path):
    served = loopback_server(archive)
    served.faults["/nya4/5577/2010/20101202/"] = ("status", 503, 99)
    with pytest.raises(DownloadError, match=rf"{served.url}/nya4/5577/2010/20101202/: HTTP 503"):
        uio_asi.fetch_month(HttpClient(backoff_s=0.01, retries=1), served.url, "nya4", [557.7], "2010-12", tmp_path)
