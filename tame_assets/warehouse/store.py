"""Parquet warehouse in hive layout with DuckDB views over it.

Layout under the data root::

    warehouse/<table>/month=YYYY-MM/part-0.parquet   monthly tables
    warehouse/<table>/part-0.parquet                 unpartitioned tables
    warehouse/quarantine/month=YYYY-MM/<asset>.parquet
    tame.duckdb                                      one view per table (views only, no data)

Writes are atomic (:func:`tame_assets.files.atomic_path`: a temp file in the same directory, then
rename), so a crash leaves the previous partition intact, and re-writing a partition replaces it; temp
files of a killed writer not modified for an hour are removed by the next write to that folder.
Table names are the warehouse folder names: only plain identifiers (see
:mod:`~tame_assets.warehouse.identifiers`) are tables; other folders are skipped and reported by
:meth:`Warehouse.skipped_folders`. A table whose Parquet files DuckDB cannot read (e.g. a truncated
partition) gets a view that fails with the corrupt file named, so only queries on that table fail.

``tame.duckdb`` holds only views, over paths *relative to the data root* (a copied or moved root
reads its own files; open it from the data root or with ``SET file_search_path='<data root>'``).
It is rebuilt in a temp file and swapped in with ``os.replace`` under a file lock, so a reader
holding it open (a ``duckdb`` shell) never blocks a writer: the reader keeps the old file until it
reconnects. Python readers use an in-memory DuckDB over the same files. Timestamps are naive UTC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

import duckdb
import polars as pl

from tame_assets.config import DUCKDB_S3_MODES, PathLayout, SettingsError, is_remote, s3_credentials, s3_endpoint
from tame_assets.files import atomic_path, sweep_stale_temps
from tame_assets.sources.errors import QUARANTINE_SCHEMA as SOURCE_QUARANTINE_SCHEMA
from tame_assets.warehouse.catalog_view import create_catalog_live_view
from tame_assets.warehouse.identifiers import (
    IDENTIFIER_RULE,
    is_identifier,
    quote_ident,
    quote_literal,
    validate_identifier,
)
from tame_assets.warehouse.sql import load_sql

QUARANTINE_TABLE = "quarantine"
#: ``tame.duckdb`` is written in the storage format of DuckDB 1.4, so the ``duckdb-cli`` shell (1.5.x,
#: the newest on PyPI) opens it although the library is 2.x (which otherwise writes a format 1.x cannot read).
VIEWS_DB_CONFIG = {"storage_compatibility_version": "v1.4.0"}
PART_FILE = "part-0.parquet"
#: Per-station partitions are files ``part-<STATION>.parquet`` in the month's folder (``station`` is a
#: column in them, so the views read every station's rows without another hive level).
STATION_FILE_PREFIX = "part-"
_STATION_CODE = re.compile(r"^[A-Z0-9]{3,5}$")


def station_file(station: str) -> str:
    """File name of ``station``'s partition (ValueError unless a station code, e.g. ``NYA``, ``GAKO``)."""
    if not isinstance(station, str) or not _STATION_CODE.match(station):
        raise ValueError(f"{station!r} is not a station code (3-5 upper-case letters or digits)")
    return f"{STATION_FILE_PREFIX}{station}.parquet"


_PARTITION_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.parquet$")
#: The as-of table macro installed in every warehouse connection and in ``tame.duckdb``.
ASOF_MACRO_SQL = "asof_nearest_macro.sql"

#: The ``quarantine`` table: the sources' quarantine rows (:data:`tame_assets.sources.errors.QUARANTINE_SCHEMA`)
#: plus the asset that recorded them and when (naive UTC); this column order is that of the existing files.
QUARANTINE_SCHEMA = {
    "time": SOURCE_QUARANTINE_SCHEMA["time"],
    "station": SOURCE_QUARANTINE_SCHEMA["station"],
    "asset": pl.Utf8,
    "file": SOURCE_QUARANTINE_SCHEMA["file"],
    "reason": SOURCE_QUARANTINE_SCHEMA["reason"],
    "recorded_at": pl.Datetime("us"),
}


@dataclass
class Warehouse:
    """Read and write the Parquet tables under ``root`` (a local path or an ``s3://`` URL), every file
    operation through one fsspec filesystem (:func:`warehouse_filesystem`, attribute ``fs``); the two kinds
    of root differ only in how a file is replaced atomically (:meth:`_write_target`) and in whether
    ``tame.duckdb`` views use paths relative to the root (:attr:`relative_views`)."""

    root: str | os.PathLike | PathLayout

    def __post_init__(self) -> None:
        self.layout = self.root if isinstance(self.root, PathLayout) else PathLayout.for_root(self.root)
        self.root = self.layout.data_root
        self.fs = warehouse_filesystem(self.root)

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

    def table_dir(self, table: str) -> str:
        """``<warehouse>/<table>``; ``ValueError`` unless ``table`` is a plain identifier."""
        return f"{self.warehouse}/{validate_identifier(table)}"

    def partition_dir(self, table: str, month: str | None) -> str:
        base = self.table_dir(table)
        if month and not _PARTITION_NAME.match(month):
            raise ValueError(f"{month!r} is not a valid partition key (YYYY-MM)")
        return f"{base}/month={month}" if month else base

    def partition_file(self, table: str, month: str | None, name: str = PART_FILE) -> str:
        if not _FILE_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid partition file name (*.parquet)")
        return f"{self.partition_dir(table, month)}/{name}"

    def table_glob(self, table: str) -> str:
        return f"{self.table_dir(table)}/**/*.parquet"

    def _listing_fs(self):
        """:attr:`fs` with its listing cache dropped (other writers may have added partitions since the
        last listing of an object store; a no-op on a local disk)."""
        self.fs.invalidate_cache()
        return self.fs

    @contextlib.contextmanager
    def _write_target(self, target: str) -> Iterator[str | IO[bytes]]:
        """Where to write the file ``target`` so readers see the old file or the whole new one: on a local
        disk a temporary path renamed over it (:func:`~tame_assets.files.atomic_path`); in an object store
        the object itself (a PUT is atomic)."""
        if self.layout.remote:
            with self.fs.open(target, "wb") as fh:
                yield fh
            return
        directory = Path(target).parent
        directory.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(directory)
        with atomic_path(target) as tmp:
            yield tmp

    # ----------------------------------------------------------------- write
    def write_partition(self, table: str, df: pl.DataFrame, month: str | None = None, name: str = PART_FILE) -> str:
        """Atomically write ``df`` as the partition ``month`` of ``table``; returns its path.

        Re-writing the same partition replaces it (idempotent). In a monthly partition a ``month``
        column of ``df`` is dropped: the hive directory name carries it (an unpartitioned table keeps it).
        """
        if month is not None and "month" in df.columns:
            df = df.drop("month")
        target = self.partition_file(table, month, name)
        with self._write_target(target) as destination:
            df.write_parquet(destination, compression="zstd")
        self.ensure_view(table)
        return target

    def delete_partition(self, table: str, month: str | None, name: str = PART_FILE) -> None:
        target = self.partition_file(table, month, name)
        if self._listing_fs().exists(target):
            self.fs.rm(target)

    def record_quarantine(self, asset: str, month: str | None, rows: pl.DataFrame, station: str | None = None) -> str:
        """Replace the quarantine records of ``asset`` for ``month`` (and ``station``; columns: QUARANTINE_SCHEMA)."""
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = rows.with_columns(pl.lit(asset).alias("asset"))
        if "recorded_at" not in rows.columns:
            rows = rows.with_columns(pl.lit(now).cast(pl.Datetime("us")).alias("recorded_at"))
        for col, dtype in QUARANTINE_SCHEMA.items():
            if col not in rows.columns:
                rows = rows.with_columns(pl.lit(None).cast(dtype).alias(col))
        rows = rows.select([pl.col(c).cast(t) for c, t in QUARANTINE_SCHEMA.items()])
        name = f"{asset}-{station_file(station)[len(STATION_FILE_PREFIX) :]}" if station else f"{asset}.parquet"
        return self.write_partition(QUARANTINE_TABLE, rows, month or "none", name=name)

    # ----------------------------------------------------------------- read
    def _folders(self) -> list[str]:
        """Names of the warehouse folders holding at least one Parquet file."""
        fs = self._listing_fs()
        if not fs.exists(self.warehouse):
            return []
        folders = [entry["name"] for entry in fs.ls(self.warehouse, detail=True) if entry["type"] == "directory"]
        return sorted(_base_name(f) for f in folders if fs.glob(f"{f.rstrip('/')}/**/*.parquet"))

    def tables(self) -> list[str]:
        """Tables: warehouse folders with at least one Parquet file and a plain-identifier name."""
        return [name for name in self._folders() if is_identifier(name)]

    def skipped_folders(self) -> dict[str, str]:
        """Folders with Parquet files that are not tables (invalid names), with the reason."""
        return {
            name: f"not a valid table name ({IDENTIFIER_RULE})" for name in self._folders() if not is_identifier(name)
        }

    def table_files(self, table: str) -> list[str]:
        """Every Parquet file of ``table`` (paths or URLs), sorted."""
        return sorted(self._listing_fs().glob(self.table_glob(table)))

    def unreadable_reason(self, path: str, full: bool = False) -> str | None:
        """Why the Parquet file ``path`` cannot be read (one line), or None if it can: its footer
        (schema, row groups) is checked, and with ``full=True`` every page is decoded too."""
        import pyarrow.parquet as pq

        try:
            with self.fs.open(path, "rb") as fh:
                pq.read_table(fh) if full else pq.read_metadata(fh)
        except FileNotFoundError:
            return "file missing"
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for damaged files
            return " ".join(str(exc).split()) or type(exc).__name__
        return None

    def table_problem(self, table: str, error: Exception | None = None) -> str:
        """One line naming the unreadable Parquet files of ``table`` (or DuckDB's ``error``)."""
        bad = [(path, reason) for path in self.table_files(table) if (reason := self.unreadable_reason(path))]
        if not bad:
            first = str(error).strip().splitlines()[0] if error else "unknown error"
            return f"table {table} is unreadable: {first}"
        files = "; ".join(f"{path} ({reason})" for path, reason in bad)
        return (
            f"table {table} is unreadable: corrupt Parquet file{'s' if len(bad) > 1 else ''} {files}; "
            "rematerialize the partition or delete the file"
        )

    def months(self, table: str) -> list[str]:
        """Monthly partitions present for ``table``, sorted."""
        base = self.table_dir(table)
        fs = self._listing_fs()
        names = [_base_name(entry) for entry in fs.ls(base, detail=False)] if fs.exists(base) else []
        return sorted(n.split("=", 1)[1] for n in names if n.startswith("month="))

    def is_partitioned(self, table: str) -> bool:
        return bool(self.months(table))

    @property
    def relative_views(self) -> bool:
        """Whether ``tame.duckdb`` views use paths relative to the data root (local roots)."""
        return not self.layout.remote

    def view_sql(self, table: str, relative: bool = False) -> str:
        """``read_parquet`` expression for a table (hive ``month`` column for monthly tables);
        ``relative``: paths relative to the data root (``warehouse/<table>/...``)."""
        base = f"warehouse/{validate_identifier(table)}" if relative else self.table_dir(table)
        if self.is_partitioned(table):
            return (
                f"read_parquet({quote_literal(base + '/month=*/*.parquet')}, hive_partitioning = true, "
                "hive_types = {'month': VARCHAR}, union_by_name = true)"
            )
        return f"read_parquet({quote_literal(base + '/*.parquet')}, union_by_name = true)"

    def create_view(self, con: duckdb.DuckDBPyConnection, table: str, relative: bool = False) -> str | None:
        """Create or replace the view ``table`` in ``con``; returns None, or the problem if its files
        are unreadable — then the view fails every query with that one-line message instead."""
        name = quote_ident(validate_identifier(table))
        try:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {self.view_sql(table, relative)}")
            return None
        except duckdb.Error as exc:
            problem = self.table_problem(table, exc)
        con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM (SELECT error({quote_literal(problem)}) "
            "AS unreadable) WHERE unreadable IS NULL"
        )
        return problem

    def views_connection(self) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
        """In-memory DuckDB with one view per table (never locks ``tame.duckdb``) and the
        problems of unreadable tables (table → one-line message; their views fail with it)."""
        con = duckdb.connect()
        configure_limits(con, self.layout)
        configure_object_store(con, self.root, self.layout.duckdb_s3)
        problems = {}
        for table in self.tables():
            if (problem := self.create_view(con, table)) is not None:
                problems[table] = problem
        create_catalog_live_view(con)  # aurora_catalog + live rows of days it lacks (when live_frames exists)
        con.execute(load_sql(ASOF_MACRO_SQL))
        con.execute("SET asof_loop_join_threshold = 0")  # see warehouse.merge.use_asof_operator
        return con, problems

    def connect(self) -> duckdb.DuckDBPyConnection:
        """In-memory DuckDB with one view per table (see :meth:`views_connection`)."""
        return self.views_connection()[0]

    def sql(self, query: str, params: Iterable | None = None) -> pl.DataFrame:
        """Trusted SQL written by this package (user SQL goes through :mod:`~tame_assets.warehouse.sql_door`)."""
        with contextlib.closing(self.connect()) as con:
            return con.sql(query, params=list(params) if params else None).pl()

    def read(self, table: str, months: Iterable[str] | None = None, name: str = PART_FILE) -> pl.DataFrame:
        """The whole table, or only the given months' file ``name`` (partition pruning by path)."""
        if months is None:
            return self.sql(f"SELECT * FROM {quote_ident(validate_identifier(table))}")
        frames = []
        for month in months:
            path = self.partition_file(table, month, name)
            if self.exists(path):
                frames.append(self._read_file(path))
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def read_partition(self, table: str, month: str | None, name: str = PART_FILE) -> pl.DataFrame:
        """One partition file: ``month``'s (None: the unpartitioned table's) file ``name``
        (:func:`station_file` for per-station partitions)."""
        path = self.partition_file(table, month, name)
        if not self.exists(path):
            station = (
                f"--station {name[len(STATION_FILE_PREFIX) : -8]} " if name.startswith(STATION_FILE_PREFIX) else ""
            )
            raise FileNotFoundError(
                f"{table} has no {f'partition {month}' if month else 'data'} at {path}; materialize it first "
                f"(e.g. `tame materialize {f'--month {month} ' if month else ''}{station}--select {table}`)"
            )
        return self._read_file(path)

    def _read_file(self, path: str) -> pl.DataFrame:
        with self.fs.open(path, "rb") as fh:
            return pl.read_parquet(fh)

    def exists(self, path: str) -> bool:
        return self._listing_fs().exists(path)

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
        """Create or refresh the view for ``table`` in ``tame.duckdb`` (see :meth:`rebuild_views`)."""
        self.rebuild_views([validate_identifier(table)], keep_others=True)

    def rebuild_views(self, tables: Iterable[str], keep_others: bool = False) -> None:
        """Write ``tame.duckdb`` with views for ``tables`` (plus the existing views if ``keep_others``).

        The new file is built next to it under a temp name and swapped in with ``os.replace``,
        serialised across processes by a file lock: a reader holding the old file (a ``duckdb``
        shell) keeps reading it and never blocks this write.
        """
        target = self.duckdb_path
        with self._views_lock():
            sweep_stale_temps(target.parent, sidecars=(".wal",))  # .wal: left by writers before atomic_path
            with atomic_path(target, create=False) as tmp:  # DuckDB creates its file (and .wal) itself
                if keep_others and target.exists():
                    shutil.copyfile(target, tmp)
                try:
                    self._write_views(tmp, tables)
                except duckdb.Error:
                    if not keep_others:
                        raise
                    tmp.unlink(missing_ok=True)  # an unreadable old file: build every view afresh
                    self._write_views(tmp, self.tables())

    def _write_views(self, path: Path, tables: Iterable[str]) -> None:
        with contextlib.closing(duckdb.connect(str(path), config=VIEWS_DB_CONFIG)) as con:
            configure_object_store(con, self.root, self.layout.duckdb_s3)
            if self.relative_views:
                con.execute(f"SET file_search_path = {quote_literal(self.root)}")
            for table in tables:
                self.create_view(con, table, relative=self.relative_views)
            create_catalog_live_view(con)
            con.execute(load_sql(ASOF_MACRO_SQL))

    def refresh_views(self) -> list[str]:
        """Rewrite ``tame.duckdb`` with a view for every table present; returns the tables."""
        tables = self.tables()
        self.rebuild_views(tables)
        return tables

    def row_counts(self) -> dict[str, int]:
        """Rows per readable table (unreadable ones: see :meth:`table_status`)."""
        return {t: n for t, n in self.table_status().items() if isinstance(n, int)}

    def table_status(self) -> dict[str, int | str]:
        """Per table: its row count, or the one-line reason it cannot be read."""
        status: dict[str, int | str] = {}
        con, problems = self.views_connection()
        with contextlib.closing(con):
            for table in self.tables():
                if table in problems:
                    status[table] = problems[table]
                    continue
                try:
                    status[table] = con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0]
                except duckdb.Error as exc:
                    status[table] = self.table_problem(table, exc)
        return status


def open_views_database(root: str | os.PathLike | PathLayout) -> duckdb.DuckDBPyConnection:
    """Read-only connection to ``tame.duckdb`` of a data root, from any working directory (its views'
    relative paths resolved against the data root via ``file_search_path``)."""
    wh = Warehouse(root)
    con = duckdb.connect(str(wh.duckdb_path), read_only=True)
    if wh.relative_views:
        con.execute(f"SET file_search_path = {quote_literal(wh.root)}")
    configure_object_store(con, wh.root, wh.layout.duckdb_s3)
    return con


def configure_limits(con: duckdb.DuckDBPyConnection, layout: PathLayout) -> None:
    """DuckDB's budget from ``layout.sql`` (group ``[sql]``): ``memory_limit``, ``max_temp_directory_size``
    and a private spill folder ``<local root>/.duckdb_tmp/<pid>-<random>`` that DuckDB creates on the
    first spill and removes when the connection closes — never ``./.tmp`` of the working directory,
    which a sandboxed connection would otherwise be allowed to read. Without a writable local root
    spilling is off (the memory limit is then a hard limit)."""
    con.execute(f"SET memory_limit = {quote_literal(layout.sql.memory_limit)}")
    con.execute(f"SET max_temp_directory_size = {quote_literal(layout.sql.max_temp_directory_size)}")
    try:
        layout.duckdb_temp_dir.mkdir(parents=True, exist_ok=True)
        spill = str(layout.duckdb_temp_dir / f"{os.getpid()}-{secrets.token_hex(8)}")
    except OSError:
        spill = ""
    con.execute(f"SET temp_directory = {quote_literal(spill)}")


def _base_name(path: str) -> str:
    """Last component of a filesystem path or object-store key (``a/b/`` → ``b``)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def warehouse_filesystem(root: str):
    """The fsspec filesystem every warehouse read, listing and write goes through: s3fs for an ``s3://``
    root (:func:`s3_filesystem`), the local filesystem otherwise."""
    if is_remote(root):
        return s3_filesystem()
    import fsspec

    return fsspec.filesystem("file")


def s3_filesystem():
    """``s3fs.S3FileSystem`` for the endpoint of :func:`~tame_assets.config.s3_endpoint`; credentials and
    region come from the standard AWS variables / config files / instance roles (botocore's chain)."""
    import s3fs

    endpoint = s3_endpoint()
    return s3fs.S3FileSystem(endpoint_url=endpoint) if endpoint else s3fs.S3FileSystem()


def httpfs_installed(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether DuckDB's httpfs extension is installed locally (never downloads it)."""
    row = con.execute("SELECT installed OR loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone()
    return bool(row and row[0])


def configure_object_store(con: duckdb.DuckDBPyConnection, root: str, mode: str = "auto") -> None:
    """Let DuckDB read an ``s3://`` root.

    With ``mode`` (setting ``[storage] duckdb_s3``) = ``auto`` (default) DuckDB's native httpfs
    extension is used when it is already installed (e.g. baked into the container image) and otherwise the fsspec/s3fs
    filesystem is registered with the connection — ``INSTALL httpfs`` needs internet access, so it
    is never attempted here. ``httpfs`` or ``fsspec`` force one of the two. Endpoint from
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; credentials from the standard AWS variables.
    """
    if not str(root).startswith("s3://"):
        return
    mode = str(mode).lower()
    if mode not in DUCKDB_S3_MODES:
        raise SettingsError(f"[storage] duckdb_s3 = {mode!r}: expected one of {', '.join(DUCKDB_S3_MODES)}")
    use_httpfs = mode == "httpfs" or (mode == "auto" and httpfs_installed(con))
    if not use_httpfs:
        con.register_filesystem(s3_filesystem())
        return
    if not httpfs_installed(con):
        raise RuntimeError(
            "[storage] duckdb_s3 = 'httpfs' but DuckDB's httpfs extension is not installed; run "
            "`INSTALL httpfs` once on a machine with internet access (or set it to fsspec)"
        )
    con.execute("LOAD httpfs")
    create_s3_secret(con, s3_credentials(), s3_endpoint())


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal (single quotes doubled): data, never SQL."""
    return "'" + str(value).replace("'", "''") + "'"


def create_s3_secret(con: duckdb.DuckDBPyConnection, opts: dict[str, str], endpoint: str | None) -> None:
    """``CREATE SECRET tame_s3`` from ``opts`` (KEY_ID, SECRET, REGION) with every value quoted as a
    literal. A failure is a RuntimeError whose message never contains the key id or the secret."""
    secret = ", ".join(f"{k} {sql_string(v)}" for k, v in opts.items())
    if endpoint:
        host = endpoint.split("://", 1)[-1].rstrip("/")
        secret += (
            f", ENDPOINT {sql_string(host)}, URL_STYLE 'path', USE_SSL {str(endpoint.startswith('https')).lower()}"
        )
    try:
        con.execute(f"CREATE OR REPLACE SECRET tame_s3 (TYPE S3, {secret})")
    except duckdb.Error as exc:
        message = str(exc)
        for hidden in (opts.get("KEY_ID"), opts.get("SECRET")):
            for form in {hidden, str(hidden).replace("'", "''")} if hidden else ():
                message = message.replace(form, "***")
        raise RuntimeError(f"cannot configure DuckDB's S3 access: {message}") from None
