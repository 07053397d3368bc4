"""Query API over the warehouse, like the paper's ``Provider``, without Dagster::

    from tame_assets import Provider
    p = Provider("data")
    mag = p.get("magnetometer", "2010-12-01", "2010-12-03", station="NAL")
    ceil = p.get("ceilometer", "2010-12-01", "2010-12-03", site="NYA")
    merged = p.merge(p.get("asim_predictions", "2010-12-01", "2010-12-03"), mag, ["h_nt"], tolerance=60,
                     key_map={"NYA": "NAL"})

Every table comes back as a polars DataFrame read by DuckDB from the Parquet partitions; for
monthly tables only the partitions (months) overlapping [start, end) are read. Times are naive UTC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Mapping, Sequence

import polars as pl

from tame_assets.config import default_data_root
from tame_assets.months import months_between
from tame_assets.warehouse.identifiers import quote_ident, quote_literal
from tame_assets.warehouse.merge import DEFAULT_TOLERANCE_S, merge_frames
from tame_assets.warehouse.sql_door import run_read_only
from tame_assets.warehouse.store import Warehouse

TimeLike = str | dt.date | dt.datetime | None


def to_utc_naive(value: TimeLike) -> dt.datetime | None:
    """``'2010-12-01'``, ``'2010-12-01T03:00'``, a date or a datetime → naive UTC datetime.

    Timezone-aware values are converted to UTC; naive ones are taken as UTC.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


class Provider:
    """Read any warehouse table by time range and key; merge frames nearest-in-time."""

    def __init__(self, data_root: str | None = None):
        self.warehouse = Warehouse(data_root or default_data_root())

    def tables(self) -> list[str]:
        """Names of the tables present under the data root."""
        return self.warehouse.tables()

    def query(
        self,
        table: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        columns: Sequence[str] | None = None,
        **equals,
    ) -> tuple[str, list]:
        """The SQL (with ``?`` parameters) that :meth:`get` runs; validates table, columns and range."""
        present = self._columns(table)
        t0, t1 = to_utc_naive(start), to_utc_naive(end)
        if (t0 is not None or t1 is not None) and "time" not in present:
            raise ValueError(f"table {table!r} has no time column; call get({table!r}) without start/end")
        if t0 is not None and t1 is not None and t1 <= t0:
            raise ValueError(f"end {t1} must be after start {t0}")
        unknown = sorted((set(equals) | set(columns or ())) - set(present))
        if unknown:
            raise ValueError(f"table {table!r} has no column(s) {unknown}; it has {present}")
        where, params = [], []
        if "month" in present and t0 is not None and t1 is not None:
            months = months_between(t0, t1)  # hive partition pruning: only these month= folders are read
            where.append(f"month IN ({', '.join(quote_literal(m) for m in months)})")
        for op, bound in ((">=", t0), ("<", t1)):
            if bound is not None:
                where.append(f"time {op} ?")
                params.append(bound)
        for column, value in equals.items():
            if value is not None:
                where.append(f"{quote_ident(column)} = ?")
                params.append(value)
        sql = f"SELECT {', '.join(map(quote_ident, columns)) if columns else '*'} FROM {quote_ident(table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if "time" in present:
            sql += " ORDER BY time"
        return sql, params

    def get(
        self,
        table: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        columns: Sequence[str] | None = None,
        **equals,
    ) -> pl.DataFrame:
        """Rows of ``table`` with ``start <= time < end`` (either bound may be None) and each keyword
        ``column=value`` equal (e.g. ``station="NAL"``, ``site="NYA"``), sorted by time."""
        sql, params = self.query(table, start, end, columns=columns, **equals)
        with contextlib.closing(self.warehouse.connect()) as con:
            return con.sql(sql, params=params).pl()

    def sql(self, query: str) -> pl.DataFrame:
        """One read-only DuckDB query over the table views (and the ``asof_nearest`` table macro);
        writes, ``COPY``, ``ATTACH``, ``SET``… raise :class:`~tame_assets.warehouse.sql_door.RefusedStatement`
        (a ``PermissionError``), see :mod:`tame_assets.warehouse.sql_door`."""
        return run_read_only(self.warehouse, query)[0]

    def similar(
        self,
        query,
        k: int = 20,
        *,
        station: str | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        where: str | None = None,
    ) -> pl.DataFrame:
        """The ``k`` frames most like ``query`` — an image file, a frame time (``"2010-12-03T18:02:00"``
        or a datetime: that archive frame, itself excluded) or an embedding vector — best first, with
        rank, cosine similarity, novelty and the catalog's class, p_aurora, cloud and H columns;
        filtered by ``station``, ``start <= time < end`` and ``where`` (a read-only SQL predicate over
        ``aurora_catalog``, e.g. ``"cloud_detected = false AND dh_dt_nt_per_min < -5"``). See
        :mod:`tame_assets.warehouse.similar`."""
        from tame_assets.warehouse.similar import similar

        t0, t1 = to_utc_naive(start), to_utc_naive(end)
        if isinstance(query, (dt.date, dt.datetime)) and not isinstance(query, str):
            query = to_utc_naive(query)
        return similar(self.warehouse, query, k=k, station=station, start=t0, end=t1, where=where)[0]

    @staticmethod
    def merge(
        left: pl.DataFrame,
        right: pl.DataFrame,
        columns: Sequence[str] | None = None,
        tolerance: float | dt.timedelta | None = None,
        *,
        left_key: str | None = "station",
        right_key: str | None = None,
        key_map: Mapping[str, str] | None = None,
        drop_unmatched: bool = False,
        right_table: str | None = None,
    ) -> pl.DataFrame:
        """Nearest-in-time as-of merge of two frames (see :mod:`tame_assets.warehouse.merge`):
        every left row, the ``columns`` of the nearest right row within ``tolerance`` (seconds or a
        timedelta; default 60 s, or the default of ``right_table``), and ``dt_s``."""
        if tolerance is None:
            tolerance = DEFAULT_TOLERANCE_S.get(right_table or "", 60.0)
        if isinstance(tolerance, dt.timedelta):
            tolerance = tolerance.total_seconds()
        return merge_frames(
            left,
            right,
            left_key=left_key,
            right_key=right_key,
            tolerance_s=float(tolerance),
            right_columns=columns,
            key_map=key_map,
            drop_unmatched=drop_unmatched,
        )

    def _columns(self, table: str) -> list[str]:
        if table not in self.tables():
            raise KeyError(f"no table {table!r} under {self.warehouse.warehouse}; tables: {', '.join(self.tables())}")
        with contextlib.closing(self.warehouse.connect()) as con:
            # LIMIT 1, not 0: the view of an unreadable table fails here with the corrupt file named
            relation = con.sql(f"SELECT * FROM {quote_ident(table)} LIMIT 1")
            relation.fetchall()
            return relation.columns
