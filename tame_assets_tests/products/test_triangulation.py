"""Emission height by triangulation: synthetic arcs rendered at known heights into the sample's two
overlapping cameras (each through its own WGS84 skymap) are measured within 5 km, and the mosaic
misalignment at the measured height is a fraction of the one at the assumed 110 km."""

from __future__ import annotations

import numpy as np
import pytest

from tame_assets.geometry import camera_skymap, look_to_geodetic
from tame_assets.products.triangulation import ShellRays, StereoPair, misalignment_km
from tame_assets.sources.sample import sky


@pytest.fixture(scope="module")
def cameras():
    return camera_skymap("gill", 110.0), camera_skymap("chur", 110.0)


def render(skymap, arc, rng) -> np.ndarray:
    at = skymap.at_altitude(arc.height_km, min_elevation_deg=0.0)
    return sky.quantise(sky.render_shell_sky(at.lat_deg, at.lon_deg, at.elevation_deg, [arc], rng), 16)


def test_heights_of_synthetic_arcs_within_5_km(cameras):
    rng = np.random.default_rng(11)
    pair = StereoPair(*cameras)
    errors, before, after = [], [], []
    for height, lat0 in ((102.0, 57.2), (127.0, 57.9), (148.0, 57.5)):
        arc = sky.random_shell_arc(rng, height, lat0, -94.4)
        estimate = pair.estimate(render(cameras[0], arc, rng), render(cameras[1], arc, rng))
        assert estimate.found and estimate.ncc > 0.6
        errors.append(estimate.height_km - height)
        before.append(misalignment_km(*cameras, [lat0], [-94.4], height, 110.0)[0])
        after.append(misalignment_km(*cameras, [lat0], [-94.4], height, estimate.height_km)[0])
    assert np.sqrt(np.mean(np.square(errors))) <= 5.0 and max(abs(e) for e in errors) < 5.0
    assert min(before) > 10.0 and max(after) < 5.0  # 10-60 km apart at 110 km, a few km at the measured height
    # and the estimate answers "no common feature" for frames of two different skies
    other = sky.random_shell_arc(rng, 120.0, 56.5, -94.4)
    unrelated = pair.estimate(render(cameras[0], other, rng), render(cameras[1], arc, rng))
    assert unrelated.ncc < pair.estimate(render(cameras[0], arc, rng), render(cameras[1], arc, rng)).ncc


def test_shell_rays_agree_with_look_to_geodetic(cameras):
    rays = ShellRays(cameras[1], min_elevation_deg=15.0, stride=7)
    az = cameras[1].azimuth_deg.reshape(-1)[rays.pixel]
    for height in (97.5, 110.0, 163.2):
        lat, lon = look_to_geodetic(az, rays.elevation_deg, *rays.site, height)
        got = rays.lat_lon(height)
        assert np.abs(got[0] - lat).max() < 1e-4 and np.abs(got[1] - lon).max() < 2e-4  # < 10 m


def test_misalignment_vanishes_at_the_true_height(cameras):
    lat, lon = np.array([57.0, 57.6, 58.1]), np.array([-95.5, -94.4, -93.0])
    assert misalignment_km(*cameras, lat, lon, 130.0, 130.0).max() < 0.01
    assert (misalignment_km(*cameras, lat, lon, 130.0, 110.0) > 20.0).all()


def test_sample_renderer_uses_the_lens_models_geometry(cameras):
    """The sample generator renders through the same look directions as the lens models, and its
    spherical shell is geometry.earth's sphere model."""
    az, el = sky.fisheye_look(256)
    assert np.array_equal(np.isnan(el), np.isnan(cameras[0].elevation_deg))
    assert np.nanmax(np.abs((az - cameras[0].azimuth_deg + 180) % 360 - 180)) < 1e-4
    assert np.nanmax(np.abs(el - cameras[0].elevation_deg)) < 1e-4
    ok = el >= 10
    lat, lon = sky.shell_lat_lon(az[ok], el[ok], 58.77, -94.17, 30.0, 125.0)
    ref = look_to_geodetic(az[ok], el[ok], 58.77, -94.17, 30.0, 125.0, earth_model="sphere")
    assert np.abs(lat - ref[0]).max() < 1e-9 and np.abs(lon - ref[1]).max() < 1e-9
