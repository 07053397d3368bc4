"""Keograms along the AACGM-v2 magnetic meridian, binned in magnetic latitude."""

import datetime as dt

import numpy as np
import polars as pl

from tame_assets.geometry.lens import camera_skymap
from tame_assets.products.keogram import (
    keogram,
    keogram_figure,
    keogram_from_table,
    magnetic_meridian_path,
    meridian_path,
)


def test_magnetic_keogram_follows_the_aacgm_meridian_in_mlat_bins(tmp_path):
    when = dt.datetime(2010, 12, 2, 18)
    sky = camera_skymap("nya6", 110.0, shape=(256, 256))
    mlat, mlon = sky.aacgm(when)
    path = magnetic_meridian_path(sky, when, bin_deg=0.1, min_elevation_deg=10.0)
    geographic = meridian_path(sky, "ns", 0.1, 10.0)
    # Along the path AACGM longitude stays put (Ny-Ålesund's magnetic meridian is ~30° west of north).
    assert np.ptp(mlon[path.rows, path.cols]) < 0.2
    assert np.ptp(mlon[geographic.rows, geographic.cols]) > 5.0
    # Frames whose counts are 100 × the pixel's AACGM latitude: each bin's value is its mlat × 100.
    frame = np.nan_to_num(mlat * 100.0).astype(np.float32)
    times = [when + dt.timedelta(seconds=10 * k) for k in range(3)]
    table = keogram([frame] * 3, times, sky, magnetic_epoch=when, bin_deg=0.1, min_elevation_deg=10.0)
    assert table.columns == ["time", "mlat_deg", "intensity"] and table["time"].n_unique() == 3
    err = (table["intensity"] / 100.0 - table["mlat_deg"]).abs()
    assert err.max() < 0.05 + 1e-6  # within half a bin
    assert 73.0 < table["mlat_deg"].min() and table["mlat_deg"].max() < 80.0
    assert keogram_from_table(table).coordinate_name == "mlat_deg"
    fig = keogram_figure(table, station="NYA", wavelength="557.7 nm")
    assert "magnetic meridian" in fig._suptitle.get_text()
    assert "Magnetic latitude" in fig.axes[0].get_ylabel()
    assert pl.DataFrame(table).height == 3 * path.coordinate.size
