"""Month arithmetic for monthly partitions (keys ``YYYY-MM``, naive UTC, end exclusive)."""

from __future__ import annotations

import datetime as dt
import re

_MONTH_KEY = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_month(month: str) -> dt.datetime:
    """``"2010-12"`` → 2010-12-01 00:00; a clear ``ValueError`` for anything that is not ``YYYY-MM``."""
    if not isinstance(month, str) or not _MONTH_KEY.match(month):
        raise ValueError(f"invalid month {month!r}: expected YYYY-MM, e.g. 2010-12")
    return dt.datetime.strptime(month, "%Y-%m")


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """``"2010-12"`` → (2010-12-01 00:00, 2011-01-01 00:00), naive UTC, end exclusive."""
    start = parse_month(month)
    return start, (start + dt.timedelta(days=32)).replace(day=1)


def month_of(ts: dt.datetime | dt.date) -> str:
    """Partition key of the month containing ``ts``."""
    return ts.strftime("%Y-%m")


def neighbour_month(month: str, step: int) -> str:
    """The month after (``step`` > 0) or before (``step`` ≤ 0) ``month``."""
    start, end = month_bounds(month)
    return month_of(end if step > 0 else start - dt.timedelta(days=1))


def month_days(month: str) -> list[dt.date]:
    """Every UTC day of ``month``."""
    start, end = month_bounds(month)
    return [(start + dt.timedelta(days=i)).date() for i in range((end - start).days)]


def months_between(start: dt.datetime, end: dt.datetime) -> list[str]:
    """Partition keys of the months overlapping [start, end)."""
    last = month_of(end - dt.timedelta(microseconds=1))
    out, month = [], month_of(start)
    while month <= last:
        out.append(month)
        month = neighbour_month(month, 1)
    return out
