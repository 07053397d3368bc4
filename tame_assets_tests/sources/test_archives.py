"""The real archives' interfaces, driven against the sample archive's loopback emulation: the IMAGE
request form (fields asserted server-side), PANGAEA collection → child resolution, UiO avail.csv."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import threading
from dataclasses import replace

import polars as pl
import pytest
import requests

from tame_assets.config import TameSettings
from tame_assets.months import month_days
from tame_assets.sources import ceilometer as ceil
from tame_assets.sources import magnetometer as mag
from tame_assets.sources import uio_asi
from tame_assets.sources.errors import SourceFormatError
from tame_assets.sources.http import DownloadError, HttpClient, RefreshPolicy
from tame_assets.sources.locations import SAMPLE_IMAGE_REQUESTER, image_requester, list_archive_days
from tame_assets.sources.sample import generator as sample
from tame_assets.sources.sample.server import SampleArchiveHandler, server_url, start_server

REQUESTER = mag.ImageRequester("Ada Lovelace", "University of Oslo", "ada@fys.uio.no")
CGI = "/image" + mag.IMAGE_CGI_PATH


@pytest.fixture()
def served(sample_archive):
    """A private server for the sample archive (fresh request log)."""
    with sample.SampleArchiveServer(sample_archive) as server:
        yield server


def _posts(server) -> list:
    return [r for r in server.request_log if r.method == "POST"]


# ----------------------------------------------------------------------------- IMAGE request form
def test_image_client_posts_one_form_per_day_and_reads_the_linked_column_file(served, sample_archive, tmp_path):
    base = f"{served.url}/image"
    table = mag.fetch_month(HttpClient(backoff_s=0.01), base, "NAL", "2010-12", tmp_path / "raw", REQUESTER)
    posts = _posts(served)
    assert [p.path for p in posts] == [CGI] * 31
    assert [p.form for p in posts] == [
        {
            "start": [f"{day:%Y%m%d}00"],
            "eventlength": ["24"],
            "station": ["mylist"],
            "mystation": ["NAL"],
            "column2": ["on"],
            "compression": ["gz"],
            "yourname": ["Ada Lovelace"],
            "institute": ["University of Oslo"],
            "email": ["ada@fys.uio.no"],
        }
        for day in month_days("2010-12")
    ]
    results = [r.path for r in served.request_log if r.method == "GET"]
    assert len(results) == 31 and all(p.startswith("/image/results/") and p.endswith(".col2.gz") for p in results)
    # the rows are the archive's data, 99999.9 gaps included
    truth = sample.read_manifest(sample_archive).truth_per_month["2010-12"]
    store = pl.concat(
        [mag.parse_iaga2002(f) for f in sorted((sample_archive / "image/iaga2002/NAL/2010").glob("*.min"))]
    )
    assert table.height == 31 * 1440 and table["time"].is_sorted()
    assert table["x_nt"].null_count() == truth["magnetometer_missing_x"] > 0
    joined = table.join(store, on="time", suffix="_iaga")
    assert joined.height == table.height
    assert (joined["x_nt"] - joined["x_nt_iaga"]).abs().max() < 0.05 + 1e-6  # column format keeps 0.1 nT
    cached = sorted((tmp_path / "raw" / "NAL" / "2010").glob("*.col2.gz"))
    assert len(cached) == 31 and gzip.decompress(cached[0].read_bytes()).startswith(b"YYYY MM DD HH MM SS")
    # a rerun reads the cached days: no new request
    again = mag.fetch_month(HttpClient(), base, "NAL", "2010-12", tmp_path / "raw", REQUESTER)
    assert again.equals(table) and len(_posts(served)) == 31


def test_image_client_uncompressed_and_unfinished_day(served, tmp_path):
    base, day = f"{served.url}/image", dt.date(2011, 1, 5)
    path = mag.fetch_image_day(HttpClient(), base, "NAL", day, REQUESTER, tmp_path, compress=False)
    assert path.name == "nal20110105.col2" and _posts(served)[-1].form["compression"] == ["no"]
    assert mag.read_image_column_file(path, "NAL").height == 1440
    # a copy fetched while the day was still running is requested again (within the refresh policy);
    # one fetched after the day had ended is not
    recent = RefreshPolicy(today=day + dt.timedelta(days=1))
    during = dt.datetime(2011, 1, 5, 12, tzinfo=dt.timezone.utc).timestamp()
    os.utime(path, (during, during))
    mag.fetch_image_day(HttpClient(), base, "NAL", day, REQUESTER, tmp_path, compress=False, refresh=recent)
    assert len(_posts(served)) == 2
    mag.fetch_image_day(HttpClient(), base, "NAL", day, REQUESTER, tmp_path, compress=False, refresh=recent)
    assert len(_posts(served)) == 2


def test_image_station_without_data_is_a_gap(served, tmp_path):
    table = mag.fetch_month(HttpClient(), f"{served.url}/image", "ABC", "2010-12", tmp_path, REQUESTER)
    assert table.height == 0 and table.schema == pl.Schema(mag.MAGNETOMETER_SCHEMA)
    assert len(_posts(served)) == 31 and not list(tmp_path.rglob("*.col2*"))


GOOD_FORM = mag.image_form_fields("NAL", dt.date(2010, 12, 3), REQUESTER)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"email": None}, "field email missing"),
        ({"yourname": "  "}, "invalid yourname"),
        ({"email": "ada.uio.no"}, "invalid email"),
        ({"start": "2010120300x"}, "start '2010120300x' is not YYYYMMDDHH"),
        ({"start": "2010133100"}, "is not YYYYMMDDHH"),
        ({"eventlength": "49"}, "eventlength '49' is not 1-48 hours"),
        ({"station": "Svalbard"}, "invalid station"),
        ({"mystation": "nal"}, "invalid mystation"),
        ({"column2": None}, "field column2 missing"),
        ({"compression": "zip"}, "invalid compression"),
        ({"format": "iaga"}, "unexpected field(s) format"),
    ],
)
def test_emulated_form_rejects_missing_or_invalid_fields(served, change, reason):
    form = {k: v for k, v in {**GOOD_FORM, **change}.items() if v is not None}
    response = requests.post(served.url + CGI, data=form, timeout=10)
    assert response.status_code == 400 and reason in response.text
    assert _posts(served)[-1].form == {k: [v] for k, v in form.items()}
    assert requests.post(served.url + CGI, data=GOOD_FORM, timeout=10).status_code == 200


def test_requester_identity_is_required_for_the_real_service(sample_archive, served, tmp_path):
    empty = mag.ImageRequester("", "UiO", " ")
    with pytest.raises(ValueError, match="set image_requester_name, image_requester_email in the configuration"):
        mag.fetch_month(HttpClient(), f"{served.url}/image", "NAL", "2010-12", tmp_path, empty)
    assert _posts(served) == []  # refused before any request
    remote = TameSettings(data_root=str(tmp_path), source="remote")
    with pytest.raises(
        ValueError,
        match="^IMAGE magnetometer data are requested in the requester's name: set "
        "image_requester_name, image_requester_institute, image_requester_email",
    ):
        image_requester(remote)
    named = replace(remote, image_requester_name="A", image_requester_institute="B", image_requester_email="a@b.no")
    assert image_requester(named) == mag.ImageRequester("A", "B", "a@b.no")
    assert image_requester(replace(remote, source="sample")) == SAMPLE_IMAGE_REQUESTER
    with pytest.raises(ValueError, match="image_requester_email 'nobody' is not an e-mail address"):
        image_requester(replace(named, image_requester_email="nobody"))


def test_answer_page_without_link_or_no_data_is_an_error():
    with pytest.raises(
        mag.MagnetometerFormatError, match=r"http://x/cgi: answer page links no \.\.\.col2 file: 'Server busy'"
    ):
        mag.image_result_link("<html><body><b>Server busy</b></body></html>", "http://x/cgi")
    assert mag.image_result_link("<p>No data for NAL</p>", "http://x/cgi") is None
    assert (
        mag.image_result_link('<a href="/r/1/image2010120100.col2.gz">f</a>', "http://x/cgi")
        == "http://x/r/1/image2010120100.col2.gz"
    )


class _BusyCgi(SampleArchiveHandler):
    """The form answers 503 to the first two POSTs."""

    def do_POST(self):
        with self.server.lock:
            self.server.busy -= 1
            busy = self.server.busy >= 0
        if busy:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return self._send(503, b"busy\n", "text/plain")
        return super().do_POST()


def test_form_post_retries_server_errors(sample_archive, tmp_path):
    server = start_server(sample_archive, handler=_BusyCgi)
    helper = sample.SampleArchiveServer.__new__(sample.SampleArchiveServer)
    helper.archive = sample_archive
    server.request_log, server.generated, server.lock, server.busy = [], {}, threading.Lock(), 2
    server.image_rows = helper.image_rows
    try:
        base = server_url(server) + "/image"
        path = mag.fetch_image_day(
            HttpClient(backoff_s=0.01, retries=2), base, "NAL", dt.date(2010, 12, 1), REQUESTER, tmp_path
        )
        assert path is not None and len(server.request_log) == 2  # 2 refused POSTs are not logged; 1 POST + 1 GET
        server.busy = 5
        with pytest.raises(DownloadError, match=r"image-data.cgi: HTTP 503"):
            mag.fetch_image_day(
                HttpClient(backoff_s=0.01, retries=1), base, "NAL", dt.date(2010, 12, 2), REQUESTER, tmp_path
            )
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------- PANGAEA collection
def test_collection_index_resolves_the_child_covering_a_month(sample_archive):
    children = ceil.parse_collection_index(sample.pangaea_dataset_path(sample_archive, sample.CEILOMETER_COLLECTION_ID))
    assert [c.dataset_id for c in children] == [88201012, 88201101]
    assert ceil.resolve_child(children, "2010-12").dataset_id == 88201012
    assert ceil.resolve_child(children, "2011-01").doi == "10.1594/PANGAEA.88201101"
    assert ceil.resolve_child(children, "2011-03") is None


def test_collection_index_layouts_and_errors():
    titles = (
        "/* DATA DESCRIPTION:\nCitation:\tparent\n*/\nCitation\tURL\n"
        "Ceilometer at Ny-Alesund (1998-06)\thttps://doi.pangaea.de/10.1594/PANGAEA.101\n"
        "Ceilometer at Ny-Alesund (1998-07)\tdoi:10.1594/PANGAEA.102\n"
    )
    children = ceil.parse_collection_index(titles, "t.tab")
    assert ceil.resolve_child(children, "1998-07").dataset_id == 102 and children[0].line == 5
    periods = "Citation\tDOI\tDate/Time start\tDate/Time end\nseason\t10.1594/PANGAEA.7\t2010-11-15\t2011-02-10\n"
    child = ceil.parse_collection_index(periods, "p.tab")[0]
    assert ceil.resolve_child([child], "2011-02") == child and child.end == dt.datetime(2011, 2, 10, 23, 59, 59, 999999)
    assert ceil.resolve_child([child], "2011-03") is None
    with pytest.raises(ceil.PangaeaFormatError, match=r"t.tab, line 6: no child dataset DOI"):
        ceil.parse_collection_index(titles.replace("doi:10.1594/PANGAEA.102", "see parent"), "t.tab")
    with pytest.raises(ceil.PangaeaFormatError, match=r"t.tab, line 5: no period"):
        ceil.parse_collection_index(titles.replace("(1998-06)", ""), "t.tab")
    assert (
        ceil.child_url("https://doi.pangaea.de/10.1594/PANGAEA.880300?format=textfile&charset=UTF-8", child)
        == "https://doi.pangaea.de/10.1594/PANGAEA.7?format=textfile"
    )


def test_ceilometer_client_reads_index_then_child_over_http(served, sample_archive, tmp_path):
    manifest = sample.read_manifest(sample_archive)
    url = served.locations()["pangaea_url"]
    got = ceil.fetch_month(HttpClient(), url, "NYA", "2011-01", tmp_path)
    assert (
        got.child.dataset_id == 88201101
        and got.note == f"{got.table.height} rows for 2011-01 from doi:10.1594/PANGAEA.88201101"
    )
    assert got.table.height == manifest.rows_per_month["2011-01"]["ceilometer"]
    assert got.table["missing"].sum() == manifest.truth_per_month["2011-01"]["ceilometer_missing"]
    gets = [(r.path, r.query) for r in served.request_log]
    assert gets == [
        ("/pangaea/10.1594/PANGAEA.880300", {"format": ["textfile"], "charset": ["UTF-8"]}),
        ("/pangaea/10.1594/PANGAEA.88201101", {"format": ["textfile"]}),
    ]
    none = ceil.fetch_month(HttpClient(), url, "NYA", "2011-03", tmp_path)
    assert none.table.height == 0 and none.child is None
    assert none.note == f"no ceilometer data for 2011-03 (no child of {url} covers it)"
    assert requests.get(f"{served.url}/pangaea/10.1594/PANGAEA.88201101", timeout=10).status_code == 400


# ----------------------------------------------------------------------------- UiO avail.csv
def test_avail_csv_gives_the_days_without_listing_pages(served, sample_archive):
    base = served.locations()["uio_base_url"]
    found = uio_asi.archive_days(HttpClient(), base, "nya4", [557.7], ["2010-12"])
    assert found.source == "avail.csv" and found.days == [f"{d:%Y%m%d}" for d in month_days("2010-12")]
    assert [r.path for r in served.request_log] == ["/asim/avail.csv"]
    listing = uio_asi.list_month_days(HttpClient(), base, "nya4", 557.7, "2010-12")
    assert listing == found.days  # the index agrees with the folders
    assert uio_asi.archive_days(HttpClient(), base, "nya4", [630.0], ["2010-12"]).days == []


def test_days_fall_back_to_listing_pages_when_avail_csv_is_absent(tmp_path, loopback_server):
    for day in ("20101201", "20101202", "20110101"):
        (tmp_path / "nya4" / "5577" / day[:4] / day / "ut00").mkdir(parents=True)
    served = loopback_server(tmp_path)
    found = uio_asi.archive_days(HttpClient(), served.url, "nya4", [557.7], ["2010-12", "2011-01"])
    assert found == uio_asi.ArchiveDays(["20101201", "20101202", "20110101"], "listing")
    assert served.count("/avail.csv") == 1 and served.count("/nya4/5577/2010/") == 1
    served.faults["/avail.csv"] = ("status", 500, 99)
    with pytest.raises(DownloadError, match="avail.csv: HTTP 500"):  # only 404 means "not served"
        uio_asi.archive_days(HttpClient(backoff_s=0.01, retries=1), served.url, "nya4", [557.7], ["2010-12"])


def test_avail_csv_format_errors():
    text = "camera,wavelength,date,images\n# comment\nnya4,5577,2010-12-01,3\nnya4,630.0,20101202,1\n"
    assert uio_asi.parse_avail_csv(text).rows() == [("nya4", "5577", "20101201"), ("nya4", "6300", "20101202")]
    with pytest.raises(SourceFormatError, match="a.csv, line 1: header lacks column"):
        uio_asi.parse_avail_csv("camera,date\n", "a.csv")
    with pytest.raises(SourceFormatError, match=r"a.csv, line 2: invalid date or wavelength: 'nya4,5577,20101332'"):
        uio_asi.parse_avail_csv("camera,wavelength,date\nnya4,5577,20101332\n", "a.csv")
    with pytest.raises(SourceFormatError, match="a.csv, line 2: expected 3 comma-separated cells, found 2"):
        uio_asi.parse_avail_csv("camera,wavelength,date\nnya4,5577\n", "a.csv")


def test_new_days_sensor_listing_uses_avail_csv(sample_archive):
    settings = TameSettings(data_root=str(sample_archive.parent))
    server = sample.SampleArchiveServer.for_root(sample_archive.parent)  # shared by the session's tests
    before = len(server.request_log)
    days = list_archive_days(settings, ["2010-12", "2011-01"])
    assert len(days) == 62 and days[0] == "20101201" and days[-1] == "20110131"
    log = server.request_log[before:]  # only this call's requests
    assert "/asim/avail.csv" in [r.path for r in log]
    assert not any(r.path.startswith("/asim/nya4/") for r in log)
