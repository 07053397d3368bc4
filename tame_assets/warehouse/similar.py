"""Search the archive by example: per station × month an exact inner-product index (faiss
``IndexFlatIP``) over the frames' embeddings (table ``frame_embeddings``, see
:mod:`tame_assets.ml.embeddings`), stored beside the Parquet as
``warehouse/similarity_index/month=YYYY-MM/<STATION>.faiss`` with its row in the ``similarity_index``
table (embedding version, vectors, dimension).

A query reads only the partitions its filters admit (stations; months overlapping [start, end)), and
of each only the key columns and the catalog's result columns (class, p_aurora, cloud, H, dH/dt); the
index file is memory-mapped on a local disk. It restricts each index to the time range by an id range
(rows are sorted by time) and to the frames an optional SQL predicate over ``aurora_catalog`` admits
(run through the read-only SQL door, :func:`~tame_assets.warehouse.sql_door.read_only_filter`), merges
the per-partition top k and takes the hits' catalog columns. An index whose embedding version differs
from its table's (or a missing one) is rebuilt in memory from the Parquet, so a stale index is never
used. Loaded partitions stay cached in the process while their files are unchanged. Exact search on a
month of one station (~45,000 frames at one per minute) takes milliseconds; faiss runs on one thread
(for one query vector its OpenMP threads cost 60× more than they save on 2 cores: 13 ms vs 0.2 ms
per 10,000 vectors).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from tame_assets.files import write_bytes_atomic
from tame_assets.ml.embeddings import dequantize, quantize
from tame_assets.months import months_between
from tame_assets.warehouse.store import STATION_FILE_PREFIX, Warehouse, station_file

EMBEDDINGS_TABLE = "frame_embeddings"
INDEX_TABLE = "similarity_index"
CATALOG_TABLE = "aurora_catalog"
#: Key columns that identify a frame in every per-frame table.
FRAME_KEYS = ("time", "station", "file_name", "frame_index")
#: Keys on which search results meet the catalog.
FRAME_JOIN_KEYS = ("station", "time", "frame_index")
#: Catalog columns a search result carries.
CATALOG_RESULT_COLUMNS = (
    "pred",
    "p_aurora",
    "p_aurora_calibrated",
    "cloud_detected",
    "cbh_m",
    "h_nt",
    "dh_dt_nt_per_min",
)


def embeddings_frame(
    frames: pl.DataFrame,
    embeddings: np.ndarray,
    version: str,
    novelty: tuple[np.ndarray, np.ndarray] | None = None,
) -> pl.DataFrame:
    """The ``frame_embeddings`` table: ``frames``' columns (frame keys, ``local_path``…), ``ok``, the
    embedding as int8 codes (``embedding``, NULL where the frame has no features) with its float32
    ``embedding_scale``, ``novelty_score`` (mean cosine distance to the k nearest reference frames),
    ``novelty`` (its percentile among the reference set, 0–1) and ``embedding_version``."""
    E = np.asarray(embeddings, np.float32)
    E = E if E.ndim == 2 else E.reshape(frames.height, -1 if frames.height else 0)
    ok = np.isfinite(E).all(axis=1) if E.size else np.zeros(frames.height, bool)
    codes, scale = quantize(np.where(ok[:, None], E, 0.0))
    if codes.shape[1]:
        vectors = pl.Series("embedding", codes).cast(pl.List(pl.Int8))
        rows = pl.select(pl.when(pl.Series(ok)).then(vectors).otherwise(None).alias("embedding")).to_series()
    else:
        rows = pl.Series("embedding", [None] * frames.height, dtype=pl.List(pl.Int8))
    score, pct = novelty if novelty is not None else (np.full(frames.height, np.nan),) * 2
    return frames.with_columns(
        pl.Series("ok", ok),
        rows.alias("embedding"),
        pl.Series("embedding_scale", np.where(ok, scale, np.nan), dtype=pl.Float32).fill_nan(None),
        pl.Series("novelty_score", np.asarray(score, np.float32)).fill_nan(None),
        pl.Series("novelty", np.asarray(pct, np.float32)).fill_nan(None),
        pl.lit(version).alias("embedding_version"),
    )


def embedding_matrix(table: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [m, d] L2-normalised embeddings of the rows that have one, their row numbers)."""
    rows = np.flatnonzero(table["embedding"].is_not_null().to_numpy()) if table.height else np.zeros(0, int)
    if not len(rows):
        return np.zeros((0, 0), np.float32), rows
    good = table[rows]
    codes = np.asarray(good["embedding"].to_list(), dtype=np.int8)
    return dequantize(codes, good["embedding_scale"].to_numpy()), rows


def build_index(embeddings: np.ndarray):
    """An exact inner-product index (cosine on unit vectors) of ``embeddings``; id i = row i."""
    import faiss

    E = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.IndexFlatIP(int(E.shape[1]) if E.ndim == 2 and E.shape[1] else 1)
    if len(E):
        index.add(E)
    return index


def index_path(warehouse: Warehouse, month: str, station: str) -> str:
    """Where the index of ``station``'s ``month`` lives: beside the ``similarity_index`` Parquet row."""
    station_file(station)  # validates the code
    return f"{warehouse.partition_dir(INDEX_TABLE, month)}/{station}.faiss"


def write_index(warehouse: Warehouse, month: str, station: str, index) -> str:
    """Serialise ``index`` to :func:`index_path` (atomically on a local disk); returns the path."""
    import faiss

    target = index_path(warehouse, month, station)
    data = faiss.serialize_index(index).tobytes()
    if warehouse.layout.remote:
        with warehouse.fs.open(target, "wb") as fh:
            fh.write(data)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, data)
    return target


def build_partition_index(
    warehouse: Warehouse, month: str, station: str, embeddings: pl.DataFrame
) -> tuple[pl.DataFrame, object]:
    """Build and store the index of one partition of ``frame_embeddings``; returns (its
    ``similarity_index`` row, the index)."""
    started = time.perf_counter()
    E, rows = embedding_matrix(embeddings)
    index = build_index(E)
    path = write_index(warehouse, month, station, index)
    versions = embeddings["embedding_version"].unique().to_list() if embeddings.height else []
    row = pl.DataFrame(
        {
            "station": [station],
            "vectors": [int(index.ntotal)],
            "dim": [int(index.d)],
            "embedding_version": [versions[0] if versions else None],
            "index_type": ["IndexFlatIP"],
            "index_file": [path.rsplit("/", 1)[-1]],
            "build_s": [time.perf_counter() - started],
        },
        schema_overrides={"embedding_version": pl.Utf8},
    )
    return row, index


@dataclass
class _Partition:
    month: str
    station: str


def _partitions(warehouse: Warehouse, stations: Sequence[str] | None, months: Sequence[str] | None) -> list[_Partition]:
    """The partitions of ``frame_embeddings`` the filters admit, by month then station; with both filters
    only their files are looked up (no listing of the table)."""
    present = warehouse.months(EMBEDDINGS_TABLE) if months is None else sorted(set(months))
    out = []
    for month in present:
        if stations is not None:
            for code in sorted(set(stations)):
                if warehouse.exists(warehouse.partition_file(EMBEDDINGS_TABLE, month, station_file(code))):
                    out.append(_Partition(month, code))
            continue
        folder = warehouse.partition_dir(EMBEDDINGS_TABLE, month)
        for path in sorted(warehouse.fs.glob(f"{folder}/{STATION_FILE_PREFIX}*.parquet")):
            out.append(_Partition(month, path.rsplit("/", 1)[-1][len(STATION_FILE_PREFIX) : -len(".parquet")]))
    return out


def read_index(warehouse: Warehouse, path: str):
    """The faiss index stored at ``path``: memory-mapped on a local disk (no copy of the vectors: the
    page cache serves them; files are replaced, never rewritten in place), read whole from an object store."""
    import faiss

    if not warehouse.layout.remote:
        return faiss.read_index(path, getattr(faiss, "IO_FLAG_MMAP_IFC", 0))
    with warehouse.fs.open(path, "rb") as fh:
        return faiss.deserialize_index(np.frombuffer(fh.read(), dtype=np.uint8))


def embedding_versions(table: pl.DataFrame) -> set:
    """The embedding versions present in rows of ``frame_embeddings``."""
    column = table["embedding_version"] if table.height else pl.Series([], dtype=pl.Utf8)
    first, last = column.min(), column.max()
    if first == last:  # one version (or none): without hashing every row
        return set() if first is None else {first}
    return set(column.drop_nulls().unique().to_list())


def load_index(warehouse: Warehouse, month: str, station: str, table: pl.DataFrame, versions: set | None = None):
    """(index, row numbers of its vectors) of a partition: the stored index if it was built from the same
    embedding version and number of vectors, else one rebuilt in memory from the partition's Parquet.
    ``table``: the partition's rows (any columns, with ``ok`` and ``embedding_version``); ``versions``:
    its :func:`embedding_versions`, if known."""
    rows = np.flatnonzero(table["ok"].fill_null(False).to_numpy()) if table.height else np.zeros(0, int)
    versions = embedding_versions(table) if versions is None else versions
    path = index_path(warehouse, month, station)
    try:
        meta = warehouse.read_partition(INDEX_TABLE, month, station_file(station))
        fresh = set(meta["embedding_version"].to_list()) == versions and int(meta["vectors"][0]) == len(rows)
        if fresh and warehouse.exists(path):
            return read_index(warehouse, path), rows
    except (FileNotFoundError, RuntimeError, pl.exceptions.PolarsError):
        pass
    E, rows = embedding_matrix(warehouse.read_partition(EMBEDDINGS_TABLE, month, station_file(station)))
    return build_index(E), rows


@dataclass
class _Loaded:
    """A partition ready to search: its keys table (no vectors), index, the table rows of the index's
    vectors, their times, the embedding versions present, and the partition's catalog result columns
    (with the frame keys; None without a catalog partition)."""

    table: pl.DataFrame
    index: object
    rows: np.ndarray
    times: np.ndarray
    versions: set
    catalog: pl.DataFrame | None


#: Partitions loaded by this process: (warehouse, month, station) → (files' stamp, :class:`_Loaded`). A
#: partition is reloaded when one of its files (embeddings, index, catalog) changes (size or modification time).
_LOADED: dict[tuple[str, str, str], tuple] = {}
_LOADED_MAX = 256


def _stamp(warehouse: Warehouse, path: str) -> tuple:
    try:
        info = warehouse.fs.info(path)
    except FileNotFoundError:
        return (path, None)
    return (path, info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("created")))


def _loaded(warehouse: Warehouse, month: str, station: str) -> _Loaded:
    """A partition's :class:`_Loaded`, cached per process while its files are unchanged."""
    name = station_file(station)
    catalog_file = warehouse.partition_file(CATALOG_TABLE, month, name)
    files = (
        warehouse.partition_file(EMBEDDINGS_TABLE, month, name),
        warehouse.partition_file(INDEX_TABLE, month, name),
        index_path(warehouse, month, station),
        catalog_file,
    )
    stamp = tuple(_stamp(warehouse, f) for f in files)
    key = (warehouse.warehouse, month, station)
    hit = _LOADED.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    table = _read_keys(warehouse, month, station)
    versions = embedding_versions(table)
    index, rows = load_index(warehouse, month, station, table, versions)
    times = table["time"].to_numpy()[rows] if table.height else np.zeros(0, "datetime64[us]")
    catalog = None
    if stamp[-1][1] is not None:  # the catalog partition exists
        catalog = _read_columns(warehouse, catalog_file, lambda c: c in FRAME_JOIN_KEYS or c in CATALOG_RESULT_COLUMNS)
        if catalog.schema.get("frame_index") != pl.Int32:
            catalog = catalog.with_columns(pl.col("frame_index").cast(pl.Int32))
    loaded = _Loaded(table, index, rows, times, versions, catalog)
    while len(_LOADED) >= _LOADED_MAX:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = (stamp, loaded)
    return loaded


#: ``frame_embeddings`` columns a search does not need (vectors: in the index).
_NOT_KEYS = ("embedding", "embedding_scale", "novelty_score")


def _read_keys(warehouse: Warehouse, month: str, station: str) -> pl.DataFrame:
    """A partition of ``frame_embeddings`` without its vectors (what a search result needs)."""
    path = warehouse.partition_file(EMBEDDINGS_TABLE, month, station_file(station))
    return _read_columns(warehouse, path, lambda c: c not in _NOT_KEYS)


def _read_columns(warehouse: Warehouse, path: str, wanted) -> pl.DataFrame:
    """The columns of one Parquet file for which ``wanted(name)`` holds (only those are read)."""
    if not warehouse.layout.remote:  # a lazy scan: the footer is read once
        frame = pl.scan_parquet(path, glob=False)
        return frame.select([c for c in frame.collect_schema().names() if wanted(c)]).collect()
    with warehouse.fs.open(path, "rb") as fh:
        schema = pl.read_parquet_schema(fh)
        fh.seek(0)
        return pl.read_parquet(fh, columns=[c for c in schema if wanted(c)])


def novelty_percent() -> pl.Expr:
    """``novelty`` (stored in ``frame_embeddings`` as a fraction 0–1) as the percentile 0–100 that the
    catalog and search results show, rounded to 0.01."""
    return (pl.col("novelty").cast(pl.Float64) * 100).round(2)


def partition_novelty(warehouse: Warehouse, month: str, station: str) -> pl.DataFrame | None:
    """``file_name, frame_index, novelty`` (percentile as a fraction 0–1, NULL without an embedding) of a
    partition of ``frame_embeddings`` (the embedding vectors are not read); None when it is missing."""
    path = warehouse.partition_file(EMBEDDINGS_TABLE, month, station_file(station))
    if not warehouse.exists(path):
        return None
    return _read_columns(warehouse, path, lambda c: c in ("file_name", "frame_index", "novelty"))


#: ``frame_embeddings`` columns a search result carries (those present).
RESULT_COLUMNS = ("time", "network", "station", "camera", "file_name", "frame_index", "local_path", "novelty")


def search(
    warehouse: Warehouse,
    query: np.ndarray,
    *,
    k: int = 20,
    stations: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    where: str | None = None,
    exclude: tuple[str, dt.datetime] | None = None,
    version: str | None = None,
) -> pl.DataFrame:
    """The ``k`` frames most similar to the embedding ``query`` ([d], L2-normalised), best first:
    rank, similarity (cosine), the frame keys, ``local_path``, ``novelty`` (percentile 0–100, as in
    ``aurora_catalog``), and the catalog columns (NULL when the catalog has no row for the frame).
    Filters: ``stations``, ``start <= time < end``, ``where`` (a SQL predicate over ``aurora_catalog``,
    read-only); ``exclude`` = (station, time) of the query frame itself. ``version``: refuse partitions
    whose embeddings have another version (``ValueError``: the query embedding would not be comparable)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    q = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, -1))
    months = months_between(start, end) if start is not None and end is not None else None
    allowed = _where_keys(warehouse, where) if where else None
    hits = []  # (loaded partition, similarities, positions in its rows)
    with _faiss_threads(1):  # one query vector: see the module docstring
        for part in _partitions(warehouse, stations, months):
            loaded = _loaded(warehouse, part.month, part.station)
            found = _search_partition(loaded, part, q, k, start, end, allowed, exclude, version)
            if found is not None:
                hits.append((loaded, *found))
    if not hits:
        return pl.DataFrame(schema={"rank": pl.Int32, "similarity": pl.Float32, "time": pl.Datetime("us")})
    # the global top k in numpy (similarity descending, then time), then per partition involved one gather
    # of its rows and their catalog columns
    sims = np.concatenate([h[1] for h in hits])
    times = np.concatenate([loaded.times[ids] for loaded, _, ids in hits])
    rows = np.concatenate([loaded.rows[ids] for loaded, _, ids in hits])
    which = np.concatenate([np.full(len(h[1]), i) for i, h in enumerate(hits)])
    best = np.lexsort((times, -sims))[:k]
    parts = []
    for i in np.unique(which[best]):
        places = np.flatnonzero(which[best] == i)  # ranks (0-based) held by partition i
        loaded = hits[i][0]
        picked = loaded.table.select([c for c in RESULT_COLUMNS if c in loaded.table.columns])[rows[best[places]]]
        picked = picked.with_columns(pl.Series("_place", places), pl.col("frame_index").cast(pl.Int32))
        if loaded.catalog is not None:
            catalog = loaded.catalog.filter(pl.col("time").is_in(picked["time"].implode()))
            picked = picked.join(catalog, on=list(FRAME_JOIN_KEYS), how="left", nulls_equal=True)
            picked = picked.unique("_place", keep="first")  # a frame twice in the catalog: one result row
        parts.append(picked)
    found = pl.concat(parts, how="diagonal_relaxed").sort("_place").drop("_place")
    found = found.with_columns(
        pl.Series("similarity", sims[best], dtype=pl.Float32),
        pl.int_range(1, len(best) + 1, dtype=pl.Int32).alias("rank"),
        *([novelty_percent()] if "novelty" in found.columns else []),
        *[pl.lit(None).alias(c) for c in CATALOG_RESULT_COLUMNS if c not in found.columns],
    )
    first = ["rank", "similarity", "time", "station"]
    return found.select(first + [c for c in found.columns if c not in first])


@contextlib.contextmanager
def _faiss_threads(n: int):
    """faiss (OpenMP) limited to ``n`` threads while the block runs."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _search_partition(loaded: _Loaded, part: _Partition, q, k, start, end, allowed, exclude, version):
    """(similarities, positions in ``loaded.rows``) of the partition's top ``k`` vectors the filters
    admit, best first; None when it admits none."""
    import faiss

    table, index, rows, times = loaded.table, loaded.index, loaded.rows, loaded.times
    if not table.height:
        return None
    if version is not None and loaded.versions - {version}:
        other = sorted(loaded.versions - {version})[0]
        raise ValueError(
            f"{EMBEDDINGS_TABLE} {part.station} {part.month} holds embedding version {other}, the query "
            f"has {version}: re-materialize frame_embeddings (or query by a frame of the archive)"
        )
    if index.ntotal == 0:
        return None
    if index.d != q.shape[1]:
        raise ValueError(
            f"query embedding has {q.shape[1]} dimensions, the {part.station} {part.month} index {index.d}"
        )
    keep = np.ones(len(rows), bool)
    if start is not None:
        keep &= times >= np.datetime64(start)
    if end is not None:
        keep &= times < np.datetime64(end)
    if exclude is not None and exclude[0] == part.station:
        keep &= times != np.datetime64(exclude[1])
    if allowed is not None:
        keys = table[rows].select("station", "time", pl.col("frame_index").cast(pl.Int32))
        keep &= (
            keys.join(allowed, on=["station", "time", "frame_index"], how="left")["_admit"].fill_null(False).to_numpy()
        )
    ids = np.flatnonzero(keep)
    if not len(ids):
        return None
    params = None
    if len(ids) < len(rows):
        lo, hi = int(ids[0]), int(ids[-1]) + 1
        contiguous = hi - lo == len(ids)
        selector = faiss.IDSelectorRange(lo, hi) if contiguous else faiss.IDSelectorBatch(ids.astype(np.int64))
        params = faiss.SearchParameters(sel=selector)
    sims, found = index.search(q, min(k, len(ids)), params=params)
    good = found[0] >= 0
    return sims[0][good], found[0][good]


def _where_keys(warehouse: Warehouse, predicate: str) -> pl.DataFrame:
    from tame_assets.warehouse.sql_door import read_only_filter

    if CATALOG_TABLE not in warehouse.tables():
        raise ValueError("--where filters on aurora_catalog, which is not materialized under this data root")
    keys = read_only_filter(warehouse, CATALOG_TABLE, predicate, ("station", "time", "frame_index"))
    return keys.unique().with_columns(pl.lit(True).alias("_admit"), pl.col("frame_index").cast(pl.Int32))


def frame_embedding(
    warehouse: Warehouse, when: dt.datetime, station: str | None = None, tolerance_s: float = 60.0
) -> tuple[np.ndarray, pl.DataFrame]:
    """The stored embedding of the frame nearest ``when`` (within ``tolerance_s``; of ``station`` if
    given) and its ``frame_embeddings`` row. ``LookupError`` naming the time when there is none."""
    best = None
    for month in months_between(when - dt.timedelta(seconds=tolerance_s), when + dt.timedelta(seconds=tolerance_s)):
        for part in _partitions(warehouse, [station] if station else None, [month]):
            table = warehouse.read_partition(EMBEDDINGS_TABLE, part.month, station_file(part.station))
            table = table.filter(pl.col("embedding").is_not_null())
            if not table.height:
                continue
            gap = np.abs((table["time"].to_numpy() - np.datetime64(when, "us")) / np.timedelta64(1, "s"))
            i = int(np.argmin(gap))
            if gap[i] <= tolerance_s and (best is None or gap[i] < best[0]):
                best = (gap[i], table[i])
    if best is None:
        where = f" of station {station}" if station else ""
        raise LookupError(f"no frame{where} with an embedding within {tolerance_s:g} s of {when:%Y-%m-%d %H:%M:%S} UTC")
    row = best[1]
    E, _ = embedding_matrix(row)
    return E[0], row


def _as_time(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def query_embedding(
    warehouse: Warehouse, query, station: str | None = None, max_image_pixels: int | None = None
) -> tuple[np.ndarray, dict]:
    """The embedding of a query and what it was: ``query`` is an image file (its features are
    extracted with the embedding model's backbone and projected), a frame time (``datetime`` or ISO
    text: the stored embedding of the archive frame nearest it, within 60 s) or an embedding vector.
    Returns (embedding, info: kind, label, time/station/path, version, exclude)."""
    from tame_assets.ml.embeddings import EMBEDDING_MODEL_FILE, EmbeddingModel, l2_normalise

    if isinstance(query, np.ndarray):
        return l2_normalise(query.reshape(1, -1))[0], {"kind": "vector", "label": "query vector", "version": None}
    when = query if isinstance(query, dt.datetime) else None
    if when is None and isinstance(query, str) and not Path(query).exists():
        when = _as_time(query)
        if when is None:
            raise FileNotFoundError(f"{query}: no such image file, and not a frame time (YYYY-MM-DDTHH:MM:SS)")
    if when is not None:
        vector, row = frame_embedding(warehouse, when, station)
        r = row.row(0, named=True)
        info = {
            "kind": "frame",
            "label": f"{r['station']} {str(r['time'])[:19]}",
            "time": r["time"],
            "station": r["station"],
            "row": r,
            "version": r["embedding_version"],
            "exclude": (r["station"], r["time"]),
        }
        return vector, info
    model_file = warehouse.layout.models_dir / EMBEDDING_MODEL_FILE
    if not model_file.exists():
        raise FileNotFoundError(f"{model_file} is missing: materialize embedding_model (tame demo does) first")
    model = EmbeddingModel.load(model_file)
    from tame_assets.ml.features import extract_features

    result = extract_features(
        [str(query)],
        backbone=model.backbone,
        feature_kind=model.feature_kind,
        num_workers=0,
        max_image_pixels=max_image_pixels,
    )
    if not result.ok[0]:
        raise ValueError(result.errors[0] or f"{query}: unreadable image")
    vector = model.transform(result.features)[0]
    return vector, {"kind": "file", "label": Path(query).name, "path": str(query), "version": model.version}


def similar(
    warehouse: Warehouse,
    query,
    *,
    k: int = 20,
    station: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    where: str | None = None,
    max_image_pixels: int | None = None,
) -> tuple[pl.DataFrame, dict]:
    """(the ``k`` most similar frames joined with the catalog, the query's info) for an image file, a
    frame time or an embedding vector (:func:`query_embedding`); a frame query never returns itself."""
    vector, info = query_embedding(warehouse, query, station, max_image_pixels)
    found = search(
        warehouse,
        vector,
        k=k,
        stations=[station] if station else None,
        start=start,
        end=end,
        where=where,
        exclude=info.get("exclude"),
        version=info.get("version"),
    )
    return found, info
