"""`tame skymap`, `tame keogram` and `tame movie` on files a user already has (real THEMIS and UiO files)."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.cli.products import keogram_files_command, movie_files_command
from tame_assets.sources.frame_reader import file_frames
from tame_assets.sources.images import load_asi_image
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


def test_keogram_and_projection_of_the_real_gillam_pgm_files(real_dir, tmp_path):
    """The six real Gillam PGM minutes: the pixel keogram holds the image centre column of each of the
    120 frames; a frame projected with the nominal centred 256×256 lens model (there is no official
    Gillam skymap in ../shared): the cell above the site is the mean of the pixels that look into it."""
    import numpy as np

    from tame_assets.geometry import camera_skymap
    from tame_assets.products.projection import LatLonGrid, project_frame

    files = sorted((real_dir / "themis" / "pgm_gill").glob("*.pgm*"))
    out = tmp_path / "k_rows.parquet"
    result = runner.invoke(app, ["keogram", *map(str, files), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out)
    frames = [read_themis_file(f) for f in files]
    stack = np.concatenate([f.frames for f in frames])
    assert table["time"].n_unique() == len(stack) == 120
    first = table.filter(pl.col("time") == table["time"].min()).sort("row")
    np.testing.assert_array_equal(first["intensity"].to_numpy(), stack[0][:, stack.shape[2] // 2])

    sky = camera_skymap("gill", 110.0, shape=stack.shape[1:])
    zr, zc = np.unravel_index(np.nanargmax(sky.elevation_deg), sky.shape)
    grid = LatLonGrid.regular(
        sky.site_lat_deg - 3, sky.site_lat_deg + 3, sky.site_lon_deg - 6, sky.site_lon_deg + 6, 0.05
    )
    image = project_frame(stack[0], sky, grid, method="mean")
    row = np.searchsorted(grid.lat_edges, sky.lat_deg[zr, zc], side="right") - 1
    col = np.searchsorted(grid.lon_edges, sky.lon_deg[zr, zc], side="right") - 1
    inside = (
        (sky.lat_deg >= grid.lat_edges[row])
        & (sky.lat_deg < grid.lat_edges[row + 1])
        & (sky.lon_deg >= grid.lon_edges[col])
        & (sky.lon_deg < grid.lon_edges[col + 1])
    )
    assert inside[zr, zc] and image[row, col] == pytest.approx(stack[0][inside].mean())
    assert np.isfinite(project_frame(stack[0], sky, grid, method="nearest")).mean() > 0.3


def test_keogram_and_movie_of_real_uio_pngs(real_dir, tmp_path):
    import imageio_ffmpeg

    files = sorted((real_dir / "uio_asi_nya6" / "images").glob("nya6_201410*_5577_cal.png"))[:4]
    assert len(files) == 4
    broken = tmp_path / "nya6_20141020_235959_5577_cal.png"  # a truncated copy: skipped, reported
    broken.write_bytes(files[0].read_bytes()[:2000])
    result = keogram_files_command(list(reversed(files)) + [broken], tmp_path / "k.parquet")
    assert result.n_frames == 4 and result.coordinate == "row"
    assert [f for f, _ in result.skipped] == [str(broken)]
    table = pl.read_parquet(tmp_path / "k.parquet")
    assert table.columns == ["time", "row", "intensity"] and table["time"].n_unique() == 4
    for path in files:
        frame = load_asi_image(path)
        assert frame.dtype == np.uint16
        h, w = frame.shape
        time = next(file_frames(path))[0]
        got = table.filter((pl.col("time") == time) & (pl.col("row") == h // 2))["intensity"].to_list()
        assert got == [float(frame[h // 2, w // 2])]  # the zenith row is the zenith pixel, at 16 bits
    png = keogram_files_command(files, tmp_path / "k.png")
    assert png.out.stat().st_size > 10_000
    movie = movie_files_command(files + [broken], tmp_path / "night.mp4", fps=2)
    assert movie.movie.n_frames == 4 and len(movie.skipped) == 1
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "night.mp4")) == (4, pytest.approx(2.0))
    with pytest.raises(ValueError, match="no readable frames in 1 file"):
        keogram_files_command([broken], tmp_path / "k2.parquet")
    with pytest.raises(ValueError, match="must end in .parquet or .png"):
        keogram_files_command(files, tmp_path / "k.csv")
    with pytest.raises(ValueError, match="needs a skymap"):
        keogram_files_command(files, tmp_path / "k.parquet", altitude_km=110)
