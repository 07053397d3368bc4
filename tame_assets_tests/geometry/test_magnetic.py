"""AACGM-v2 magnetic coordinates against the aacgmv2 package's own reference values, the vectorised
zenith MLT against direct per-frame evaluation, and per-pixel skymap coordinates."""

import datetime as dt

import numpy as np
import pytest

from tame_assets.geometry.lens import camera_skymap
from tame_assets.geometry.magnetic import aacgm, magnetic_azimuth_deg, mlt_hours, zenith_mlt


def test_aacgm_matches_package_reference_values():
    # aacgmv2 2.7.1 test suite (tests/test_py_aacgmv2.py, TestConvertLatLon): 60 N 0 E 300 km, 2015-01-01.
    mlat, mlon = aacgm(60.0, 0.0, 300.0, dt.datetime(2015, 1, 1))
    assert mlat == pytest.approx(58.2268, rel=1e-4) and mlon == pytest.approx(81.1613, rel=1e-4)
    # Same suite, TestMLTConvert: AACGM longitudes 270, 80, −95 at 2015-01-01 00:00 → MLT.
    mlt = mlt_hours(np.array([270.0, 80.0, -95.0]), dt.datetime(2015, 1, 1))
    np.testing.assert_allclose(mlt, [12.7780412, 0.11137453, 12.44470786], rtol=1e-4)
    # Ny-Ålesund at 110 km, 2010-12-02 18:00 UT (checked on this machine, shared notes).
    mlat, mlon = aacgm(78.92, 11.93, 110.0, dt.datetime(2010, 12, 2, 18))
    assert mlat == pytest.approx(76.42, abs=0.005)
    assert mlt_hours(mlon, dt.datetime(2010, 12, 2, 18)) == pytest.approx(20.49, abs=0.005)
    assert np.isnan(aacgm(np.nan, 0.0, 110.0, dt.datetime(2015, 1, 1))[0])
    with pytest.raises(ValueError, match="2000 km"):
        aacgm(60.0, 0.0, 2500.0, dt.datetime(2015, 1, 1))


def test_zenith_mlt_vectorised_matches_direct_evaluation():
    times = np.arange(np.datetime64("2010-12-01"), np.datetime64("2011-01-01"), np.timedelta64(10, "s"))
    times[5] = np.datetime64("NaT")
    mlat, mlt = zenith_mlt(78.92, 11.93, 110.0, times)
    assert np.isnan(mlt[5]) and np.isnan(mlat[5])
    pick = np.arange(0, times.size, 4999)
    pick = pick[pick != 5]
    direct = []
    for t in times[pick]:
        when = t.astype(dt.datetime)
        lat, lon = aacgm(78.92, 11.93, 110.0, when)
        assert mlat[pick][len(direct)] == pytest.approx(float(lat), abs=1e-3)
        direct.append(float(mlt_hours(lon, when)))
    diff = (mlt[pick] - np.array(direct) + 12) % 24 - 12
    assert np.abs(diff).max() < 0.002  # h (7 s)
    # NYA's zenith: magnetic midnight near 21 UT (MLT ≈ UT + 3 h).
    midnight = times[np.nanargmin(np.abs((mlt[:8640] + 12) % 24 - 12))]
    assert 20 <= midnight.astype(dt.datetime).hour <= 22


def test_skymap_gains_mlat_mlon_per_pixel():
    sky = camera_skymap("gill", 110.0)
    mlat, mlon = sky.aacgm(dt.datetime(2010, 12, 2))
    assert mlat.shape == sky.shape
    assert (np.isnan(mlat) == np.isnan(sky.lat_deg)).all()
    r, c = np.unravel_index(np.nanargmax(np.where(sky.mask, sky.elevation_deg, -1)), sky.shape)
    zlat, zlon = aacgm(sky.lat_deg[r, c], sky.lon_deg[r, c], 110.0, dt.datetime(2010, 12, 2))
    assert mlat[r, c] == pytest.approx(float(zlat)) and mlon[r, c] == pytest.approx(float(zlon))
    # Magnetic latitude grows to the geographic north-north-east over Gillam (AACGM pole in north Canada).
    north = magnetic_azimuth_deg(sky, mlat, mlon)
    assert north < 30 or north > 330
