"""Catalog view on a season (issue 14): the README's three science queries on a 1,000,000-frame
``aurora_catalog`` answered in under a second through the read-only SQL door that ``tame sql`` uses.

A season is generated with a fixed seed (two Svalbard cameras, NYA and LYR, 2010-11 … 2011-02, at
10⁶ frames one every ~17 s per camera in 16–22 h nights; class probabilities from a Dirichlet
around a true class, hour-long cloud spells from the ceilometer, 1-minute magnetometer H with substorm bays) and built
into catalog rows by the platform's own :func:`~tame_assets.products.catalog.build_catalog` (as-of
merge, dH/dt, Platt-calibrated p_aurora), written with :meth:`Warehouse.write_partition` (one
partition per month) into a temp data root. Each query is timed end to end with
:func:`~tame_assets.warehouse.sql_door.run_read_only` (fresh sandboxed connection, views, query,
all rows to polars), best of ``--repeats`` after one warm-up. Side by side in the same process: the
baseline (``pl.read_parquet`` of the whole hive tree + the same filter in polars) and, for scaling,
the door on a ``--subset``-frame sample of the season. Every door result is checked against the
polars filter on the generated rows, so a fast wrong answer cannot pass. Exit code 1 if a query
misses ``--target`` seconds (unless ``--no-check``).

    .venv/bin/python bench/catalog_season.py [--frames 1000000 --repeats 5 --subset 100000 --no-check]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tame_assets.labels import AURORAL_CLASSES, OATH_CLASSES  # noqa: E402
from tame_assets.products.calibration import PlattCalibrator  # noqa: E402
from tame_assets.products.catalog import build_catalog  # noqa: E402
from tame_assets.warehouse.sql_door import run_read_only  # noqa: E402
from tame_assets.warehouse.store import Warehouse  # noqa: E402

TABLE = "aurora_catalog"
MONTHS = ("2010-11", "2010-12", "2011-01", "2011-02")
SEASON_START = np.datetime64("2010-11-01T00:00:00", "s")
SEASON_DAYS = 120  # Nov + Dec + Jan + Feb 2011
#: camera station → (camera, magnetometer station)
STATIONS = {"NYA": ("nya4", "NAL"), "LYR": ("lyr5", "LYR")}
#: imaging hours per night by month (polar night longest at the solstice), centred on 23:00 UTC
NIGHT_HOURS = {11: 18, 12: 22, 1: 22, 2: 16}
NIGHT_CENTRE_H = 23.0
CLOUD_FRACTION, CLOUD_PERSISTENCE = 0.35, 0.85  # hourly cloud spells (Markov chain)
SUBSTORMS_PER_DAY = 0.35
CALIBRATOR = PlattCalibrator(a=1.4, b=-0.3)


@dataclass(frozen=True)
class Query:
    """One README query and its polars twin (``frame → result``), which is both the baseline and the
    reference: results are compared after sorting by ``sort`` on ``compare`` (floats within ``atol``,
    the SQL ``round(…, 3)``); ``member`` columns of every row must be in the polars filter ``pool``."""

    name: str
    sql: str
    polars: Callable[[pl.DataFrame], pl.DataFrame]
    sort: tuple[str, ...]
    compare: tuple[str, ...]
    atol: float = 0.0
    pool: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    member: tuple[str, ...] = ()


def _review_pool(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(
        pl.col("cloud_detected") & (pl.col("cbh_m") < 2000) & (pl.col("p_aurora_calibrated") > 0.8)
    ).select("time", "file", "pred", pl.col("p_aurora_calibrated").alias("p"), "cbh_m")


QUERIES = (
    Query(
        "discrete_storm",
        """
SELECT time, station, p_aurora_calibrated, dh_dt_nt_per_min FROM aurora_catalog
WHERE pred = 'discrete' AND NOT cloud_detected AND dh_dt_nt_per_min < -10 ORDER BY time""",
        lambda df: (
            df.filter((pl.col("pred") == "discrete") & ~pl.col("cloud_detected") & (pl.col("dh_dt_nt_per_min") < -10))
            .select("time", "station", "p_aurora_calibrated", "dh_dt_nt_per_min")
            .sort("time")
        ),
        sort=("time", "station"),
        compare=("time", "station", "p_aurora_calibrated", "dh_dt_nt_per_min"),
    ),
    Query(
        "hourly_clear",
        """
SELECT hour(time) AS utc_hour, count(*) AS frames, round(avg(p_aurora_calibrated), 3) AS mean_p_aurora
FROM aurora_catalog WHERE NOT cloud_detected GROUP BY 1 ORDER BY 1""",
        lambda df: (
            df.filter(~pl.col("cloud_detected"))
            .group_by(pl.col("time").dt.hour().alias("utc_hour"))
            .agg(pl.len().alias("frames"), pl.col("p_aurora_calibrated").mean().alias("mean_p_aurora"))
            .sort("utc_hour")
        ),
        sort=("utc_hour",),
        compare=("utc_hour", "frames", "mean_p_aurora"),
        atol=5e-4 + 1e-12,
    ),
    Query(
        "label_review",
        """
SELECT time, file, pred, round(p_aurora_calibrated, 3) AS p, cbh_m FROM aurora_catalog
WHERE cloud_detected AND cbh_m < 2000 AND p_aurora_calibrated > 0.8 ORDER BY p DESC LIMIT 10""",
        lambda df: _review_pool(df).sort("p", descending=True).head(10),
        sort=(),
        compare=("p",),
        atol=5e-4 + 1e-12,
        pool=_review_pool,
        member=("time", "file", "pred", "cbh_m"),
    ),
)


# ----------------------------------------------------------------- the synthetic season
def frame_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` sorted distinct whole-second times (datetime64[s]) in the nightly imaging windows."""
    days = SEASON_START + np.arange(SEASON_DAYS).astype("timedelta64[D]")
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    half_s = np.array([NIGHT_HOURS[m] * 1800 for m in months])
    centre_s = np.arange(SEASON_DAYS) * 86400 + int(NIGHT_CENTRE_H * 3600)
    first_s = np.maximum(centre_s - half_s, 0)  # nights clipped to the season
    length_s = np.minimum(centre_s + half_s, SEASON_DAYS * 86400) - first_s
    ends = np.cumsum(length_s)
    if n > ends[-1]:
        raise ValueError(f"{n} frames do not fit one per second in {ends[-1]} night seconds")
    picks = np.sort(rng.choice(ends[-1], n, replace=False))
    night = np.searchsorted(ends, picks, side="right")
    return SEASON_START + (first_s[night] + picks - (ends[night] - length_s[night])).astype("timedelta64[s]")


def substorms(rng: np.random.Generator) -> np.ndarray:
    """Substorm bays as rows ``(onset minute of the season, depth nT, onset min, recovery min)``."""
    n = rng.poisson(SUBSTORMS_PER_DAY * SEASON_DAYS)
    onset = rng.integers(0, SEASON_DAYS, n) * 1440 + rng.integers(18 * 60, 26 * 60, n)  # 18–02 UTC
    return np.column_stack([onset, rng.uniform(100, 700, n), rng.uniform(8, 30, n), rng.uniform(40, 120, n)])


def magnetometer_minutes(rng: np.random.Generator, station: str, storms: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    """1-minute H (nT) over the season (± 1 day), a few minutes missing, and the storm mask per minute."""
    minute = np.arange(-1440, (SEASON_DAYS + 1) * 1440)
    h = 8000.0 + 20 * np.sin(2 * np.pi * (minute / 1440 - 0.4)) + np.cumsum(rng.normal(0, 0.8, minute.size)) * 0.2
    active = np.zeros(minute.size, bool)
    for onset, depth, down, up in storms:
        t = minute - onset
        depth *= rng.uniform(0.7, 1.3)  # the two stations see the same bay, not the same depth
        bay = np.where((t >= 0) & (t < down), t / down, np.where((t >= down) & (t < down + up), 1 - (t - down) / up, 0))
        h -= depth * bay
        active |= (t >= 0) & (t < down + up)
    keep = rng.random(minute.size) > 0.003
    times = SEASON_START.astype("datetime64[us]") + (minute * 60_000_000).astype("timedelta64[us]")
    return pl.DataFrame({"station": station, "time": times[keep], "h_nt": h[keep]}), active


def class_probabilities(rng: np.random.Generator, true_class: np.ndarray) -> np.ndarray:
    """Classifier-like probabilities (rows sum to 1): a Dirichlet peaked on the true class."""
    alpha = np.full((true_class.size, len(OATH_CLASSES)), 0.4)
    alpha[np.arange(true_class.size), true_class] += 6.0
    g = rng.gamma(alpha)
    return g / g.sum(axis=1, keepdims=True)


def station_frames(
    rng: np.random.Generator, station: str, n: int, storms: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One station's ``asim_ceilometer`` rows (predictions + nearest cloud base) and magnetometer."""
    camera, mag_station = STATIONS[station]
    t = frame_times(rng, n)
    minute_of_season = (t - SEASON_START).astype(np.int64) // 60
    magnetometer, active = magnetometer_minutes(rng, mag_station, storms)
    storm = active[minute_of_season + 1440]
    hours = SEASON_DAYS * 24
    flips = rng.random(hours) > CLOUD_PERSISTENCE
    cloudy_hour = np.empty(hours, bool)
    cloudy_hour[0] = False
    draws = rng.random(hours) < CLOUD_FRACTION
    for i in range(1, hours):  # 2,880 hours: a plain loop is fine
        cloudy_hour[i] = draws[i] if flips[i] else cloudy_hour[i - 1]
    cloudy = cloudy_hour[minute_of_season // 60]
    base_m = np.exp(rng.normal(np.log(1500), 0.6, hours))[minute_of_season // 60] * rng.uniform(0.9, 1.1, n)

    index = {c: i for i, c in enumerate(OATH_CLASSES)}
    aurora = rng.random(n) < np.where(storm, 0.9, 0.3)
    kind = np.where(storm, rng.choice(3, n, p=[0.1, 0.3, 0.6]), rng.choice(3, n, p=[0.4, 0.45, 0.15]))
    auroral = np.array([index[c] for c in AURORAL_CLASSES])[kind]
    other = np.where(rng.random(n) < 0.25, index["moon"], index["clear"])
    true_class = np.where(aurora, auroral, other)
    true_class = np.where(cloudy & (rng.random(n) < 0.75), index["cloudy"], true_class)
    p = class_probabilities(rng, true_class)

    unmatched = rng.random(n) < 0.01  # no ceilometer record within the tolerance
    stamp = t.astype("datetime64[us]")
    frames = pl.DataFrame(
        {
            "station": station,
            "time": stamp,
            "pred": np.array(OATH_CLASSES)[p.argmax(axis=1)],
            "p_aurora": p[:, [index[c] for c in AURORAL_CLASSES]].sum(axis=1),
            **{f"p_{c}": p[:, i] for i, c in enumerate(OATH_CLASSES)},
            "cloud_detected": pl.Series(cloudy).set(pl.Series(unmatched), None),
            "cbh_m": pl.Series(np.round(base_m)).set(pl.Series(~cloudy | unmatched), None),
            "dt_s": pl.Series(rng.integers(0, 16, n).astype(float)).set(pl.Series(unmatched), None),
            "frame_index": 0,
        }
    ).with_columns(
        pl.concat_str(pl.lit(f"{camera}_"), pl.col("time").dt.strftime("%Y%m%d_%H%M%S"), pl.lit("_5577_cal.png")).alias(
            "file_name"
        )
    )
    return frames, magnetometer


def season_catalog(n_frames: int, seed: int = 0) -> dict[str, pl.DataFrame]:
    """Catalog rows per month (``YYYY-MM`` → frame), built by :func:`build_catalog` per station."""
    rng = np.random.default_rng(seed)
    storms = substorms(rng)
    parts = []
    for i, station in enumerate(STATIONS):
        n = n_frames // len(STATIONS) + (i < n_frames % len(STATIONS))
        frames, magnetometer = station_frames(rng, station, n, storms)
        camera, mag_station = STATIONS[station]
        parts.append(
            build_catalog(
                frames,
                magnetometer,
                network="uio",
                camera=camera,
                calibrate=CALIBRATOR.transform,
                magnetometer_key_map={station: mag_station},
            )
        )
    return by_month(pl.concat(parts).sort("time", "station", maintain_order=True))


def by_month(season: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """``YYYY-MM`` → the season's rows of that month (UTC)."""
    month = season["time"].dt.strftime("%Y-%m")
    return {m: season.filter(month == m) for m in MONTHS}


def write_season(root: Path, months: dict[str, pl.DataFrame]) -> Warehouse:
    """The months as ``aurora_catalog`` partitions of a fresh data root (views as the platform builds them)."""
    wh = Warehouse(root)
    for month, df in months.items():
        wh.write_partition(TABLE, df, month)
    return wh


# ----------------------------------------------------------------- timing and checks
def best_of(fn: Callable[[], pl.DataFrame], repeats: int) -> tuple[pl.DataFrame, float]:
    """Result of a warm-up call and the best wall time (s) of ``repeats`` further calls."""
    out = fn()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return out, min(seconds)


def check(query: Query, got: pl.DataFrame, season: pl.DataFrame) -> None:
    """``AssertionError`` unless the view's result equals the polars filter on the generated rows."""
    expected = query.polars(season)
    assert got.height == expected.height, f"{query.name}: {got.height} rows, polars {expected.height}"
    cols, by = list(query.compare), list(query.sort)
    a, b = (got.sort(by) if by else got).select(cols), (expected.sort(by) if by else expected).select(cols)
    assert_frame_equal(a, b, check_dtypes=False, check_exact=query.atol == 0, abs_tol=query.atol, rel_tol=0)
    if query.member:
        missing = got.select(query.member).join(
            query.pool(season).select(query.member), on=list(query.member), how="anti", nulls_equal=True
        )
        assert missing.is_empty(), f"{query.name}: {missing.height} rows not in the polars filter"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames in the season (catalog rows)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per query after one warm-up (best kept)")
    parser.add_argument("--subset", type=int, default=100_000, help="frames of the scaling sample (0: skip)")
    parser.add_argument("--target", type=float, default=1.0, help="seconds each query must stay under")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-check", action="store_true", help="exit 0 even if a query misses the target")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="catbench-") as tmp:
        t0 = time.perf_counter()
        months = season_catalog(args.frames, args.seed)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        wh = write_season(Path(tmp) / "season", months)
        write_s = time.perf_counter() - t0
        season = pl.concat(months.values())
        size = sum(Path(f).stat().st_size for f in wh.table_files(TABLE))
        print(
            f"season: {season.height:,} frames, {len(STATIONS)} stations, {len(months)} monthly partitions, "
            f"{len(season.columns)} columns"
        )
        print(
            f"generation {gen_s:.1f} s (build_catalog included), write_partition {write_s:.1f} s, "
            f"Parquet {size / 2**20:.1f} MiB ({size / season.height:.0f} B/frame)"
        )
        sub_wh = None
        if 0 < args.subset < season.height:
            step = season.height / args.subset
            sample = season.filter(pl.Series(np.arange(season.height) % step < 1))
            sub_wh = write_season(Path(tmp) / "subset", by_month(sample))
            print(f"scaling sample: {sample.height:,} frames (every {step:.0f}th), same path")
        glob = f"{wh.table_dir(TABLE)}/month=*/*.parquet"
        print(
            f"\nbest of {args.repeats} after a warm-up; view = run_read_only (tame sql's door, all rows); "
            f"baseline = pl.read_parquet(hive tree) + the same filter in polars; target {args.target:g} s"
        )
        print(
            f"{'query':<16}{'rows':>8}{'view s':>10}{'polars s':>10}{'ratio':>8}"
            f"{'subset s':>10}{'full/sub':>9}  verdict"
        )
        failed = []
        for q in QUERIES:
            got, view_s = best_of(lambda q=q: run_read_only(wh, q.sql)[0], args.repeats)
            check(q, got, season)
            _, base_s = best_of(lambda q=q: q.polars(pl.read_parquet(glob, hive_partitioning=True)), args.repeats)
            if sub_wh is not None:
                _, sub_s = best_of(lambda q=q: run_read_only(sub_wh, q.sql)[0], args.repeats)
                sub = f"{sub_s:>10.3f}{view_s / sub_s:>9.1f}"
            else:
                sub = f"{'-':>10}{'-':>9}"
            verdict = "PASS" if view_s < args.target else "FAIL"
            failed += [q.name] if verdict == "FAIL" else []
            print(f"{q.name:<16}{got.height:>8,}{view_s:>10.3f}{base_s:>10.3f}{base_s / view_s:>8.1f}{sub}  {verdict}")
        print(f"correctness: {len(QUERIES)} of {len(QUERIES)} results equal the polars filter on the generated rows")
        print(
            "ratio = polars baseline / view (>1: the view is faster); full/sub = view time on the "
            "season / on the sample"
        )
    if failed and not args.no_check:
        print(f"FAILED target {args.target:g} s: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
