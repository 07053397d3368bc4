"""The ``mosaics`` asset, materialized by Dagster on the sample archive with its overlapping second THEMIS
station configured in a tame.toml (it is not a default station): the group's mosaics land in the partition
of its last station; the measured heights (the code path of ``emission_height = "measured"``) against the
heights the archive rendered its arcs at."""

from __future__ import annotations

import polars as pl
from dagster import DagsterInstance, materialize

from tame_assets.config import load_settings
from tame_assets.defs.asset_defs import all_assets
from tame_assets.defs.resources import TameResource
from tame_assets.defs.runner import register_stations
from tame_assets.sources.sample.generator import read_manifest
from tame_assets.warehouse.store import Warehouse, station_file

MONTH = "2010-12"
TOML = """
[storage]
data_root = "{root}"

[stations.CHUR]
network = "themis"
camera = "chur"
image_format = "cdf"
"""


def test_mosaics_of_the_overlapping_sample_stations(sample_archive, tmp_path):
    toml = tmp_path / "tame.toml"
    toml.write_text(TOML.format(root=tmp_path / "data"))
    settings = load_settings(toml)
    assert settings.station_table().codes == ["NYA", "GILL", "CHUR"]
    instance = DagsterInstance.ephemeral()
    register_stations(instance, settings.station_table().codes)
    resources = {"tame": TameResource.from_settings(settings)}
    for station, selection in (("GILL", ["asim_images"]), ("CHUR", ["asim_images", "mosaics"])):
        key = f"{MONTH}|{station}"
        result = materialize(all_assets, selection=selection, partition_key=key, resources=resources, instance=instance)
        assert result.success

    wh = Warehouse(settings.paths)
    table = wh.read_partition("mosaics", MONTH, station_file("CHUR"))
    steps = table.unique("time").sort("time")
    truth = read_manifest(sample_archive).overlap_heights_km
    assert steps.height == len(truth) == 24  # every overlap frame of CHUR has a GILL frame
    assert set(table["group"]) == {"GILL+CHUR"} and set(table["source_station"]) == {"GILL", "CHUR"}
    assert (steps["height_source"] == "assumed").all() and (steps["height_km"] == 110.0).all()
    assert steps["ncc"].is_nan().all()  # nothing measured with the default emission_height = "assumed"
    chur = table.filter(pl.col("time") == steps["time"][0])
    assert chur.select("lat_deg", "lon_deg").is_unique().all() and chur["intensity"].is_finite().all()
    # the camera seeing a cell higher wins it: around each site (both see it) its own camera
    near = (pl.col("lon_deg") + 94.4).abs() < 1.5
    assert chur.filter(near & (pl.col("lat_deg") > 58.3))["source_station"].unique().to_list() == ["CHUR"]
    assert chur.filter(near & (pl.col("lat_deg") < 56.8))["source_station"].unique().to_list() == ["GILL"]
    figures = sorted((settings.paths.figures_dir / "mosaics").glob("GILL_CHUR_20101206_*.png"))
    assert len(figures) == 1 and figures[0].with_suffix(".svg").exists()  # one figure per group and day
    # the earlier station of the group yields no mosaics of its own
    gill = materialize(
        all_assets, selection=["mosaics"], partition_key=f"{MONTH}|GILL", resources=resources, instance=instance
    )
    assert gill.success and wh.read_partition("mosaics", MONTH, station_file("GILL")).height == 0


def test_measured_heights_of_the_sample_overlap_frames(sample_archive):
    """Three overlap times of the sample archive: GILL's and CHUR's frames (CDF files as served), heights
    measured by the mosaics' code path within 3 km of the heights the arcs were rendered at."""
    from tame_assets.products.mosaics import GroupMosaicker, cached_station_skymap, group_steps
    from tame_assets.sources.themis import read_themis_cdf
    from tame_assets.stations import Station

    frames = []
    for site in ("gill", "chur"):
        path = next((sample_archive / "themis/cdf/thg/l1/asi" / site / "2010/12").glob("*_2010120605_v01.cdf"))
        f = read_themis_cdf(path)
        frames.append(
            [(t.astype("datetime64[us]").item(), f.frames[i]) for i, t in enumerate(f.times) if i in (0, 6, 11)]
        )
    skymaps = [cached_station_skymap(Station(s.upper(), "themis", s, image_format="cdf"), 0) for s in ("gill", "chur")]
    steps = list(group_steps(GroupMosaicker(skymaps), frames, measure=True))
    truth = read_manifest(sample_archive).overlap_heights_km
    assert len(steps) == 3 and all(s.height_source == "measured" for s in steps)
    for step in steps:
        assert abs(step.height_km - truth[f"{step.time:%Y-%m-%dT%H:%M:%S}"]) < 3.0
        assert step.ncc > 0.6
    assert any(s.ncc > s.ncc_assumed + 0.3 for s in steps)  # far from 110 km the assumed height disagrees
