"""Search by example at archive scale: ``n`` synthetic embeddings (default 1,000,000, dimension 70 =
the demo's embedding: 64 appearance + 6 OATH classes) stored as the pipeline stores them
(``frame_embeddings`` Parquet, int8 + scale, one partition per station × month) with their faiss
indexes (``similarity_index``) and catalog rows (``aurora_catalog``: the real catalog's 24 columns,
random values), then queried through the same code as ``tame similar``
(:func:`tame_assets.warehouse.similar.search`) with a filter on station and time.

Prints index build time, top-20 query latency p50/p95 (filtered, and unfiltered over every vector),
the memory of the search cache, and recall@20 of the index answers against exact float32 brute force
over the unquantised vectors (the quantisation is the only approximation: the index itself is exact).
"Cold": the process's cache of loaded partitions is emptied before each query, so every partition the
filter admits is opened again (its key columns and its catalog's result columns read, its index file
memory-mapped), as by a new ``tame similar`` process after its imports; the files themselves are in
the OS page cache (they were just written). "Warm": the same query again in the same process (a
Provider or the UI). Recall is scored after all timings: the exact search's matrix products leave BLAS
threads spinning, which slowed the next timed query on this 2-core machine (p50 ×2, p95 ×3).

    .venv/bin/python bench/similar.py [--n 1000000] [--dim 70] [--stations 4] [--months 24] [--queries 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

import numpy as np
import polars as pl
import psutil

from tame_assets.labels import OATH_CLASSES
from tame_assets.ml.embeddings import l2_normalise
from tame_assets.months import month_bounds, neighbour_month
from tame_assets.warehouse import similar as similar_module
from tame_assets.warehouse.similar import (
    CATALOG_TABLE,
    EMBEDDINGS_TABLE,
    INDEX_TABLE,
    build_partition_index,
    embeddings_frame,
    search,
)
from tame_assets.warehouse.store import Warehouse, station_file

K = 20


def synthetic(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors from 200 clusters of different spread (frames are clustered, not uniform)."""
    centres = l2_normalise(rng.normal(size=(200, dim)))
    which = rng.integers(0, len(centres), n)
    spread = rng.uniform(0.2, 0.8, len(centres))[which, None]
    return l2_normalise(centres[which] + spread * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim))


def catalog_rows(frames: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """``aurora_catalog`` rows of ``frames`` with the real catalog's columns (random values)."""
    n = frames.height
    p = rng.dirichlet(np.ones(len(OATH_CLASSES)), n)
    return frames.select(
        pl.lit("themis").alias("network"),
        "station",
        pl.lit("cam").alias("camera"),
        "time",
        pl.Series("pred", np.asarray(OATH_CLASSES)[p.argmax(axis=1)]),
        pl.Series("p_aurora", rng.uniform(0, 1, n)),
        *[pl.Series(f"p_{c}", p[:, i]) for i, c in enumerate(OATH_CLASSES)],
        pl.Series("p_aurora_calibrated", rng.uniform(0, 1, n)),
        pl.Series("cloud_detected", rng.uniform(0, 1, n) < 0.3),
        pl.Series("cbh_m", rng.uniform(200, 8000, n)),
        pl.Series("ceilometer_dt_s", rng.uniform(-30, 30, n)),
        pl.Series("h_nt", rng.normal(0, 100, n)),
        pl.Series("dh_dt_nt_per_min", rng.normal(0, 5, n)),
        pl.Series("magnetometer_dt_s", rng.uniform(-30, 30, n)),
        pl.col("file_name").alias("file"),
        "frame_index",
        pl.Series("mlat", rng.uniform(60, 70, n)),
        pl.Series("mlt", rng.uniform(0, 24, n)),
        pl.Series("novelty", rng.uniform(0, 100, n)),
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=70)
    ap.add_argument("--stations", type=int, default=4)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--window-months", type=int, default=3, help="Months the time filter spans.")
    args = ap.parse_args(argv)
    rng, catalog_rng = np.random.default_rng(0), np.random.default_rng(1)
    process = psutil.Process()
    E = synthetic(args.n, args.dim, rng)
    stations = [f"S{i:02d}X" for i in range(args.stations)]
    months = ["2012-01"]
    while len(months) < args.months:
        months.append(neighbour_month(months[-1], 1))
    parts = [(m, s) for m in months for s in stations]
    bounds = np.linspace(0, args.n, len(parts) + 1).astype(int)
    with tempfile.TemporaryDirectory(prefix="tame_similar_bench_") as folder:
        warehouse = Warehouse(folder)
        keys = []
        started = time.perf_counter()
        for (month, station), lo, hi in zip(parts, bounds[:-1], bounds[1:]):
            t0, t1 = month_bounds(month)
            seconds = np.sort(rng.uniform(0, (t1 - t0).total_seconds(), hi - lo))
            times = np.datetime64(t0) + (seconds * 1e6).astype("timedelta64[us]")
            frames = pl.DataFrame(
                {
                    "time": times,
                    "station": station,
                    "file_name": [f"f{i}.png" for i in range(lo, hi)],
                    "frame_index": pl.Series(np.zeros(hi - lo, np.int32)),
                }
            )
            warehouse.write_partition(
                EMBEDDINGS_TABLE, embeddings_frame(frames, E[lo:hi], "bench"), month, station_file(station)
            )
            catalog = catalog_rows(frames, catalog_rng)  # own generator: vectors, times and queries as before
            warehouse.write_partition(CATALOG_TABLE, catalog, month, station_file(station))
            keys.append(frames.select("time", "station").with_columns(pl.lit(month).alias("month")))
        written = time.perf_counter() - started
        build = 0.0
        for month, station in parts:
            started = time.perf_counter()
            table = warehouse.read_partition(EMBEDDINGS_TABLE, month, station_file(station))
            row, _ = build_partition_index(warehouse, month, station, table)
            build += time.perf_counter() - started
            warehouse.write_partition(INDEX_TABLE, row, month, station_file(station))  # + the views db: not timed
        keys = pl.concat(keys)
        times_all = keys["time"].to_numpy()
        station_all = keys["station"].to_numpy()
        queries = []
        for q in range(args.queries):
            query = l2_normalise(E[rng.integers(0, args.n)][None] + 0.05 * rng.normal(size=(1, args.dim)))[0]
            first = int(rng.integers(0, len(months) - args.window_months + 1))
            start = month_bounds(months[first])[0] + dt.timedelta(days=float(rng.uniform(0, 10)))
            end = month_bounds(months[first + args.window_months - 1])[1] - dt.timedelta(days=float(rng.uniform(0, 10)))
            queries.append((query, stations[q % len(stations)], start, end))
        filtered_ms, warm_ms, unfiltered_ms, answers = [], [], [], []
        rss0 = process.memory_info().rss  # the queries' cache, not the bench's own vectors and tables
        for query, station, start, end in queries:
            similar_module._LOADED.clear()  # cold: every partition read from disk, as by a new `tame similar`
            t = time.perf_counter()
            answers.append(search(warehouse, query, k=K, stations=[station], start=start, end=end))
            filtered_ms.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()  # warm: the same partitions again (a Provider or UI process)
            search(warehouse, query, k=K, stations=[station], start=start, end=end)
            warm_ms.append((time.perf_counter() - t) * 1e3)
        for query, *_ in queries[:20]:  # unfiltered: every partition, every vector
            t = time.perf_counter()
            search(warehouse, query, k=K)
            unfiltered_ms.append((time.perf_counter() - t) * 1e3)
        cache_mb = (process.memory_info().rss - rss0) / 2**20  # every partition loaded
        # recall after the timings (BLAS threads spin on after a matrix product and would slow the next query);
        # the stored (dequantised) vectors are what the index holds, exact truth uses the float32 originals
        recalls = []
        for (query, station, start, end), found in zip(queries, answers):
            admit = (station_all == station) & (times_all >= np.datetime64(start)) & (times_all < np.datetime64(end))
            ids = np.flatnonzero(admit)
            truth = ids[np.argsort(-(E[ids] @ query))[:K]]
            truth_keys = set(zip(keys["time"].to_numpy()[truth].tolist(), station_all[truth].tolist()))
            got = set(zip(found["time"].to_numpy().astype("datetime64[us]").tolist(), found["station"].to_list()))
            recalls.append(len(truth_keys & got) / K)
            assert found["pred"].is_not_null().all(), "catalog columns missing from the results"
        disk_mb = sum(f.stat().st_size for f in __import__("pathlib").Path(folder).rglob("*") if f.is_file()) / 2**20
    p50, p95 = np.percentile(filtered_ms, [50, 95])
    u50, u95 = np.percentile(unfiltered_ms, [50, 95])
    w50, w95 = np.percentile(warm_ms, [50, 95])
    recall = float(np.mean(recalls))
    print(
        f"{args.n:,} vectors × {args.dim} dims in {len(parts)} partitions ({args.stations} stations × {args.months} "
        f"months, ~{args.n // len(parts):,} per partition); Parquet (embeddings + catalog) written in {written:.1f} s, "
        f"{disk_mb:.0f} MB on disk"
    )
    print(f"index build (IndexFlatIP, every partition: read Parquet + build + write .faiss): {build:.1f} s")
    print(
        f"top-{K} query, station + {args.window_months}-month time filter ({args.queries} queries): "
        f"cold (partitions read from disk) p50 {p50:.1f} ms, p95 {p95:.1f} ms; warm (loaded in this process) "
        f"p50 {w50:.1f} ms, p95 {w95:.1f} ms"
    )
    print(f"top-{K} query, no filter (all {args.n:,} vectors, 20 queries, warm): p50 {u50:.0f} ms, p95 {u95:.0f} ms")
    print(
        f"search cache after the unfiltered queries (all {len(parts)} partitions loaded: keys, catalog columns, "
        f"memory-mapped indexes; RSS growth over the queries): {cache_mb:.0f} MB"
    )
    print(f"recall@{K} of the stored int8 index vs exact float32 search: {recall:.3f}")
    print(
        f"similar: {args.n} vectors, recall@{K} {recall:.3f}, query p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms, build {build:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
