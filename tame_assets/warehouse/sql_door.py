"""The read-only SQL door: user SQL over the warehouse views (``tame sql``, ``Provider.sql``).

Two fences, both needed:

1. **Statement classification** with DuckDB's own parser (``duckdb.extract_statements`` → ``type``):
   one statement, and only ``SELECT`` (incl. ``WITH``, ``FROM``-first, ``VALUES``, ``DESCRIBE``,
   ``SHOW``, ``SUMMARIZE``…), ``PIVOT`` (DuckDB classifies a ``PIVOT`` without an ``IN`` list as
   ``MULTI``: it first creates a temporary ENUM of the pivot values; such a statement is accepted when
   it starts like a query and holds no write keyword), ``EXPLAIN [ANALYZE]`` of a query, and ``PRAGMA`` / ``CALL``
   of the read-only functions in :data:`READ_PRAGMAS` / :data:`READ_FUNCTIONS`. Everything else —
   ``COPY``, ``ATTACH``/``DETACH``, ``INSTALL``/``LOAD``, ``CREATE``/``DROP``/``ALTER``/``INSERT``/
   ``UPDATE``/``DELETE``, ``SET``/``RESET``, ``EXPORT``/``IMPORT``, ``CHECKPOINT``, ``VACUUM``… — is
   refused with :class:`RefusedStatement` naming the statement type. (The sandbox alone is not
   enough: ``COPY … TO`` a file inside the allowed warehouse directory would be permitted.)
2. **A sandboxed connection**: a fresh in-memory DuckDB holding only the views, then
   ``autoinstall_known_extensions`` / ``autoload_known_extensions`` off, ``allowed_directories`` =
   the warehouse (a local folder, or the ``s3://…/warehouse/`` prefix), ``enable_external_access``
   off and ``lock_configuration`` on, so no file outside the warehouse is read and no setting can
   be changed back. DuckDB's spill folder is a private, initially absent one under
   ``<local root>/.duckdb_tmp`` (:func:`~tame_assets.warehouse.store.configure_limits`), not ``./.tmp``
   of the working directory (which the sandbox would otherwise admit).

A budget (group ``[sql]``, :class:`~tame_assets.config.SqlLimits`): text longer than
``max_query_chars`` or with more than :data:`MAX_QUERY_BLOCKS` ``SELECT``/set-operation keywords is
refused before DuckDB parses it (planning 20,000 ``UNION ALL`` took 141 s and 10.7 GB outside any
memory limit); ``memory_limit`` / ``max_temp_directory_size`` bound execution; a query still
running after ``timeout_s`` is interrupted from a timer thread. Each is :class:`QueryLimitExceeded`,
one line.

Results are fetched lazily: with ``max_rows`` only ``max_rows + 1`` rows are computed (DuckDB
stops the scan), so printing 50 rows of a 300-million-row query costs little memory and time;
:func:`export_read_only` streams a whole result in record batches (``tame sql --format … --out``:
memory flat in the row count).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

import duckdb
import polars as pl
import pyarrow as pa

from tame_assets.config import SqlLimits
from tame_assets.warehouse.identifiers import quote_literal
from tame_assets.warehouse.store import Warehouse

#: ``PRAGMA <name>`` that only report (no configuration change).
READ_PRAGMAS = frozenset(
    {
        "version",
        "platform",
        "user_agent",
        "table_info",
        "show",
        "show_tables",
        "show_tables_expanded",
        "show_databases",
        "database_list",
        "database_size",
        "functions",
        "collations",
        "storage_info",
        "metadata_info",
    }
)
#: Table functions ``CALL <name>(…)`` may run (catalog and Parquet-metadata readers).
READ_FUNCTIONS = frozenset(
    {f"pragma_{name}" for name in READ_PRAGMAS}
    | {
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_databases",
        "duckdb_dependencies",
        "duckdb_extensions",
        "duckdb_functions",
        "duckdb_indexes",
        "duckdb_keywords",
        "duckdb_schemas",
        "duckdb_settings",
        "duckdb_tables",
        "duckdb_types",
        "duckdb_views",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
    }
)
#: Most ``SELECT`` / ``UNION`` / ``INTERSECT`` / ``EXCEPT`` keywords in one query (DuckDB's planner time and
#: memory grow faster than linearly in them, outside ``memory_limit``: 1,000 plan in < 1 s and ~100 MB).
MAX_QUERY_BLOCKS = 1000
_BLOCK_KEYWORDS = frozenset({"select", "union", "intersect", "except"})
#: First words of a ``MULTI`` statement (a dynamic ``PIVOT``) accepted as a query.
_QUERY_STARTS = frozenset({"pivot", "pivot_wider", "unpivot", "pivot_longer", "select", "from", "with", "values", "("})
#: Keywords that make a ``MULTI`` statement more than a query.
_WRITE_KEYWORDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "copy",
        "create",
        "drop",
        "alter",
        "attach",
        "detach",
        "install",
        "load",
        "export",
        "import",
        "set",
        "reset",
        "checkpoint",
        "vacuum",
        "call",
        "pragma",
        "truncate",
        "merge",
        "use",
    }
)
READ_ONLY_HELP = (
    "tame sql is read-only: SELECT/WITH/FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of a query, "
    "PRAGMA/CALL of catalog functions"
)


class RefusedStatement(PermissionError):
    """SQL that the read-only door does not run (the message is one line)."""


class QueryLimitExceeded(RefusedStatement):
    """A query over the ``[sql]`` budget: too long or complex, over the memory limit, or over the time
    limit (one line naming the limit and its setting)."""


def _words(text: str) -> list[tuple[int, str]]:
    """(position, token text) of the tokens of ``text``, comments left out."""
    tokens = duckdb.tokenize(text)
    ends = [pos for pos, _ in tokens[1:]] + [len(text)]
    return [(pos, text[pos:end].strip()) for (pos, kind), end in zip(tokens, ends) if kind != duckdb.token_type.comment]


def _explained_query(text: str) -> str:
    """The statement after ``EXPLAIN [ANALYZE]`` / ``EXPLAIN (options)``."""
    words = _words(text)[1:]
    if words and words[0][1].lower() == "analyze":
        words = words[1:]
    if words and words[0][1] == "(":
        depth = 0
        for i, (_, word) in enumerate(words):
            depth += word.count("(") - word.count(")")
            if depth == 0:
                words = words[i + 1 :]
                break
    return text[words[0][0] :] if words else ""


def _refuse(kind: str, text: str, why: str = "") -> RefusedStatement:
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return RefusedStatement(f"refused {kind} statement ({shown}){why} — {READ_ONLY_HELP}")


def check_size(sql: str, max_chars: int = SqlLimits.max_query_chars) -> None:
    """:class:`QueryLimitExceeded` for text over ``max_chars`` characters or :data:`MAX_QUERY_BLOCKS`
    query blocks, decided before DuckDB parses it (the tokenizer is linear)."""
    if len(sql) > max_chars:
        raise QueryLimitExceeded(
            f"query is {len(sql):,} characters, above the limit of {max_chars:,} ([sql] max_query_chars)"
        )
    blocks = sum(1 for _, word in _words(sql) if word.lower() in _BLOCK_KEYWORDS)
    if blocks > MAX_QUERY_BLOCKS:
        raise QueryLimitExceeded(
            f"query has {blocks:,} SELECT/UNION/INTERSECT/EXCEPT keywords, above the limit "
            f"of {MAX_QUERY_BLOCKS:,}; split it or use a table of values"
        )


def check_read_only(sql: str, max_chars: int = SqlLimits.max_query_chars) -> str:
    """The text of the single read statement in ``sql``; :class:`RefusedStatement` otherwise
    (:class:`QueryLimitExceeded` for text over the size limits, ``duckdb.ParserException`` for text
    that does not parse)."""
    check_size(sql, max_chars)
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise RefusedStatement(f"give one statement at a time (got {len(statements)}) — {READ_ONLY_HELP}")
    statement = statements[0]
    text, kind = statement.query, statement.type
    if kind == duckdb.StatementType.SELECT:
        return text
    words = [word.lower() for _, word in _words(text)[:2]]
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _explained_query(text)
        inner_types = [s.type for s in duckdb.extract_statements(inner)] if inner.strip() else []
        if inner_types == [duckdb.StatementType.SELECT]:
            return text
        raise _refuse("EXPLAIN", text, " of a statement that is not a query")
    if (
        kind == duckdb.StatementType.PRAGMA
        and words[0] == "pragma"
        and len(words) > 1
        and words[1].strip('"') in READ_PRAGMAS
    ):
        return text
    if (
        kind == duckdb.StatementType.CALL
        and words[0] == "call"
        and len(words) > 1
        and words[1].strip('"') in READ_FUNCTIONS
    ):
        return text
    if kind == duckdb.StatementType.MULTI and words and words[0] in _QUERY_STARTS:
        writes = sorted({w.lower() for _, w in _words(text)} & _WRITE_KEYWORDS)
        if not writes:
            return text
        raise _refuse("MULTI", text, f" holding {', '.join(w.upper() for w in writes)}")
    raise _refuse(kind.name, text)


def sandbox(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> None:
    """Lock ``con`` down: no extension install/autoload, file access only under the warehouse,
    configuration locked (views must be created before)."""
    allowed = warehouse.warehouse.rstrip("/") + "/"
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute(f"SET allowed_directories = [{quote_literal(allowed)}]")
    con.execute("SET enable_external_access = false")  # s3:// roots: reads under the allowed prefix still work
    con.execute("SET lock_configuration = true")


def read_only_connection(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """Fresh in-memory DuckDB with the warehouse views, sandboxed (see :func:`sandbox`)."""
    con = warehouse.connect()
    try:
        sandbox(con, warehouse)
    except BaseException:
        con.close()
        raise
    return con


@contextlib.contextmanager
def _guarded_query(warehouse: Warehouse, sql: str) -> Iterator[duckdb.DuckDBPyRelation | None]:
    """The relation of one read statement on a sandboxed connection, with the ``[sql]`` budget: the
    timer interrupting it after ``timeout_s`` and DuckDB's out-of-memory error, both while the block
    runs (fetching included), become :class:`QueryLimitExceeded`."""
    limits = warehouse.layout.sql
    text = check_read_only(sql, limits.max_query_chars)
    with contextlib.closing(read_only_connection(warehouse)) as con:
        timer = threading.Timer(limits.timeout_s, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield con.sql(text)
        except duckdb.InterruptException:
            raise QueryLimitExceeded(f"query exceeded {limits.timeout_s:g} s ([sql] timeout_s)") from None
        except duckdb.OutOfMemoryException as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise QueryLimitExceeded(
                f"query exceeded the memory budget ([sql] memory_limit = {limits.memory_limit}, "
                f"max_temp_directory_size = {limits.max_temp_directory_size}): {first}"
            ) from None
        finally:
            timer.cancel()


def run_read_only(warehouse: Warehouse, sql: str, max_rows: int | None = None) -> tuple[pl.DataFrame, bool]:
    """Run one read statement; returns (rows, more): at most ``max_rows`` rows (all if None) and
    whether the result has more. :class:`RefusedStatement` for anything but a read,
    :class:`QueryLimitExceeded` beyond the ``[sql]`` budget of ``warehouse.layout.sql``."""
    with _guarded_query(warehouse, sql) as relation:
        if relation is None:
            return pl.DataFrame(), False
        if max_rows is None:
            return relation.pl(), False
        rows = relation.limit(max_rows + 1).pl()
    return rows.head(max_rows), rows.height > max_rows


#: Rows per record batch when a result is streamed to a file (:func:`export_read_only`).
EXPORT_BATCH_ROWS = 100_000


def export_read_only(
    warehouse: Warehouse,
    sql: str,
    write: Callable[[pa.RecordBatchReader], int],
    batch_rows: int = EXPORT_BATCH_ROWS,
) -> int:
    """Run one read statement and hand its result to ``write`` as a stream of Arrow record batches of
    ``batch_rows`` rows (DuckDB computes them as they are read), so writing a result to a file costs
    memory for one batch, not for the whole result. Returns what ``write`` returns (its row count).
    Refusals and the ``[sql]`` budget as in :func:`run_read_only`."""
    with _guarded_query(warehouse, sql) as relation:
        if relation is None:
            return write(pa.RecordBatchReader.from_batches(pa.schema([]), []))
        return write(relation.to_arrow_reader(batch_rows))


def read_only_filter(warehouse: Warehouse, table: str, predicate: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """``columns`` of the rows of the view ``table`` for which the user's SQL ``predicate`` holds (e.g.
    ``tame similar --where "cloud_detected = false and h_nt < 0"``), on the sandboxed connection of
    :func:`read_only_connection` and within the ``[sql]`` budget. The predicate is never pasted into
    a statement: DuckDB parses it as one expression (``relation.filter``), so a ``;`` or a second
    statement is a parser error; subqueries in it are reads in the sandbox."""
    limits = warehouse.layout.sql
    check_size(predicate, limits.max_query_chars)
    with contextlib.closing(read_only_connection(warehouse)) as con:
        timer = threading.Timer(limits.timeout_s, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            return con.table(table).filter(predicate).select(*columns).pl()
        except duckdb.InterruptException:
            raise QueryLimitExceeded(f"query exceeded {limits.timeout_s:g} s ([sql] timeout_s)") from None
        finally:
            timer.cancel()
