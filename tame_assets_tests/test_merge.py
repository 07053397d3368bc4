"""The DuckDB as-of merge against a brute-force nearest search (property test)."""

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import duckdb

from tame_assets.warehouse.merge import merge_frames, use_asof_operator
from tame_assets.warehouse.sql import load_sql

T0 = dt.datetime(2010, 12, 31, 23, 50)  # around midnight and a month (and year) boundary
STATIONS = ["NYA", "LYR"]
KEY_MAP = {"NYA": "NAL", "LYR": "LYR"}


def brute_force(left: pl.DataFrame, right: pl.DataFrame, tolerance_s: float) -> list:
    """Expected (value, dt_s) per left row: nearest same-key right row, earlier on ties, within tolerance."""
    out = []
    for t, station in zip(left["time"], left["station"]):
        best = None
        for rt, rs, v in zip(right["time"], right["station"], right["v"]):
            if rs != KEY_MAP[station]:
                continue
            d = (rt - t).total_seconds()
            key = (abs(d), d)  # smaller distance first, then the earlier (negative d) on ties
            if abs(d) <= tolerance_s and (best is None or key < best[0]):
                best = (key, v, d)
        out.append((best[1], best[2]) if best else (None, None))
    return out


times = st.integers(min_value=0, max_value=1200).map(lambda s: T0 + dt.timedelta(seconds=s))


@settings(max_examples=150, deadline=None)
@given(
    left=st.lists(st.tuples(times, st.sampled_from(STATIONS)), min_size=1, max_size=25),
    right=st.lists(st.tuples(times, st.sampled_from(["NAL", "LYR"])), min_size=0, max_size=25, unique_by=lambda r: r),
    tolerance_s=st.sampled_from([0, 1, 30, 60, 300]),
)
def test_asof_equals_brute_force(left, right, tolerance_s):
    lf = pl.DataFrame({"time": [t for t, _ in left], "station": [s for _, s in left], "i": list(range(len(left)))},
                      schema={"time": pl.Datetime("us"), "station": pl.Utf8, "i": pl.Int64})
    rf = pl.DataFrame({"time": [t for t, _ in right], "station": [s for _, s in right], "v": list(range(len(right)))},
                      schema={"time": pl.Datetime("us"), "station": pl.Utf8, "v": pl.Int64})
    merged = merge_frames(lf, rf, tolerance_s=tolerance_s, key_map=KEY_MAP)
    assert merged["i"].to_list() == lf["i"].to_list()  # every left row, in order
    got = list(zip(merged["v"].to_list(), merged["dt_s"].to_list()))
    assert got == brute_force(lf, rf, tolerance_s)
    # the DuckDB table macro (the shell's entry point) agrees with the Python entry point row by row
    assert asof_macro(lf, rf, tolerance_s) == got


def asof_macro(left: pl.DataFrame, right: pl.DataFrame, tolerance_s: float) -> list:
    """(v, dt_s) per left row from the ``asof_nearest`` macro of ``sql/asof_nearest_macro.sql``."""
    con = duckdb.connect()
    con.register("l", left.to_arrow())
    con.register("r", right.to_arrow())
    con.execute(load_sql("asof_nearest_macro.sql"))
    use_asof_operator(con)
    mapping = "MAP {" + ", ".join(f"'{k}': '{v}'" for k, v in KEY_MAP.items()) + "}"
    rows = con.sql(f"SELECT i, right_v, dt_s FROM asof_nearest('l', 'r', 'station', 'station', "
                   f"tolerance_s := {tolerance_s}, key_map := {mapping})").fetchall()
    con.close()
    assert [i for i, _, _ in rows] == left["i"].to_list()
    return [(v, d) for _, v, d in rows]


def test_drop_unmatched_and_exact_tolerance_edge():
    left = pl.DataFrame({"time": [T0, T0 + dt.timedelta(hours=1)], "station": ["NYA", "NYA"]})
    right = pl.DataFrame({"time": [T0 + dt.timedelta(seconds=60)], "station": ["NAL"], "v": [7]})
    kept = merge_frames(left, right, tolerance_s=60, key_map=KEY_MAP)
    assert kept["v"].to_list() == [7, None] and kept["dt_s"].to_list() == [60.0, None]
    dropped = merge_frames(left, right, tolerance_s=60, key_map=KEY_MAP, drop_unmatched=True)
    assert dropped.height == 1


def test_clashing_right_column_is_prefixed():
    left = pl.DataFrame({"time": [T0], "station": ["NAL"], "v": [1]})
    right = pl.DataFrame({"time": [T0], "station": ["NAL"], "v": [2]})
    merged = merge_frames(left, right, tolerance_s=1)
    assert merged.select("v", "right_v").row(0) == (1, 2)
