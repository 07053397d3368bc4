"""Magnetometer parsers on real IAGA-2002 files and the IMAGE column format."""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tame_assets.sources import magnetometer as mag


def _reference_iaga2002(path: Path) -> list[tuple]:
    """Independent slow reader: one split() per data line, no conversion."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[0][:2] in ("19", "20") and parts[0][4] == "-":
            rows.append((dt.datetime.fromisoformat(f"{parts[0]}T{parts[1]}"), *map(float, parts[3:])))
    return rows


# ----------------------------------------------------------------------------- real IAGA-2002 files
def test_real_wic_second_file_ehzf(real_dir):
    path = real_dir / "magnetometer" / "wic20230712vsec.sec"
    t0 = time.perf_counter()
    df = mag.parse_iaga2002(path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, f"86,400 rows took {elapsed:.2f} s"  # vectorised (a per-line parser takes minutes)
    ref = _reference_iaga2002(path)
    assert df.height == len(ref) == 86_400 and df["station"].unique().to_list() == ["WIC"]
    assert df.columns == list(mag.MAGNETOMETER_SCHEMA) and df["time"].dtype == pl.Datetime("us")
    assert df["f_nt"].null_count() == 86_400  # F = 88888.00: not recorded
    e = np.array([r[1] for r in ref])
    h = np.array([r[2] for r in ref])
    np.testing.assert_allclose(df["y_nt"].to_numpy(), e)  # EHZF: Y = E
    np.testing.assert_allclose(df["x_nt"].to_numpy(), np.sqrt(h**2 - e**2))  # X = sqrt(H² − E²)
    np.testing.assert_allclose(df["h_nt"].to_numpy(), h, rtol=1e-12)  # round trip back to H
    np.testing.assert_allclose(df["z_nt"].to_numpy(), [r[3] for r in ref])
    assert df["time"].to_list()[::3600] == [r[0] for r in ref][::3600]


def test_real_boulder_hdzf_declination_in_minutes(real_dir):
    files = sorted((real_dir / "magnetometer").glob("bou2014110[1-7]vmin.min"))
    assert len(files) == 7
    df = pl.concat([mag.parse_iaga2002(f) for f in files])
    ref = [r for f in files for r in _reference_iaga2002(f)]
    assert df.height == len(ref) == 7 * 1440 and df["time"].is_sorted()
    h, d_arcmin = np.array([r[1] for r in ref]), np.array([r[2] for r in ref])
    np.testing.assert_allclose(
        df["x_nt"].to_numpy(), [hi * math.cos(math.radians(di / 60)) for hi, di in zip(h, d_arcmin)]
    )
    np.testing.assert_allclose(
        df["y_nt"].to_numpy(), [hi * math.sin(math.radians(di / 60)) for hi, di in zip(h, d_arcmin)]
    )
    np.testing.assert_allclose(df["h_nt"].to_numpy(), h, rtol=1e-12)
    np.testing.assert_allclose(df["f_nt"].to_numpy(), [r[4] for r in ref])


# ----------------------------------------------------------------------------- IAGA-2002 writer, gaps, errors
def _frame(n: int = 5) -> pl.DataFrame:
    t = [dt.datetime(2010, 12, 1) + dt.timedelta(minutes=i) for i in range(n)]
    return pl.DataFrame(
        {"time": t, "x_nt": [7900.0 + i for i in range(n)], "y_nt": [800.5] * n, "z_nt": [52600.25] * n}
    ).with_columns(pl.when(pl.int_range(n) == 2).then(None).otherwise(pl.col("x_nt")).alias("x_nt"))


def test_write_parse_round_trip_with_missing(tmp_path):
    frame = _frame()
    path = mag.write_iaga2002(frame, tmp_path / "nal20101201vmin.min", "NAL", "Ny-Alesund", 78.92, 11.95)
    lines = path.read_text().splitlines()
    assert all(len(ln) == 70 and ln.endswith("|") for ln in lines[:13])  # IAGA-2002 header records
    assert lines[13].split()[3:] == ["7900.00", "800.50", "52600.25", "88888.00"]
    assert lines[15].split()[3] == "99999.00"
    back = mag.parse_iaga2002(path)
    assert back.select("time", "x_nt", "y_nt", "z_nt").equals(frame)
    assert back["station"].unique().to_list() == ["NAL"] and back["f_nt"].null_count() == 5
    assert back["h_nt"][2] is None and back["h_nt"][0] == pytest.approx(math.hypot(7900, 800.5))


def test_malformed_lines_name_file_and_line(tmp_path):
    path = mag.write_iaga2002(_frame(), tmp_path / "nal.min", "NAL")
    lines = path.read_text().splitlines()
    cases = {
        "extra column": (lines[-1] + " 12.0", r"nal.min, line 18: expected 7 columns, found 8"),
        "bad number": (lines[-1].replace("7904.00", "79o4.00"), r"nal.min, line 18: not a number: '79o4.00'"),
        "bad time": (lines[-1].replace("00:04:00", "00:61:00"), r"nal.min, line 18: invalid timestamp"),
    }
    for bad_line, message in cases.values():
        (tmp_path / "nal.min").write_text("\n".join(lines[:-1] + [bad_line]) + "\n")
        with pytest.raises(mag.MagnetometerFormatError, match=message):
            mag.parse_iaga2002(tmp_path / "nal.min")
    (tmp_path / "x.min").write_text("no header here\n1 2 3\n")
    with pytest.raises(mag.MagnetometerFormatError, match="x.min: no 'DATE TIME DOY"):
        mag.parse_iaga2002(tmp_path / "x.min")


def test_text_input_and_blank_lines(tmp_path):
    text = mag.write_iaga2002(_frame(), tmp_path / "a.min", "NAL").read_text()
    lines = text.splitlines()
    with_blank = "\n".join(lines[:15] + [""] + lines[15:]) + "\n"
    df = mag.parse_iaga2002(with_blank, source_name="inline")
    assert df.height == 5
    broken = "\n".join(lines[:15] + ["", lines[15].replace("52600.25", "x")] + lines[16:])
    with pytest.raises(mag.MagnetometerFormatError, match="inline, line 17: not a number"):
        mag.parse_iaga2002(broken, source_name="inline")


# ----------------------------------------------------------------------------- IMAGE column format
IMAGE_COLUMN = """YYYY MM DD HH MM SS     NAL X   NAL Y   NAL Z   LYR X   LYR Y   LYR Z
----------------------------------------------------------------------
2010 12 01 00 00 00     7912.3   801.2 52611.0  8745.1  1203.4 51988.2
2010 12 01 00 00 10     7911.8   801.0 52611.2 99999.9  1203.2 51988.0
2010 12 01 00 00 20     7910.9   800.7 52611.5  8744.2  1203.1 51987.9
"""


def test_image_column_format(tmp_path):
    path = tmp_path / "image_201012.txt"
    path.write_text(IMAGE_COLUMN)
    df = mag.parse_image_column(path)
    assert df.height == 6 and set(df["station"]) == {"NAL", "LYR"}
    lyr = df.filter(pl.col("station") == "LYR").sort("time")
    assert lyr["x_nt"].to_list() == [8745.1, None, 8744.2]
    nal = mag.parse_image_column(path, station="NAL")
    assert nal["time"].to_list()[1] == dt.datetime(2010, 12, 1, 0, 0, 10) and nal["z_nt"].to_list() == [
        52611.0,
        52611.2,
        52611.5,
    ]
    path.write_text(IMAGE_COLUMN.replace("801.0 52611.2", "801.0"))
    with pytest.raises(mag.MagnetometerFormatError, match="image_201012.txt, line 4: expected 12 columns"):
        mag.parse_image_column(path)


# The monthly client (the IMAGE request form) is tested in sources/test_archives.py.


# ----------------------------------------------------------------------------- rejected input
def test_header_without_data_rows_is_an_error_naming_the_file(tmp_path):
    text = mag.write_iaga2002(_frame(), tmp_path / "nal.min", "NAL").read_text()
    header_only = "\n".join(ln for ln in text.splitlines() if not ln[:2].isdigit()) + "\n"
    (tmp_path / "empty.min").write_text(header_only)
    with pytest.raises(mag.MagnetometerFormatError, match=r"empty.min, line 13: column header but no data rows"):
        mag.parse_iaga2002(tmp_path / "empty.min")


def test_value_cut_short_by_one_digit_is_an_error_with_file_and_line(real_dir, tmp_path):
    lines = (real_dir / "magnetometer" / "bou20141101vmin.min").read_text().splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.startswith("DATE")) + 500  # mid-file data line
    assert len(lines[row].rstrip()) == 70 and lines[row][-3] == "."
    cut = lines[row][:-1]  # the last digit of F lost: still a valid number
    (tmp_path / "bou.min").write_text("\n".join(lines[:row] + [cut] + lines[row + 1 :]) + "\n")
    with pytest.raises(
        mag.MagnetometerFormatError,
        match=rf"bou.min, line {row + 1}: data line has 69 characters where the file's data lines have 70",
    ):
        mag.parse_iaga2002(tmp_path / "bou.min")
    shifted = lines[row][:36] + lines[row][37:] + " "  # a digit of H lost, padded at the end: misaligned
    (tmp_path / "bou.min").write_text("\n".join(lines[:row] + [shifted.rstrip()] + lines[row + 1 :]) + "\n")
    with pytest.raises(mag.MagnetometerFormatError, match=rf"bou.min, line {row + 1}: data line has 69"):
        mag.parse_iaga2002(tmp_path / "bou.min")


def test_nan_and_impossible_values_become_null_and_are_counted(tmp_path):
    from collections import Counter

    frame = _frame()
    path = mag.write_iaga2002(frame, tmp_path / "nal.min", "NAL")
    lines = path.read_text().splitlines()
    lines[-3] = lines[-3][:40] + f"{'NaN':>10}" + lines[-3][50:]  # Y of the third row
    lines[-2] = lines[-2][:30] + f"{75000.0:10.2f}" + lines[-2][40:]  # X of the fourth: above any real field
    lines[-1] = lines[-1][:60] + f"{-5.0:10.2f}"  # F of the fifth: negative
    path.write_text("\n".join(lines) + "\n")
    rejected = Counter()
    df = mag.parse_iaga2002(path, rejected=rejected)
    assert df.height == frame.height
    assert df["y_nt"].is_null().to_list() == [False, False, True, False, False]
    assert df["x_nt"].is_null().to_list() == [False, False, True, True, False]  # row 2: 99999.00 as written
    assert df["f_nt"][4] is None and df["h_nt"][2] is None and df["h_nt"][3] is None
    assert rejected == {"NaN value": 1, "impossible value (|B| > 70000 nT or F < 0)": 2}
