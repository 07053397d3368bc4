"""THEMIS all-sky imagers: level-1 CDF and UCalgary PGM readers on the real files, file names and
archive layouts, the frame table, the synthetic writers (checked against the real files' structure)
and monthly downloads from both archive layouts over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tame_assets.sources import themis
from tame_assets.sources.errors import SourceFormatError
from tame_assets.sources.http import HttpClient
from tame_assets.sources.themis import ThemisFormatError

GAKO_CDF = "themis/cdf_gako/thg_l1_asf_gako_2011010617_v01.cdf"
GAKO_AST = "themis/cdf_gako/thg_l1_ast_gako_20110505_v01.cdf"
EPOCH_1970 = dt.datetime(1970, 1, 1)


@pytest.fixture(scope="module")
def gill_files(real_dir) -> list[Path]:
    files = sorted((real_dir / "themis" / "pgm_gill").glob("*.pgm*"))
    assert len(files) == 6
    return files


def _breakdown_times(epoch_values) -> list[dt.datetime]:
    """CDF_EPOCH values → datetimes via cdflib's component breakdown (independent of to_datetime)."""
    import cdflib

    out = []
    for y, mo, d, h, mi, s, ms in np.atleast_2d(cdflib.cdfepoch.breakdown(np.asarray(epoch_values))):
        out.append(dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(ms) * 1000))
    return out


def _as_datetimes(times: np.ndarray) -> list[dt.datetime]:
    return [t.item() for t in times.astype("datetime64[us]")]


# ----------------------------------------------------------------------------- real CDF
def test_real_gakona_cdf_frames_and_exact_times(real_dir):
    import cdflib

    path = real_dir / GAKO_CDF
    read = themis.read_themis_cdf(path)
    assert (read.site, read.device, read.format, read.product) == ("gako", None, "cdf", "asf")
    assert read.frames.shape == (23, 256, 256) and read.frames.dtype == np.uint16
    assert read.frame_index.tolist() == list(range(23))

    raw = cdflib.CDF(path)
    expected = _breakdown_times(raw.varget("thg_asf_gako_epoch"))
    assert _as_datetimes(read.times) == expected
    # the first and last exposure starts, as read from the file
    assert expected[0] == dt.datetime(2011, 1, 6, 17, 0, 0, 53000)
    assert expected[-1] == dt.datetime(2011, 1, 6, 17, 1, 6, 20000)
    # range_epoch (first, last) and the whole-second _time agree with the frame times
    assert _breakdown_times(raw.varget("range_epoch")) == [expected[0], expected[-1]]
    seconds = raw.varget("thg_asf_gako_time")
    assert [EPOCH_1970 + dt.timedelta(seconds=float(s)) for s in seconds] == [
        t.replace(microsecond=0) for t in expected
    ]
    cadence = np.diff(read.times).astype("timedelta64[ms]").astype(int)
    assert cadence.min() > 2900 and cadence.max() < 3100  # THEMIS ASI: one frame every ~3 s
    # pixels exactly as stored (row 0 = first row), no rescaling
    assert np.array_equal(read.frames, raw.varget("thg_asf_gako"))
    assert 0 < read.frames.min() < read.frames.max() <= 65535


def test_real_thumbnail_cdf_uses_time_variable(real_dir):
    import cdflib

    path = real_dir / GAKO_AST
    read = themis.read_themis_cdf(path)
    assert (read.site, read.product) == ("gako", "ast")
    assert read.frames.shape == (1075, 32, 32) and read.frames.dtype == np.uint16
    raw = cdflib.CDF(path)
    # the epoch variable is virtual in this product: one stored record, so times come from _time
    assert np.size(raw.varget("thg_ast_gako_epoch")) == 1
    seconds = raw.varget("thg_ast_gako_time")
    assert _as_datetimes(read.times) == [EPOCH_1970 + dt.timedelta(seconds=float(s)) for s in seconds]
    first, last = _breakdown_times(raw.varget("range_epoch"))
    assert _as_datetimes(read.times[[0, -1]]) == [first, last]
    assert np.all(np.diff(read.times).astype(np.int64) > 0)


@pytest.mark.parametrize("cut", [0, 100, 20_000, 1_000_000, -5_000])
def test_truncated_cdf_is_a_one_line_error_naming_the_file(real_dir, tmp_path, cut):
    data = (real_dir / GAKO_CDF).read_bytes()
    bad = tmp_path / "thg_l1_asf_gako_2011010617_v01.cdf"
    bad.write_bytes(data[:cut] if cut >= 0 else data[: len(data) + cut])
    with pytest.raises(ThemisFormatError) as info:
        themis.read_themis_cdf(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message
    assert isinstance(info.value, SourceFormatError) and info.value.source == str(bad) and info.value.line is None


def test_garbage_and_missing_cdf(tmp_path):
    bad = tmp_path / "thg_l1_asf_gako_2011010617_v01.cdf"
    bad.write_bytes(b"this is not a CDF file at all" * 100)
    with pytest.raises(ThemisFormatError, match=re.escape(f"{bad}: unreadable CDF")):
        themis.read_themis_cdf(bad)
    with pytest.raises(ThemisFormatError, match="file not found"):
        themis.read_themis_cdf(tmp_path / "missing.cdf")


def test_cdf_frame_without_a_stored_epoch_falls_back_to_its_time_value(tmp_path):
    from cdflib.cdfwrite import CDF

    path = tmp_path / "thg_l1_asf_zzzz_2011010617_v01.cdf"
    epoch_1970 = 62167219200000.0
    seconds = np.array([1294333200.0, 1294333203.0, 1294333206.0])
    epoch = epoch_1970 + seconds * 1000 + 53
    epoch[1] = -1e31  # the CDF fill value
    with CDF(path) as cdf:
        cdf.write_var(
            {"Variable": "thg_asf_zzzz", "Data_Type": 12, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": [4, 4]},
            {},
            np.zeros((3, 4, 4), dtype=np.uint16),
        )
        cdf.write_var(
            {"Variable": "thg_asf_zzzz_time", "Data_Type": 22, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": []},
            {},
            seconds,
        )
        cdf.write_var(
            {"Variable": "thg_asf_zzzz_epoch", "Data_Type": 31, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": []},
            {},
            epoch,
        )
    read = themis.read_themis_cdf(path)
    assert _as_datetimes(read.times) == [
        dt.datetime(2011, 1, 6, 17, 0, 0, 53000),
        dt.datetime(2011, 1, 6, 17, 0, 3),
        dt.datetime(2011, 1, 6, 17, 0, 6, 53000),
    ]


# ----------------------------------------------------------------------------- real PGM
def _pil_frames(data: bytes) -> list[np.ndarray]:
    """Decode each frame with PIL from the offsets of its ``P5`` header line (an independent decoder)."""
    starts = [m.start() for m in re.finditer(rb'P5\n#"', data)]
    out = []
    for start in starts:
        with Image.open(io.BytesIO(data[start:])) as im:
            out.append(np.asarray(im).astype(np.uint16))
    return out


def _raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


def test_real_gillam_pgm_frames_times_and_pixels(gill_files):
    all_times = []
    for path in gill_files:
        read = themis.read_themis_pgm(path)
        assert (read.site, read.device, read.format, read.product, read.error) == (
            "gill",
            "themis19",
            "pgm",
            "full",
            None,
        )
        assert read.frames.shape == (20, 256, 256) and read.frames.dtype == np.uint16
        data = _raw(path)
        header_times = [
            dt.datetime.strptime(m.decode(), "%Y-%m-%d %H:%M:%S.%f")
            for m in re.findall(rb'#"Image request start" (\S+ \S+) UTC', data)
        ]
        assert _as_datetimes(read.times) == header_times
        assert all(np.array_equal(a, b) for a, b in zip(read.frames, _pil_frames(data), strict=True))
        start = themis.parse_themis_filename(path.name).start
        assert all(start <= t < start + dt.timedelta(minutes=1) for t in header_times)
        assert read.metadata[0]["Site unique ID"] == "gill" and read.metadata[0]["Imager unique ID"] == "themis19"
        all_times += header_times
    assert len(all_times) == 120 == len(set(all_times))
    assert all_times[0] == dt.datetime(2014, 3, 10, 6, 0, 0, 63119)
    assert all_times[-1] == dt.datetime(2014, 3, 10, 6, 5, 57, 63061)
    assert all_times == sorted(all_times)


def test_truncated_pgm_keeps_complete_frames(gill_files, tmp_path):
    plain = next(p for p in gill_files if p.suffix == ".pgm")
    full = themis.read_themis_pgm(plain)
    data = plain.read_bytes()
    starts = [m.start() for m in re.finditer(rb'P5\n#"', data)]
    cut = starts[7] + (starts[8] - starts[7]) // 2  # inside frame 7's pixels
    bad = tmp_path / plain.name
    bad.write_bytes(data[:cut])
    read = themis.read_themis_pgm(bad)
    assert len(read) == 7 and np.array_equal(read.frames, full.frames[:7])
    assert np.array_equal(read.times, full.times[:7])
    assert (
        read.error.startswith(f"frame 7 at byte {starts[7]}: pixel data cut off")
        and "7 complete frames kept" in read.error
    )

    table = themis.frames_table([bad])
    assert table["ok"].to_list() == [True] * 7 + [False]
    last = table.row(7, named=True)
    assert last["frame_index"] == 7 and last["error"].startswith(f"{bad}: frame 7 ")


def test_truncated_gzip_pgm_keeps_complete_frames(gill_files, tmp_path):
    zipped = gill_files[0]
    full = themis.read_themis_pgm(zipped)
    data = zipped.read_bytes()
    bad = tmp_path / zipped.name
    bad.write_bytes(data[: len(data) // 2])
    read = themis.read_themis_pgm(bad)
    assert 0 < len(read) < 20 and np.array_equal(read.frames, full.frames[: len(read)])
    assert "gzip stream truncated" in read.error and f"frame {len(read)} at byte" in read.error


def test_corrupt_and_multi_member_gzip_pgm(gill_files, tmp_path):
    zipped = gill_files[0]
    data = bytearray(zipped.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroed block inside the deflate stream
    bad = tmp_path / zipped.name
    bad.write_bytes(bytes(data))
    read = themis.read_themis_pgm(bad)  # deflate decodes the damage into wrong pixels; the CRC shows it at the end
    assert len(read) == 0 and "corrupt gzip stream" in read.error and "member is discarded" in read.error
    table = themis.frames_table([bad])
    assert table.height == 1 and not table["ok"][0] and table["frame_index"][0] == 0

    bad.write_bytes(gill_files[1].read_bytes() + bytes(data))  # an intact member, then the damaged one
    read = themis.read_themis_pgm(bad)
    assert len(read) == 20 and np.array_equal(read.frames, themis.read_themis_pgm(gill_files[1]).frames)
    assert read.error.startswith("corrupt gzip stream") and read.error.endswith("; 20 complete frames kept")

    joined = tmp_path / "20140310_0600_gill_themis19_full.pgm.gz"
    joined.write_bytes(gill_files[0].read_bytes() + gill_files[1].read_bytes())  # two gzip members
    both = themis.read_themis_pgm(joined)
    assert len(both) == 40 and both.error is None
    assert np.array_equal(both.times[20:], themis.read_themis_pgm(gill_files[1]).times)


def test_pgm_frame_with_a_damaged_time_line_is_kept_but_not_ok(gill_files, tmp_path):
    plain = next(p for p in gill_files if p.suffix == ".pgm")
    data = plain.read_bytes()
    target = re.findall(rb'#"Image request start" [^\n]+', data)[3]
    damaged = target.replace(b"2014-03-10", b"2014-13-10")  # same length: the raster offsets stay valid
    bad = tmp_path / plain.name
    bad.write_bytes(data.replace(target, damaged, 1))
    read = themis.read_themis_pgm(bad)
    assert len(read) == 20 and read.error is None
    assert np.isnat(read.times).tolist() == [i == 3 for i in range(20)]
    assert (
        read.metadata[3][themis.PGM_TIME_KEY].startswith("2014-13-10") and read.metadata[3]["Site unique ID"] == "gill"
    )
    table = themis.frames_table([bad])
    assert table.filter(~pl.col("ok"))["frame_index"].to_list() == [3]
    assert table.filter(~pl.col("ok"))["error"][0] == f"{bad}: frame 3 has no valid time in the file"


def test_pgm_with_garbage_after_frames_and_empty_file(gill_files, tmp_path):
    plain = next(p for p in gill_files if p.suffix == ".pgm")
    bad = tmp_path / plain.name
    bad.write_bytes(plain.read_bytes() + b"JUNK" * 10)
    read = themis.read_themis_pgm(bad)
    assert len(read) == 20 and read.error.startswith("frame 20 at byte ") and "no P5 magic number" in read.error
    bad.write_bytes(plain.read_bytes() + b"\n \n")  # trailing whitespace is not a frame and not an error
    read = themis.read_themis_pgm(bad)
    assert len(read) == 20 and read.error is None
    empty = tmp_path / "20140310_0700_gill_themis19_full.pgm"
    empty.write_bytes(b"")
    read = themis.read_themis_pgm(empty)  # issue 25: an empty file is an error (a quarantined row), not nothing
    assert len(read) == 0 and read.error == "no frame in the file (0 bytes)" and read.frames.shape == (0, 256, 256)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 4), fraction=st.floats(0.0, 1.0), gz=st.booleans())
def test_pgm_any_cut_keeps_exactly_the_complete_frames(tmp_path, n, fraction, gz):
    frames = np.random.default_rng(n).integers(0, 65536, (n, 16, 24), dtype=np.uint16)
    times = np.datetime64("2014-03-10T06:00:00.5") + np.arange(n) * np.timedelta64(3, "s")
    whole = tmp_path / "20140310_0600_zzzz_themis01_full.pgm"
    themis.write_themis_pgm(whole, frames, times, "zzzz", "themis01")
    data = whole.read_bytes()
    ends = [m.start() for m in re.finditer(rb'P5\n#"', data)][1:] + [len(data)]  # where each frame ends
    stored = gzip.compress(data, mtime=0) if gz else data
    cut = round(fraction * len(stored))
    bad = tmp_path / (whole.name + (".gz" if gz else ""))
    bad.write_bytes(stored[:cut])
    read = themis.read_themis_pgm(bad)
    # a cut gzip stream decodes to some prefix of the data: the frames complete in that prefix
    complete = len(read) if gz else sum(end <= cut for end in ends)
    assert len(read) == complete and np.array_equal(read.times, times[:complete])
    assert complete == 0 or np.array_equal(read.frames, frames[:complete])
    assert (read.error is None) == (cut == len(stored) or (not gz and cut in ends)), (cut, read.error)


# ----------------------------------------------------------------------------- names and layouts
def test_real_file_names_and_archive_paths(real_dir, gill_files):
    cdf = themis.parse_themis_filename((real_dir / GAKO_CDF).name)
    assert (cdf.site, cdf.station, cdf.device, cdf.format, cdf.product, cdf.start, cdf.version) == (
        "gako",
        "GAKO",
        None,
        "cdf",
        "asf",
        dt.datetime(2011, 1, 6, 17),
        1,
    )
    assert themis.relative_archive_path(cdf) == "thg/l1/asi/gako/2011/01/thg_l1_asf_gako_2011010617_v01.cdf"
    ast = themis.parse_themis_filename(GAKO_AST)
    assert (ast.product, ast.start) == ("ast", dt.datetime(2011, 5, 5))
    pgm = themis.parse_themis_filename(gill_files[0].name)
    assert (pgm.site, pgm.device, pgm.format, pgm.product, pgm.start, pgm.gzipped) == (
        "gill",
        "themis19",
        "pgm",
        "full",
        dt.datetime(2014, 3, 10, 6, 0),
        True,
    )
    assert themis.relative_archive_path(pgm) == "2014/03/10/gill_themis19/ut06/20140310_0600_gill_themis19_full.pgm.gz"
    assert themis.parse_themis_filename(gill_files[-1].name).gzipped is False
    assert themis.cdf_file_name("gako", cdf.start) == cdf.name
    assert themis.pgm_file_name("gill", "themis19", pgm.start) == pgm.name


@pytest.mark.parametrize(
    "name",
    [
        "thg_l1_asf_gako_20110106_v01.cdf",
        "thg_l1_ast_gako_2011010617_v01.cdf",
        "thg_l1_asf_GAKO_2011010617_v01.cdf",
        "thg_l1_asf_gako_2011013217_v01.cdf",
        "20140310_0660_gill_themis19_full.pgm.gz",
        "20140310_0600_gill_cam19_full.pgm",
        "nya6_20141020_165407_5577_cal.png",
    ],
)
def test_bad_file_names_are_clear_errors(name):
    with pytest.raises(ValueError, match=f"^{re.escape(name)}: "):
        themis.parse_themis_filename(name)


@pytest.mark.parametrize("site", ["GAKO", "../x", "gak", "ga ko", ""])
def test_site_codes_are_validated(site, tmp_path):
    with pytest.raises(ValueError, match="not a THEMIS site code"):
        themis.list_cdf_month(HttpClient(), "http://127.0.0.1:9", site, "2011-01")
    with pytest.raises(ValueError, match="not a THEMIS site code"):
        themis.find_local_files(tmp_path, site=site)


def test_find_local_files_both_formats(tmp_path):
    frames = np.zeros((2, 8, 8), dtype=np.uint16)
    times = np.array(["2011-01-06T17:00:01", "2011-01-06T17:00:04"], dtype="datetime64[ns]")
    themis.write_themis_cdf(tmp_path / "a/thg_l1_asf_gako_2011010617_v01.cdf", frames, times, "gako")
    themis.write_themis_cdf(tmp_path / "a/thg_l1_ast_gako_20110106_v01.cdf", frames, times, "gako", product="ast")
    themis.write_themis_pgm(tmp_path / "b/c/20110106_1700_gako_themis07_full.pgm.gz", frames, times, "gako", "themis07")
    themis.write_themis_pgm(
        tmp_path / "20110201_0000_gill_themis19_full.pgm", frames, times + np.timedelta64(26, "D"), "gill", "themis19"
    )
    (tmp_path / "notes.cdf").write_text("not THEMIS")
    (tmp_path / "nya6_20141020_165407_5577_cal.png").write_bytes(b"")

    found = themis.find_local_files(tmp_path)
    assert found["file_name"].to_list() == [
        "thg_l1_asf_gako_2011010617_v01.cdf",
        "20110106_1700_gako_themis07_full.pgm.gz",
        "20110201_0000_gill_themis19_full.pgm",
    ]
    assert found["format"].to_list() == ["cdf", "pgm", "pgm"]
    assert found["start"].to_list()[:2] == [dt.datetime(2011, 1, 6, 17), dt.datetime(2011, 1, 6, 17)]
    assert themis.find_local_files(tmp_path, site="gill")["site"].to_list() == ["gill"]
    assert themis.find_local_files(tmp_path, month="2011-01").height == 2
    assert themis.find_local_files(tmp_path, products=("ast",))["product"].to_list() == ["ast"]
    with pytest.raises(ValueError, match="invalid month '2011-13'"):
        themis.find_local_files(tmp_path, month="2011-13")


# ----------------------------------------------------------------------------- frame table
def test_frames_table_real_files(real_dir, gill_files):
    table = themis.frames_table([real_dir / GAKO_CDF, *gill_files])
    assert list(table.schema) == list(themis.FRAMES_SCHEMA) and table.height == 23 + 120
    assert table["ok"].all() and table["error"].null_count() == table.height
    assert table["network"].unique().to_list() == ["themis"]
    assert table["wavelength_0.1nm"].unique().to_list() == [themis.WHITE_LIGHT_WAVELENGTH]
    by_station = dict(table.group_by("station").agg(pl.len()).iter_rows())
    assert by_station == {"GAKO": 23, "GILL": 120}
    assert table.filter(pl.col("station") == "GILL")["device"].unique().to_list() == ["themis19"]
    assert table["time"].is_sorted() and table.select("local_path", "frame_index").is_unique().all()
    gako = table.filter(pl.col("camera") == "gako")
    assert gako["time"][0] == dt.datetime(2011, 1, 6, 17, 0, 0, 53000) and gako["frame_index"].to_list() == list(
        range(23)
    )


def test_frames_table_without_pixel_decoding_lists_the_same_frames(real_dir, gill_files, tmp_path):
    paths = [real_dir / GAKO_CDF, gill_files[-1]]
    assert themis.frames_table(paths, verify_pixels=False).equals(themis.frames_table(paths))
    times_only = themis.read_themis_cdf(real_dir / GAKO_CDF, pixels=False)
    assert times_only.frames.shape == (23, 0, 0) and len(times_only.times) == 23
    # damaged image blocks: found only when the pixels are decoded
    data = bytearray((real_dir / GAKO_CDF).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)
    bad = tmp_path / "thg_l1_asf_gako_2011010617_v01.cdf"
    bad.write_bytes(bytes(data))
    checked = themis.frames_table([bad])
    assert checked.height == 1 and not checked["ok"][0] and checked["error"][0].startswith(f"{bad}: unreadable CDF")
    assert themis.frames_table([bad], verify_pixels=False)["ok"].all()


def test_frames_table_keeps_a_row_for_an_unreadable_file(tmp_path):
    bad = tmp_path / "thg_l1_asf_gako_2011010617_v01.cdf"
    bad.write_bytes(b"\x00" * 64)
    table = themis.frames_table([bad])
    row = table.row(0, named=True)
    assert table.height == 1 and row["ok"] is False and row["frame_index"] is None
    assert row["time"] == dt.datetime(2011, 1, 6, 17) and row["station"] == "GAKO"
    assert row["error"].startswith(f"{bad}: ") and "\n" not in row["error"]


# ----------------------------------------------------------------------------- writers
def _random_frames(n=4, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 65536, (n, 256, 256), dtype=np.uint16)
    times = np.datetime64("2012-02-29T23:59:55.123456") + np.arange(n) * np.timedelta64(3_001_500, "us")
    return frames, times


def test_cdf_writer_round_trip_and_atomic_idempotent(tmp_path):
    frames, times = _random_frames()
    path = tmp_path / "thg_l1_asf_zzzz_2012022923_v01.cdf"
    themis.write_themis_cdf(path, frames, times, "zzzz")
    read = themis.read_themis_cdf(path)
    assert np.array_equal(read.frames, frames) and read.site == "zzzz"
    assert np.array_equal(read.times, times.astype("datetime64[ms]").astype("datetime64[ns]"))  # CDF_EPOCH: ms
    first = path.read_bytes()
    themis.write_themis_cdf(path, frames, times, "zzzz")
    assert path.read_bytes() == first and [p.name for p in tmp_path.iterdir()] == [path.name]
    themis.write_themis_cdf(path, frames, times, "zzzz", compress=True)  # gzip as in the real files
    assert np.array_equal(themis.read_themis_cdf(path).frames, frames) and path.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_cdf_writer_structure_matches_the_real_file(real_dir, tmp_path):
    import cdflib

    frames, times = _random_frames(3)
    path = themis.write_themis_cdf(
        tmp_path / "thg_l1_asf_zzzz_2012022923_v01.cdf", frames, times, "zzzz", compress=True
    )
    real, ours = cdflib.CDF(real_dir / GAKO_CDF), cdflib.CDF(path)
    real_vars = real.cdf_info().zVariables
    assert ours.cdf_info().zVariables == [v.replace("gako", "zzzz") for v in real_vars]
    assert ours.cdf_info().Majority == real.cdf_info().Majority
    assert ours.varinq("thg_asf_zzzz").Compress == real.varinq("thg_asf_gako").Compress == 6
    for name in real_vars:
        a, b = real.varinq(name), ours.varinq(name.replace("gako", "zzzz"))
        assert (b.Data_Type_Description, b.Dim_Sizes, b.Rec_Vary) == (
            a.Data_Type_Description,
            a.Dim_Sizes,
            a.Rec_Vary,
        ), name
        assert ours.varget(name.replace("gako", "zzzz")).dtype == real.varget(name).dtype, name
    for attr in ("DEPEND_0", "DEPEND_1", "DEPEND_2", "DEPEND_TIME", "DEPEND_EPOCH0", "UNITS", "VAR_TYPE"):
        assert ours.varattsget("thg_asf_zzzz")[attr] == real.varattsget("thg_asf_gako")[attr].replace("gako", "zzzz")
    assert set(ours.globalattsget()) <= set(real.globalattsget())


def test_cdf_thumbnail_writer_round_trip(tmp_path):
    frames = np.arange(3 * 32 * 32, dtype=np.uint16).reshape(3, 32, 32)
    times = np.array(["2011-05-05T09:14:15", "2011-05-05T09:14:18", "2011-05-05T09:14:21"], dtype="datetime64[ns]")
    path = themis.write_themis_cdf(tmp_path / "thg_l1_ast_zzzz_20110505_v01.cdf", frames, times, "zzzz", product="ast")
    read = themis.read_themis_cdf(path)
    assert read.product == "ast" and np.array_equal(read.frames, frames) and np.array_equal(read.times, times)


@pytest.mark.parametrize("suffix", [".pgm", ".pgm.gz"])
def test_pgm_writer_round_trip(tmp_path, suffix):
    frames, times = _random_frames(5, seed=1)
    path = tmp_path / f"20120229_2359_zzzz_themis42_full{suffix}"
    themis.write_themis_pgm(path, frames, times, "zzzz", "themis42", latitude_deg=62.5, longitude_deg=-145.0)
    read = themis.read_themis_pgm(path)
    assert read.error is None and (read.site, read.device) == ("zzzz", "themis42")
    assert np.array_equal(read.frames, frames) and np.array_equal(read.times, times)
    assert read.metadata[0]["Geodetic latitude"] == "62.5000"
    assert all(np.array_equal(a, b) for a, b in zip(_pil_frames(_raw(path)), frames, strict=True))
    first = path.read_bytes()
    themis.write_themis_pgm(path, frames, times, "zzzz", "themis42", latitude_deg=62.5, longitude_deg=-145.0)
    assert path.read_bytes() == first and [p.name for p in tmp_path.iterdir()] == [path.name]


def _header_keys(data: bytes) -> list[list[str]]:
    """Comment keys of every frame header, in file order (repeats kept)."""
    headers = [m.group(1).decode("latin-1") for m in re.finditer(rb"P5\n((?:#[^\n]*\n)+)\d+ \d+\n65535\n", data)]
    return [re.findall(r'^#"([^"]+)"', header, flags=re.M) for header in headers]


def test_pgm_writer_header_matches_the_real_file(gill_files, tmp_path):
    frames, times = _random_frames(3)
    path = themis.write_themis_pgm(tmp_path / "20120229_2359_zzzz_themis42_full.pgm", frames, times, "zzzz", "themis42")
    real, ours = _header_keys(_raw(gill_files[0])), _header_keys(_raw(path))
    assert len(real) == 20 and len(ours) == 3
    assert ours[0] == real[0] and ours[1] == ours[2] == real[1] == real[19]
    assert real[0] == [*themis.PGM_FILE_HEADER_KEYS, *themis.PGM_FRAME_HEADER_KEYS]
    assert set(themis.read_themis_pgm(path).metadata[2]) == set(themis.read_themis_pgm(gill_files[0]).metadata[2])


def test_writers_reject_bad_input(tmp_path):
    frames, times = _random_frames(2)
    with pytest.raises(ValueError, match="uint16"):
        themis.write_themis_cdf(tmp_path / "x.cdf", frames.astype(np.int32), times, "zzzz")
    with pytest.raises(ValueError, match="one valid time per frame"):
        themis.write_themis_pgm(tmp_path / "x.pgm", frames, times[:1], "zzzz", "themis01")
    with pytest.raises(ValueError, match="imager id"):
        themis.write_themis_pgm(tmp_path / "x.pgm", frames, times, "zzzz", "cam1")


# ----------------------------------------------------------------------------- downloads over loopback
def _cdf_archive(root: Path) -> dict[str, bytes]:
    """A Berkeley/CDAWeb-style tree: site zzzz Jan 2011 (two hours + a thumbnail), another site, another month."""
    files = {}
    for site, stamp in [("zzzz", "2011010617"), ("zzzz", "2011013123"), ("yyyy", "2011010617"), ("zzzz", "2011020100")]:
        start = dt.datetime.strptime(stamp, "%Y%m%d%H")
        frames, times = _random_frames(2, seed=int(stamp) % 1000)
        times = np.datetime64(start) + (times - times[0]) + np.timedelta64(53, "ms")
        rel = themis.relative_archive_path(themis.parse_themis_filename(themis.cdf_file_name(site, start)))
        themis.write_themis_cdf(root / rel, frames, times, site)
        files[rel] = (root / rel).read_bytes()
    (root / "thg/l1/asi/zzzz/2011/01/README.txt").write_text("not data")
    themis.write_themis_cdf(
        root / "thg/l1/asi/zzzz/2011/01/thg_l1_ast_zzzz_20110106_v01.cdf", *_random_frames(1), "zzzz", product="ast"
    )
    return files


def _pgm_archive(root: Path) -> dict[str, bytes]:
    """A UCalgary-style tree: gill themis19 on two days of March 2014, another site and a stray file."""
    files = {}
    for site, device, stamp in [
        ("zzzz", "themis19", "20140310_0600"),
        ("zzzz", "themis19", "20140310_0601"),
        ("zzzz", "themis19", "20140331_2359"),
        ("yyyy", "themis20", "20140310_0600"),
    ]:
        start = dt.datetime.strptime(stamp, "%Y%m%d_%H%M")
        frames, times = _random_frames(3, seed=start.minute)
        times = np.datetime64(start) + (times - times[0])
        rel = themis.relative_archive_path(themis.parse_themis_filename(themis.pgm_file_name(site, device, start)))
        themis.write_themis_pgm(root / rel, frames, times, site, device)
        files[rel] = (root / rel).read_bytes()
    # a file filed under March whose name says April: listed but quarantined, not downloaded
    stray = root / "2014/03/31/zzzz_themis19/ut23/20140401_0000_zzzz_themis19_full.pgm.gz"
    themis.write_themis_pgm(stray, *_random_frames(1), "zzzz", "themis19")
    (root / "2014/03/10/zzzz_themis19/ut06/index.txt").write_text("not data")
    return files


def test_fetch_cdf_month_over_loopback(tmp_path, loopback_server):
    served = _cdf_archive(tmp_path / "archive")
    server = loopback_server(tmp_path / "archive")
    client = HttpClient(retries=1, backoff_s=0.01)
    urls = themis.list_cdf_month(client, server.url, "zzzz", "2011-01")
    assert [u.rsplit("/", 1)[1] for u in urls] == [
        "thg_l1_asf_zzzz_2011010617_v01.cdf",
        "thg_l1_asf_zzzz_2011013123_v01.cdf",
    ]

    files, quarantine = themis.fetch_themis_month(client, server.url, "cdf", "zzzz", "2011-01", tmp_path / "raw")
    assert quarantine.is_empty() and files.height == 2
    for row in files.iter_rows(named=True):
        rel = Path(row["local_path"]).relative_to(tmp_path / "raw").as_posix()
        assert (tmp_path / "raw" / rel).read_bytes() == served[rel]
        assert row["sha256"] == hashlib.sha256(served[rel]).hexdigest() and row["station"] == "ZZZZ"
    assert files["start"].to_list() == [dt.datetime(2011, 1, 6, 17), dt.datetime(2011, 1, 31, 23)]

    frames = themis.frames_table(files["local_path"])
    assert frames.height == 4 and frames["ok"].all()
    assert frames["time"][0] == dt.datetime(2011, 1, 6, 17, 0, 0, 53000)

    before = sum(server.count(f"/{rel}") for rel in served)
    themis.fetch_themis_month(client, server.url, "cdf", "zzzz", "2011-01", tmp_path / "raw")
    assert sum(server.count(f"/{rel}") for rel in served) == before  # complete files are not fetched again
    assert themis.list_cdf_month(client, server.url, "zzzz", "2010-12") == []  # no folder: no data


def test_fetch_pgm_month_over_loopback(tmp_path, loopback_server):
    served = _pgm_archive(tmp_path / "archive")
    server = loopback_server(tmp_path / "archive")
    client = HttpClient(retries=1, backoff_s=0.01)
    files, quarantine = themis.fetch_themis_month(client, server.url, "pgm", "zzzz", "2014-03", tmp_path / "raw")
    assert files["file_name"].to_list() == [
        "20140310_0600_zzzz_themis19_full.pgm.gz",
        "20140310_0601_zzzz_themis19_full.pgm.gz",
        "20140331_2359_zzzz_themis19_full.pgm.gz",
    ]
    for row in files.iter_rows(named=True):
        rel = Path(row["local_path"]).relative_to(tmp_path / "raw").as_posix()
        assert (tmp_path / "raw" / rel).read_bytes() == served[rel] and row["device"] == "themis19"
    assert quarantine["file"].to_list() == ["20140401_0000_zzzz_themis19_full.pgm.gz"]
    assert "listed under 2014-03" in quarantine["reason"][0]
    assert not (tmp_path / "raw/2014/04").exists()

    table = themis.frames_table(files["local_path"])
    assert table.height == 9 and table["ok"].all() and table["time"].is_sorted()
    local = themis.find_local_files(tmp_path / "raw", site="zzzz", month="2014-03")
    assert local["path"].to_list() == files["local_path"].to_list()

    only = themis.list_pgm_month(client, server.url, "yyyy", "2014-03", device="themis20")
    assert [u.rsplit("/", 1)[1] for u in only] == ["20140310_0600_yyyy_themis20_full.pgm.gz"]
    assert themis.list_pgm_month(client, server.url, "yyyy", "2014-03", device="themis19") == []
    with pytest.raises(ValueError, match="unknown THEMIS archive layout"):
        themis.fetch_themis_month(client, server.url, "png", "zzzz", "2014-03", tmp_path / "raw")


def test_fetch_retries_a_failing_file(tmp_path, loopback_server):
    served = _cdf_archive(tmp_path / "archive")
    server = loopback_server(tmp_path / "archive")
    rel = "thg/l1/asi/zzzz/2011/01/thg_l1_asf_zzzz_2011010617_v01.cdf"
    server.faults[f"/{rel}"] = ("status", 503, 2)
    files, _ = themis.fetch_themis_month(
        HttpClient(retries=3, backoff_s=0.01), server.url, "cdf", "zzzz", "2011-01", tmp_path / "raw"
    )
    assert (tmp_path / "raw" / rel).read_bytes() == served[rel] and server.count(f"/{rel}") == 3
    assert files.height == 2


def test_real_files_served_in_both_layouts(real_dir, gill_files, tmp_path, loopback_server):
    root = tmp_path / "archive"
    for path in [real_dir / GAKO_CDF, *gill_files]:
        rel = themis.relative_archive_path(themis.parse_themis_filename(path.name))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / rel)  # into a temporary test folder only
    server = loopback_server(root)
    client = HttpClient(retries=1, backoff_s=0.01)
    cdf_files, _ = themis.fetch_themis_month(client, server.url, "cdf", "gako", "2011-01", tmp_path / "raw")
    pgm_files, _ = themis.fetch_themis_month(client, server.url, "pgm", "gill", "2014-03", tmp_path / "raw")
    table = themis.frames_table([*cdf_files["local_path"], *pgm_files["local_path"]])
    assert table.height == 143 and table["ok"].all()
    assert dict(table.group_by("station").agg(pl.len()).iter_rows()) == {"GAKO": 23, "GILL": 120}
