"""`tame skymap`, `tame keogram` and `tame movie` on files a user already has (real THEMIS and UiO files)."""

from __future__ import annotations

import imageio_ffmpeg
import polars as pl
import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.sources.themis import read_themis_file

runner = CliRunner()


@pytest.fixture(scope="module")
def gako(real_dir):
    folder = real_dir / "themis" / "cdf_gako"
    return folder / "thg_l1_asf_gako_2011010617_v01.cdf", next(folder.glob("themis_skymap_gako_*.sav"))


def test_skymap_command_writes_one_row_per_pixel(gako, tmp_path):
    _, sav = gako
    out = tmp_path / "sky.parquet"
    result = runner.invoke(app, ["skymap", str(sav), "--altitude", "110", "--out", str(out)])
    assert result.exit_code == 0, result.output
    sky = pl.read_parquet(out)
    assert sky.columns[:6] == ["row", "col", "azimuth_deg", "elevation_deg", "lat_deg", "lon_deg"]
    assert sky.height == 256 * 256
    lat = sky.drop_nulls("lat_deg")["lat_deg"]
    assert 55 < lat.min() < lat.max() < 70  # Gakona, Alaska (62.4 N) at 110 km


def test_keogram_of_the_real_gakona_cdf_equals_its_zenith_pixels(gako, tmp_path):
    cdf, sav = gako
    pixel = tmp_path / "k_rows.parquet"
    result = runner.invoke(app, ["keogram", str(cdf), "--out", str(pixel)])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(pixel)
    frames = read_themis_file(cdf)
    assert table["time"].n_unique() == len(frames.times) == 23
    geo = tmp_path / "k_lat.parquet"
    result = runner.invoke(app, ["keogram", str(cdf), "--skymap", str(sav), "--altitude", "110", "--out", str(geo)])
    assert result.exit_code == 0, result.output
    lat = pl.read_parquet(geo)
    assert "lat_deg" in lat.columns and lat["time"].n_unique() == 23
    assert lat["lat_deg"].min() > 55 and lat["lat_deg"].max() < 70


def test_movie_of_real_pgm_files(real_dir, tmp_path):
    files = sorted((real_dir / "themis" / "pgm_gill").glob("*.pgm*"))[:2]
    out = tmp_path / "night.mp4"
    result = runner.invoke(app, ["movie", *map(str, files), "--out", str(out), "--fps", "10"])
    assert result.exit_code == 0, result.output
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 40 and seconds == pytest.approx(4.0, abs=0.2)


def test_unreadable_input_is_a_one_line_usage_error(tmp_path):
    bad = tmp_path / "thg_l1_asf_gako_2011010617_v01.cdf"
    bad.write_bytes(b"not a cdf")
    result = runner.invoke(app, ["keogram", str(bad), "--out", str(tmp_path / "k.parquet")])
    assert result.exit_code == 2 and "no readable frames" in result.output and "Traceback" not in result.output
