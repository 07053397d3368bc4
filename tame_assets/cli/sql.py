"""``tame sql``: read-only SQL over the warehouse views, printed or written as CSV / JSON / Parquet."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings
from tame_assets.config import UsageError

SQL_FORMATS = ("table", "csv", "json", "parquet")


def run_query(warehouse, query: str, max_rows: int | None = None):
    """Run a user's read-only SQL over the warehouse views (see :mod:`tame_assets.warehouse.sql_door`);
    returns (rows, more). A refused statement exits with code 2, a query error with code 1, one line each."""
    from tame_assets.warehouse.sql_door import run_read_only

    return _guarded(lambda: run_read_only(warehouse, query, max_rows))


def _guarded(call: Callable):
    """``call()``; a refused statement (or one over the ``[sql]`` budget) exits with code 2, a query
    error with code 1, one line each."""
    import duckdb

    from tame_assets.warehouse.sql_door import RefusedStatement

    try:
        return call()
    except RefusedStatement as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except duckdb.Error as exc:
        typer.echo(f"SQL error: {_first_line(exc)}", err=True)
        raise typer.Exit(1) from None


def _first_line(exc: Exception) -> str:
    """DuckDB errors carry the query and a caret on further lines; the first line says what."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_query_file(path: Path) -> str:
    """The text of a ``-f`` query file: UTF-8 (with or without BOM) or UTF-16 with a byte-order mark;
    :class:`UsageError` naming the file for anything else."""
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not valid UTF-16 ({exc.reason} at byte {exc.start})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the query as UTF-8 (or UTF-16 with a byte-order mark)"
        ) from None


def _sql_text(query: Optional[str], file: Optional[Path]) -> str:
    if file is not None and query is not None:
        raise typer.BadParameter("give the query either as an argument or with -f, not both")
    if file is not None:
        text = read_query_file(file)
    elif query == "-":
        text = sys.stdin.read()
    elif query is not None:
        text = query
    else:
        raise typer.BadParameter("no query: pass it as an argument, '-' for stdin, or -f FILE")
    if not text.strip():
        raise typer.BadParameter(f"the query from {file or 'stdin' if query == '-' else 'the argument'} is empty")
    return text


def _vector_summaries(df):
    """List/array columns (feature vectors) replaced by a summary such as ``[1000 floats]`` (table view)."""
    import polars as pl

    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, (pl.List, pl.Array)):
            inner = dtype.inner
            kind = "floats" if inner.is_float() else "ints" if inner.is_integer() else "values"
            length = pl.col(name).list.len() if isinstance(dtype, pl.List) else pl.lit(dtype.size)
            exprs.append(
                pl.when(pl.col(name).is_null())
                .then(pl.lit(None))
                .otherwise(pl.format("[{} " + kind + "]", length))
                .alias(name)
            )
    return df.with_columns(exprs) if exprs else df


def _flat_for_csv(df):
    """CSV cannot hold nested values: list columns become JSON-style text ``[1.0, 2.5, …]``."""
    import polars as pl

    exprs = [
        pl.format("[{}]", pl.col(n).cast(pl.List(pl.Utf8)).list.join(", ")).alias(n)
        for n, t in df.schema.items()
        if isinstance(t, (pl.List, pl.Array))
    ]
    return df.with_columns(exprs) if exprs else df


def _print_table(df, max_rows: int, more: bool) -> None:
    import polars as pl

    shown = _vector_summaries(df)
    terminal = shutil.get_terminal_size((120, 40)).columns
    # as wide as the columns need (wide results wrap or scroll rather than squeezing every column)
    with pl.Config(
        tbl_rows=max_rows,
        tbl_cols=-1,
        fmt_str_lengths=48,
        tbl_width_chars=max(terminal, 20 * shown.width),
        fmt_table_cell_list_len=4,
    ):
        typer.echo(shown)
    if more:
        typer.echo(f"(first {max_rows} rows; --max-rows N for more, --format csv|json|parquet --out FILE for all)")


def _csv_batches(reader, fh) -> int:
    """The batches of ``reader`` as CSV (one header) to the binary file ``fh``; returns the row count."""
    import polars as pl

    rows, first = 0, True
    for batch in reader:
        if batch.num_rows == 0 and not first:
            continue
        _flat_for_csv(pl.from_arrow(batch)).write_csv(fh, include_header=first)
        rows, first = rows + batch.num_rows, False
    if first:  # no batch at all: the header alone
        _flat_for_csv(pl.from_arrow(reader.schema.empty_table())).write_csv(fh)
    return rows


def _json_batches(reader, fh) -> int:
    """The batches of ``reader`` as one JSON array of row objects (as polars writes it) to ``fh``."""
    import polars as pl

    rows, separator = 0, b"["
    for batch in reader:
        if batch.num_rows == 0:
            continue
        text = pl.from_arrow(batch).write_json()
        fh.write(separator + text.strip()[1:-1].encode())
        rows, separator = rows + batch.num_rows, b","
    fh.write(b"[]" if separator == b"[" else b"]")
    return rows


def _parquet_batches(reader, path: Path) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def export_result(warehouse, text: str, fmt: str, out: Optional[Path]) -> int:
    """Stream the result of ``text`` as CSV / JSON / Parquet to ``out`` (a temporary file renamed into
    place at the end, :mod:`tame_assets.files`) or to stdout, one record batch at a time (memory flat in
    the row count); returns the row count. Refusals and query errors as in :func:`run_query`."""
    from tame_assets.files import atomic_file, atomic_path
    from tame_assets.warehouse.sql_door import export_read_only

    def write(reader) -> int:
        if fmt == "parquet":
            with atomic_path(out) as tmp:
                return _parquet_batches(reader, tmp)
        write_batches = _csv_batches if fmt == "csv" else _json_batches
        if out is None:
            rows = write_batches(reader, sys.stdout.buffer)
            sys.stdout.buffer.write(b"" if fmt == "csv" else b"\n")
            sys.stdout.buffer.flush()
            return rows
        with atomic_file(out, "wb") as fh:
            return write_batches(reader, fh)

    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    return _guarded(lambda: export_read_only(warehouse, text, write))


@app.command(context_settings={"ignore_unknown_options": True})
def sql(
    query: Optional[str] = typer.Argument(
        None, help="SQL over the tables (DuckDB dialect); '-' reads it from stdin. A query may start with a -- comment."
    ),
    file: Optional[Path] = typer.Option(
        None, "--file", "-f", exists=True, dir_okay=False, help="Read the query from FILE."
    ),
    fmt: str = typer.Option("table", "--format", help="table (vector columns summarised), csv, json or parquet."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result to FILE (atomically) instead of stdout."),
    data_root: DataRootOption = None,
    max_rows: int = typer.Option(
        50, min=1, help="Rows shown in the table view, the only ones computed (other formats write every row)."
    ),
    config: ConfigOption = None,
) -> None:
    """Run SQL over the warehouse tables; print a table or write CSV / JSON / Parquet.

    Read-only: writes, COPY, ATTACH, INSTALL/LOAD, SET and the like are refused (exit code 2); files
    outside the warehouse cannot be read; a query error exits with code 1. For an interactive shell:
    `cd data && duckdb -readonly tame.duckdb` (the duckdb-cli wheel).
    """
    from tame_assets.warehouse.store import Warehouse

    if fmt not in SQL_FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(SQL_FORMATS)}", param_hint="--format")
    if fmt == "table" and out is not None:
        raise typer.BadParameter("--out needs --format csv, json or parquet", param_hint="--out")
    if fmt == "parquet" and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE", param_hint="--format")
    text = _sql_text(query, file)
    warehouse = Warehouse(settings(config, data_root).paths)
    if fmt == "table":
        df, more = run_query(warehouse, text, max_rows)
        _print_table(df, max_rows, more)
        return
    rows = export_result(warehouse, text, fmt, out)
    if out is not None:
        typer.echo(f"{rows} rows → {out}", err=True)
