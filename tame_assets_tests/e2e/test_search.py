"""Search by example and novelty as the pipeline materializes them on the sample archive."""

import polars as pl

from tame_assets.config import SAMPLE_MONTHS
from tame_assets.warehouse.provider import Provider
from tame_assets.warehouse.similar import index_path
from tame_assets.warehouse.store import Warehouse, station_file
from tame_assets_tests.e2e.test_pipeline import pipeline_root  # noqa: F401 - the shared materialized root


def test_every_partition_has_embeddings_an_index_and_figures(pipeline_root):  # noqa: F811
    warehouse = Warehouse(pipeline_root)
    checked = 0
    for month in SAMPLE_MONTHS:
        for station in ("NYA", "GILL"):
            try:
                features = warehouse.read_partition("asim_features", month, station_file(station))
            except FileNotFoundError:
                continue
            embedded = warehouse.read_partition("frame_embeddings", month, station_file(station))
            assert embedded["file_name"].to_list() == features["file_name"].to_list()
            assert (embedded["embedding"].is_not_null() == features["features"].is_not_null()).all()
            ok = embedded.filter(pl.col("ok"))
            assert ok["novelty"].is_between(0, 1).all() and ok["embedding"].list.len().n_unique() == 1
            meta = warehouse.read_partition("similarity_index", month, station_file(station))
            assert meta["vectors"][0] == ok.height and meta["embedding_version"][0] == ok["embedding_version"][0]
            assert (pipeline_root / index_path(warehouse, month, station).split(str(pipeline_root) + "/")[1]).exists()
            if ok.height > 1:
                assert (pipeline_root / "figures" / f"similarity_{station}_{month}.png").exists()
            checked += 1
    assert checked >= 3


def test_provider_finds_neighbours_of_an_archive_frame_with_catalog_columns(pipeline_root):  # noqa: F811
    frames = Warehouse(pipeline_root).read_partition("frame_embeddings", SAMPLE_MONTHS[0], station_file("NYA"))
    me = frames.filter(pl.col("ok")).row(5, named=True)
    found = Provider(str(pipeline_root)).similar(me["time"], k=10, station="NYA")
    assert found.height == 10 and me["time"] not in found["time"].to_list()
    assert found["similarity"].is_sorted(descending=True) and found["pred"].is_not_null().all()
