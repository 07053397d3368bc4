"""THEMIS files that vanish or explode (issue 25): a CDF with no records and a 0-byte PGM each give a
quarantined row with the reason; a 1 MB ``.pgm.gz`` inflating to 1 GiB is refused while inflating,
naming the file, in the reader, the station's month and ``tame movie`` (peak RSS of the bomb:
bench/hardening_rss.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.sources import themis
from tame_assets.sources.http import HttpClient
from tame_assets.sources.networks import get_network
from tame_assets.stations import Station

HEADER = b'P5\n#"Image request start" 2010-12-01 00:00:00.000000 UTC\n16384 32768\n65535\n'


def pgm_bomb(path: Path, inflated: int = 1 << 30) -> Path:
    """A ``.pgm.gz`` of about 1 MB that inflates to ``inflated`` bytes: a 16-bit frame header declaring
    16384 × 32768 pixels, then zeros, as 64 identical gzip members of 16 MiB (a valid multi-member file)."""
    member_size = 1 << 24
    first = gzip.compress(HEADER + bytes(member_size - len(HEADER)), compresslevel=9, mtime=0)
    rest = gzip.compress(bytes(member_size), compresslevel=9, mtime=0)
    with open(path, "wb") as fh:
        fh.write(first)
        for _ in range(inflated // member_size - 1):
            fh.write(rest)
    return path


def test_a_pgm_bomb_is_refused_while_inflating_naming_the_file(tmp_path):
    bomb = pgm_bomb(tmp_path / "20101201_0001_gill_themis19_full.pgm.gz")
    assert bomb.stat().st_size < 1.5e6
    tracemalloc.start()
    try:
        with pytest.raises(themis.ThemisFormatError) as error:
            themis.read_themis_pgm(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(error.value)
    assert message.startswith(f"{bomb}: decompresses to more than 67,108,864 bytes") and "\n" not in message
    assert "[archives] max_image_pixels" in message and "decompression bomb" in message
    assert peak < 3 * 67_108_864, peak  # bounded by the cap (64 MiB), not the 1 GiB it declares
    # the cap follows the setting; a frame header above it ends the reading before its pixels are touched
    small = tmp_path / "20101201_0002_gill_themis19_full.pgm"
    small.write_bytes(HEADER + bytes(100))
    read = themis.read_themis_pgm(small, max_pixels=1 << 20)
    assert len(read) == 0 and "536,870,912 pixels exceeds the cap of 1,048,576" in read.error
    with pytest.raises(themis.ThemisFormatError, match="more than 40 bytes"):
        themis.read_themis_pgm(small, max_pixels=10)


def test_tame_movie_refuses_the_bomb_in_one_line(tmp_path):
    bomb = pgm_bomb(tmp_path / "20101201_0001_gill_themis19_full.pgm.gz")
    result = CliRunner().invoke(app, ["movie", str(bomb), "--out", str(tmp_path / "m.mp4")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "decompression bomb" in result.output and bomb.name in result.output
    assert not (tmp_path / "m.mp4").exists()


def test_files_without_frames_each_give_a_quarantined_row(tmp_path):
    """A CDF with no records and a 0-byte PGM used to give no row at all (not even a quarantined one)."""
    folder = tmp_path / "gill"
    folder.mkdir()
    good = themis.write_themis_cdf(
        folder / "thg_l1_asf_gill_2010120100_v01.cdf",
        np.full((2, 16, 16), 900, np.uint16),
        np.array(["2010-12-01T00:00:03", "2010-12-01T00:00:06"], dtype="datetime64[ns]"),
        "gill",
    )
    empty_cdf = themis.write_themis_cdf(
        folder / "thg_l1_asf_gill_2010120101_v01.cdf", np.zeros((0, 16, 16), np.uint16), [], "gill"
    )
    empty_pgm = folder / "20101201_0200_gill_themis19_full.pgm"
    empty_pgm.write_bytes(b"")
    network = get_network("themis")
    found = {}
    for image_format in ("cdf", "pgm"):
        station = Station("GILL", "themis", "gill", image_format=image_format, folder=str(folder))
        found[image_format] = network.fetch_month(station, "2010-12", {}, tmp_path / "raw", client=HttpClient())
    cdf, pgm = found["cdf"], found["pgm"]
    assert cdf.frames.filter(pl.col("valid")).height == 2 and good.name in cdf.frames["file_name"].to_list()
    bad = cdf.frames.filter(~pl.col("valid"))
    assert bad["file_name"].to_list() == [empty_cdf.name] and bad["time"][0] == dt.datetime(2010, 12, 1, 1)
    assert cdf.quarantine["file"].to_list() == [empty_cdf.name]
    assert cdf.quarantine["reason"][0] == f"{empty_cdf}: no records: thg_asf_gill holds no frame"
    assert pgm.frames["file_name"].to_list() == [empty_pgm.name] and not pgm.frames["valid"][0]
    assert pgm.quarantine["reason"].to_list() == [f"{empty_pgm}: no frame in the file (0 bytes)"]
