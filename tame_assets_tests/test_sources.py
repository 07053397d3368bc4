"""Parsers on real-format fixtures and real files; download clients against loopback servers."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from http import HTTPStatus
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tame_assets.loopback import ArchiveRequestHandler, serve_directory
from tame_assets.sources import ceilometer, magnetometer, oath, uio_asi
from tame_assets.sources.http import DownloadError, HttpClient
from tame_assets.sources.images import ImageReadError, check_image, load_asi_image
from tame_assets.sources.labelled import LabelsFormatError, read_labelled_set


# ----------------------------------------------------------------------------- UiO file names and images
def test_real_uio_file_names_parse(real_dir):
    names = sorted(p.name for p in (real_dir / "uio_asi_nya6" / "images").glob("*.png"))
    parsed = [uio_asi.parse_asi_filename(n) for n in names]
    assert {p.camera for p in parsed} == {"nya6"} and {p.station for p in parsed} == {"NYA"}
    assert {p.wavelength_nm for p in parsed} <= {557.7, 630.0} and 630.0 in {p.wavelength_nm for p in parsed}
    first = uio_asi.parse_asi_filename("nya6_20141020_165407_5577_cal.png")
    assert first.time == dt.datetime(2014, 10, 20, 16, 54, 7) and first.calibrated


@pytest.mark.parametrize("name", ["nya6_2014_165407_5577_cal.png", "image.png", "nya6_20141340_165407_5577_cal.png"])
def test_unknown_file_name_is_a_clear_error(name):
    with pytest.raises(ValueError, match=name.split("_")[0]):
        uio_asi.parse_asi_filename(name)


def test_real_16bit_images_keep_full_range(real_dir):
    from tame_assets.ml.preprocessing import disk_mask, scale_to_unit

    path = next((real_dir / "uio_asi_nya6" / "images").glob("*.png"))
    image = load_asi_image(path)
    assert image.dtype == np.uint16 and image.ndim == 2
    assert image.min() == 0 and image.max() == 65535  # survives loading, not clipped to 255
    inside = image[disk_mask(*image.shape)]
    assert np.percentile(inside, 99.5) > 255  # the percentile clip sees 16-bit values
    unit = scale_to_unit(image.astype(np.float32))
    assert unit.max() == pytest.approx(1.0) and unit.min() == 0.0


def test_truncated_png_is_reported(tmp_path):
    path = tmp_path / "nya4_20101201_000000_5577_cal.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    assert "truncated" in check_image(path) or "unreadable" in check_image(path)
    with pytest.raises(ImageReadError, match=path.name):
        load_asi_image(path)


# ----------------------------------------------------------------------------- magnetometer
def test_real_iaga2002_wic_second_file(real_dir):
    df = magnetometer.parse_iaga2002(real_dir / "magnetometer" / "wic20230712vsec.sec")
    assert df.height == 86_400 and df["station"].unique().to_list() == ["WIC"]
    assert df["f_nt"].null_count() == 86_400  # F = 88888.00 → not recorded → NULL
    first = df.row(0, named=True)  # EHZF: Y = E, X = sqrt(H² − E²), h_nt = H
    assert first["y_nt"] == pytest.approx(444.85)
    assert first["x_nt"] == pytest.approx(np.sqrt(21064.24**2 - 444.85**2))
    assert first["h_nt"] == pytest.approx(21064.24)
    assert df["time"][-1] == dt.datetime(2023, 7, 12, 23, 59, 59)


def test_real_iaga2002_boulder_hdzf_minutes_of_arc(real_dir):
    files = sorted((real_dir / "magnetometer").glob("bou*.min"))
    assert len(files) == 7
    df = pl.concat([magnetometer.parse_iaga2002(f) for f in files])
    assert df.height == 7 * 1440
    row = df.row(0, named=True)  # H 20873.75, D −9.99′ → X = H cos D, Y = H sin D
    d = np.deg2rad(-9.99 / 60)
    assert row["x_nt"] == pytest.approx(20873.75 * np.cos(d)) and row["y_nt"] == pytest.approx(20873.75 * np.sin(d))
    assert row["h_nt"] == pytest.approx(20873.75)


def test_iaga2002_missing_values_and_malformed_line(tmp_path):
    frame = pl.DataFrame({"time": [dt.datetime(2010, 12, 1, 0, m) for m in range(3)],
                          "x_nt": [7900.0, None, 7901.0], "y_nt": [800.0, 801.0, 802.0], "z_nt": [52600.0] * 3})
    path = magnetometer.write_iaga2002(frame, tmp_path / "nal20101201vmin.min", "NAL")
    parsed = magnetometer.parse_iaga2002(path)
    assert parsed["x_nt"].to_list()[1] is None and parsed["h_nt"].to_list()[1] is None
    assert parsed["f_nt"].null_count() == 3
    assert parsed["x_nt"][0] == 7900.0 and parsed["h_nt"][0] == pytest.approx(np.hypot(7900, 800))
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1] + " 12.0"
    bad = tmp_path / "bad.min"
    bad.write_text("\n".join(lines))
    with pytest.raises(magnetometer.MagnetometerFormatError, match=rf"bad.min, line {len(lines)}"):
        magnetometer.parse_iaga2002(bad)
    lines[-1] = lines[-1].replace("7901.00", "79o1.00").rsplit(" 12.0", 1)[0]
    bad.write_text("\n".join(lines))
    with pytest.raises(magnetometer.MagnetometerFormatError, match="not a number"):
        magnetometer.parse_iaga2002(bad)


IMAGE_COLUMN = """YYYY MM DD HH MM SS     NAL X   NAL Y   NAL Z   LYR X   LYR Y   LYR Z
----------------------------------------------------------------------
2010 12 01 00 00 00     7912.3   801.2 52611.0  8745.1  1203.4 51988.2
2010 12 01 00 00 10     7911.8   801.0 52611.2 99999.9  1203.2 51988.0
2010 12 01 00 00 20     7910.9   800.7 52611.5  8744.2  1203.1 51987.9
"""


def test_image_column_format(tmp_path):
    path = tmp_path / "image_201012.txt"
    path.write_text(IMAGE_COLUMN)
    df = magnetometer.parse_image_column(path)
    assert df.height == 6 and set(df["station"]) == {"NAL", "LYR"}
    lyr = df.filter(pl.col("station") == "LYR").sort("time")
    assert lyr["x_nt"].to_list()[1] is None  # 99999.9 = missing
    nal = magnetometer.parse_image_column(path, station="NAL")
    assert nal["time"].to_list()[1] == dt.datetime(2010, 12, 1, 0, 0, 10) and nal["z_nt"][0] == 52611.0
    path.write_text(IMAGE_COLUMN.replace("801.0 52611.2", "801.0"))
    with pytest.raises(magnetometer.MagnetometerFormatError, match="line 4"):
        magnetometer.parse_image_column(path)


# ----------------------------------------------------------------------------- ceilometer
def test_pangaea_tab_no_cloud_and_missing_are_explicit(tmp_path):
    text = ("/* DATA DESCRIPTION:\nCitation:\tMaturilli, M; Ebell, K (2018)\n*/\nDate/Time\tCBH [m]\n"
            "2010-12-01T00:00\t450\n2010-12-01T00:05\t\n2010-12-01T00:10\t\n2010-12-01T00:25\t3100\n"
            "2010-12-01T00:30\t2900\n")
    path = tmp_path / "NYA_2010-12.tab"
    path.write_text(text)
    df = ceilometer.parse_pangaea_tab(path, "NYA")
    assert df["time"].to_list() == [dt.datetime(2010, 12, 1, 0, m) for m in range(0, 35, 5)]
    assert df["cbh_m"].to_list() == [450.0, None, None, None, None, 3100.0, 2900.0]
    assert df["cloud_detected"].to_list() == [True, False, False, None, None, True, True]
    assert df["missing"].to_list() == [False, False, False, True, True, False, False]
    path.write_text(text.replace("3100", "3100\textra"))
    with pytest.raises(ceilometer.PangaeaFormatError, match="NYA_2010-12.tab, line 8: expected 2"):
        ceilometer.parse_pangaea_tab(path, "NYA")


# ----------------------------------------------------------------------------- OATH and labelled sets
def test_real_oath_label_file(real_dir):
    import csv

    path = real_dir / "oath" / "classifications" / "classifications.csv"
    df = oath.parse_classifications(path, image_root=real_dir / "oath")
    lines = path.read_text().splitlines()
    start = lines.index("class2,class6,picNum,picType,rotAng")
    expected: dict[str, int] = {}
    for row in csv.DictReader(lines[start:]):
        expected[row["picType"]] = expected.get(row["picType"], 0) + 1
    assert df.height == 5824 == sum(expected.values())
    counts = dict(df.group_by("pic_type").len().iter_rows())
    assert counts == expected and counts["noaurora"] == dict(df.group_by("label").len().iter_rows())["clear"]
    assert df.filter(pl.col("pic_num") == 1)["angle"][0] == 334.0
    assert Path(df.filter(pl.col("pic_num") == 1)["path"][0]).exists()


def test_oath_bad_row_names_line(tmp_path):
    path = tmp_path / "classifications.csv"
    path.write_text("licence text\nclass2,class6,picNum,label,angle\n0,0,00001,arc,10\n0,9,00002,arc,20\n")
    with pytest.raises(oath.OathFormatError, match="line 4"):
        oath.parse_classifications(path)


def test_real_labelled_set_and_errors(real_dir, tmp_path):
    folder = real_dir / "uio_asi_nya6"
    table = read_labelled_set(folder / "labels.csv", folder / "images")
    assert table.height == 300 and {"file", "path", "label", "is_aurora", "station"} <= set(table.columns)
    assert table.filter(pl.col("label") == "aurora-less")["is_aurora"].sum() == 0
    assert table.filter(pl.col("label") == "arc")["is_aurora"].all()
    bad = tmp_path / "labels.csv"
    bad.write_text("filename,label\nnya6_20141020_165407_5577_cal.png,arc\nmissing.png,arc\n")
    with pytest.raises(LabelsFormatError, match="line 3"):
        read_labelled_set(bad, folder / "images")
    bad.write_text("file,kind\na.png,arc\n")
    with pytest.raises(LabelsFormatError, match="filename, label"):
        read_labelled_set(bad, folder / "images")


# ----------------------------------------------------------------------------- HTTP client on loopback
class FaultyHandler(ArchiveRequestHandler):
    """Fault injection: /flaky/* fails with 500 twice; /drop/* closes the connection half-way
    through the first response; /slow/* answers after 2 s."""

    counts: dict[str, int] = {}
    lock = threading.Lock()

    def do_GET(self):
        with self.lock:
            n = self.counts[self.path] = self.counts.get(self.path, 0) + 1
        if self.path.startswith("/flaky/") and n <= 2:
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR)
            return
        if self.path.startswith("/slow/"):
            time.sleep(2)
        if self.path.startswith("/drop/") and n == 1:
            data = Path(self.translate_path(self.path.replace("/drop/", "/"))).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 3])
            self.wfile.flush()
            self.connection.close()
            self.close_connection = True
            return
        self.path = self.path.replace("/flaky/", "/").replace("/drop/", "/").replace("/slow/", "/")
        super().do_GET()


@pytest.fixture()
def served(tmp_path):
    payload = np.random.default_rng(1).bytes(300_000)
    (tmp_path / "blob.bin").write_bytes(payload)
    FaultyHandler.counts = {}
    with serve_directory(tmp_path, handler=FaultyHandler) as base:
        yield base, payload


def test_download_retries_after_server_errors(served, tmp_path):
    base, payload = served
    result = HttpClient(backoff_s=0.01).download(f"{base}/flaky/blob.bin", tmp_path / "out" / "blob.bin",
                                                 sha256=hashlib.sha256(payload).hexdigest())
    assert result.path.read_bytes() == payload and FaultyHandler.counts["/flaky/blob.bin"] == 3


def test_download_resumes_after_dropped_connection(served, tmp_path):
    base, payload = served
    result = HttpClient(backoff_s=0.01).download(f"{base}/drop/blob.bin", tmp_path / "out" / "blob.bin")
    assert result.path.read_bytes() == payload and result.resumed
    assert not (tmp_path / "out" / "blob.bin.part").exists()


def test_404_names_url_and_status(served, tmp_path):
    base, _ = served
    with pytest.raises(DownloadError, match=rf"{base}/nothing.bin: HTTP 404"):
        HttpClient(backoff_s=0.01).download(f"{base}/nothing.bin", tmp_path / "x")
    assert FaultyHandler.counts["/nothing.bin"] == 1  # 4xx is not retried


def test_timeout_is_retried_then_reported(served, tmp_path):
    base, _ = served
    with pytest.raises(DownloadError, match="slow/blob.bin.*gave up after 2 attempts"):
        HttpClient(timeout=(1, 0.3), retries=1, backoff_s=0.01).download(f"{base}/slow/blob.bin", tmp_path / "x")


def test_size_mismatch_is_refused(served, tmp_path):
    base, payload = served
    with pytest.raises(DownloadError, match="size mismatch"):
        HttpClient().download(f"{base}/blob.bin", tmp_path / "x", expected_size=len(payload) + 1)


# ----------------------------------------------------------------------------- sample archive through the clients
def test_sample_archive_is_deterministic(tmp_path):
    from tame_assets.sample import generate_sample_archive

    a = generate_sample_archive(tmp_path / "a", months=("2010-12",), images_per_day=1, oath_images=12, size=64)
    b = generate_sample_archive(tmp_path / "b", months=("2010-12",), images_per_day=1, oath_images=12, size=64)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert a.expected_rows == b.expected_rows


def test_sample_served_through_real_clients(sample_archive, tmp_path):
    from tame_assets.sample import read_manifest

    manifest = read_manifest(sample_archive)
    with serve_directory(sample_archive) as base:
        client = HttpClient()
        images, quarantine = uio_asi.fetch_month(client, f"{base}/asim", "nya4", [557.7], "2010-12", tmp_path / "asim")
        mag = magnetometer.fetch_month(client, f"{base}/image", "NAL", "2010-12", tmp_path / "mag")
        ceil = ceilometer.fetch_month(client, f"{base}/pangaea/{{site}}_{{month}}.tab", "NYA", "2010-12", tmp_path / "c")
        labels = oath.fetch_oath(client, f"{base}/oath/oath_v1.1_sample.tgz", tmp_path / "oath")
    expected = manifest.rows_per_month["2010-12"]
    assert images.height == expected["asim_images"] and mag.height == expected["magnetometer"]
    assert ceil.height == expected["ceilometer"] and labels.height == manifest.expected_rows["oath_images"]
    assert quarantine["file"].to_list() == [n for n in manifest.corrupt_images if "201012" in n]
    assert images.filter(~pl.col("valid"))["file_name"].to_list() == quarantine["file"].to_list()
    assert images["time"].is_sorted() and Path(images["local_path"][0]).exists()
    assert images["local_path"][0].endswith(f"NYA/2010/12/{images['time'][0]:%d}/{images['file_name'][0]}")
    assert ceil["missing"].sum() > 0 and (ceil["cloud_detected"] == False).sum() > 0  # noqa: E712
    assert all(Path(p).exists() for p in labels["path_rotated"])
