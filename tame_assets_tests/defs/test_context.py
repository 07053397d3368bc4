"""The ``conjunctions`` asset (a real Dagster materialization into a Parquet warehouse) and the
``tame conjunctions`` command: a synthetic satellite pass over the sample station GILL."""

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.defs.assets.context import conjunctions
from tame_assets.defs.assets.raw import asim_images
from tame_assets.defs.resources import TameResource
from tame_assets.geometry.fieldline import trace_igrf
from tame_assets.sources.frame_reader import file_frames
from tame_assets.warehouse.store import Warehouse, station_file

MONTH = "2010-12"


@pytest.fixture(scope="module")
def gill_root(sample_archive, tmp_path_factory):
    """A data root holding one hour of GILL frames in ``asim_images`` and an ephemeris CSV whose
    footprint crosses GILL's zenith south → north during that hour (satellite at 800 km)."""
    root = tmp_path_factory.mktemp("conjunctions")
    path = next((sample_archive / "themis" / "cdf").rglob("thg_l1_asf_gill_2010120605_v01.cdf"))
    times = [t for t, _ in file_frames(path)]
    images = pl.DataFrame(
        {
            "time": times,
            "network": "themis",
            "station": "GILL",
            "wavelength_0.1nm": 0,
            "file_name": path.name,
            "frame_index": list(range(len(times))),
            "local_path": str(path),
            "valid": True,
        }
    ).with_columns(pl.col("time").cast(pl.Datetime("us")), pl.col("wavelength_0.1nm").cast(pl.Int32))
    Warehouse(root).write_partition("asim_images", images, MONTH, station_file("GILL"))
    t = np.array(times, dtype="datetime64[us]")
    lat, lon = trace_igrf(np.linspace(53.0, 60.0, t.size), -94.64, 110.0, t, target_km=800.0, hemisphere="south")
    csv = root / "synthetic.csv"
    pl.DataFrame({"time": [str(x) for x in t], "lat": lat, "lon": lon, "alt_km": 800.0}).write_csv(csv)
    return root, csv, t


def _run(root, **settings):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("stations", ["GILL"])
    return materialize(
        [asim_images, conjunctions],
        partition_key=f"{MONTH}|GILL",
        instance=instance,
        resources={"tame": TameResource(data_root=str(root), **settings)},
        selection=["conjunctions"],
    )


def test_conjunctions_asset_lists_pass_frames_and_draws_the_track(gill_root):
    root, csv, times = gill_root
    # (Nothing configured → an empty table without reading a frame: every e2e pipeline run materializes that.)
    assert _run(root, conjunction_ephemeris_files=[str(csv)], conjunction_min_elevation_deg=20.0).success
    table = Warehouse(root).read_partition("conjunctions", MONTH, station_file("GILL"))
    assert 5 <= table.height < times.size and set(table["satellite"]) == {"synthetic"}
    assert table["pass_start"].n_unique() == 1 and (table["elevation_deg"] >= 20.0).all()
    assert table["intensity"].is_not_null().all() and table["file_name"].is_not_null().all()
    assert table["y"].is_sorted(descending=True)  # south → north = bottom → top of the frame
    figures = list((root / "figures" / "conjunctions").glob("GILL_synthetic_*"))
    assert {f.suffix for f in figures} == {".png", ".svg"}


def test_tame_conjunctions_command_with_and_without_frames(gill_root, tmp_path):
    root, csv, times = gill_root
    out = tmp_path / "c.csv"
    args = ["conjunctions", "--ephemeris", str(csv), "--station", "GILL", "--data-root", str(root)]
    # (--figure draws with the asset's pass_figures + save_figure, tested above; README's figure was made with it.)
    result = CliRunner().invoke(
        app, [*args, "--from", "2010-12-06T05:00", "--to", "2010-12-06T06:00", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(out)
    assert "12 frames of GILL" in result.output and "synthetic: 2010-12-06" in result.output
    assert rows.height >= 5 and rows["intensity"].null_count() == 0
    # Outside the warehouse's frames: positions every --step seconds, no intensities.
    empty = tmp_path / "empty"
    result = CliRunner().invoke(
        app,
        [*args[:-1], str(empty), "--from", "2010-12-06T05:00", "--to", "2010-12-06T06:00", "--step", "300"],
    )
    assert result.exit_code == 0 and "no frames of GILL" in result.output and "synthetic:" in result.output
    bad = CliRunner().invoke(app, [*args, "--from", "2010-12-06", "--to", "2010-12-05"])
    assert bad.exit_code == 2 and "must be after" in bad.output
