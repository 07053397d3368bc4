"""Products: keograms, projections, movies, the daily summary figure and p_aurora calibration.

Values are checked against the frames and skymap they came from (an ideal fisheye skymap whose
geometry is computed independently in ``synthetic_skymap``; real THEMIS Gakona files when ``../shared`` exists).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from tame_assets.products.frame_stream import regular_time_grid
from tame_assets.products.keogram import (
    custom_path_keogram,
    grid_keogram,
    keogram,
    keogram_array,
    keogram_figure,
    keogram_from_table,
    meridian_path,
)
from tame_assets_tests.synthetic_skymap import ideal_skymap

T0 = np.datetime64("2024-01-15T18:00:00", "us")
SECOND = np.timedelta64(1, "s")


def random_frames(n: int, size: int = 64, seed: int = 0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 4000, (size, size)).astype(dtype) for _ in range(n)]


def times_at(seconds) -> np.ndarray:
    return T0 + np.asarray(seconds) * SECOND


# ----------------------------------------------------------------------------------------- keogram
def test_pixel_keogram_zenith_row_equals_zenith_pixel_of_every_frame():
    frames = random_frames(7, size=48)
    times = times_at(np.arange(7) * 10)
    table = keogram(iter(frames), times)
    assert table.columns == ["time", "row", "intensity"]
    assert table["time"].n_unique() == 7 and table.height == 7 * 48
    zenith = table.filter(pl.col("row") == 24).sort("time")
    assert zenith["intensity"].to_list() == [float(f[24, 24]) for f in frames]
    # the whole north–south slice is the image column through the zenith, frame by frame
    keo = keogram_array(iter(frames), times)
    np.testing.assert_array_equal(keo.intensity, np.stack([f[:, 24] for f in frames]).astype(np.float32))
    ew = keogram_array(iter(frames), times, direction="ew", zenith_pixel=(10, 30))
    assert ew.coordinate_name == "col"
    np.testing.assert_array_equal(ew.intensity, np.stack([f[10, :] for f in frames]).astype(np.float32))


def test_keogram_reads_each_frame_once_from_a_generator_and_sorts_times():
    frames = random_frames(5, size=32, seed=3)
    reads = []

    def stream():
        for i, f in enumerate(frames):
            reads.append(i)
            yield times_at(40 - 10 * i), f  # pairs, in reverse time order

    keo = keogram_array(stream())
    assert reads == [0, 1, 2, 3, 4]
    assert (np.diff(keo.time.astype("int64")) > 0).all()
    np.testing.assert_array_equal(keo.intensity[0], frames[-1][:, 16])


def test_geographic_keogram_bins_hold_pixels_whose_latitude_falls_in_the_bin():
    sky = ideal_skymap(96, rotation_deg=25.0)
    # Frames whose pixel value encodes latitude: a bin's mean must lie inside the bin's latitude range.
    lat_frame = np.where(np.isfinite(sky.lat_deg), sky.lat_deg * 1000.0, 0.0)
    keo = keogram_array([lat_frame, lat_frame + 5.0], times_at([0, 10]), sky, bin_deg=0.25)
    assert keo.coordinate_name == "lat_deg"
    lower, upper = keo.coordinate - 0.125, keo.coordinate + 0.125
    assert (keo.intensity[0] / 1000.0 >= lower - 1e-9).all() and (keo.intensity[0] / 1000.0 < upper + 1e-9).all()
    np.testing.assert_allclose(keo.intensity[1] - keo.intensity[0], 5.0, rtol=0, atol=1e-2)
    # the path runs through the zenith along the meridian: latitudes from the south to the north edge
    fov_lat = sky.lat_deg[np.isfinite(sky.lat_deg)]
    assert keo.coordinate.min() < fov_lat.min() + 0.5 and keo.coordinate.max() > fov_lat.max() - 0.5
    path = meridian_path(sky, "ns", bin_deg=0.25)
    az = sky.azimuth_deg[path.rows, path.cols]
    el = sky.elevation_deg[path.rows, path.cols]
    east = np.abs(np.cos(np.radians(el)) * np.sin(np.radians(az)))
    assert east.max() < 0.03  # every path pixel looks (almost) due north or south
    zr, zc = np.unravel_index(np.nanargmax(sky.elevation_deg), sky.elevation_deg.shape)
    assert ((path.rows == zr) & (path.cols == zc)).any()
    # east–west: longitude bins along pixels looking due east or west
    ew_path = meridian_path(sky, "ew", bin_deg=0.5)
    north = np.cos(np.radians(sky.elevation_deg[ew_path.rows, ew_path.cols])) * np.cos(
        np.radians(sky.azimuth_deg[ew_path.rows, ew_path.cols])
    )
    assert ew_path.coordinate_name == "lon_deg" and np.abs(north).max() < 0.03
    lon_frame = np.where(np.isfinite(sky.lon_deg), sky.lon_deg + 1000.0, 0.0)  # positive values, continuous
    ew = keogram_array([lon_frame], times_at([0]), sky, direction="ew", bin_deg=0.5)
    assert (
        (ew.intensity[0] - 1000.0 >= ew.coordinate - 0.25 - 1e-3)
        & (ew.intensity[0] - 1000.0 < ew.coordinate + 0.25 + 1e-3)
    ).all()
    # random frames: each bin is the mean of exactly the path pixels in that latitude bin
    frames = random_frames(3, size=96, seed=5)
    keo = keogram_array(frames, times_at([0, 10, 20]), sky, bin_deg=0.25)
    lat = sky.lat_deg[path.rows, path.cols]
    for j, centre in enumerate(keo.coordinate):
        inside = (lat >= centre - 0.125) & (lat < centre + 0.125)
        assert inside.any()
        for i, f in enumerate(frames):
            assert keo.intensity[i, j] == pytest.approx(f[path.rows[inside], path.cols[inside]].mean(), rel=1e-6)


def test_gridded_keogram_has_nan_rows_exactly_where_frames_are_missing():
    seconds = [0, 10, 20, 34, 40, 50, 90, 100, 110]  # 34: jitter (no gap); 60–80: three missing frames
    frames = random_frames(len(seconds), size=16, seed=1)
    table = keogram(frames, times_at(seconds))
    g = grid_keogram(table)
    assert g.cadence_s == 10.0
    assert g.time.size == 12
    missing = ~np.isfinite(g.intensity).all(axis=1)
    assert np.flatnonzero(missing).tolist() == [6, 7, 8]
    np.testing.assert_array_equal(g.intensity[3], frames[3][:, 8].astype(np.float32))
    np.testing.assert_array_equal(g.intensity[9], frames[6][:, 8].astype(np.float32))
    # a latitude keogram read back from its table keeps its bin width
    sky = ideal_skymap(64)
    lat_keo = keogram_array(random_frames(2, size=64), times_at([0, 10]), sky, bin_deg=0.25)
    np.testing.assert_allclose(
        grid_keogram(lat_keo.to_table()).coordinate_edges(), grid_keogram(lat_keo).coordinate_edges()
    )
    assert np.diff(grid_keogram(lat_keo).coordinate_edges()).min() == pytest.approx(0.25)
    # grid edges bracket every slot
    edges = g.time_edges()
    assert edges.size == g.time.size + 1 and (edges[:-1] < g.time).all() and (g.time < edges[1:]).all()


def test_regular_time_grid_keeps_the_first_of_two_frames_in_one_slot():
    grid, slot, cadence = regular_time_grid(times_at([0, 10, 12, 20]), cadence_s=10)
    assert slot.tolist() == [0, 1, -1, 2] and grid.size == 3 and cadence == 10


def test_keogram_table_round_trips_and_bad_frames_are_named():
    frames = random_frames(3, size=8)
    table = keogram(frames, times_at([0, 10, 20]))
    back = keogram_from_table(table)
    np.testing.assert_array_equal(back.intensity, np.stack([f[:, 4] for f in frames]).astype(np.float32))
    with pytest.raises(ValueError, match=r"frame 1 .*shape \(9, 8\)"):
        keogram([frames[0], np.zeros((9, 8)), frames[2]], times_at([0, 10, 20]))
    with pytest.raises(ValueError, match="frame 2: frames and times differ in length"):
        keogram(frames, times_at([0, 10]))
    with pytest.raises(ValueError, match="timezone-aware"):
        keogram(frames[:1], [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)])


def test_custom_path_keogram_takes_the_nearest_pixel_to_each_point():
    sky = ideal_skymap(80)
    frames = random_frames(2, size=80, seed=9)
    zr, zc = np.unravel_index(np.nanargmax(sky.elevation_deg), sky.elevation_deg.shape)
    target = (20, 50)
    points_lat = [sky.lat_deg[zr, zc], sky.lat_deg[target], 80.0]
    points_lon = [sky.lon_deg[zr, zc], sky.lon_deg[target], 0.0]
    out = custom_path_keogram(frames, times_at([0, 10]), sky, points_lat, points_lon)
    assert out.height == 6
    first = out.filter(pl.col("time") == out["time"].min()).sort("point")
    assert first["row"].to_list() == [zr, 20, -1] and first["col"].to_list() == [zc, 50, -1]
    assert first["intensity"][0] == frames[0][zr, zc] and first["intensity"][1] == frames[0][target]
    assert np.isnan(first["intensity"][2])  # outside the field of view
    # a timed footprint moving from the zenith pixel to the target pixel: one sample per frame
    timed = custom_path_keogram(
        frames, times_at([0, 10]), sky, points_lat[:2], points_lon[:2], path_time=times_at([0, 10])
    )
    assert timed["row"].to_list() == [zr, 20] and timed["intensity"].to_list() == [frames[0][zr, zc], frames[1][target]]


def test_keogram_figure_draws_gaps_as_blank_columns(tmp_path):
    sky = ideal_skymap(64)
    seconds = np.r_[np.arange(0, 600, 10), np.arange(900, 1500, 10)]
    frames = random_frames(seconds.size, size=64, seed=2)
    g = grid_keogram(keogram_array(frames, times_at(seconds), sky, bin_deg=0.25))
    fig = keogram_figure(g, station="GAKO", units="counts")
    ax = fig.axes[0]
    mesh = ax.collections[0]
    masked_columns = np.ma.getmaskarray(mesh.get_array()).reshape(g.coordinate.size, g.time.size).all(axis=0)
    assert np.flatnonzero(masked_columns).tolist() == list(range(60, 90))
    assert fig._suptitle.get_text().startswith("Gakona (GAKO) keogram, 2024-01-15\n")
    assert "latitude" in ax.get_ylabel().lower() and ax.get_xlabel() == "Time (UTC)"
    assert "counts" in fig.axes[1].get_ylabel()
    fig.savefig(tmp_path / "keogram.png")
    fig.savefig("/tmp/products_keogram.png")


def test_keogram_title_in_words_without_exponents():
    """The title names the station in words, the day and the filter; the frame spacing is written as a
    duration ("3 h"), never as "1.09e+04 s"."""
    sky = ideal_skymap(32)
    seconds = np.arange(0, 6 * 10900, 10900)  # a frame every ~3 h
    g = grid_keogram(keogram_array(random_frames(seconds.size, size=32), times_at(seconds), sky, bin_deg=0.5))
    title = keogram_figure(g, station="NYA", wavelength="557.7 nm")._suptitle.get_text()
    assert title.startswith("Ny-Ålesund (NYA) keogram, 2024-01-15 – 2024-01-16, 557.7 nm\n")
    assert "e+" not in title and "UIO" not in title and "frames every 3 h" in title


def test_month_keogram_of_one_hour_shows_the_data_not_a_grey_month():
    """One hour of frames at 10 s on one night and ten frames three weeks later: each stretch gets its own
    panel whose time axis spans only that stretch, and the panels are mostly data, not blank columns."""
    import matplotlib.dates as mdates

    sky = ideal_skymap(32)
    seconds = np.r_[np.arange(0, 3600, 10), 21 * 86400 + np.arange(0, 100, 10)]
    g = grid_keogram(keogram_array(random_frames(seconds.size, size=32), times_at(seconds), sky, bin_deg=0.5))
    fig = keogram_figure(g, station="GAKO")
    panels = [ax for ax in fig.axes if ax.collections and getattr(ax, "_colorbar", None) is None]
    assert len(panels) == 2
    for ax, (start_s, end_s) in zip(panels, ((0, 3600), (21 * 86400, 21 * 86400 + 100))):
        lo, hi = ax.get_xlim()
        span_s = (hi - lo) * 86400
        assert span_s == pytest.approx(end_s - start_s, rel=0.05)
        assert mdates.num2date(lo).replace(tzinfo=None) <= (T0 + start_s * SECOND).astype(dt.datetime)
        data = ax.collections[0].get_array()
        assert 1 - np.ma.getmaskarray(data).mean() > 0.9  # mostly data, not grey
        assert ax.get_xlabel() == "Time (UTC)"
    assert "2024-01-15 – 2024-02-05" in fig._suptitle.get_text()
    fig.savefig("/tmp/products_keogram_two_nights.png")


# -------------------------------------------------------------------------------------- projection
from tame_assets.products.pixels import EARTH_RADIUS_KM  # noqa: E402
from tame_assets.products.projection import (  # noqa: E402
    LatLonGrid,
    grid_for_skymaps,
    map_figure,
    mosaic,
    project_frame,
    projection_for,
)


def test_projected_pixel_lat_lon_agree_with_the_skymap():
    sky = ideal_skymap(128, rotation_deg=40.0)
    grid = grid_for_skymaps([sky], lat_step_deg=0.1)
    lat_frame, lon_frame = np.nan_to_num(sky.lat_deg), np.nan_to_num(sky.lon_deg)
    # mean: each cell averages pixels whose skymap lat/lon lies inside the cell
    lat_img = project_frame(lat_frame, sky, grid, "mean")
    lon_img = project_frame(lon_frame, sky, grid, "mean")
    filled = np.isfinite(lat_img)
    assert filled.sum() > 1000
    i, j = np.nonzero(filled)
    assert ((lat_img[i, j] >= grid.lat_edges[i] - 1e-9) & (lat_img[i, j] < grid.lat_edges[i + 1])).all()
    assert ((lon_img[i, j] >= grid.lon_edges[j] - 1e-9) & (lon_img[i, j] < grid.lon_edges[j + 1])).all()
    # nearest: no holes inside the field of view, and each cell's pixel lies within its footprint of the centre
    lat_n = project_frame(lat_frame, sky, grid, "nearest")
    lon_n = project_frame(lon_frame, sky, grid, "nearest")
    assert np.isfinite(lat_n).sum() > filled.sum()
    lat_c, lon_c = np.meshgrid(grid.lat_centres, grid.lon_centres, indexing="ij")
    ok = np.isfinite(lat_n)
    dy = np.radians(lat_n[ok] - lat_c[ok]) * EARTH_RADIUS_KM
    dx = np.radians(lon_n[ok] - lon_c[ok]) * EARTH_RADIUS_KM * np.cos(np.radians(lat_c[ok]))
    assert np.percentile(np.hypot(dx, dy), 50) < 8.0  # ~ the 0.1° cell size near the zenith
    # cells in the middle of the field of view are all filled
    centre = np.hypot(lat_c - 62.4, (lon_c + 145.2) * np.cos(np.radians(62.4))) < 3.0
    assert ok[centre].all()


def test_grid_wraps_longitudes_across_the_antimeridian():
    grid = LatLonGrid.regular(60.0, 61.0, 170.0, 190.0, 0.5, 1.0)
    assert grid.cell_index(np.array([60.7, 60.2, 59.0]), np.array([-175.5, 175.5, 175.0])).tolist() == [
        1 * 20 + 14,
        0 * 20 + 5,
        -1,
    ]


def test_mosaic_cell_goes_to_the_station_seen_at_higher_elevation(tmp_path):
    a = ideal_skymap(128, 62.4, -145.2)
    b = ideal_skymap(128, 64.8, -147.7)
    grid = grid_for_skymaps([a, b], lat_step_deg=0.1)
    result = mosaic(
        [(np.full((128, 128), 100, np.uint16), a), (np.full((128, 128), 200, np.uint16), b)], grid, method="nearest"
    )
    pa, pb = projection_for(a, grid, "nearest"), projection_for(b, grid, "nearest")
    both = np.isfinite(pa.elevation_deg) & np.isfinite(pb.elevation_deg)
    assert both.sum() > 500
    a_higher = both & (pa.elevation_deg >= pb.elevation_deg)  # a tie keeps the first input
    assert (result.image[a_higher] == 100).all() and (result.image[both & ~a_higher] == 200).all()
    # independent of the code: with one altitude, higher elevation = nearer the station on the ground
    lat_c, lon_c = np.meshgrid(grid.lat_centres, grid.lon_centres, indexing="ij")

    def ground_km(lat0, lon0):
        dy = np.radians(lat_c - lat0)
        dx = np.radians(lon_c - lon0) * np.cos(np.radians((lat_c + lat0) / 2))
        return np.hypot(dx, dy) * EARTH_RADIUS_KM

    da, db = ground_km(62.4, -145.2), ground_km(64.8, -147.7)
    clear = both & (np.abs(da - db) > 40.0)
    assert ((result.source[clear] == 0) == (da[clear] < db[clear])).all()
    only_a = np.isfinite(pa.elevation_deg) & ~np.isfinite(pb.elevation_deg)
    assert (result.source[only_a] == 0).all() and (result.source[~np.isfinite(result.image)] == -1).all()
    fig = map_figure(result, stations=["GAKO", "PKR"], time=T0)
    ax = fig.axes[0]
    assert "Gakona (GAKO), PKR" in ax.get_title() and "2024-01-15 18:00:00 UTC" in ax.get_title()
    assert "latitude" in ax.get_ylabel().lower() and "longitude" in ax.get_xlabel().lower()
    assert len(ax.collections) >= 2  # the image and the land outline (Alaska's coast is in this field of view)
    fig.savefig(tmp_path / "map.png")


def test_map_shows_the_whole_field_of_view_with_longitudes_as_maps_print_them():
    """Gakona (145°W): no field-of-view cell lies on the grid's border (nothing clipped flat), the axes
    show a margin beyond the grid, longitude ticks read "…°W", the title names no implementation detail,
    and a day without an auroral frame is not called "most auroral"."""
    from tame_assets.products.projection import map_caption

    sky = ideal_skymap(128, 62.4, -145.2)
    grid = grid_for_skymaps([sky], lat_step_deg=0.1)
    image = project_frame(np.full((128, 128), 100, np.uint16), sky, grid, "nearest")
    seen = np.isfinite(image)
    assert seen.sum() > 1000
    assert not (seen[0].any() or seen[-1].any() or seen[:, 0].any() or seen[:, -1].any())
    valid = np.isfinite(sky.lat_deg) & np.isfinite(sky.lon_deg)
    assert grid.lat_edges[0] < sky.lat_deg[valid].min() and grid.lat_edges[-1] > sky.lat_deg[valid].max()
    assert grid.lon_edges[0] < sky.lon_deg[valid].min() and grid.lon_edges[-1] > sky.lon_deg[valid].max()
    caption = map_caption("moon", 0.24, auroral=False, altitude_km=110)
    assert caption.startswith("no auroral frame on this day") and "most auroral" not in caption
    assert map_caption("arc", 0.91, auroral=True).startswith("most auroral frame of the day")
    fig = map_figure(image, grid, stations="GAKO", time=T0, product="auroral map", caption=caption)
    ax = fig.axes[0]
    fig.canvas.draw()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 < grid.lon_edges[0] and x1 > grid.lon_edges[-1] and y0 < grid.lat_edges[0] and y1 > grid.lat_edges[-1]
    lon_ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert lon_ticks and all(t.endswith("°W") and not t.startswith(("-", "−")) for t in lon_ticks), lon_ticks
    assert all(t.get_text().endswith("°N") for t in ax.get_yticklabels() if t.get_text())
    title = ax.get_title()
    assert title.startswith("Gakona (GAKO) auroral map, 2024-01-15 18:00:00 UTC\nno auroral frame on this day")
    assert "global_land_mask" not in title
    fig.savefig("/tmp/products_map_gako.png")


# ------------------------------------------------------------------------------------------- movie
from tame_assets.products.movie import write_movie  # noqa: E402


def test_movie_frame_count_duration_and_annotation(tmp_path):
    import imageio_ffmpeg

    n, fps = 23, 5.0
    frames = (np.zeros((64, 64), np.uint16) for _ in range(n))  # black frames: only the text is bright
    times = times_at(np.arange(n) * 10)
    predictions = pl.DataFrame({"time": times[:5], "pred": ["arc"] * 5, "p_aurora": [0.9] * 5})
    out = tmp_path / "night" / "gako.mp4"
    result = write_movie(frames, times, out, predictions, fps=fps, station="GAKO", intensity_range=(0, 1000))
    assert (result.n_frames, result.duration_s) == (n, n / fps)
    assert imageio_ffmpeg.count_frames_and_secs(str(out)) == (n, pytest.approx(n / fps, abs=1e-6))
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = reader.__next__()
    width, height = meta["size"]
    first = np.frombuffer(next(reader), np.uint8).reshape(height, width, 3)[..., 0]
    reader.close()
    assert height >= 480 and first[: height // 8, : width // 2].max() > 200  # the text block, top left
    assert first[height // 2 :, :].max() < 40  # the rest of the black frame stays black
    assert [p.name for p in out.parent.iterdir()] == ["gako.mp4"]  # no temporary file left


def test_movie_failure_keeps_the_previous_file(tmp_path):
    out = tmp_path / "night.mp4"
    out.write_bytes(b"previous movie")
    frames = [np.zeros((32, 32)), np.zeros((32, 32)), np.zeros((30, 32))]
    with pytest.raises(ValueError, match=r"frame 2 .*shape \(30, 32\)"):
        write_movie(frames, times_at([0, 10, 20]), out)
    assert out.read_bytes() == b"previous movie" and [p.name for p in tmp_path.iterdir()] == ["night.mp4"]
    with pytest.raises(ValueError, match="must end in .mp4"):
        write_movie(frames, times_at([0, 10, 20]), tmp_path / "night.avi")


# ------------------------------------------------------------------------------------- calibration
from tame_assets.products.calibration import (  # noqa: E402
    calibrator_from_dict,
    cross_validated_calibration,
    expected_calibration_error,
    fit_calibrator,
    reliability_curve,
    reliability_figure,
    stratified_folds,
)


def test_reliability_curve_and_ece_by_hand():
    p = [0.05, 0.15, 0.15, 0.95, 1.0]
    y = [0, 1, 0, 1, 1]
    curve = reliability_curve(p, y, n_bins=10)
    assert curve["count"].to_list() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert curve["fraction_positive"].to_list()[:3] == [0.0, 0.5, None]
    assert curve["mean_p"][9] == pytest.approx(0.975)
    # ECE = (1·|0.05−0| + 2·|0.15−0.5| + 2·|0.975−1|) / 5
    assert expected_calibration_error(p, y, 10) == pytest.approx((0.05 + 0.7 + 0.05) / 5)
    with pytest.raises(ValueError, match=r"p\[1\] = 1.5"):
        expected_calibration_error([0.2, 1.5], [0, 1])
    with pytest.raises(ValueError, match=r"y\[0\] = 2"):
        expected_calibration_error([0.2], [2])


def miscalibrated_scores(n: int, seed: int):
    """True probabilities q, outcomes y ~ Bernoulli(q), and overconfident shifted scores p."""
    rng = np.random.default_rng(seed)
    q = rng.beta(0.7, 0.7, n)
    y = (rng.random(n) < q).astype(int)
    logit_q = np.log(q) - np.log1p(-q)
    return q, y, 1.0 / (1.0 + np.exp(-(2.5 * logit_q + 0.8)))


def test_calibrator_fitted_on_training_folds_lowers_held_out_ece():
    q, y, p = miscalibrated_scores(6000, seed=11)
    assert expected_calibration_error(q, y) < 0.03  # the metric is small for calibrated probabilities
    fold = stratified_folds(y, n_folds=5, seed=1)
    assert np.ptp(np.bincount(fold[y == 1])) <= 1
    for k in range(5):
        train, test = fold != k, fold == k
        calibrator = fit_calibrator(p[train], y[train])
        raw = expected_calibration_error(p[test], y[test])
        calibrated = expected_calibration_error(calibrator.transform(p[test]), y[test])
        assert raw > 0.08 and calibrated < raw / 2, (k, raw, calibrated)
        assert set(calibrator.heldout_ece) == {"isotonic", "platt"}
        assert calibrator.method == min(calibrator.heldout_ece, key=calibrator.heldout_ece.get)
    report = cross_validated_calibration(p, y, "platt", n_folds=5)
    assert report.ece_calibrated < report.ece_raw / 2


def test_calibrators_serialise_to_json_and_back():
    _, y, p = miscalibrated_scores(2000, seed=3)
    grid = np.linspace(0, 1, 101)
    for method in ("isotonic", "platt"):
        calibrator = fit_calibrator(p, y, method=method)
        restored = calibrator_from_dict(json.loads(json.dumps(calibrator.to_dict())))
        np.testing.assert_allclose(restored.transform(grid), calibrator.transform(grid))
        assert (np.diff(calibrator.transform(grid)) >= -1e-12).all()  # monotone
    with pytest.raises(ValueError, match="unknown calibrator method"):
        calibrator_from_dict({"method": "beta"})


def test_reliability_figure(tmp_path):
    _, y, p = miscalibrated_scores(3000, seed=4)
    report = cross_validated_calibration(p, y, "isotonic")
    fig = reliability_figure(p, y, report.p_calibrated)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(f"ECE {report.ece_raw:.3f}" in t for t in labels)
    assert any(f"ECE {report.ece_calibrated:.3f}" in t for t in labels)
    fig.savefig(tmp_path / "reliability.png")


# ---------------------------------------------------------------------------------- daily summary
from tame_assets.products.catalog import minute_dh_dt  # noqa: E402
from tame_assets.products.summary import daily_summary_figure, with_gaps  # noqa: E402

DAY = dt.date(2024, 1, 15)


def arc_frames(sky, times: np.ndarray, seed: int = 0):
    """Frames with an east–west arc drifting equatorward over the night, plus noise (counts)."""
    rng = np.random.default_rng(seed)
    lat = np.nan_to_num(sky.lat_deg, nan=0.0)
    hours = (times - times[0]).astype("timedelta64[s]").astype(float) / 3600.0
    for h in hours:
        centre = 66.0 - 0.5 * h
        yield (
            (300 + 3000 * np.exp(-(((lat - centre) / 0.4) ** 2)) + rng.normal(0, 30, lat.shape))
            .clip(0)
            .astype(np.uint16)
        )


def summary_inputs():
    sky = ideal_skymap(64)
    start = np.datetime64(DAY, "us") + np.timedelta64(11, "h")
    frame_times = start + np.arange(0, 12 * 60) * np.timedelta64(1, "m")
    frame_times = frame_times[
        (frame_times < start + np.timedelta64(5, "h")) | (frame_times >= start + np.timedelta64(6, "h"))
    ]
    keo = keogram(arc_frames(sky, frame_times), frame_times, sky, bin_deg=0.2)
    rng = np.random.default_rng(1)
    classes = np.array(["arc", "diffuse", "discrete", "cloudy", "moon", "clear"])
    pred = classes[(np.arange(frame_times.size) // 90) % 6]
    p_aurora = np.where(np.isin(pred, classes[:3]), 0.85, 0.1) + rng.normal(0, 0.05, frame_times.size)
    predictions = pl.DataFrame({"time": frame_times, "pred": pred, "p_aurora": p_aurora.clip(0, 1)})
    ceil_times = np.datetime64(DAY, "us") + np.arange(0, 24 * 12) * np.timedelta64(5, "m")
    missing = (np.arange(ceil_times.size) >= 100) & (np.arange(ceil_times.size) < 130)
    cloud = (np.arange(ceil_times.size) // 20) % 2 == 1
    ceilometer = pl.DataFrame(
        {
            "time": ceil_times,
            "cbh_m": np.where(cloud & ~missing, 1500.0, np.nan),
            "cloud_detected": cloud,
            "missing": missing,
        }
    ).with_columns(
        pl.col("cbh_m").fill_nan(None),
        pl.when(pl.col("missing")).then(None).otherwise(pl.col("cloud_detected")).alias("cloud_detected"),
    )
    mag_times = np.datetime64(DAY, "us") + np.arange(0, 24 * 60) * np.timedelta64(1, "m")
    h = 13000 + 80 * np.sin(np.arange(mag_times.size) / 90.0) + rng.normal(0, 1, mag_times.size)
    keep = ~((np.arange(mag_times.size) >= 600) & (np.arange(mag_times.size) < 660))
    magnetometer = pl.DataFrame({"time": mag_times[keep], "h_nt": h[keep]})
    return keo, predictions, ceilometer, magnetometer


def test_minute_dh_dt_differences_consecutive_minutes_only():
    times = np.datetime64("2024-01-15T00:00", "us") + np.array([0, 20, 40, 60, 80, 100, 240]) * SECOND
    table = pl.DataFrame({"time": times, "h_nt": [10.0, 12.0, 14.0, 20.0, 22.0, 24.0, 50.0]})
    out = minute_dh_dt(table)
    assert out["h_nt"].to_list() == [12.0, 22.0, 50.0]
    assert out["dh_dt_nt_per_min"].to_list() == [None, 10.0, None]  # minute 4 does not follow minute 1
    t, v = with_gaps(times, np.arange(7.0), cadence_s=20.0)
    assert np.isnan(v).sum() == 1 and np.flatnonzero(np.isnan(v)).tolist() == [6]


def test_daily_summary_figure_shares_the_utc_axis_and_shows_gaps(tmp_path):
    keo, predictions, ceilometer, magnetometer = summary_inputs()
    fig = daily_summary_figure(keo, predictions, ceilometer, magnetometer, "GAKO", DAY)
    ax_keo, ax_cls, ax_ceil, ax_h, ax_dh = fig.axes[:5]
    assert fig._suptitle.get_text() == "Gakona (GAKO) daily summary, 2024-01-15 (UTC)"
    assert ax_dh.get_xlabel() == "Time (UTC)"
    # keogram: one blank (masked) hour of frames between 16:00 and 17:00
    n_time = ax_keo.collections[0].get_coordinates().shape[1] - 1
    mask = np.ma.getmaskarray(ax_keo.collections[0].get_array()).reshape(-1, n_time)
    assert mask.all(axis=0).sum() == 60
    # class strip: the runs cover exactly one minute per prediction; p_aurora line broken once
    strip = list(ax_cls.collections)
    assert len(strip) == 6
    covered_days = sum(np.ptp(path.vertices[:, 0]) for c in strip for path in c.get_paths())
    assert covered_days * 1440 == pytest.approx(predictions.height, abs=1e-3)
    assert np.isnan(ax_cls.lines[0].get_ydata()).sum() == 1
    # ceilometer flag strip: missing 5-minute records are blank
    flagged = sum(np.ptp(path.vertices[:, 0]) for c in ax_ceil.collections for path in c.get_paths())
    assert flagged * 1440 / 5 == pytest.approx(ceilometer.height - ceilometer["missing"].sum(), abs=1e-3)
    # magnetometer: H minus the day median, the median stated in the label; one-hour gap breaks the line
    median = magnetometer["h_nt"].median()
    assert f"median {median:.1f} nT" in ax_h.get_ylabel()
    y = ax_h.lines[0].get_ydata()
    assert np.isnan(y).sum() == 1 and np.nanmax(np.abs(y - 0)) > 50
    np.testing.assert_allclose(np.sort(y[np.isfinite(y)]), np.sort(magnetometer["h_nt"].to_numpy() - median))
    assert "nT/min" in ax_dh.get_ylabel()
    fig.savefig(tmp_path / "summary.png", dpi=80)
    fig.savefig("/tmp/products_summary.png", dpi=80)


def test_daily_summary_lines_connect_jittered_samples_and_labels_are_words():
    """Real cadences jitter and some frames have no probability: the P(aurora) line still connects
    contiguous samples (it breaks only at the one-hour gap); labels are words, not column names; cloud-base
    dots appear only where the ceilometer reports a cloud."""
    import matplotlib.dates as mdates

    keo, predictions, ceilometer, magnetometer = summary_inputs()
    rng = np.random.default_rng(3)
    jitter = (rng.integers(0, 50, predictions.height) * 1_000_000).astype("timedelta64[us]")  # 0–49 s on 60 s
    p = predictions["p_aurora"].to_numpy().copy()
    p[::37] = np.nan  # frames without a probability: skipped, not gaps
    predictions = predictions.with_columns(
        pl.Series("time", predictions["time"].to_numpy() + jitter), pl.Series("p_aurora", p).fill_nan(None)
    )
    # a base height reported in "no cloud" records (e.g. vertical visibility) must not be drawn
    ceilometer = ceilometer.with_columns(
        pl.when(pl.col("missing")).then(None).otherwise(pl.col("cbh_m").fill_null(4000.0)).alias("cbh_m")
    )
    fig = daily_summary_figure(keo, predictions, ceilometer, magnetometer, "NYA", DAY)
    ax_keo, ax_cls, ax_ceil, ax_h, ax_dh = fig.axes[:5]
    y = ax_cls.lines[0].get_ydata()
    assert np.isnan(y).sum() == 1 and np.isfinite(y).sum() == np.isfinite(p).sum()
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert not [t for t in texts if "p_aurora" in t or "cbh_m" in t]
    assert "P(aurora)" in ax_cls.get_ylabel() and "(m)" in ax_ceil.get_ylabel()
    assert "P(aurora)" in [t.get_text() for t in ax_cls.get_legend().get_texts()]
    dots = ax_ceil.lines[0]
    dot_times = mdates.num2date(mdates.date2num(dots.get_xdata())) if len(dots.get_xdata()) else []
    cloudy = set(ceilometer.filter(pl.col("cloud_detected").fill_null(False))["time"].to_list())
    assert len(dot_times) == len(cloudy) and {d.replace(tzinfo=None) for d in dot_times} == cloudy
    # the class strip has no holes inside the contiguous stretches (jitter < 3 cadences)
    covered = sorted(
        (x0, x0 + w)
        for c in ax_cls.collections
        for path in c.get_paths()
        for x0, w in [(path.vertices[:, 0].min(), np.ptp(path.vertices[:, 0]))]
    )
    holes = [b0 - a1 for (_, a1), (b0, _) in zip(covered, covered[1:]) if b0 - a1 > 1e-9]
    assert len(holes) == 1 and holes[0] * 24 > 0.9  # only the one-hour gap
    fig.savefig("/tmp/products_summary_jitter.png", dpi=80)


def test_daily_summary_figure_with_missing_inputs():
    fig = daily_summary_figure(
        None, None, None, pl.DataFrame({"time": [dt.datetime(2024, 1, 16)], "h_nt": [1.0]}), "GAKO", "2024-01-15"
    )
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no all-sky frames on this day" in texts and "no magnetometer data on this day" in texts
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        daily_summary_figure(None, None, None, None, "GAKO", "15/01/2024")


class _ThemisSkymap:
    """The official Gakona skymap (IDL save) at 110 km: pixel-centre lat/lon as the mean of the four corners,
    rotated by 180° to the row order of the level-1 CDF frames (as the geometry package reads it)."""

    def __init__(self, path):
        import warnings

        from scipy.io import readsav

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sky = readsav(str(path))["skymap"]
        altitudes = np.asarray(sky["FULL_MAP_ALTITUDE"][0]) / 1000.0
        k = int(np.argmin(np.abs(altitudes - 110.0)))
        corners = {n: np.asarray(sky[f"FULL_MAP_{n}"][0][k], float) for n in ("LATITUDE", "LONGITUDE")}
        centre = {n: (c[:-1, :-1] + c[1:, :-1] + c[:-1, 1:] + c[1:, 1:]) / 4 for n, c in corners.items()}
        self.lat_deg, self.lon_deg = centre["LATITUDE"][::-1, ::-1], centre["LONGITUDE"][::-1, ::-1]
        self.elevation_deg = np.asarray(sky["FULL_ELEVATION"][0], float)[::-1, ::-1]
        self.azimuth_deg = np.asarray(sky["FULL_AZIMUTH"][0], float)[::-1, ::-1]
        self.altitude_km = float(altitudes[k])


def test_real_themis_gakona_keogram_and_projection(real_dir):
    import cdflib

    folder = real_dir / "themis" / "cdf_gako"
    cdf = cdflib.CDF(str(folder / "thg_l1_asf_gako_2011010617_v01.cdf"))
    frames = cdf.varget("thg_asf_gako")
    times = cdflib.cdfepoch.to_datetime(cdf.varget("thg_asf_gako_epoch"))
    sky = _ThemisSkymap(folder / "themis_skymap_gako_20110305-+_vXX.sav")
    assert frames.shape[1:] == sky.lat_deg.shape == (256, 256)
    keo = keogram_array(iter(frames), times, sky, bin_deg=0.2, min_elevation_deg=10.0)
    assert keo.intensity.shape[0] == frames.shape[0] == 23
    path = meridian_path(sky, "ns", bin_deg=0.2, min_elevation_deg=10.0)
    az = sky.azimuth_deg[path.rows, path.cols]
    el = sky.elevation_deg[path.rows, path.cols]
    assert np.abs(np.cos(np.radians(el)) * np.sin(np.radians(az))).max() < 0.02  # real meridian pixels
    lat = sky.lat_deg[path.rows, path.cols]
    assert lat.min() < 59.0 and lat.max() > 65.5  # Gakona 62.4°N: about ±3.5° at 110 km above 10° elevation
    for j in (0, keo.coordinate.size // 2, keo.coordinate.size - 1):
        inside = (lat >= keo.coordinate[j] - 0.1) & (lat < keo.coordinate[j] + 0.1)
        assert keo.intensity[5, j] == pytest.approx(frames[5][path.rows[inside], path.cols[inside]].mean(), rel=1e-6)
    grid = grid_for_skymaps([sky], lat_step_deg=0.25, min_elevation_deg=10.0)
    lat_img = project_frame(np.nan_to_num(sky.lat_deg), sky, grid, "mean", min_elevation_deg=10.0)
    i, j = np.nonzero(np.isfinite(lat_img))
    assert i.size > 300
    assert ((lat_img[i, j] >= grid.lat_edges[i] - 1e-9) & (lat_img[i, j] < grid.lat_edges[i + 1])).all()
    projected = project_frame(frames[5], sky, grid, "nearest", min_elevation_deg=10.0)
    assert np.isfinite(projected).sum() >= i.size and np.nanmax(projected) <= frames[5].max()
