"""Search by example over real Parquet partitions and faiss index files (tame_assets.warehouse.similar),
through the read-only SQL door and the Provider."""

import datetime as dt
import shutil

import duckdb
import numpy as np
import polars as pl
import pytest

from tame_assets.ml.embeddings import l2_normalise
from tame_assets.warehouse.provider import Provider
from tame_assets.warehouse.similar import (
    EMBEDDINGS_TABLE,
    INDEX_TABLE,
    build_partition_index,
    embeddings_frame,
    index_path,
    search,
    write_index,
)
from tame_assets.warehouse.sql_door import RefusedStatement
from tame_assets.warehouse.store import Warehouse, station_file

PARTS = [("2010-12", "NYA"), ("2010-12", "GILL"), ("2011-01", "NYA")]


def _archive(root, n=60, dim=8, seed=0, version="v1", with_index=True):
    """Three station × month partitions of unit vectors, one frame per hour; returns (warehouse, rows)."""
    rng = np.random.default_rng(seed)
    warehouse, everything = Warehouse(root), []
    for month, station in PARTS:
        start = dt.datetime.fromisoformat(f"{month}-01")
        frames = pl.DataFrame(
            {
                "time": [start + dt.timedelta(hours=i) for i in range(n)],
                "station": station,
                "file_name": [f"{station}_{month}_{i}.png" for i in range(n)],
                "frame_index": pl.Series([0] * n, dtype=pl.Int32),
            }
        )
        E = l2_normalise(rng.normal(size=(n, dim)))
        E[3] = np.nan  # an unreadable frame: no embedding
        table = embeddings_frame(frames, E, version, (np.zeros(n), np.linspace(0, 1, n)))
        warehouse.write_partition(EMBEDDINGS_TABLE, table, month, station_file(station))
        if with_index:
            row, _ = build_partition_index(warehouse, month, station, table)
            warehouse.write_partition(INDEX_TABLE, row, month, station_file(station))
        everything.append(frames.with_columns(pl.Series("vector", np.nan_to_num(E, nan=-9.0))))
    return warehouse, pl.concat(everything)


def _with_catalog(warehouse, rows):
    for month, station in PARTS:
        part = rows.filter((pl.col("station") == station) & (pl.col("time").dt.strftime("%Y-%m") == month))
        catalog = part.select("station", "time", "frame_index").with_columns(
            pl.Series("pred", ["arc", "clear"] * (part.height // 2)),
            pl.Series("p_aurora", np.linspace(0, 1, part.height)),
            pl.lit(False).alias("cloud_detected"),
            pl.Series("h_nt", np.arange(part.height, dtype=float)),
            pl.col("time").alias("file").cast(pl.Utf8),
        )
        warehouse.write_partition("aurora_catalog", catalog, month, station_file(station))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The three partitions with their indexes and catalog rows, written once (read-only for the tests)."""
    root = tmp_path_factory.mktemp("similar") / "data"
    warehouse, rows = _archive(root)
    _with_catalog(warehouse, rows)
    return root, warehouse, rows


def _exact(rows: pl.DataFrame, q: np.ndarray, k: int) -> list:
    V = np.asarray(rows["vector"].to_list())
    ok = (V > -9).all(axis=1)
    order = np.argsort(-(V @ q) + np.where(ok, 0, 99), kind="stable")[:k]
    return rows[order].select("station", "time").rows()


def test_search_equals_brute_force_with_station_time_filters_and_exclusion(archive):
    _, warehouse, rows = archive
    q = np.asarray(rows["vector"][10].to_list(), np.float32)
    found = search(warehouse, q, k=7)
    assert found["rank"].to_list() == list(range(1, 8))
    assert found.select("station", "time").rows() == _exact(rows, q, 7)
    assert found["similarity"][0] == pytest.approx(1.0, abs=0.01)  # the frame itself (int8 storage)
    assert found["novelty"].is_between(0, 100).all() and found["novelty"].max() > 1  # percent, as the catalog
    start, end = dt.datetime(2010, 12, 1, 5), dt.datetime(2010, 12, 2, 4)
    window = rows.filter((pl.col("station") == "NYA") & (pl.col("time") >= start) & (pl.col("time") < end))
    got = search(warehouse, q, k=5, stations=["NYA"], start=start, end=end)
    assert got.select("station", "time").rows() == _exact(window, q, 5)
    me = rows.row(10, named=True)
    alone = search(warehouse, q, k=3, exclude=(me["station"], me["time"]))
    assert (me["station"], me["time"]) not in alone.select("station", "time").rows()
    assert search(warehouse, q, k=5, stations=["XYZ"]).height == 0


def test_stale_or_missing_index_is_rebuilt_and_foreign_versions_are_refused(archive, tmp_path):
    root = shutil.copytree(archive[0], tmp_path / "data")
    warehouse, rows = Warehouse(root), archive[2]
    q = np.asarray(rows["vector"][70].to_list(), np.float32)
    # NYA 2010-12: an index of other vectors, recorded under another version; GILL: index file missing
    month, station = PARTS[0]
    write_index(warehouse, month, station, _random_index(len(rows.filter(pl.col("station") == station)) // 2))
    meta_file = warehouse.partition_file(INDEX_TABLE, month, station_file(station))
    pl.read_parquet(meta_file).with_columns(pl.lit("v0").alias("embedding_version")).write_parquet(meta_file)
    (root / index_path(warehouse, *PARTS[1]).split("/data/", 1)[1]).unlink()
    assert search(warehouse, q, k=4).select("station", "time").rows() == _exact(rows, q, 4)
    with pytest.raises(ValueError, match="holds embedding version v1, the query has v2"):
        search(warehouse, q, k=4, version="v2")


def _random_index(n, dim=8):
    from tame_assets.warehouse.similar import build_index

    return build_index(l2_normalise(np.random.default_rng(9).normal(size=(n, dim))))


def test_where_goes_through_the_read_only_door_and_provider_joins_the_catalog(archive):
    root, warehouse, rows = archive
    q = np.asarray(rows["vector"][0].to_list(), np.float32)
    found = search(warehouse, q, k=6, where="pred = 'arc' AND h_nt < 40")
    assert found.height == 6 and set(found["pred"]) == {"arc"} and (found["h_nt"] < 40).all()
    arc = rows.with_row_index("i").filter((pl.col("i") % 60 % 2 == 0) & (pl.col("i") % 60 < 40))
    assert found.select("station", "time").rows() == _exact(arc, q, 6)
    for bad in ("true; DROP VIEW aurora_catalog", "true) UNION SELECT 1 --"):
        with pytest.raises(duckdb.ParserException):
            search(warehouse, q, k=3, where=bad)
    with pytest.raises((RefusedStatement, duckdb.Error)):  # sandbox: no file outside the warehouse
        search(warehouse, q, k=3, where="(SELECT count(*) FROM read_csv('/etc/passwd')) > 0")
    me = rows.row(61, named=True)  # GILL's second frame, by time
    near = Provider(str(root)).similar(me["time"].isoformat(), k=5, station="GILL")
    assert near.height == 5 and me["time"] not in near["time"].to_list()
    assert set(near["station"]) == {"GILL"} and near["pred"].is_not_null().all()
    with pytest.raises(LookupError, match="no frame of station GILL with an embedding within 60 s"):
        Provider(str(root)).similar("2011-01-01T05:00:00", station="GILL")


def test_partitions_cached_in_the_process_follow_a_new_catalog(tmp_path):
    warehouse, rows = _archive(tmp_path / "data")
    q = np.asarray(rows["vector"][0].to_list(), np.float32)
    assert search(warehouse, q, k=3)["pred"].is_null().all()  # no catalog yet: NULL columns
    _with_catalog(warehouse, rows)
    assert search(warehouse, q, k=3)["pred"].is_not_null().all()
