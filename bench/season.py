"""A THEMIS station-month, end to end: ingest → features → predictions → merges → catalog, frames/s
per stage and peak memory, in-process (``--compute local``) and on a 2-worker Dask LocalCluster.

A synthetic month of one THEMIS station (GILL, January 2011) is written in the real level-1 CDF
format (:func:`tame_assets.sources.themis.write_themis_cdf`): 30 nights × 12 hour files of frames at
``--fraction`` of the real cadence (20 frames/min = 1,200 per hour file, 432,000 frames a month; the
default 1/50 gives 24 frames per hour file, 8,640 frames), the frames drawn from a pool of 16-bit
skies of the sample generator (:func:`tame_assets.sources.sample.sky.render_sky`) with persistent
classes. A ceilometer (1-min) and a magnetometer (10-s) month go with it. Each stage calls the
domain function its asset calls:

- ingest: :func:`tame_assets.sources.themis.frames_table` (every CDF opened, times and pixel blocks
  read: the ``asim_images`` index of a local THEMIS folder);
- features: :func:`tame_assets.compute.extract_features_distributed` (``asim_features``);
- predictions: :func:`tame_assets.compute.classify_features_distributed` with a linear SVM fitted
  on features of labelled synthetic skies (``asim_predictions``);
- merges: :func:`tame_assets.warehouse.merge.merge_frames` with the ceilometer (300 s) and the
  magnetometer (60 s) (``asim_ceilometer``, ``asim_magnetometer``);
- catalog: :func:`tame_assets.products.catalog.build_catalog` (``aurora_catalog``).

Each (compute mode, size) runs in its own child process so its peak RSS is its own: the process
tree's resident memory (the child, DataLoader workers, Dask nanny and worker processes) is sampled
every 0.1 s. Every mode runs at ``--fraction`` and at twice that, to show whether memory grows
with the number of frames. The feature stage dominates; the others are reported for the capacity
plan in docs/scale-out.md.

    .venv/bin/python bench/season.py [--fraction 0.02] [--compute local dask] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SITE, MONTH, NIGHTS, HOURS, FRAMES_PER_HOUR = "gill", "2011-01", 30, range(12), 1200
SITE_POSITION = (56.38, -94.64, 0.0)  # GILL lat, lon (deg), altitude (m)
POOL_PER_CLASS = 6


class PeakRss:
    """Peak resident memory (MB) of this process and all its descendants, sampled every 0.1 s."""

    def __init__(self):
        import psutil

        self.me, self.peak, self._stop = psutil.Process(), 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def now(self) -> float:
        import psutil

        total = 0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the process tree, reaped children included."""
        import psutil

        total = 0.0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self.now())

    def stop(self) -> float:
        self._stop.set()
        self.thread.join()
        return max(self.peak, self.now())


def write_month(root: Path, fraction: float, seed: int = 0) -> tuple[list[str], int]:
    """The CDF hour files of the month (frames from a pool of rendered skies, Markov classes)."""
    from tame_assets.labels import OATH_CLASSES
    from tame_assets.sources.sample.sky import render_sky
    from tame_assets.sources.themis import cdf_file_name, parse_themis_filename, relative_archive_path, write_themis_cdf

    rng = np.random.default_rng(seed)
    pool = {c: [render_sky(c, rng, size=256, bit_depth=16) for _ in range(POOL_PER_CLASS)] for c in OATH_CLASSES}
    per_hour = max(1, round(FRAMES_PER_HOUR * fraction))
    step = 3600.0 / per_hour
    paths, state = [], str(rng.choice(OATH_CLASSES))
    for day in range(1, NIGHTS + 1):
        for hour in HOURS:
            t0 = dt.datetime(2011, 1, day, hour)
            frames = []
            for _ in range(per_hour):
                if rng.random() > 0.97:
                    state = str(rng.choice(OATH_CLASSES))
                frames.append(pool[state][rng.integers(POOL_PER_CLASS)])
            times = [t0 + dt.timedelta(seconds=i * step) for i in range(per_hour)]
            name = cdf_file_name(SITE, t0)
            path = root / relative_archive_path(parse_themis_filename(name))
            write_themis_cdf(path, np.stack(frames), times, SITE)
            paths.append(str(path))
    return paths, per_hour * len(paths)


def write_classifier(root: Path) -> Path:
    """A linear SVM fitted on features of labelled synthetic skies (6 classes × 12), saved."""
    from tame_assets.labels import OATH_CLASSES
    from tame_assets.ml.classifier import fit_oath_classifier
    from tame_assets.ml.features import extract_features
    from tame_assets.sources.sample.sky import render_sky

    rng = np.random.default_rng(1)
    images, labels = [], []
    for c in OATH_CLASSES:
        for _ in range(12):
            images.append(render_sky(c, rng, size=256, bit_depth=16))
            labels.append(c)
    X = extract_features(images, num_workers=0).features
    clf, _ = fit_oath_classifier(X, np.array(labels))
    return clf.save(root / "classifier")


def side_tables(start: np.datetime64, days: int):
    """Ceilometer (1-min, site = the station) and magnetometer (10-s) rows of the month."""
    import polars as pl

    rng = np.random.default_rng(2)
    minutes = start + np.arange(days * 1440).astype("timedelta64[m]")
    cloud = rng.random(len(minutes)) < 0.3
    ceilometer = pl.DataFrame(
        {
            "time": minutes.astype("datetime64[us]"),
            "site": SITE.upper(),
            "cbh_m": np.where(cloud, rng.uniform(300, 3000, len(minutes)), np.nan),
            "cloud_detected": cloud,
            "missing": rng.random(len(minutes)) < 0.01,
        }
    ).with_columns(pl.col("cbh_m").fill_nan(None))
    seconds = start + (np.arange(days * 8640) * 10).astype("timedelta64[s]")
    h = 12000 + np.cumsum(rng.normal(0, 0.5, len(seconds)))
    magnetometer = pl.DataFrame(
        {
            "time": seconds.astype("datetime64[us]"),
            "station": SITE.upper(),
            "x_nt": h * 0.99,
            "y_nt": rng.normal(0, 20, len(seconds)),
            "z_nt": 55000 + rng.normal(0, 5, len(seconds)),
            "h_nt": h,
        }
    )
    return ceilometer, magnetometer


def child(args) -> dict:
    """One (compute mode, size) run in this process: generate, then time the five stages."""
    import polars as pl

    from tame_assets.compute import (
        ComputeSettings,
        classify_features_distributed,
        extract_features_distributed,
        open_engine,
    )
    from tame_assets.ml.tables import features_frame
    from tame_assets.products.catalog import build_catalog
    from tame_assets.sources.frame_reader import frame_items
    from tame_assets.sources.networks import FRAME_KEY_COLUMNS
    from tame_assets.sources.themis import frames_table
    from tame_assets.warehouse.merge import merge_frames

    root, compute = Path(args.scratch), args.compute[0]
    t0 = time.perf_counter()
    files, n = write_month(root / f"cdf-{args.fraction}", args.fraction)
    generate_s = time.perf_counter() - t0
    ceilometer, magnetometer = side_tables(np.datetime64(f"{MONTH}-01T00:00:00"), 31)
    if compute == "local":
        settings = ComputeSettings(mode="local")
    else:
        settings = ComputeSettings(mode="dask-local", n_workers=args.workers, threads_per_worker=1, torch_threads=1)
    rss = PeakRss()
    base_rss = rss.now()
    stages: dict[str, float] = {}
    cpu_s: dict[str, float] = {}
    t0 = time.perf_counter()
    with open_engine(settings) as engine:
        stages["engine start"] = time.perf_counter() - t0

        def timed(name, fn):
            start, cpu = time.perf_counter(), rss.cpu_seconds()
            out = fn()
            stages[name] = time.perf_counter() - start
            cpu_s[name] = rss.cpu_seconds() - cpu
            return out

        images = timed("ingest", lambda: frames_table(files).with_columns(pl.lit(SITE.upper()).alias("station")))
        items = frame_items(images)

        def features():
            result = extract_features_distributed(items, engine, chunk_frames=settings.chunk_frames)
            keys = [c for c in FRAME_KEY_COLUMNS if c in images.columns]
            table = pl.concat([images.select(keys), features_frame(result)], how="horizontal")
            return table.with_columns(pl.lit(images["local_path"]).str.split("/").list.last().alias("file_name"))

        table = timed("features", features)
        predictions = timed(
            "predictions",
            lambda: classify_features_distributed(
                table, args.classifier, engine, keys=("time", "station", "file_name", "frame_index")
            ),
        )
    table = None  # the feature vectors are not needed further (the catalog carries none)

    def merges():
        ceil = merge_frames(
            predictions,
            ceilometer,
            right_key="site",
            tolerance_s=300,
            right_columns=["cbh_m", "cloud_detected", "missing"],
        )
        mag = merge_frames(predictions, magnetometer, tolerance_s=60, right_columns=["x_nt", "y_nt", "z_nt", "h_nt"])
        return ceil, mag

    ceil, _mag = timed("merges", merges)
    catalog = timed(
        "catalog",
        lambda: build_catalog(ceil, magnetometer, network="themis", camera=SITE, site=SITE_POSITION),
    )
    peak = rss.stop()
    assert catalog.height == n == images.height, (catalog.height, n, images.height)
    return {
        "compute": compute,
        "frames": n,
        "files": len(files),
        "generate_s": generate_s,
        "stages": stages,
        "cpu_s": cpu_s,
        "peak_rss_mb": peak,
        "base_rss_mb": base_rss,
        "classes": dict(predictions.group_by("pred").len().iter_rows()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=1 / 50, help="fraction of the real 20 frames/min cadence")
    ap.add_argument("--compute", nargs="+", default=["local", "dask"], choices=["local", "dask"])
    ap.add_argument("--workers", type=int, default=2, help="Dask LocalCluster worker processes (1 thread each)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    ap.add_argument("--classifier", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    runs = []
    with tempfile.TemporaryDirectory(prefix="tame_season_") as scratch:
        classifier = write_classifier(Path(scratch))
        for compute in args.compute:
            for scale in (1, 2):
                cmd = [sys.executable, __file__, "--child", "--compute", compute, "--workers", str(args.workers)]
                cmd += [
                    "--fraction",
                    repr(args.fraction * scale),
                    "--scratch",
                    scratch,
                    "--classifier",
                    str(classifier),
                ]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
                report(runs[-1])
    print("peak RSS when the frame count doubles:")
    for compute in args.compute:
        small, large = [r for r in runs if r["compute"] == compute]
        grow = large["peak_rss_mb"] - small["peak_rss_mb"]
        per_frame = grow / (large["frames"] - small["frames"]) * 1024
        print(
            f"  {compute:6s} {small['frames']:>7,} → {large['frames']:>7,} frames: {small['peak_rss_mb']:7.0f} → "
            f"{large['peak_rss_mb']:7.0f} MB ({grow / small['peak_rss_mb']:+.1%}, {per_frame:.1f} KB per extra frame)"
        )
    return 0


def report(run: dict) -> None:
    n, stages = run["frames"], run["stages"]
    work = sum(v for k, v in stages.items() if k != "engine start")
    print(
        f"{run['compute']}: {n:,} frames in {run['files']} CDF hour files (generated in {run['generate_s']:.0f} s), "
        f"engine start {stages['engine start']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB "
        f"(at start {run['base_rss_mb']:.0f} MB)"
    )
    cpu = run["cpu_s"]
    for name in ("ingest", "features", "predictions", "merges", "catalog"):
        print(
            f"  {name:12s} {stages[name]:8.2f} s  {n / stages[name]:10.1f} frames/s   "
            f"{cpu[name] / n * 1e3:8.3f} CPU-ms/frame"
        )
    total_cpu = sum(cpu.values())
    print(f"  {'all stages':12s} {work:8.2f} s  {n / work:10.1f} frames/s   {total_cpu / n * 1e3:8.3f} CPU-ms/frame")


if __name__ == "__main__":
    sys.exit(main())
