"""Camera geometry: THEMIS skymap reader, WGS84 projection vs the official corner grid, image-row
orientation checked on real stars, lens models (fit to THEMIS, star-checked on UiO nya6), Parquet
output and the `tame skymap` command function."""

from __future__ import annotations

import csv
import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from tame_assets.geometry import (
    CAMERA_LENSES,
    EMISSION_ALTITUDE_KM,
    SKYMAP_COLUMNS,
    LensModel,
    angular_distance_deg,
    camera_skymap,
    emission_altitude_km,
    fit_lens_model,
    ground_distance_km,
    lit_disk_circle,
    look_to_geodetic,
    match_stars,
    parse_themis_skymap_name,
    read_skymap_parquet,
    read_themis_sav,
    read_themis_skymap,
    skymap_figure,
    skymap_for_file,
    star_directions,
    to_image_rows,
    write_skymap_parquet,
)
from tame_assets.geometry.stars import calibrate_lens, point_source_significance

SAV_NAME = "themis_skymap_gako_20110305-+_vXX.sav"


@pytest.fixture(scope="module")
def gako_dir(real_dir) -> Path:
    folder = real_dir / "themis" / "cdf_gako"
    if not (folder / SAV_NAME).is_file():
        pytest.skip(f"{folder / SAV_NAME} is absent")
    return folder


@pytest.fixture(scope="module")
def sav_path(gako_dir) -> Path:
    return gako_dir / SAV_NAME


@pytest.fixture(scope="module")
def nya6_dir(real_dir) -> Path:
    folder = real_dir / "uio_asi_nya6"
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"{folder} is absent")
    return folder


def pixel_corner_mean(grid: np.ndarray, wrap: bool = False) -> np.ndarray:
    """Mean of each pixel's 4 corners (longitudes unwrapped around the first corner when ``wrap``)."""
    corners = np.stack([grid[:-1, :-1], grid[1:, :-1], grid[:-1, 1:], grid[1:, 1:]])
    if wrap:
        corners = corners[0] + ((corners - corners[0] + 180.0) % 360.0 - 180.0)
    return corners.mean(axis=0)


# ---------------------------------------------------------------------------- reader
def test_read_themis_sav_returns_what_the_file_holds(sav_path):
    from scipy.io import readsav

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        raw = readsav(str(sav_path))["skymap"]
    sav = read_themis_sav(sav_path)
    assert (sav.site_uid, sav.imager_uid, sav.project_uid) == ("gako", "themis20", "themis")
    np.testing.assert_array_equal(sav.elevation_deg, raw["FULL_ELEVATION"][0])
    np.testing.assert_array_equal(sav.azimuth_deg, raw["FULL_AZIMUTH"][0])
    np.testing.assert_array_equal(sav.corner_lat_deg, raw["FULL_MAP_LATITUDE"][0])
    np.testing.assert_array_equal(sav.corner_altitudes_km * 1000, raw["FULL_MAP_ALTITUDE"][0])
    assert sav.elevation_deg.shape == (256, 256) and sav.corner_lat_deg.shape == (3, 257, 257)
    raw_lon = raw["FULL_MAP_LONGITUDE"][0].astype(float)
    finite = np.isfinite(raw_lon)
    assert np.nanmax(raw_lon) > 180  # the file stores 0–360 …
    assert np.all(np.abs(sav.corner_lon_deg[finite]) <= 180)  # … we give −180..180, same meridians
    np.testing.assert_allclose(np.mod(sav.corner_lon_deg[finite], 360), raw_lon[finite], atol=1e-9)
    assert sav.site_lat_deg == pytest.approx(float(raw["SITE_MAP_LATITUDE"][0]))
    assert sav.site_lon_deg == pytest.approx(float(raw["SITE_MAP_LONGITUDE"][0]) - 360.0)
    assert sav.valid_from == dt.datetime(2011, 3, 5) and sav.valid_to is None
    assert sav.generation_info["valid_interval_start"].startswith(sav.valid_from.strftime("%Y%m%d"))


def test_skymap_name_parsing_and_bad_files(tmp_path):
    assert parse_themis_skymap_name("themis_skymap_gako_20110305-+_vXX.sav") == ("gako", dt.datetime(2011, 3, 5), None)
    site, start, stop = parse_themis_skymap_name("/x/themis_skymap_fykn_20070301-20080228_v01.sav")
    assert (site, start, stop) == ("fykn", dt.datetime(2007, 3, 1), dt.datetime(2008, 2, 28, 23, 59, 59))
    with pytest.raises(ValueError, match="not a THEMIS skymap name"):
        parse_themis_skymap_name("skymap_gako.sav")
    with pytest.raises(ValueError, match="bad date"):
        parse_themis_skymap_name("themis_skymap_gako_20111305-+_v01.sav")
    garbage = tmp_path / "themis_skymap_gako_20110305-+_v01.sav"
    garbage.write_bytes(b"SR\x00\x04 this is not an IDL save file")
    with pytest.raises(ValueError, match=r"themis_skymap_gako_20110305-\+_v01.sav: unreadable IDL save file"):
        read_themis_sav(garbage)


# ---------------------------------------------------------------------------- projection
@pytest.mark.parametrize("index", [0, 1, 2])
def test_pixel_latlon_agrees_with_the_official_corner_grid(sav_path, index):
    """Pixel centres from our WGS84 ray–shell intersection vs the mean of the file's 4 pixel corners,
    for elevations ≥ 10°. Measured (km): 90 km median 0.018 / p95 0.240 / max 0.360; 110 km 0.022 /
    0.261 / 0.384; 150 km 0.028 / 0.292 / 0.414 — the corner mean itself is off the true centre by
    about that much at low elevation, where pixels are tens of km long. A spherical Earth is 10–20×
    worse (110 km: median 0.43, max 1.23 km), so the file was made on the ellipsoid."""
    sav = read_themis_sav(sav_path)
    altitude = float(sav.corner_altitudes_km[index])
    skymap = read_themis_skymap(sav_path, altitude, image_format="pgm")  # .sav order, like the corners
    lat_ref = pixel_corner_mean(sav.corner_lat_deg[index])
    lon_ref = pixel_corner_mean(sav.corner_lon_deg[index], wrap=True)
    distance = ground_distance_km(skymap.lat_deg, skymap.lon_deg, lat_ref, lon_ref, altitude)
    compared = skymap.mask & np.isfinite(distance)
    assert compared.sum() > 39_000  # the whole usable disk, not a corner of it
    d = distance[compared]
    assert np.median(d) < 0.05 and np.percentile(d, 95) < 0.35 and d.max() < 0.5, (np.median(d), d.max())
    lat_s, lon_s = look_to_geodetic(
        skymap.azimuth_deg[compared],
        skymap.elevation_deg[compared],
        sav.site_lat_deg,
        sav.site_lon_deg,
        sav.site_alt_m,
        altitude,
        "sphere",
    )
    sphere = ground_distance_km(lat_s, lon_s, lat_ref[compared], lon_ref[compared], altitude)
    assert np.median(sphere) > 5 * np.median(d)


def test_wgs84_agrees_with_pymap3d():
    """Our own WGS84 code against pymap3d's aer2geodetic at the range where it reaches the shell."""
    pymap3d = pytest.importorskip("pymap3d")
    az, el = np.array([0.0, 45.0, 200.0, 300.0]), np.array([90.0, 30.0, 10.0, 60.0])
    lat, lon = look_to_geodetic(az, el, 78.9227, 11.9265, 50.0, 230.0)
    for a, e, la, lo in zip(az, el, lat, lon):
        low, high = 0.0, 3e6
        for _ in range(60):  # bisection on the slant range
            mid = (low + high) / 2
            height = pymap3d.aer2geodetic(a, e, mid, 78.9227, 11.9265, 50.0)[2]
            low, high = (mid, high) if height < 230e3 else (low, mid)
        ref_lat, ref_lon, _ = pymap3d.aer2geodetic(a, e, mid, 78.9227, 11.9265, 50.0)
        assert ground_distance_km(la, lo, ref_lat, ref_lon) < 1e-3  # < 1 m


def test_cdf_rows_are_the_sav_rotated_by_180_degrees(gako_dir, sav_path):
    """Bright stars in the real Gakona CDF (2011-01-06 17:00 UT) sit where the skymap says only if
    the .sav grid is rotated by 180° (measured: 26 of 26 stars above 15° found within 1 px; in the
    .sav's own order 3 of 26, i.e. chance)."""
    cdflib = pytest.importorskip("cdflib")
    cdf = cdflib.CDF(str(gako_dir / "thg_l1_asf_gako_2011010617_v01.cdf"))
    frames = cdf.varget("thg_asf_gako").astype(float)
    epochs = cdflib.cdfepoch.to_datetime(cdf.varget("thg_asf_gako_epoch"))
    when = np.datetime64(epochs[len(epochs) // 2], "us").astype(dt.datetime)
    image = frames.mean(axis=0)  # 23 frames in 66 s: stars move < 0.3°
    found = {}
    for image_format in ("cdf", "pgm"):
        skymap = read_themis_skymap(sav_path, image_format=image_format)
        matches = match_stars(
            image,
            when,
            skymap.site_lat_deg,
            skymap.site_lon_deg,
            skymap.nearest_pixel,
            min_elevation_deg=15.0,
            window_px=1,
        )
        found[image_format] = len(matches)
    _, _, el = star_directions(when, skymap.site_lat_deg, skymap.site_lon_deg)
    assert found["cdf"] >= 0.9 * np.sum(el >= 15.0) and found["pgm"] <= 0.3 * found["cdf"], found


def test_to_image_rows_and_at_altitude(sav_path):
    sav = read_themis_sav(sav_path)
    np.testing.assert_array_equal(to_image_rows(sav.azimuth_deg, "cdf"), sav.azimuth_deg[::-1, ::-1])
    with pytest.raises(ValueError, match="image_format"):
        to_image_rows(sav.azimuth_deg, "jpeg")
    sky110 = read_themis_skymap(sav_path)
    sky230 = sky110.at_altitude(230)
    assert sky230.altitude_km == 230 and np.array_equal(sky230.mask, sky110.mask)
    # a higher shell puts the same low-elevation pixel farther from the site
    low = sky110.mask & (sky110.elevation_deg < 15)
    near = ground_distance_km(sky110.lat_deg[low], sky110.lon_deg[low], sky110.site_lat_deg, sky110.site_lon_deg)
    far = ground_distance_km(sky230.lat_deg[low], sky230.lon_deg[low], sky110.site_lat_deg, sky110.site_lon_deg)
    assert np.all(far > near + 200)
    assert np.all(np.isnan(sky110.lat_deg[~sky110.mask]))
    with pytest.raises(ValueError, match="between 50 and 1000 km"):
        sky110.at_altitude(20)
    with pytest.raises(ValueError, match="minimum elevation"):
        sky110.at_altitude(110, min_elevation_deg=95)
    rows, cols = sky110.nearest_pixel(
        sky110.azimuth_deg[[30, 128, 200], [100, 128, 60]], sky110.elevation_deg[[30, 128, 200], [100, 128, 60]]
    )
    assert rows.tolist() == [30, 128, 200] and cols.tolist() == [100, 128, 60]
    below = sky110.nearest_pixel([90.0], [-30.0])  # nothing looks 30° below the horizon
    assert np.isnan(below[0][0]) and np.isnan(below[1][0])


# ---------------------------------------------------------------------------- lens models
@pytest.mark.parametrize("projection", ["equidistant", "equisolid"])
@pytest.mark.parametrize("east", ["left", "right"])
def test_lens_model_inverse_and_fit_recover_known_parameters(projection, east):
    truth = LensModel(
        x0_px=120.3,
        y0_px=131.7,
        horizon_radius_px=118.0,
        rotation_deg=37.5,
        east=east,
        projection=projection,
        image_shape=(256, 256),
    )
    az, el = truth.look_directions()
    rows, cols = np.indices(az.shape, dtype=float)
    back_rows, back_cols = truth.look_to_pixel(az, el)
    ok = np.isfinite(el)
    np.testing.assert_allclose(back_rows[ok], rows[ok], atol=1e-6)
    np.testing.assert_allclose(back_cols[ok], cols[ok], atol=1e-6)
    # north and east where the parameters say: "up" from the centre looks to azimuth rotation_deg
    up_az, _ = truth.pixel_to_look(truth.y0_px - 50, truth.x0_px)
    assert up_az == pytest.approx(37.5)
    right_az, _ = truth.pixel_to_look(truth.y0_px, truth.x0_px + 50)
    assert right_az == pytest.approx((37.5 + (90 if east == "right" else -90)) % 360)
    rng = np.random.default_rng(1)
    pick = rng.choice(np.flatnonzero(ok & (el > 10)), 400, replace=False)
    noisy_rows = rows.ravel()[pick] + rng.normal(0, 0.2, pick.size)
    fit = fit_lens_model(noisy_rows, cols.ravel()[pick], az.ravel()[pick], el.ravel()[pick], (256, 256), projection)
    assert fit.lens.east == east
    assert fit.lens.x0_px == pytest.approx(120.3, abs=0.1) and fit.lens.y0_px == pytest.approx(131.7, abs=0.1)
    assert fit.lens.horizon_radius_px == pytest.approx(118.0, abs=0.3)
    assert fit.lens.rotation_deg == pytest.approx(37.5, abs=0.1)


def test_equidistant_lens_fit_to_the_themis_official_skymap(sav_path):
    """How good a plain fisheye model is: fitted to gako's official az/el (every 2nd pixel, elevation
    ≥ 10°). Measured: equidistant median 0.96°, p95 1.88°, max 2.74° (equisolid about the same);
    its rotation 202.6° is 180° minus the file's OPTICAL_ORIENTATION (−22.6°) in CDF rows."""
    sav = read_themis_sav(sav_path)
    skymap = read_themis_skymap(sav_path)  # CDF rows
    rows, cols = np.indices(skymap.shape)
    pick = skymap.mask & ((rows + cols) % 2 == 0)
    fit = fit_lens_model(
        rows[pick], cols[pick], skymap.azimuth_deg[pick], skymap.elevation_deg[pick], skymap.shape, "equidistant"
    )
    summary = fit.summary()
    assert summary["median_deg"] < 1.2 and summary["p95_deg"] < 2.2 and summary["max_deg"] < 3.2, summary
    orientation = float(sav.generation_info["optical_orientation"].split()[0])
    assert (fit.lens.rotation_deg - (180.0 - orientation)) % 360 == pytest.approx(0.0, abs=0.5)
    assert fit.lens.east == "left"


def _aurora_less_frames(nya6_dir: Path, wavelength: str, step: int):
    from PIL import Image

    with open(nya6_dir / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "aurora-less" and r["wavelength_0.1nm"] == wavelength]
    for r in rows[::step]:
        yield np.asarray(Image.open(nya6_dir / "images" / r["filename"])), dt.datetime.fromisoformat(r["datetime_utc"])


def test_nya6_lens_model_puts_real_stars_where_they_are(nya6_dir):
    """The nya6 parameters in CAMERA_LENSES against bright stars in the real 557.7 nm "aurora-less"
    images: star calibration from a rough start (every 2nd frame) lands on the table's values, the
    table's lens puts the matched stars where they are, and the same lens un-mirrored (east left)
    finds almost nothing. Measured: all 122 frames 258 detections, median 0.30°, p95 0.79°; every
    2nd frame 140 detections, median 0.30°, rotation 325.86° (table 325.87°)."""
    site = CAMERA_LENSES["nya6"]
    lens = site.lens
    rough = LensModel(234.0, 234.0, 285.0, 325.0, "right", "equisolid", image_shape=lens.image_shape)
    fit, used = calibrate_lens(_aurora_less_frames(nya6_dir, "5577", 2), site.lat_deg, site.lon_deg, rough)
    assert len(used) >= 100 and len({m.name for m in used}) >= 15
    assert fit.lens.east == "right" and abs(fit.lens.rotation_deg - lens.rotation_deg) < 0.3
    assert np.hypot(fit.lens.x0_px - lens.x0_px, fit.lens.y0_px - lens.y0_px) < 1.5
    assert abs(fit.lens.horizon_radius_px - lens.horizon_radius_px) < 3
    az, el = lens.pixel_to_look([m.row for m in used], [m.col for m in used])
    residuals = angular_distance_deg(az, el, [m.azimuth_deg for m in used], [m.elevation_deg for m in used])
    assert np.median(residuals) < 0.4 and np.percentile(residuals, 95) < 1.0, fit.summary()

    mirrored = LensModel(
        lens.x0_px,
        lens.y0_px,
        lens.horizon_radius_px,
        (180 - lens.rotation_deg) % 360,
        "left",
        lens.projection,
        lens.horizon_cut_deg,
        lens.image_shape,
    )
    frames = [(point_source_significance(image), when) for image, when in _aurora_less_frames(nya6_dir, "5577", 6)]
    counts = {
        name: sum(
            len(match_stars(sig, when, site.lat_deg, site.lon_deg, model.look_to_pixel, window_px=3, significance=sig))
            for sig, when in frames
        )
        for name, model in (("table", lens), ("mirrored", mirrored))
    }
    assert counts["table"] >= 25 and counts["mirrored"] < 0.3 * counts["table"], counts


def test_nya6_lit_disk_matches_the_lens_table(nya6_dir):
    """The calibrated PNGs are cut to a disk: measured centre (234.00, 234.00), radius 234.07 px
    through the edge pixels (rms 0.26 px) on the 277 557.7 nm frames — the table's data circle."""
    from PIL import Image

    paths = sorted((nya6_dir / "images").glob("nya6_*_5577_cal.png"))
    stack = np.stack([np.asarray(Image.open(p)) for p in paths])
    x, y, radius, rms = lit_disk_circle(stack)
    cx, cy, cr = CAMERA_LENSES["nya6"].lens.data_circle_px
    assert abs(x - cx) < 0.1 and abs(y - cy) < 0.1 and abs(radius + 0.5 - cr) < 0.1 and rms < 0.4
    # the optical axis (from stars) is ~4 px off the disk centre: the disk is a processing cut
    lens = CAMERA_LENSES["nya6"].lens
    assert 2 < np.hypot(lens.x0_px - x, lens.y0_px - y) < 8


def test_nya4_sample_lens_matches_the_synthetic_renderer():
    """The sample images put the zenith at the centre and the horizon at radius (size − 1)/2 (equidistant)."""
    size = 192
    skymap = camera_skymap("nya4", 110.0, shape=(size, size))
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size]
    radius = np.hypot(xx - c, yy - c) / c
    inside = radius <= 1
    np.testing.assert_allclose(skymap.elevation_deg[inside], 90 - 90 * radius[inside], atol=1e-9)
    assert np.all(np.isnan(skymap.elevation_deg[~inside]))
    bigger = camera_skymap("nya4", 110.0, shape=(384, 384))
    assert np.nanmax(bigger.elevation_deg) > 89.5 and np.isnan(bigger.elevation_deg[0, 0])


# ---------------------------------------------------------------------------- outputs
def test_write_skymap_parquet_one_row_per_pixel(sav_path, tmp_path):
    import duckdb

    skymap = read_themis_skymap(sav_path)
    out = tmp_path / "sky" / "gako.parquet"
    write_skymap_parquet(skymap, out)
    write_skymap_parquet(skymap, out)  # idempotent rerun, no temporary files left
    assert sorted(p.name for p in out.parent.iterdir()) == ["gako.parquet"]
    table = pl.read_parquet(out)
    assert tuple(table.columns) == SKYMAP_COLUMNS and table.height == 256 * 256
    r, c = 40, 200
    row = table.filter((pl.col("row") == r) & (pl.col("col") == c)).row(0, named=True)
    assert row["azimuth_deg"] == skymap.azimuth_deg[r, c] and row["lat_deg"] == skymap.lat_deg[r, c]
    query = "SELECT count(*) FROM read_parquet(?) WHERE lat_deg IS NULL"
    nulls = duckdb.connect().execute(query, [str(out)]).fetchone()[0]
    assert nulls == int((~skymap.mask).sum())
    meta = pq.read_schema(out).metadata
    assert meta[b"tame.skymap.station"] == b"gako" and float(meta[b"tame.skymap.altitude_km"]) == 110.0
    with pytest.raises(ValueError, match="must end in .parquet"):
        write_skymap_parquet(skymap, tmp_path / "sky.csv")
    back = read_skymap_parquet(out)
    for name in ("azimuth_deg", "elevation_deg", "lat_deg", "lon_deg"):
        assert np.array_equal(getattr(back, name), getattr(skymap, name), equal_nan=True)
    assert back.describe() == skymap.describe() and back.valid_from == dt.datetime(2011, 3, 5)
    pl.DataFrame({"row": [0]}).write_parquet(tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="other.parquet: not a skymap file"):
        read_skymap_parquet(tmp_path / "other.parquet")


def test_skymap_command_for_a_sav_a_folder_an_image_and_a_camera(gako_dir, sav_path, nya6_dir, tmp_path):
    table = skymap_for_file(str(sav_path), 150).to_table()  # what `tame skymap` writes
    write_skymap_parquet(skymap_for_file(str(sav_path), 150), tmp_path / "a.parquet")
    assert table.height == 256 * 256 and pl.read_parquet(tmp_path / "a.parquet").equals(table)
    folder_skymap = skymap_for_file(gako_dir, 150)  # the folder holds exactly one .sav
    assert np.array_equal(folder_skymap.lat_deg, read_themis_skymap(sav_path, 150).lat_deg, equal_nan=True)
    assert folder_skymap.source == str(sav_path)
    red = next(iter(sorted((nya6_dir / "images").glob("nya6_*_6300_cal.png"))))
    red_skymap = skymap_for_file(red)  # 471×471 frames, default altitude of 630.0 nm
    assert red_skymap.shape == (471, 471) and red_skymap.altitude_km == EMISSION_ALTITUDE_KM[6300] == 230.0
    assert skymap_for_file("NYA6", 110).shape == CAMERA_LENSES["nya6"].lens.image_shape
    with pytest.raises(ValueError, match="not a camera with a lens model"):
        skymap_for_file("xyz9", 110)
    with pytest.raises(ValueError, match="between 50 and 1000 km"):
        skymap_for_file("nya6", -5)
    with pytest.raises(ValueError, match="must end in .parquet"):
        write_skymap_parquet(skymap_for_file("nya6", 110), tmp_path / "b.csv")
    assert emission_altitude_km(5577) == 110.0 and emission_altitude_km(None) == 110.0
    with pytest.raises(ValueError, match="no default emission altitude"):
        emission_altitude_km(5200)


def test_skymap_figure(sav_path, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    skymap = read_themis_skymap(sav_path)
    fig = skymap_figure(skymap)
    title = fig.axes[0].get_title()
    assert "gako" in title and "110 km" in title and "2011-03-05" in title
    fig.savefig(tmp_path / "sky.png")
    assert (tmp_path / "sky.png").stat().st_size > 10_000
