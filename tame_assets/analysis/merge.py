"""Time-nearest merges as DuckDB as-of joins (see ``sql/asof_nearest.sql``).

For each left row: the nearest right row in time in either direction with the same key (after an
optional key mapping such as ASI station ``NYA`` → magnetometer ``NAL``), within ``tolerance_s``
seconds (inclusive). Every left column is kept, then the right columns, then ``dt_s`` = right time −
left time (s). Exact ties go to the earlier right row. Unmatched left rows are kept with NULLs unless
``drop_unmatched``. Right columns whose names clash with left columns get the prefix ``right_``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from importlib.resources import files
from typing import Mapping, Sequence

import duckdb
import polars as pl

from tame_assets.storage import Warehouse, month_bounds, neighbour_month


def load_sql(name: str) -> str:
    return files("tame_assets.sql").joinpath(name).read_text()


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def asof_nearest_sql(left: str, right: str, right_columns: Sequence[str], left_columns: Sequence[str],
                     tolerance_s: float, left_key: str = "station", right_key: str = "station",
                     key_map: Mapping[str, str] | None = None, drop_unmatched: bool = False) -> str:
    """The as-of SQL for relations ``left``/``right`` (names or ``(SELECT ...)``)."""
    if key_map:
        cases = " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in key_map.items())
        key_expr = f"CASE {_ident(left_key)} {cases} ELSE {_ident(left_key)} END"
    else:
        key_expr = _ident(left_key)
    taken = set(left_columns) | {"dt_s"}
    cols = ", ".join(f"r.{_ident(c)} AS {_ident('right_' + c if c in taken else c)}" for c in right_columns)
    return load_sql("asof_nearest.sql").format(
        left=left, right=right, left_key=_ident(left_key), key_expr=key_expr, right_key=_ident(right_key),
        right_cols=cols, tolerance_s=float(tolerance_s), unmatched="FALSE" if drop_unmatched else "TRUE",
    )


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def asof_nearest(con: duckdb.DuckDBPyConnection, left: str, right: str, tolerance_s: float,
                 right_columns: Sequence[str] | None = None, left_key: str = "station", right_key: str = "station",
                 key_map: Mapping[str, str] | None = None, drop_unmatched: bool = False) -> pl.DataFrame:
    """Run the as-of merge of two relations known to ``con``; returns a polars DataFrame."""
    right_columns = list(right_columns) if right_columns is not None else [
        c for c in _columns(con, right) if c not in (right_key, "time", "month")]
    sql = asof_nearest_sql(left, right, right_columns, _columns(con, left), tolerance_s, left_key, right_key,
                           key_map, drop_unmatched)
    return con.execute(sql).pl()


def merge_frames(left: pl.DataFrame, right: pl.DataFrame, tolerance_s: float = 60.0,
                 right_columns: Sequence[str] | None = None, left_key: str = "station", right_key: str = "station",
                 key_map: Mapping[str, str] | None = None, drop_unmatched: bool = False) -> pl.DataFrame:
    """The same as-of merge on in-memory polars frames (both need ``time`` and their key column)."""
    with contextlib.closing(duckdb.connect()) as con:
        con.register("__left", left.to_arrow())
        con.register("__right", right.to_arrow())
        return asof_nearest(con, "__left", "__right", tolerance_s, right_columns, left_key, right_key,
                            key_map, drop_unmatched)


def merge_month(warehouse: Warehouse, left_sql: str, right_table: str, month: str, tolerance_s: float,
                right_columns: Sequence[str], left_key: str = "station", right_key: str = "station",
                key_map: Mapping[str, str] | None = None) -> pl.DataFrame:
    """As-of merge of one month of ``left_sql`` (a query over the warehouse views) with
    ``right_table``, reading the neighbouring months' edges (± tolerance) so that matches across
    month boundaries are not lost."""
    start, end = month_bounds(month)
    tol = dt.timedelta(seconds=tolerance_s)
    months = [neighbour_month(month, -1), month, neighbour_month(month, 1)]
    present = [m for m in months if m in warehouse.months(right_table)]
    in_list = ", ".join(_quote(m) for m in present) or "NULL"
    right = (f"(SELECT * EXCLUDE (month) FROM {right_table} WHERE month IN ({in_list}) "
             f"AND time >= TIMESTAMP {_quote(start - tol)} AND time <= TIMESTAMP {_quote(end + tol)})")
    with contextlib.closing(warehouse.connect()) as con:
        return asof_nearest(con, f"({left_sql})", right, tolerance_s, right_columns, left_key, right_key, key_map)
