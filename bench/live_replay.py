"""The live path against a replayed night: an 8-hour night of UiO PNG frames, one every 10 s (2,880
frames), played into a watched folder at ×20 (24 minutes of wall time) while the live runner
(:mod:`tame_assets.live`) turns them into catalog rows and alerts.

Frames: the 300 real UiO Ny-Ålesund images of ``../shared/data/real/uio_asi_nya6`` cycled and
re-timestamped into correctly named files (``nya6_YYYYMMDD_HHMMSS_5577_cal.png``) in a temporary
folder (hard links; never in the repository). Classifier: the OATH recipe (linear probabilistic SVM on
EfficientNet-Lite0 logits) fitted on those images' labels (arc, diffuse, discrete, aurora-less), saved
where the pipeline keeps its classifier. Alert rule: p_aurora ≥ 0.8 for 3 consecutive frames
(re-armed after 3 frames without). The batch comparison applies the same rule to the batch catalog of
the night (features of every frame computed in one batch pass, the frames' predictions in time order).

Printed: frames in the catalog view (``aurora_catalog_live``), latency from a frame's file appearing
(the rename into the folder) to its row being written (p50, p95, max), CPU share of this process over
the replay (cores busy, and share of the machine), alerts fired live vs by the batch rule. Last line:
``live replay: <in catalog> of <replayed> frames, latency p50 <s> s, p95 <s> s, alerts <n> (batch rule <m>)``.

    .venv/bin/python bench/live_replay.py [--frames 2880 --speed 20 --cadence 10 --torch-threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "uio_asi_nya6"
RULE_TEXT = "p_aurora >= 0.8"


def synthesize_night(source: Path, folder: Path, n: int, cadence_s: float, start: dt.datetime) -> list[Path]:
    """``n`` frame files named for ``start + i·cadence`` cycling the images of ``source`` (hard links)."""
    images = sorted(source.glob("nya6_*_5577_cal.png"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        image = images[i % len(images)]
        when = start + dt.timedelta(seconds=i * cadence_s)
        target = folder / f"nya6_{when:%Y%m%d_%H%M%S}_5577_cal.png"
        try:
            os.link(image, target)
        except OSError:
            shutil.copyfile(image, target)
        out.append(target)
    return out


def fit_real_classifier(source: Path, precision: str):
    """The OATH recipe on the labelled real images; also returns their features (path → row)."""
    from tame_assets.ml.classifier import fit_oath_classifier
    from tame_assets.ml.features import extract_features

    labels = pl.read_csv(source / "labels.csv").filter(pl.col("wavelength_0.1nm") == 5577)
    paths = [str(source / "images" / f) for f in labels["filename"]]
    result = extract_features(paths, precision=precision)
    ok = result.ok
    classes = sorted(set(labels["label"].to_list()))
    clf, metrics = fit_oath_classifier(result.features[ok], labels["label"].to_numpy()[ok], class_names=classes, C=1e-3)
    return clf, metrics, dict(zip([Path(p).name for p in paths], result.features))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2880)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--cadence", type=float, default=10.0, help="seconds between frames of the night")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between listings of the watched folder")
    parser.add_argument("--keogram-every", type=float, default=60.0, help="seconds between keogram redraws")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--source", type=Path, default=SHARED)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder (removed)")
    args = parser.parse_args(argv)
    if not (args.source / "images").is_dir():
        print(f"no real UiO images at {args.source} (../shared is on developers' machines and CI only)")
        return 2

    import torch

    torch.set_num_threads(args.torch_threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    from tame_assets.config import TameSettings
    from tame_assets.live.alerts import AlertRule, Condition, alerts_for_catalog
    from tame_assets.live.replay import recorded_frames, replay
    from tame_assets.live.runner import LiveRunner
    from tame_assets.ml.tables import predictions_frame
    from tame_assets.warehouse.store import Warehouse

    work = Path(tempfile.mkdtemp(prefix="live_replay_")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        clf, metrics, features = fit_real_classifier(args.source, args.precision)
        settings = TameSettings(data_root=str(work / "data"), live_poll_s=args.poll)
        clf.save(settings.paths.classifier_path)
        print(
            f"classifier: OATH recipe on {metrics['n_train'] + metrics['n_test']} real UiO images, held-out "
            f"accuracy {metrics['accuracy6']:.2f} (aurora vs not {metrics['accuracy2']:.2f}), "
            f"{time.perf_counter() - t:.0f} s"
        )
        start = dt.datetime(2014, 12, 1, 18, 0, 0)
        night = synthesize_night(args.source / "images", work / "night", args.frames, args.cadence, start)
        frames = recorded_frames([work / "night"])
        span = (frames[-1].time - frames[0].time).total_seconds()
        print(
            f"night: {len(frames)} frames {frames[0].time:%H:%M:%S}–{frames[-1].time:%H:%M:%S} every "
            f"{args.cadence:g} s, replayed at ×{args.speed:g} ({span / args.speed / 60:.1f} min)"
        )
        rule = AlertRule("aurora", (Condition.parse(RULE_TEXT),), frames=3, rearm_frames=3)
        runner = LiveRunner(
            settings, "NYA", work / "watch", rules=[rule], keogram_every_s=args.keogram_every, webhook_url=""
        )
        delivered: dict[str, float] = {}
        done = threading.Event()

        def play() -> None:
            def on_file(item, i, total):
                delivered[item.name] = item.appeared
                if i % max(1, total // 10) == 0:
                    print(f"  replay {i}/{total} frames, {len(runner.table.done)} cataloged", flush=True)

            replay(frames, work / "watch", args.speed, on_file=on_file)
            done.set()

        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        player = threading.Thread(target=play, daemon=True)
        player.start()
        deadline = [None]

        def stop() -> bool:
            if done.is_set() and deadline[0] is None:
                deadline[0] = time.monotonic() + 120.0
            finished = done.is_set() and len(runner.table.done) >= len(frames)
            return finished or (deadline[0] is not None and time.monotonic() > deadline[0])

        runner.run(args.poll, stop=stop)
        wall = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)

        wh = Warehouse(settings.paths)
        live = wh.sql("SELECT * FROM aurora_catalog_live WHERE station = 'NYA' ORDER BY time")
        in_catalog = live["file"].n_unique()
        duplicates = live.height - in_catalog
        appeared = pl.DataFrame(
            {
                "file": list(delivered),
                "delivered_at": [
                    dt.datetime.fromtimestamp(v, dt.timezone.utc).replace(tzinfo=None) for v in delivered.values()
                ],
            }
        )
        rows = live.join(appeared, on="file", how="inner")
        latency = (
            rows["cataloged_at"].cast(pl.Int64) - rows["delivered_at"].cast(pl.Datetime("us")).cast(pl.Int64)
        ).cast(pl.Float64).to_numpy() / 1e6
        fired = wh.sql("SELECT count(*) AS n FROM alerts")["n"][0] if "alerts" in wh.tables() else 0

        # the batch catalog of the same night: every frame's features (one pass over the distinct images),
        # the same classifier, frames in time order, the same rule
        order = sorted((args.source / "images").glob("nya6_*_5577_cal.png"))
        X = np.stack([features[order[i % len(order)].name] for i in range(len(night))])
        batch = pl.DataFrame(
            {
                "station": "NYA",
                "time": [f.time for f in frames],
                "file": [f.path.name for f in frames],
                "features": [row.tolist() for row in X],
            }
        )
        predicted = predictions_frame(batch, clf, keys=("station", "time", "file"))
        batch_alerts = alerts_for_catalog(predicted, [rule])
        agree = live.join(predicted.select("file", pl.col("pred").alias("batch_pred")), on="file")
        same = float((agree["pred"] == agree["batch_pred"]).mean()) if agree.height else float("nan")

        ncpu = os.cpu_count() or 1
        print(f"frames in the catalog view: {in_catalog} of {len(frames)} replayed ({duplicates} duplicate rows)")
        if latency.size:
            p50, p95 = np.percentile(latency, [50, 95])
            print(f"latency file appearing → catalog row: p50 {p50:.2f} s, p95 {p95:.2f} s, max {latency.max():.2f} s")
        else:
            p50 = p95 = float("nan")
        print(
            f"CPU: {cpu:.0f} s over {wall:.0f} s wall = {cpu / wall:.2f} cores busy "
            f"({100 * cpu / wall / ncpu:.0f} % of this {ncpu}-core machine; torch threads {args.torch_threads})"
        )
        print(f"live vs batch predictions: same class for {100 * same:.1f} % of frames")
        print(
            f"live replay: {in_catalog} of {len(frames)} frames, latency p50 {p50:.1f} s, p95 {p95:.1f} s, "
            f"alerts {fired} (batch rule {len(batch_alerts)})"
        )
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
