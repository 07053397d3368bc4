"""Parquet warehouse in hive layout with DuckDB views over it.

Layout under the data root::

    warehouse/<table>/month=YYYY-MM/part-0.parquet   monthly tables
    warehouse/<table>/part-0.parquet                 unpartitioned tables
    warehouse/quarantine/month=YYYY-MM/<asset>.parquet
    tame.duckdb                                      one view per table (views only, no data)

Writes are atomic (temp file in the same directory, then rename), so a crash leaves the previous
partition intact, and re-writing a partition replaces it. The DuckDB file holds only views over
the Parquet globs: it is opened for a moment under a file lock when a new table appears, so
parallel writers never meet a DuckDB lock; readers use an in-memory DuckDB over the same globs.
Timestamps are stored as naive UTC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import polars as pl

from tame_assets.config import PathLayout, is_remote
from tame_assets.warehouse.sql import load_sql

QUARANTINE_TABLE = "quarantine"
#: ``tame.duckdb`` is written in the storage format of DuckDB 1.4, so the ``duckdb-cli`` shell (1.5.x,
#: the newest on PyPI) opens it although the library is 2.x (which otherwise writes a format 1.x cannot read).
VIEWS_DB_CONFIG = {"storage_compatibility_version": "v1.4.0"}
PART_FILE = "part-0.parquet"
#: The as-of table macro installed in every warehouse connection and in ``tame.duckdb``.
ASOF_MACRO_SQL = "asof_nearest_macro.sql"

QUARANTINE_SCHEMA = {
    "time": pl.Datetime("us"),
    "station": pl.Utf8,
    "asset": pl.Utf8,
    "file": pl.Utf8,
    "reason": pl.Utf8,
    "recorded_at": pl.Datetime("us"),
}


@dataclass
class Warehouse:
    """Read and write the Parquet tables under ``root`` (a local path or an ``s3://`` URL)."""

    root: str | os.PathLike | PathLayout

    def __post_init__(self) -> None:
        self.layout = self.root if isinstance(self.root, PathLayout) else PathLayout.for_root(self.root)
        self.root = self.layout.data_root

    # ----------------------------------------------------------------- paths
    @property
    def warehouse(self) -> str:
        return self.layout.warehouse

    @property
    def duckdb_path(self) -> Path:
        """The views database (in the local root; see :class:`~tame_assets.config.PathLayout`)."""
        return self.layout.duckdb_path

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def partition_dir(self, table: str, month: str | None) -> str:
        base = f"{self.warehouse}/{table}"
        return f"{base}/month={month}" if month else base

    def partition_file(self, table: str, month: str | None, name: str = PART_FILE) -> str:
        return f"{self.partition_dir(table, month)}/{name}"

    def table_glob(self, table: str) -> str:
        return f"{self.warehouse}/{table}/**/*.parquet"

    @property
    def fs(self):
        """fsspec filesystem of the root (``s3://`` via :func:`s3_filesystem`)."""
        if str(self.root).startswith("s3://"):
            return s3_filesystem()
        import fsspec

        return fsspec.core.url_to_fs(self.root)[0]

    def _remote_fs(self):
        """The object-store filesystem with its listing cache dropped (other writers may have
        added partitions since the last listing)."""
        fs = self.fs
        fs.invalidate_cache()
        return fs

    # ----------------------------------------------------------------- write
    def write_partition(
        self, table: str, df: pl.DataFrame, month: str | None = None, name: str = PART_FILE
    ) -> str:
        """Atomically write ``df`` as the partition ``month`` of ``table``; returns its path.

        Re-writing the same partition replaces it (idempotent). A ``month`` column, if present in
        ``df``, is dropped: it is carried by the hive directory name.
        """
        if "month" in df.columns:
            df = df.drop("month")
        target = self.partition_file(table, month, name)
        if is_remote(self.root):
            with self.fs.open(target, "wb") as fh:  # an object PUT is atomic
                df.write_parquet(fh, compression="zstd")
        else:
            directory = Path(target).parent
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                df.write_parquet(tmp, compression="zstd")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        self.ensure_view(table)
        return target

    def delete_partition(self, table: str, month: str | None, name: str = PART_FILE) -> None:
        target = self.partition_file(table, month, name)
        if is_remote(self.root):
            if self.fs.exists(target):
                self.fs.rm(target)
        else:
            Path(target).unlink(missing_ok=True)

    def record_quarantine(self, asset: str, month: str | None, rows: pl.DataFrame) -> str:
        """Replace the quarantine records of ``asset`` for ``month`` (columns: QUARANTINE_SCHEMA)."""
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = rows.with_columns(pl.lit(asset).alias("asset"))
        if "recorded_at" not in rows.columns:
            rows = rows.with_columns(pl.lit(now).cast(pl.Datetime("us")).alias("recorded_at"))
        for col, dtype in QUARANTINE_SCHEMA.items():
            if col not in rows.columns:
                rows = rows.with_columns(pl.lit(None).cast(dtype).alias(col))
        rows = rows.select([pl.col(c).cast(t) for c, t in QUARANTINE_SCHEMA.items()])
        return self.write_partition(QUARANTINE_TABLE, rows, month or "none", name=f"{asset}.parquet")

    # ----------------------------------------------------------------- read
    def tables(self) -> list[str]:
        """Tables that have at least one Parquet file."""
        if is_remote(self.root):
            fs = self._remote_fs()
            if not fs.exists(self.warehouse):
                return []
            names = [p.rstrip("/").split("/")[-1] for p in fs.ls(self.warehouse, detail=False)]
            return sorted(n for n in names if fs.glob(self.table_glob(n)))
        base = Path(self.warehouse)
        if not base.exists():
            return []
        return sorted(
            p.name for p in base.iterdir() if p.is_dir() and any(p.rglob("*.parquet"))
        )

    def months(self, table: str) -> list[str]:
        """Monthly partitions present for ``table``, sorted."""
        base = f"{self.warehouse}/{table}"
        if is_remote(self.root):
            fs = self._remote_fs()
            entries = fs.ls(base, detail=False) if fs.exists(base) else []
            names = [e.rstrip("/").split("/")[-1] for e in entries]
        else:
            names = [p.name for p in Path(base).glob("month=*")] if Path(base).exists() else []
        return sorted(n.split("=", 1)[1] for n in names if n.startswith("month="))

    def is_partitioned(self, table: str) -> bool:
        return bool(self.months(table))

    def view_sql(self, table: str) -> str:
        """``read_parquet`` expression for a table (hive ``month`` column for monthly tables)."""
        if self.is_partitioned(table):
            glob = f"{self.warehouse}/{table}/month=*/*.parquet"
            return (
                f"read_parquet('{glob}', hive_partitioning = true, "
                "hive_types = {'month': VARCHAR}, union_by_name = true)"
            )
        return f"read_parquet('{self.warehouse}/{table}/*.parquet', union_by_name = true)"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """In-memory DuckDB with one view per table (never locks ``tame.duckdb``)."""
        con = duckdb.connect()
        configure_object_store(con, self.root)
        for table in self.tables():
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self.view_sql(table)}")
        con.execute(load_sql(ASOF_MACRO_SQL))
        con.execute("SET asof_loop_join_threshold = 0")  # see analysis.merge.use_asof_operator
        return con

    def sql(self, query: str, params: Iterable | None = None) -> pl.DataFrame:
        with contextlib.closing(self.connect()) as con:
            return con.sql(query, params=list(params) if params else None).pl()

    def read(self, table: str, months: Iterable[str] | None = None) -> pl.DataFrame:
        """The whole table, or only the given months (partition pruning by path)."""
        if months is None:
            return self.sql(f"SELECT * FROM {table}")
        frames = []
        for month in months:
            path = self.partition_file(table, month)
            if self.exists(path):
                frames.append(pl.read_parquet(path) if not is_remote(self.root) else self._read_remote(path))
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def read_partition(self, table: str, month: str | None) -> pl.DataFrame:
        path = self.partition_file(table, month)
        if not self.exists(path):
            raise FileNotFoundError(
                f"{table} has no {f'partition {month}' if month else 'data'} at {path}; materialize it first "
                f"(e.g. `tame materialize {f'--month {month} ' if month else ''}--select {table}`)"
            )
        return pl.read_parquet(path) if not is_remote(self.root) else self._read_remote(path)

    def _read_remote(self, path: str) -> pl.DataFrame:
        with self.fs.open(path, "rb") as fh:
            return pl.read_parquet(fh)

    def exists(self, path: str) -> bool:
        return self._remote_fs().exists(path) if is_remote(self.root) else Path(path).exists()

    # ----------------------------------------------------------------- views db
    @contextlib.contextmanager
    def _views_lock(self) -> Iterator[None]:
        lock_path = self.duckdb_path.with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure_view(self, table: str) -> None:
        """Create or refresh the view for ``table`` in ``tame.duckdb``.

        Serialised across processes with a file lock; a reader holding the file (e.g. a user's
        DuckDB shell) is waited for, with retries, for up to a minute.
        """
        sql = f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self.view_sql(table)}"
        with self._views_lock():
            deadline = time.monotonic() + 60
            while True:
                try:
                    with contextlib.closing(duckdb.connect(str(self.duckdb_path), config=VIEWS_DB_CONFIG)) as con:
                        configure_object_store(con, self.root)
                        con.execute(sql)
                        con.execute(load_sql(ASOF_MACRO_SQL))
                    return
                except duckdb.IOException as exc:  # held by another (reading) process
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"could not open {self.duckdb_path} to register view {table}: {exc}"
                        ) from exc
                    time.sleep(0.2)

    def refresh_views(self) -> list[str]:
        tables = self.tables()
        for table in tables:
            self.ensure_view(table)
        return tables

    def row_counts(self) -> dict[str, int]:
        with contextlib.closing(self.connect()) as con:
            return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in self.tables()}


#: How DuckDB reads ``s3://``: ``auto`` (httpfs if already installed, else fsspec), ``httpfs`` or ``fsspec``.
DUCKDB_S3_ENV = "TAME_DUCKDB_S3"


def s3_endpoint() -> str | None:
    """S3 endpoint URL from the standard ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (None: AWS)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_filesystem():
    """``s3fs.S3FileSystem`` for the endpoint in the environment; credentials and region come from
    the standard AWS variables / config files / instance roles (botocore's chain)."""
    import s3fs

    endpoint = s3_endpoint()
    return s3fs.S3FileSystem(endpoint_url=endpoint) if endpoint else s3fs.S3FileSystem()


def httpfs_installed(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether DuckDB's httpfs extension is installed locally (never downloads it)."""
    row = con.execute(
        "SELECT installed OR loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchone()
    return bool(row and row[0])


def configure_object_store(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Let DuckDB read an ``s3://`` root.

    With ``$TAME_DUCKDB_S3`` = ``auto`` (default) DuckDB's native httpfs extension is used when it
    is already installed (e.g. baked into the container image) and otherwise the fsspec/s3fs
    filesystem is registered with the connection — ``INSTALL httpfs`` needs internet access, so it
    is never attempted here. ``httpfs`` or ``fsspec`` force one of the two. Endpoint from
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; credentials from the standard AWS variables.
    """
    if not str(root).startswith("s3://"):
        return
    mode = os.environ.get(DUCKDB_S3_ENV, "auto").lower()
    if mode not in ("auto", "httpfs", "fsspec"):
        raise ValueError(f"${DUCKDB_S3_ENV} must be auto, httpfs or fsspec, not {mode!r}")
    use_httpfs = mode == "httpfs" or (mode == "auto" and httpfs_installed(con))
    if not use_httpfs:
        con.register_filesystem(s3_filesystem())
        return
    if not httpfs_installed(con):
        raise RuntimeError(
            f"${DUCKDB_S3_ENV}=httpfs but DuckDB's httpfs extension is not installed; run "
            "`INSTALL httpfs` once on a machine with internet access (or set it to fsspec)"
        )
    con.execute("LOAD httpfs")
    opts = {
        "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "REGION": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION", "us-east-1"),
    }
    create_s3_secret(con, opts, s3_endpoint())


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal (single quotes doubled): data, never SQL."""
    return "'" + str(value).replace("'", "''") + "'"


def create_s3_secret(con: duckdb.DuckDBPyConnection, opts: dict[str, str], endpoint: str | None) -> None:
    """``CREATE SECRET tame_s3`` from ``opts`` (KEY_ID, SECRET, REGION) with every value quoted as a
    literal. A failure is a RuntimeError whose message never contains the key id or the secret."""
    secret = ", ".join(f"{k} {sql_string(v)}" for k, v in opts.items())
    if endpoint:
        host = endpoint.split("://", 1)[-1].rstrip("/")
        secret += f", ENDPOINT {sql_string(host)}, URL_STYLE 'path', USE_SSL {str(endpoint.startswith('https')).lower()}"
    try:
        con.execute(f"CREATE OR REPLACE SECRET tame_s3 (TYPE S3, {secret})")
    except duckdb.Error as exc:
        message = str(exc)
        for hidden in (opts.get("KEY_ID"), opts.get("SECRET")):
            for form in {hidden, str(hidden).replace("'", "''")} if hidden else ():
                message = message.replace(form, "***")
        raise RuntimeError(f"cannot configure DuckDB's S3 access: {message}") from None
