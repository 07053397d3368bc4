"""Stations as a partition dimension: configuration only (tame.toml or a stations file), station × month runs
of the real Definitions, and a real THEMIS station from a local folder (the Gakona CDF)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.config import TameSettings
from tame_assets.sources.themis import read_themis_cdf
from tame_assets.stations import read_stations_file
from tame_assets.warehouse.store import Warehouse, station_file

GAKO_CDF = "thg_l1_asf_gako_2011010617_v01.cdf"


def _stations_file(tmp_path, text: str):
    path = tmp_path / "stations.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '[GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nfolderr = "x"\n',
            "[GAKO] unknown key(s) folderr",
        ),
        ('[GAKO]\nnetwork = "rego"\ncamera = "gako"\n', "unknown network 'rego'"),
        ('[gako]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\n', "3-5 upper-case letters"),
        ('[GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "png"\n', "image_format must be one of cdf, pgm"),
        ('[GAKO]\nnetwork = "themis"\ncamera = "../etc"\nimage_format = "cdf"\n', "is not a lowercase camera id"),
        ("[GAKO\n", "cannot read the stations file"),
        # issue 25: types are checked, naming the key; a code with a trailing newline is refused
        (
            '[NYA2]\nnetwork = "uio"\ncamera = "nya6"\nwavelengths_nm = 5577\n',
            "[NYA2] wavelengths_nm must be a list of numbers (e.g. [557.7, 630.0]), not an integer (5577)",
        ),
        (
            '[GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nfolder = 5\n',
            "[GAKO] folder must be a string, not an integer (5)",
        ),
        (
            '[GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nmagnetometer_station = true\n',
            "[GAKO] magnetometer_station must be a string, not a boolean (True)",
        ),
        ('["GAKO\\n"]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\n', "3-5 upper-case letters"),
    ],
)
def test_a_bad_stations_file_is_one_line_naming_the_file(tmp_path, text, message):
    path = _stations_file(tmp_path, text)
    with pytest.raises(ValueError) as error:
        read_stations_file(path)
    assert str(path) in str(error.value) and message in str(error.value)
    result = CliRunner().invoke(
        app,
        [
            "materialize",
            "--station",
            "GAKO",
            "--month",
            "2011-01",
            "--select",
            "asim_images",
            "--stations-file",
            str(path),
            "--data-root",
            str(tmp_path / "data"),
        ],
    )
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "data" / "warehouse").exists()


def test_a_stations_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "stations.toml"
    path.write_bytes('[GAKO]\nnetwork = "themis"\ncamera = "gako" # Gákona\n'.encode("latin-1"))
    with pytest.raises(ValueError) as error:
        read_stations_file(path)
    assert str(error.value) == f"{path}: the stations file is not UTF-8 (byte 0xe1 at offset 45); save it as UTF-8"


def test_an_unknown_station_is_refused_naming_the_configured_ones(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "materialize",
            "--station",
            "XYZ",
            "--month",
            "2011-01",
            "--select",
            "asim_images",
            "--data-root",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "station 'XYZ' is not configured (configured: NYA, GILL)" in result.output


def test_configured_stations_sample_and_file():
    sample = TameSettings(data_root="unused")
    assert sample.station_table().codes == ["NYA", "GILL"]
    nya = sample.station("NYA")
    assert (nya.network, nya.camera, nya.wavelengths_nm) == ("uio", "nya4", (557.7,))
    assert nya.key_maps == {"magnetometer": {"NYA": "NAL"}, "ceilometer": {"NYA": "NYA"}}
    assert sample.station("GILL").key_maps == {"magnetometer": {}, "ceilometer": {}}
    assert TameSettings(data_root="unused", source="remote").station_table().codes == ["NYA"]


@pytest.mark.e2e
def test_real_gakona_cdf_from_a_local_folder_is_ingested_featured_and_classified(real_dir, small_classifier, tmp_path):
    """README's example: a [stations.GAKO] table in tame.toml, then `tame materialize` of the GAKO × 2011-01
    partition from a folder holding the real Gakona CDF (and its thumbnail file, which is not
    full-resolution data): 23 frames with the file's exact times, features and OATH-classifier
    predictions for each, and the station's skymap from its .sav."""
    folder = real_dir / "themis" / "cdf_gako"
    sav = next(folder.glob("themis_skymap_gako_*.sav"))
    project = tmp_path / "tame.toml"  # the data root is data/ beside it
    project.write_text(
        f'[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\n'
        f'folder = "{folder}"\nskymap_file = "{sav}"\n'
    )
    root = tmp_path / "data"
    shutil.copytree(small_classifier[0], root / "models" / "oath_classifier")
    result = CliRunner().invoke(
        app,
        [
            "materialize",
            "--station",
            "GAKO",
            "--month",
            "2011-01",
            "--config",
            str(project),
            "--select",
            "skymaps,asim_images,asim_features,asim_predictions",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "✓ [GAKO 2011-01] asim_images, asim_features, asim_predictions" in result.output

    wh = Warehouse(root)
    images = wh.read_partition("asim_images", "2011-01", station_file("GAKO"))
    real = read_themis_cdf(folder / GAKO_CDF)
    assert images.height == 23 and images["valid"].all()
    assert images["file_name"].unique().to_list() == [GAKO_CDF]  # the thumbnail (ast) product is not ingested
    assert images["frame_index"].to_list() == list(range(23))
    assert images["time"].to_list() == [t.astype("datetime64[us]").item() for t in real.times]
    keys = images.select("network", "station", "camera", "wavelength_0.1nm").unique().rows()
    assert set(keys) == {("themis", "GAKO", "gako", 0)}
    features = wh.read_partition("asim_features", "2011-01", station_file("GAKO"))
    assert features["ok"].all() and features["frame_index"].to_list() == list(range(23))
    vectors = np.asarray(features["features"].to_list())
    assert vectors.shape == (23, 1000) and np.isfinite(vectors).all()
    assert len({v.tobytes() for v in vectors}) == 23  # every frame its own features (not one frame 23 times)
    predictions = wh.read_partition("asim_predictions", "2011-01", station_file("GAKO"))
    assert predictions.height == 23 and predictions["pred"].null_count() == 0
    probabilities = predictions.select(pl.col("^p_(arc|diffuse|discrete|cloudy|moon|clear)$")).to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    skymap = wh.sql("SELECT * FROM skymaps WHERE station = 'GAKO'")
    # ../shared may be a symbolic link: compare resolved paths
    assert skymap.height == 256 * 256 and Path(skymap["source"][0]).resolve() == sav.resolve()
    assert skymap["altitude_km"].unique().to_list() == [110.0]
    zenith = skymap.sort("elevation_deg", descending=True, nulls_last=True).row(0, named=True)
    assert zenith["elevation_deg"] > 88 and 62.0 < zenith["lat_deg"] < 62.8  # Gakona, 62.4° N
