"""Satellite conjunctions: the two field-line tracers agree, TEME → Earth-fixed matches Vallado's
worked example, TLE files parse, and a synthetic pass over the sample station GILL yields the
expected frames, pixel track and intensities (sample CDF files, the station's own skymap)."""

import datetime as dt

import numpy as np
import polars as pl
import pymap3d
import pytest

from tame_assets.geometry import station_skymap
from tame_assets.geometry.conjunctions import (
    conjunction_figure,
    conjunctions_for_sources,
    read_ephemeris_csv,
    read_tle,
    teme_to_ecef,
    tle_positions,
)
from tame_assets.geometry.earth import ground_distance_km
from tame_assets.geometry.fieldline import TRACER_TOLERANCE_KM, trace_geopack, trace_igrf
from tame_assets.geometry.lens import CAMERA_LENSES
from tame_assets.sources.errors import SourceFormatError
from tame_assets.sources.frame_reader import file_frames, frame_item, grey_frame
from tame_assets.stations import Station

# An ISS-like element set written for this test (epoch 2010-12-02, inclination 51.64°, 15.72 rev/day;
# not a published TLE): what matters is that sgp4 parses and propagates it.
ISS_TLE = """ISS (ZARYA)
1 25544U 98067A   10336.54166667  .00016717  00000-0  10270-3 0  9005
2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537
"""


def test_cached_igrf_equals_ppigrf():
    import ppigrf

    from tame_assets.geometry.fieldline import igrf_gc

    rng = np.random.default_rng(0)
    r, theta, phi = rng.uniform(6400, 20000, 50), rng.uniform(1, 179, 50), rng.uniform(-180, 180, 50)
    when = dt.datetime(2010, 12, 6, 5, 30)
    for ours, reference in zip(igrf_gc(r, theta, phi, when), ppigrf.igrf_gc(r, theta, phi, when)):
        np.testing.assert_allclose(ours, reference.ravel(), rtol=1e-12, atol=1e-9)
    # ppigrf's documented example (shared notes): 62 N 145 W, 110 km, 2011-01-06 → Be, Bn, Bu.
    be, bn, bu = ppigrf.igrf(-145, 62, 110, dt.datetime(2011, 1, 6))
    np.testing.assert_allclose([be[0], bn[0], bu[0]], [4605, 12561, -51921], atol=1.0)


def test_two_tracers_agree_on_leo_footprints():
    # A satellite at 800 km over GILL (56.4 N, 94.6 W) and around it, and over Ny-Ålesund.
    lat = np.array([56.38, 54.5, 78.92])
    lon = np.array([-94.64, -97.0, 11.93])
    when = dt.datetime(2010, 12, 6, 5, 30)
    ours = trace_igrf(lat, lon, 800.0, when)
    igrf_only = trace_geopack(lat, lon, 800.0, when, external=None)
    with_t89 = trace_geopack(lat, lon, 800.0, when, external="t89")
    assert np.isfinite(ours[0]).all()
    d_igrf = ground_distance_km(*ours, *igrf_only, altitude_km=110.0)
    d_t89 = ground_distance_km(*ours, *with_t89, altitude_km=110.0)
    assert d_igrf.max() < TRACER_TOLERANCE_KM["igrf"], d_igrf
    assert d_t89.max() < TRACER_TOLERANCE_KM["t89"], d_t89
    # The footprint lies poleward of the sub-satellite point (field lines tilt toward the pole) by ~100 km.
    shift = ground_distance_km(lat, lon, *ours)
    assert (ours[0] > lat).all() and ((shift > 50) & (shift < 200)).all(), shift
    # Tracing the footprint back up to 800 km returns to the satellite (both directions work).
    back = trace_igrf(*ours, 110.0, when, target_km=800.0, hemisphere="south")
    assert ground_distance_km(lat, lon, *back).max() < 0.01


def test_teme_to_ecef_matches_vallado_example():
    # Vallado et al. 2006 (AIAA 2006-6753), TEME → ITRF example, 2004-04-06 07:51:28.386009 UTC,
    # UT1 − UTC = −0.4399619 s; polar motion (0.33") is not applied here: ~20 m.
    r_teme = np.array([5094.18016210, 6127.64465950, 6380.34453270])
    ut1 = np.datetime64("2004-04-06T07:51:28.386009") - np.timedelta64(439962, "us")
    ecef = teme_to_ecef(r_teme, ut1)
    np.testing.assert_allclose(ecef, [-1033.4793830, 7901.2952754, 6380.3565958], atol=0.05)


def test_tle_file_positions_and_errors(tmp_path):
    path = tmp_path / "iss.tle"
    path.write_text(ISS_TLE)
    ((name, sat),) = read_tle(path)
    assert name == "ISS (ZARYA)"
    times = np.arange(np.datetime64("2010-12-02T13:00"), np.datetime64("2010-12-02T14:40"), np.timedelta64(60, "s"))
    pos = tle_positions(sat, times)
    assert pos.height == times.size
    assert pos["alt_km"].min() > 330 and pos["alt_km"].max() < 380  # ISS in Dec 2010
    assert pos["lat_deg"].abs().max() == pytest.approx(51.6, abs=0.5)  # inclination 51.64°
    bad = tmp_path / "bad.tle"
    bad.write_text("ISS\n1 25544U 98067A   10336.54166667\n")
    with pytest.raises(SourceFormatError, match="bad.tle, line 2"):
        read_tle(bad)
    csv = tmp_path / "eph.csv"
    csv.write_text("time,lat,lon\n2010-12-06T05:00,56,-94\n")
    with pytest.raises(SourceFormatError, match="eph.csv, line 1: .*alt_km"):
        read_ephemeris_csv(csv)
    csv.write_text("time,lat,lon,alt_km\n2010-12-06T05:00,56,-94,800\nyesterday,56,-94,800\n")
    with pytest.raises(SourceFormatError, match="eph.csv, line 3"):
        read_ephemeris_csv(csv)


def _gill_frames(sample_archive):
    path = next((sample_archive / "themis" / "cdf").rglob("thg_l1_asf_gill_2010120605_v01.cdf"))
    rows = [
        {"time": t, "file_name": path.name, "frame_index": i, "local_path": str(path), "network": "themis"}
        for i, (t, _) in enumerate(file_frames(path))
    ]
    return path, pl.DataFrame(rows).with_columns(pl.col("time").cast(pl.Datetime("us")))


def test_synthetic_pass_over_gill_gives_expected_frames_and_pixel_track(sample_archive, tmp_path):
    path, frames = _gill_frames(sample_archive)
    times = frames["time"].to_numpy().astype("datetime64[us]")
    # A slow synthetic satellite at 800 km whose footprint (110 km) runs south → north through GILL's
    # zenith, one ephemeris sample per frame; positions traced up from the intended footprints with
    # the independent tracer (geopack, IGRF only).
    foot_lat = np.linspace(53.0, 60.0, times.size)
    foot_lon = np.linspace(-95.5, -93.5, times.size)
    sat_lat, sat_lon = trace_geopack(
        foot_lat, foot_lon, 110.0, times, target_km=800.0, hemisphere="south", external=None, step_re=0.005
    )
    csv = tmp_path / "synthetic.csv"
    pl.DataFrame(
        {"time": [str(t) for t in times], "lat": sat_lat, "lon": sat_lon, "alt_km": np.full(times.size, 800.0)}
    ).write_csv(csv)
    ephemeris = read_ephemeris_csv(csv)
    station = Station(code="GILL", network="themis", camera="gill", image_format="cdf")
    sky = station_skymap(station, 0, (256, 256))

    def read(row):
        return grey_frame(frame_item(row["local_path"], row["frame_index"], row["network"]))

    table = conjunctions_for_sources(
        [("SYNTH-1", ephemeris.drop("satellite"))],
        times,
        sky,
        station="GILL",
        min_elevation_deg=20.0,
        frames=frames,
        read_frame=read,
    )
    # Expected, independently: pymap3d's azimuth/elevation of the intended footprints and the lens
    # model's exact inverse projection.
    az, el, _ = pymap3d.geodetic2aer(foot_lat, foot_lon, 110e3, sky.site_lat_deg, sky.site_lon_deg, sky.site_alt_m)
    expected = el >= 20.0
    assert 5 <= expected.sum() < times.size
    assert table["time"].to_list() == frames["time"].filter(pl.Series(expected)).to_list()
    assert table["file_name"].unique().to_list() == [path.name]
    assert table["frame_index"].to_list() == np.flatnonzero(expected).tolist()
    rows, cols = CAMERA_LENSES["gill"].lens.for_shape((256, 256)).look_to_pixel(az[expected], el[expected])
    assert np.abs(table["y"].to_numpy() - rows).max() <= 1.0
    assert np.abs(table["x"].to_numpy() - cols).max() <= 1.0
    assert table["y"].to_numpy()[0] > table["y"].to_numpy()[-1]  # north is up in the sample frames
    assert (
        ground_distance_km(foot_lat[expected], foot_lon[expected], table["foot_lat_deg"], table["foot_lon_deg"]).max()
        < 0.05
    )
    assert table["pass_start"].n_unique() == 1 and table["pass_start"][0] == table["time"][0]
    pixels = dict(file_frames(path))
    for row in table.iter_rows(named=True):
        frame = pixels[row["time"]].astype(float)
        y, x = row["y"], row["x"]
        assert row["intensity"] == pytest.approx(frame[y - 1 : y + 2, x - 1 : x + 2].mean())
    middle = table.row(table.height // 2, named=True)
    fig = conjunction_figure(pixels[middle["time"]], table, satellite="SYNTH-1", station="GILL", time=middle["time"])
    assert "SYNTH-1" in fig.axes[0].get_title() and "UTC" in fig.axes[0].get_title()  # drawn, saved by the asset test


def test_no_sources_or_no_overlap_gives_empty_table():
    station = Station(code="GILL", network="themis", camera="gill", image_format="cdf")
    sky = station_skymap(station, 0, (256, 256))
    times = np.arange(
        np.datetime64("2010-12-06T05:00:00.000000"), np.datetime64("2010-12-06T06:00"), np.timedelta64(60, "s")
    )
    assert conjunctions_for_sources([], times, sky, station="GILL", min_elevation_deg=20.0).height == 0
    far = pl.DataFrame({"time": times, "lat_deg": -40.0, "lon_deg": 100.0, "alt_km": 800.0})
    assert conjunctions_for_sources([("FAR", far)], times, sky, station="GILL", min_elevation_deg=20.0).height == 0
