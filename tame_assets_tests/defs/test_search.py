"""The novelty check's ranking and verdict (tame_assets.defs.assets.search.check_novelty), and novelty in
the catalog (the aurora_catalog asset and its automation)."""

import datetime as dt

import polars as pl

from tame_assets.defs.assets.search import check_novelty


def _frames(novelty, score):
    n = len(novelty)
    return pl.DataFrame(
        {
            "time": [dt.datetime(2010, 12, 1) + dt.timedelta(minutes=i) for i in range(n)],
            "file_name": [f"f{i}.png" for i in range(n)],
            "novelty": pl.Series(novelty, dtype=pl.Float32),
            "novelty_score": pl.Series(score, dtype=pl.Float32),
        }
    )


def test_most_unusual_first_and_warning_when_most_frames_are_beyond_the_labelled_set():
    frames = _frames([0.5, 1.0, None, 0.2, 0.99], [0.3, 0.9, None, 0.1, 0.6])
    passed, description, metadata, top = check_novelty(frames, shown=2)
    assert passed and top["file_name"].to_list() == ["f1.png", "f4.png"]
    assert metadata["frames"] == 4 and metadata["beyond_reference_fraction"] == 0.25
    assert "25% beyond every labelled-set frame" in description and "f1.png" in metadata["most_unusual"].md_str
    passed, description, _, _ = check_novelty(_frames([1.0, 1.0, 0.3], [0.9, 0.8, 0.1]))
    assert not passed and "does not cover this sky" in description
    passed, description, metadata, top = check_novelty(_frames([None], [None]))
    assert passed and top.height == 0 and metadata == {"frames": 0}


def test_aurora_catalog_materializes_novelty_from_frame_embeddings(tmp_path):
    """A real Dagster materialization of the catalog alone: novelty (percent) from the partition's
    frame_embeddings, NULL for the frame without an embedding."""
    from dagster import DagsterInstance, materialize

    from tame_assets.defs.assets.merged import asim_ceilometer
    from tame_assets.defs.assets.products import aurora_catalog
    from tame_assets.defs.resources import TameResource
    from tame_assets.warehouse.store import Warehouse, station_file

    warehouse, month, nya = Warehouse(tmp_path), "2010-12", station_file("NYA")
    times = [dt.datetime(2010, 12, 2, 18, 0, s) for s in (0, 10, 20)]
    files = [f"nya6_20101202_1800{s:02d}_5577_cal.png" for s in (0, 10, 20)]
    ceilometer = pl.DataFrame(
        {
            "station": "NYA",
            "time": times,
            "pred": "arc",
            "p_aurora": [0.9, 0.8, 0.7],
            "p_arc": [0.9, 0.8, 0.7],
            "cloud_detected": False,
            "cbh_m": None,
            "dt_s": 1.0,
            "file_name": files,
            "frame_index": pl.Series([0, 0, 0], dtype=pl.Int32),
        }
    )
    warehouse.write_partition("asim_ceilometer", ceilometer, month, nya)
    warehouse.write_partition(
        "magnetometer", pl.DataFrame({"station": ["NAL"], "time": times[:1], "h_nt": [1.0]}), month
    )
    embeddings = pl.DataFrame(
        {"file_name": files[::-1], "frame_index": pl.Series([0, 0, 0], dtype=pl.Int32), "novelty": [None, 1.0, 0.25]}
    )
    warehouse.write_partition("frame_embeddings", embeddings, month, nya)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("stations", ["NYA"])
    result = materialize(
        [asim_ceilometer, aurora_catalog],
        selection=["aurora_catalog"],
        partition_key=f"{month}|NYA",
        instance=instance,
        resources={"tame": TameResource(data_root=str(tmp_path))},
    )
    assert result.success
    catalog = warehouse.read_partition("aurora_catalog", month, nya)
    assert catalog["novelty"].to_list() == [25.0, 100.0, None] and catalog["h_nt"][0] == 1.0


def test_catalog_automation_does_not_wait_for_embeddings_and_follows_their_update():
    """A missing frame_embeddings partition does not hold the catalog back (novelty NULL); its later
    materialization re-derives the catalog."""
    from dagster import AssetKey, AssetMaterialization, DagsterInstance, evaluate_automation_conditions

    from tame_assets.defs.assets.common import station_month_key
    from tame_assets.defs.definitions import defs

    key, catalog = station_month_key("NYA", "2010-12"), AssetKey("aurora_catalog")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("stations", ["NYA"])
        tick = evaluate_automation_conditions(defs, instance)
        for name, partition in (("asim_ceilometer", key), ("magnetometer", "2010-12"), ("p_aurora_calibration", None)):
            instance.report_runless_asset_event(AssetMaterialization(name, partition=partition))
        tick = evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
        assert tick.get_requested_partitions(catalog) == {key}
        assert not tick.get_requested_partitions(AssetKey("frame_embeddings"))  # no embedding model yet
        instance.report_runless_asset_event(AssetMaterialization("aurora_catalog", partition=key))  # the run
        tick = evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
        assert not tick.get_requested_partitions(catalog)
        instance.report_runless_asset_event(AssetMaterialization("frame_embeddings", partition=key))
        tick = evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
        assert tick.get_requested_partitions(catalog) == {key}
