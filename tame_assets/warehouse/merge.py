"""Nearest-in-time merges as DuckDB as-of joins (SQL in ``tame_assets/warehouse/sql/asof_nearest.sql``).

Semantics (all entry points: :func:`asof_nearest`, :func:`merge_frames`, :func:`merge_month`, the
``Provider.merge`` method and the DuckDB table macro ``asof_nearest`` that every warehouse
connection and ``tame.duckdb`` hold, ``sql/asof_nearest_macro.sql``; the two SQL files are tested
against each other on randomized input in ``tame_assets_tests/warehouse/test_merge.py``):

* For each left row, the right row nearest in time **in either direction** with the same key, the
  left key first mapped through ``key_map`` (e.g. ASI station ``NYA`` → magnetometer ``NAL``; values
  missing from the map are compared unchanged). Keys are compared as VARCHAR. ``left_key=None``
  merges without a key (every right row is a candidate).
* Only matches with ``|right time − left time| <= tolerance_s`` count: the tolerance is
  **inclusive** (exactly at the tolerance is matched). Defaults: 60 s magnetometer, 300 s ceilometer.
* **Tie rule**: at equal distance before and after, the **earlier** right row wins (as pandas
  ``merge_asof(direction="nearest")``). Of several right rows sharing key *and* time (in the right
  relation's scan order) the **last** is taken for left times at or after that time and the
  **first** for left times before it, as pandas does (its backward search takes the last, the
  forward search the first).
* Method: one DuckDB ``ASOF LEFT JOIN`` against each right row's validity interval (from the
  midpoint to its previous right time, window functions per key), keys compared as an ENUM of the
  right key's values; see the SQL file.
* Output (Python entry points): every left column in its input order and the left rows in their input order, then the
  chosen right columns, then ``dt_s`` = right time − left time in signed seconds (Float64). A right
  column whose name is already taken (a left column or ``dt_s``) is renamed ``right_<name>``
  (``right_right_<name>`` if that is taken too). Unmatched left rows are kept with NULLs, or dropped
  with ``drop_unmatched=True``. The macro instead outputs every right column prefixed ``right_``
  and always keeps unmatched rows.
* Times are naive UTC timestamps; matching works across midnight, month and year boundaries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
from string import Template
from typing import Mapping, Sequence

import duckdb
import polars as pl

from tame_assets.months import month_bounds, neighbour_month
from tame_assets.warehouse.identifiers import is_identifier, quote_ident, quote_literal
from tame_assets.warehouse.sql import load_sql
from tame_assets.warehouse.store import Warehouse

#: Default tolerances (seconds) per right-hand table.
DEFAULT_TOLERANCE_S = {"magnetometer": 60.0, "ceilometer": 300.0}
DT_COLUMN = "dt_s"
RIGHT_PREFIX = "right_"


def output_names(left_columns: Sequence[str], right_columns: Sequence[str], dt_column: str = DT_COLUMN) -> list[str]:
    """Output names of ``right_columns``: ``right_`` prefixed (repeatedly) while the name is taken."""
    taken = set(left_columns) | {dt_column}
    names = []
    for col in right_columns:
        name = col
        while name in taken:
            name = RIGHT_PREFIX + name
        taken.add(name)
        names.append(name)
    return names


#: Up to this many distinct right keys are compared as an ENUM (small integers); more, as VARCHAR.
MAX_ENUM_KEYS = 10_000


def _key_expr(key: str | None, key_map: Mapping[str, str] | None, key_values: Sequence[str] | None) -> str:
    """The key as compared: mapped, as VARCHAR, then cast to the ENUM of ``key_values`` when given."""
    if key is None:
        return "0"
    col = f"CAST({quote_ident(key)} AS VARCHAR)"
    if key_map:
        cases = " ".join(f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in key_map.items())
        col = f"CASE {col} {cases} ELSE {col} END"
    if key_values:
        col = f"TRY_CAST({col} AS ENUM({', '.join(quote_literal(v) for v in key_values)}))"
    return col


def distinct_right_keys(con: duckdb.DuckDBPyConnection, right: str, right_key: str | None) -> list[str] | None:
    """The distinct non-NULL values of the right relation's key as VARCHAR, sorted; None when unkeyed
    or when there are more than :data:`MAX_ENUM_KEYS` of them (keys are then compared as VARCHAR)."""
    if right_key is None:
        return None
    col = f"CAST({quote_ident(right_key)} AS VARCHAR)"
    values = con.sql(
        f"SELECT DISTINCT {col} AS k FROM {right} WHERE {col} IS NOT NULL LIMIT {MAX_ENUM_KEYS + 1}"
    ).fetchall()
    return sorted(v for (v,) in values) if len(values) <= MAX_ENUM_KEYS else None


def asof_nearest_sql(
    left: str,
    right: str,
    *,
    left_columns: Sequence[str],
    right_columns: Sequence[str],
    left_key: str | None = "station",
    right_key: str | None = None,
    tolerance_s: float = 60.0,
    key_map: Mapping[str, str] | None = None,
    drop_unmatched: bool = False,
    left_time: str = "time",
    right_time: str = "time",
    dt_column: str = DT_COLUMN,
    ordered: bool = True,
    right_key_values: Sequence[str] | None = None,
) -> str:
    """The as-of SQL for relations ``left``/``right`` (names or parenthesised queries).

    ``left_columns`` are the left columns to output; ``right_columns`` the right ones to carry.
    ``right_key`` defaults to ``left_key``. ``ordered=False`` leaves the output rows in the join's
    order (no final sort). ``right_key_values``: every value of the right key (:func:`distinct_right_keys`),
    to compare keys as an ENUM of them; None compares them as VARCHAR. See the module docstring for
    the semantics.
    """
    if tolerance_s is None or not tolerance_s >= 0:
        raise ValueError(f"tolerance_s must be a number >= 0 seconds, got {tolerance_s!r}")
    if dt_column in left_columns:
        raise ValueError(f"the left relation already has a column {dt_column!r}; pass another dt_column")
    if not right_columns:
        raise ValueError("right_columns is empty: name at least one right column to carry")
    right_key = left_key if right_key is None else right_key
    if (left_key is None) != (right_key is None):
        raise ValueError("left_key and right_key must both be given or both be None")
    names = output_names(left_columns, right_columns, dt_column)
    within = f"abs(__v.__rt - __l.__lus) <= {int(round(float(tolerance_s) * 1e6))}"
    body = "\n".join(line for line in load_sql("asof_nearest.sql").splitlines() if not line.startswith("--"))
    return Template(body).substitute(
        left=left,
        right=right,
        left_time=quote_ident(left_time),
        right_time=quote_ident(right_time),
        left_key_expr=_key_expr(left_key, key_map, right_key_values),
        right_key_expr=_key_expr(right_key, None, right_key_values),
        left_cols=", ".join(f"__l.{quote_ident(c)}" for c in left_columns),
        right_select=", ".join(f"{quote_ident(c)} AS __c{i}" for i, c in enumerate(right_columns)),
        right_carry=", ".join(f"__c{i}" for i in range(len(right_columns))),
        picked_cols=", ".join(
            f"CASE WHEN {within} THEN __v.__c{i} END AS {quote_ident(name)}" for i, name in enumerate(names)
        ),
        within=within,
        dt_column=quote_ident(dt_column),
        keep="FALSE" if drop_unmatched else "TRUE",
        order_by="ORDER BY __l.__row" if ordered else "",
    )


def relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """Column names of a table/view name or parenthesised query known to ``con``."""
    return con.sql(f"SELECT * FROM {relation} LIMIT 0").columns


def _relation(name: str) -> str:
    """Quote plain table names; pass parenthesised queries / qualified names through."""
    return quote_ident(name) if is_identifier(name) else name


def asof_nearest_relation(
    con: duckdb.DuckDBPyConnection,
    left: str,
    right: str,
    left_key: str | None = "station",
    right_key: str | None = None,
    tolerance_s: float = 60.0,
    right_columns: Sequence[str] | None = None,
    key_map: Mapping[str, str] | None = None,
    drop_unmatched: bool = False,
    time_column: str = "time",
) -> duckdb.DuckDBPyRelation:
    """The as-of merge as a lazy DuckDB relation (see :func:`asof_nearest`)."""
    left, right = _relation(left), _relation(right)
    right_key = left_key if right_key is None else right_key
    rcols = relation_columns(con, right)
    if right_columns is None:
        right_columns = [c for c in rcols if c not in (right_key, time_column, "month")]
    missing = [c for c in [time_column, right_key, *right_columns] if c is not None and c not in rcols]
    if missing:
        raise ValueError(f"right relation {right} has no column(s) {missing}; it has {rcols}")
    lcols = relation_columns(con, left)
    missing = [c for c in (time_column, left_key) if c is not None and c not in lcols]
    if missing:
        raise ValueError(f"left relation {left} has no column(s) {missing}; it has {lcols}")
    sql = asof_nearest_sql(
        left,
        right,
        left_columns=lcols,
        right_columns=list(right_columns),
        left_key=left_key,
        right_key=right_key,
        tolerance_s=tolerance_s,
        key_map=key_map,
        drop_unmatched=drop_unmatched,
        left_time=time_column,
        right_time=time_column,
        right_key_values=distinct_right_keys(con, right, right_key),
    )
    use_asof_operator(con)
    return con.sql(sql)


def use_asof_operator(con: duckdb.DuckDBPyConnection) -> None:
    """Make DuckDB plan every ASOF JOIN with its sort-merge AsOf operator.

    DuckDB turns an ASOF JOIN into a nested-loop join when it *estimates* the left side below
    ``asof_loop_join_threshold`` rows; the estimate for CTEs, Arrow scans and views is often that
    small, which made 55,000 × 100,000 rows take 45 s instead of 0.05 s (``bench/asof_merge.py``).
    """
    con.execute("SET asof_loop_join_threshold = 0")


def asof_nearest(
    con: duckdb.DuckDBPyConnection,
    left: str,
    right: str,
    left_key: str | None = "station",
    right_key: str | None = None,
    tolerance_s: float = 60.0,
    right_columns: Sequence[str] | None = None,
    key_map: Mapping[str, str] | None = None,
    drop_unmatched: bool = False,
    time_column: str = "time",
) -> pl.DataFrame:
    """Nearest-in-time merge of two relations known to ``con`` (table/view names or ``(SELECT ...)``).

    ``right_columns`` defaults to every right column except its time, key and hive ``month``.
    Returns a polars DataFrame (left columns, right columns, ``dt_s``); semantics in the module
    docstring.
    """
    return asof_nearest_relation(
        con, left, right, left_key, right_key, tolerance_s, right_columns, key_map, drop_unmatched, time_column
    ).pl()


def merge_frames(
    left: pl.DataFrame,
    right: pl.DataFrame,
    left_key: str | None = "station",
    right_key: str | None = None,
    tolerance_s: float = 60.0,
    right_columns: Sequence[str] | None = None,
    key_map: Mapping[str, str] | None = None,
    drop_unmatched: bool = False,
    time_column: str = "time",
) -> pl.DataFrame:
    """The same as-of merge on in-memory polars frames (both need ``time`` and their key column)."""
    with contextlib.closing(_frames_database(os.getpid()).cursor()) as con:
        con.register("__left_frame", left.to_arrow())
        con.register("__right_frame", right.to_arrow())
        out = asof_nearest(
            con,
            "__left_frame",
            "__right_frame",
            left_key,
            right_key,
            tolerance_s,
            right_columns,
            key_map,
            drop_unmatched,
            time_column,
        )
    # keep the caller's dtypes for left columns (DuckDB round-trips e.g. Categorical as String)
    return out.with_columns(
        [
            out[c].cast(left.schema[c])
            for c in left.columns
            if out.schema[c] != left.schema[c] and _castable(left.schema[c])
        ]
    )


@functools.cache
def _frames_database(pid: int) -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB for merges of in-memory frames (keyed on the process id, so a
    forked child opens its own). Each merge runs on a cursor of it: a connection of its own, whose
    registered frames no other merge sees, made in ~0.01 ms where ``duckdb.connect()`` costs ~35 ms
    (the live path merges every batch)."""
    return duckdb.connect()


def _castable(dtype) -> bool:
    return not isinstance(dtype, (pl.Object,)) and dtype != pl.Null


def merge_month(
    warehouse: Warehouse,
    left: str,
    right_table: str,
    month: str,
    tolerance_s: float,
    right_columns: Sequence[str] | None = None,
    left_key: str | None = "station",
    right_key: str | None = None,
    key_map: Mapping[str, str] | None = None,
    drop_unmatched: bool = False,
) -> pl.DataFrame:
    """As-of merge of one month of ``left`` with the warehouse table ``right_table``.

    ``left`` is a warehouse table name (its partition ``month`` is read) or a SQL query over the
    warehouse views (taken as the month's left rows). The right side reads the month and the
    neighbouring months' partitions, limited to [month start − tolerance, month end + tolerance], so
    matches across month boundaries are not lost. The hive ``month`` column is dropped on both sides.
    """
    if right_table not in warehouse.tables():
        raise FileNotFoundError(
            f"warehouse table {right_table!r} does not exist under {warehouse.warehouse}; materialize it first"
        )
    start, end = month_bounds(month)
    tol = dt.timedelta(seconds=float(tolerance_s))
    present = set(warehouse.months(right_table))
    wanted = [m for m in (neighbour_month(month, -1), month, neighbour_month(month, 1)) if m in present]
    in_list = ", ".join(quote_literal(m) for m in wanted) or "NULL"
    right = (
        f"(SELECT * EXCLUDE (month) FROM {quote_ident(right_table)} WHERE month IN ({in_list}) "
        f"AND time >= TIMESTAMP {quote_literal(start - tol)} AND time <= TIMESTAMP {quote_literal(end + tol)})"
    )
    if is_identifier(left):
        exclude = " EXCLUDE (month)" if warehouse.is_partitioned(left) else ""
        cond = f" WHERE month = {quote_literal(month)}" if exclude else ""
        left_sql = f"(SELECT *{exclude} FROM {quote_ident(left)}{cond})"
    else:
        left_sql = f"({left})"
    with contextlib.closing(warehouse.connect()) as con:
        return asof_nearest(
            con, left_sql, right, left_key, right_key, tolerance_s, right_columns, key_map, drop_unmatched
        )
