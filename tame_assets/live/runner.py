"""The live path of one station: new frame files → catalog rows, alerts, a rolling keogram and daily summary.

Each :meth:`LiveRunner.step` polls the watched folder (:class:`~tame_assets.live.watch.FolderWatcher`),
takes the files newly complete that are not done yet (:class:`~tame_assets.live.table.LiveTable`),
lists their frames (one per UiO PNG; every frame of a THEMIS CDF or PGM file, keyed (file, frame index)
as in ``asim_images``, read with the network's frame reader), featurises and classifies them, at most
``frames_per_commit`` frames per commit, with the backbone and classifier kept in memory (the same
:func:`~tame_assets.ml.features.extract_features` + :func:`~tame_assets.ml.tables.predictions_frame`
as the ``asim_features`` / ``asim_predictions`` assets; the classifier and the p_aurora calibration
are re-read when their files change), appends the rows to ``live_frames``, evaluates the alert
rules (:mod:`~tame_assets.live.alerts`) and redraws the keogram and the daily summary of the latest
day (:mod:`~tame_assets.live.summary`) when due. Frames that cannot be read keep their row
(``ok = false``, ``error`` naming the file, ``local_path`` kept) and are recorded in ``quarantine``;
nothing in one frame stops the path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import polars as pl

from tame_assets.config import TameSettings
from tame_assets.live.alerts import Alert, AlertEngine, AlertRule, alerts_frame, rules_from_config
from tame_assets.live.delivery import WebhookSender
from tame_assets.live.keogram import RollingKeogram
from tame_assets.live.summary import draw_live_summary
from tame_assets.live.table import LiveTable
from tame_assets.live.watch import FolderWatcher, SeenFile
from tame_assets.sources.frame_reader import frame_item
from tame_assets.sources.networks import FileName, get_network

log = logging.getLogger(__name__)

#: The p_aurora calibration the ``p_aurora_calibration`` asset writes into the models folder.
CALIBRATION_FILE = "p_aurora_calibration.json"
_NULL_FLOAT = ("cbh_m", "ceilometer_dt_s", "h_nt", "dh_dt_nt_per_min", "magnetometer_dt_s")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class StepResult:
    new: int = 0  # rows written
    duplicates: int = 0  # frames already done (skipped)
    failed: int = 0  # rows with ok = false
    alerts: list[Alert] = field(default_factory=list)
    reachable: bool = True
    keogram: Path | None = None
    summary: Path | None = None  # the daily summary PNG, when redrawn
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class FrameJob:
    """One frame to catalog: frame ``index`` of the file ``seen`` (0 for a single-frame file; None for a
    multi-frame file that cannot be read at all), its ``time`` (naive UTC; None when unknown), ``item``
    what the frame reader and feature extraction take (the path, or ``<path>#<index>``) and ``error``
    (None, or why it is not classified)."""

    seen: SeenFile
    index: int | None
    time: dt.datetime | None
    camera: str
    wavelength_nm: float | None
    item: str
    error: str | None = None


class _ModelFiles:
    """The classifier and calibration, re-loaded when their files' mtimes change."""

    def __init__(self, classifier_dir: Path, calibration: Path, backbone: str | None, feature_kind: str | None):
        self.classifier_dir, self.calibration_path = Path(classifier_dir), Path(calibration)
        self.backbone, self.feature_kind = backbone, feature_kind
        self._stamp: tuple | None = None
        self.classifier = None
        self.calibrate = None
        self.reloads = 0

    def _mtimes(self) -> tuple:
        from tame_assets.ml.classifier import CARD_FILE, MODEL_FILE

        out = []
        for path in (self.classifier_dir / CARD_FILE, self.classifier_dir / MODEL_FILE, self.calibration_path):
            try:
                info = path.stat()
                out.append((info.st_mtime_ns, info.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def current(self):
        from tame_assets.ml.classifier import AsimClassifier

        stamp = self._mtimes()
        if stamp != self._stamp:
            self.classifier = AsimClassifier.load(
                self.classifier_dir, expect_backbone=self.backbone, expect_feature_kind=self.feature_kind
            )
            self.calibrate = None
            if self.calibration_path.exists():
                from tame_assets.products.calibration import calibrator_from_dict

                self.calibrate = calibrator_from_dict(json.loads(self.calibration_path.read_text())).transform
            if self._stamp is not None:
                self.reloads += 1
                log.info("classifier files changed: reloaded %s", self.classifier_dir)
            self._stamp = stamp
        return self.classifier


class _Magnetometer:
    """H and dH/dt (1-minute means, :func:`~tame_assets.products.catalog.minute_dh_dt`) of the station's
    magnetometer from the warehouse's ``magnetometer`` months, when they are there (re-read when their files
    change): a magnetometer ingested during the night (the hourly sensor) feeds the live rows and dH/dt rules."""

    def __init__(self, warehouse, station: str, key: str, tolerance_s: float):
        self.warehouse, self.station, self.key, self.tolerance_s = warehouse, station, key, tolerance_s
        self._cache: dict[str, tuple[int, pl.DataFrame]] = {}

    def _month(self, month: str) -> pl.DataFrame | None:
        path = Path(self.warehouse.partition_file("magnetometer", month))
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        if month not in self._cache or self._cache[month][0] != stamp:
            from tame_assets.products.catalog import magnetometer_dh_dt

            rows = pl.read_parquet(path).filter(pl.col("station") == self.key)
            self._cache[month] = (stamp, magnetometer_dh_dt(rows.select("time", "station", "h_nt")))
        return self._cache[month][1]

    def merge(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with ``h_nt``, ``dh_dt_nt_per_min``, ``magnetometer_dt_s`` filled where matched."""
        if not self.key or rows.height == 0:
            return rows
        months = sorted({f"{t:%Y-%m}" for t in rows["time"].to_list() if t is not None})
        minutes = [m for m in (self._month(month) for month in months) if m is not None and m.height]
        if not minutes:
            return rows
        from tame_assets.warehouse.merge import merge_frames

        rows = rows.with_row_index("_row")  # (file, frame_index) is the key; a row number is simpler
        merged = merge_frames(
            rows.select("_row", "station", "time"),
            pl.concat(minutes),
            tolerance_s=self.tolerance_s,
            right_columns=["h_nt", "dh_dt_nt_per_min"],
            key_map={self.station: self.key},
        ).select("_row", "h_nt", "dh_dt_nt_per_min", pl.col("dt_s").alias("magnetometer_dt_s"))
        out = rows.drop("h_nt", "dh_dt_nt_per_min", "magnetometer_dt_s").join(merged, on="_row", how="left")
        return out.sort("_row").drop("_row")

    def minutes(self, day: dt.date) -> pl.DataFrame | None:
        """``time, h_nt`` (1-minute means, nT) of ``day``, or None without magnetometer data."""
        if not self.key:
            return None
        month = self._month(f"{day:%Y-%m}")
        if month is None:
            return None
        start = dt.datetime.combine(day, dt.time())
        rows = month.filter((pl.col("time") >= start) & (pl.col("time") < start + dt.timedelta(days=1)))
        return rows.select("time", "h_nt") if rows.height else None


class LiveRunner:
    """The live path of ``station`` watching ``watch_folder`` (see the module docstring)."""

    def __init__(
        self,
        settings: TameSettings,
        station: str,
        watch_folder: str | os.PathLike,
        *,
        rules: Sequence[AlertRule] | None = None,
        webhook_url: str | None = None,
        keogram_every_s: float | None = None,
        classifier_dir: str | os.PathLike | None = None,
        on_commit: Callable[[dict], None] | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        batch_size: int = 32,
        frames_per_commit: int = 256,
        precision: str = "auto",
    ):
        self.settings = settings
        self.station = settings.station(station)
        self.network = get_network(self.station.network)
        layout = settings.paths
        self.layout = layout
        self.table = LiveTable(layout, self.station.code, multi_frame=self.network.multi_frame)
        self.watcher = FolderWatcher(Path(watch_folder), self.accepts)
        self.models = _ModelFiles(
            Path(classifier_dir) if classifier_dir else layout.classifier_path,
            layout.models_dir / CALIBRATION_FILE,
            None if classifier_dir else settings.backbone,
            None if classifier_dir else settings.feature_kind,
        )
        self.magnetometer = _Magnetometer(
            self.table.warehouse,
            self.station.code,
            self.station.magnetometer_station,
            settings.magnetometer_tolerance_s,
        )
        self.engine = AlertEngine(rules if rules is not None else rules_from_config(settings.config_file))
        url = settings.alerts_webhook_url if webhook_url is None else webhook_url
        self.webhook = (
            WebhookSender(url, settings.alerts_webhook_timeout_s, settings.alerts_webhook_retries) if url else None
        )
        self.figures_dir = layout.figures_dir / "live"
        self.keogram = RollingKeogram(
            self.station.code,
            self.figures_dir,
            Path(layout.local_root) / "live" / f"{self.station.code}_keogram.npz",
            wavelength=", ".join(f"{w:g} nm" for w in self.station.wavelengths_nm) or "white light",
        )
        self.keogram_every_s = settings.live_keogram_every_s if keogram_every_s is None else keogram_every_s
        self._last_draw = 0.0
        self._summary_rows = -1  # live rows when the daily summary was last drawn
        self.on_commit, self.on_alert = on_commit, on_alert
        self.batch_size, self.precision = batch_size, precision
        self.frames_per_commit = max(1, int(frames_per_commit))
        self.was_reachable = True
        self._prime_alerts()

    def accepts(self, name: str) -> bool:
        """Whether the watcher takes the file ``name``: the station network's file name, of the station's
        image format (THEMIS ``cdf``/``pgm``) and camera or station; a name that does not parse is taken
        (it gets an ``ok = false`` row)."""
        if not self.network.owns_file(name):
            return False
        suffixes = {s.lstrip(".").lower() for s in Path(name).suffixes}
        if self.station.image_format and self.station.image_format not in suffixes:
            return False
        try:
            parsed = self.network.parse_file_name(name)
        except ValueError:
            return True
        return parsed.camera == self.station.camera or parsed.station == self.station.code

    def _prime_alerts(self) -> None:
        """Feed the already-cataloged rows of the latest day so a restart does not re-fire an event."""
        rows = self.table.rows()
        if rows.height:
            latest = rows["day"].max()
            self.engine.feed_frame(rows.filter(pl.col("day") == latest))

    # ------------------------------------------------------------------ one poll
    def step(self) -> StepResult:
        result = StepResult()
        seen = self.watcher.poll()
        result.reachable = self.watcher.reachable
        if result.reachable != self.was_reachable:
            (log.warning if not result.reachable else log.info)(
                "watch folder %s %s", self.watcher.folder, "unreachable: waiting" if not result.reachable else "back"
            )
            self.was_reachable = result.reachable
        fresh: list[SeenFile] = []
        names = set()
        for item in seen:
            if item.name in self.table.done or item.name in names:
                result.duplicates += 1
                continue
            names.add(item.name)
            fresh.append(item)
        for jobs, complete in self._commits(fresh, result):
            self._commit(jobs, complete, result)
        self._draw_products(result)
        return result

    def _commits(self, files: Sequence[SeenFile], result: StepResult):
        """(frames, files they complete) to commit, at most ``frames_per_commit`` frames each; a
        multi-frame file's frames are listed when its turn comes, those done before are skipped."""
        n = self.frames_per_commit
        if not self.network.multi_frame:
            for i in range(0, len(files), n):
                chunk = files[i : i + n]
                yield [self._single_frame(item) for item in chunk], [item.name for item in chunk]
            return
        for item in files:
            frames = self.file_frames(item)
            pending = [f for f in frames if f.index is None or not self.table.frame_done(item.name, f.index)]
            result.duplicates += len(frames) - len(pending)
            if not pending:
                self.table.mark_done([item.name])
                continue
            for i in range(0, len(pending), n):
                yield pending[i : i + n], [item.name] if i + n >= len(pending) else []

    def _parsed(self, item: SeenFile) -> tuple[FileName | None, str | None]:
        try:
            return self.network.parse_file_name(item.name), None
        except ValueError as exc:
            return None, str(exc)

    def _single_frame(self, item: SeenFile) -> FrameJob:
        parsed, error = self._parsed(item)
        if parsed is None:
            return FrameJob(item, 0, None, self.station.camera, None, item.path, error)
        return FrameJob(item, 0, parsed.time, parsed.camera, parsed.wavelength_nm, item.path)

    def file_frames(self, item: SeenFile) -> list[FrameJob]:
        """The frames of a multi-frame file in file order, with their times from the file (the network's
        :meth:`~tame_assets.sources.networks.CameraNetwork.read_frame`; the file is read once). A file
        that cannot be read at all gives one job without a frame index, a frame without a valid time
        one with its error, as ``asim_images`` lists them."""
        parsed, error = self._parsed(item)
        camera = parsed.camera if parsed else self.station.camera
        wavelength = parsed.wavelength_nm if parsed else None
        if parsed is None:
            return [FrameJob(item, None, None, camera, wavelength, item.path, error)]
        jobs: list[FrameJob] = []
        while True:
            index = len(jobs)
            try:
                frame = self.network.read_frame(item.path, index, max_pixels=self.settings.max_image_pixels)
            except Exception as exc:  # past the last frame; at index 0: the file cannot be read
                if not jobs:
                    return [FrameJob(item, None, parsed.time, camera, wavelength, item.path, str(exc))]
                return jobs
            no_time = None if frame.time else f"{item.path}: frame {index} has no valid time in the file"
            jobs.append(
                FrameJob(
                    item,
                    index,
                    frame.time,
                    camera,
                    wavelength,
                    frame_item(item.path, index, self.network.name),
                    no_time,
                )
            )

    def _commit(self, jobs: list[FrameJob], complete: list[str], result: StepResult) -> None:
        """Catalog ``jobs``, append their rows (then count ``complete`` files done), alerts, keogram columns."""
        rows = self.catalog_rows(jobs)
        now = _utcnow()
        appeared = rows["appeared_at"].to_numpy()
        rows = rows.with_columns(
            pl.lit(now).cast(pl.Datetime("us")).alias("cataloged_at"),
            pl.Series("latency_s", (np.datetime64(now, "us") - appeared) / np.timedelta64(1, "s")),
        )
        self.table.append(rows, complete=complete)
        result.new += rows.height
        result.failed += int((~rows["ok"]).sum())
        result.latencies.extend(rows["latency_s"].to_list())
        result.alerts.extend(self._alerts(rows.filter(pl.col("ok")), now))
        for row in rows.filter(pl.col("ok")).iter_rows(named=True):
            item = frame_item(row["local_path"], row["frame_index"], self.network.name)
            self.keogram.add(item, row["time"], max_pixels=self.settings.max_image_pixels)
        if self.on_commit is not None:
            try:  # recording the event (the Dagster instance) never stops the live path
                self.on_commit(self.summary(rows))
            except Exception:
                log.exception("live commit of %s not reported", self.station.code)

    # ------------------------------------------------------------------ rolling figures
    def _draw_products(self, result: StepResult, force: bool = False) -> None:
        """Redraw the keogram and the daily summary when there are new rows and ``keogram_every_s`` has
        passed (``force``: now). A figure never stops the live path: it is logged and tried next time."""
        keogram_stale = bool(self.keogram.times) and len(self.keogram.times) != self.keogram.drawn_frames
        summary_stale = sum(self.table.day_counts.values()) != self._summary_rows
        if not (keogram_stale or summary_stale):
            return
        if not force and time.monotonic() - self._last_draw < self.keogram_every_s:
            return
        self._last_draw = time.monotonic()
        if keogram_stale:
            try:
                result.keogram = self.keogram.draw()
            except Exception:
                log.exception("live keogram of %s not drawn", self.station.code)
        if summary_stale:
            try:
                result.summary = self.draw_summary()
            except Exception:
                log.exception("live daily summary of %s not drawn", self.station.code)

    def draw_summary(self) -> Path | None:
        """Draw ``figures/live/<STATION>_daily_summary.png`` (+ .svg) of the latest day with live rows;
        None when there is none."""
        total = sum(self.table.day_counts.values())
        if not self.table.day_counts:
            self._summary_rows = total
            return None
        day = max(self.table.day_counts)
        keogram = self.keogram.keogram() if len(set(self.keogram.times)) >= 2 else None
        try:
            magnetometer = self.magnetometer.minutes(day)
        except Exception:  # a magnetometer file being rewritten: this figure goes without H
            log.exception("magnetometer not read for the live summary of %s", self.station.code)
            magnetometer = None
        path = draw_live_summary(
            self.table.rows(day), self.station.code, day, self.figures_dir, keogram=keogram, magnetometer=magnetometer
        )
        self._summary_rows = total
        return path

    # ------------------------------------------------------------------ alerts and events
    def _alerts(self, rows: pl.DataFrame, now: dt.datetime) -> list[Alert]:
        fired = self.engine.feed_frame(rows, now)
        if fired:
            self.table.append_alerts(alerts_frame(fired))
            for alert in fired:
                log.warning("alert %s at %s: %s", alert.rule, alert.station, ", ".join(alert.frames))
                if self.webhook is not None:
                    self.webhook.send(alert.payload())
                if self.on_alert is not None:
                    self.on_alert(alert)
        return fired

    def summary(self, rows: pl.DataFrame) -> dict:
        """What a commit reports (the Dagster asset event's metadata)."""
        day = rows["day"].max()
        return {
            "station": self.station.code,
            "day": day.isoformat(),
            "rows": rows.height,
            "rows_today": self.table.day_counts.get(day, 0),
            "latest_frame_time": str(rows["time"].max()),
            "latency_s_max": float(rows["latency_s"].max()),
            "failed": int((~rows["ok"]).sum()),
        }

    # ------------------------------------------------------------------ rows
    def catalog_rows(self, jobs: Sequence[FrameJob]) -> pl.DataFrame:
        """Catalog rows of the frames ``jobs`` (one per frame, ok or not), keyed (``file``, ``frame_index``)."""
        meta, readable = [], []
        for job in jobs:
            if job.error is None:
                readable.append(len(meta))
            meta.append(
                {
                    "network": self.network.name,
                    "station": self.station.code,
                    "camera": job.camera,
                    "time": job.time,
                    "wavelength_nm": job.wavelength_nm,
                    "file": job.seen.name,
                    "frame_index": job.index,
                    "local_path": job.seen.path,
                    "appeared_at": dt.datetime.fromtimestamp(job.seen.appeared, dt.timezone.utc).replace(tzinfo=None),
                    "error": job.error,
                }
            )
        base = pl.DataFrame(
            meta,
            schema={
                "network": pl.Utf8,
                "station": pl.Utf8,
                "camera": pl.Utf8,
                "time": pl.Datetime("us"),
                "wavelength_nm": pl.Float64,
                "file": pl.Utf8,
                "frame_index": pl.Int32,
                "local_path": pl.Utf8,
                "appeared_at": pl.Datetime("us"),
                "error": pl.Utf8,
            },
        )
        predictions = self._classify([jobs[i].item for i in readable])
        classes = [c for c in predictions.columns if c.startswith("p_") and c != "p_aurora"]
        full = pl.DataFrame(
            {
                "pred": [None] * base.height,
                "p_aurora": [None] * base.height,
                **{c: [None] * base.height for c in classes},
            },
            schema={"pred": pl.Utf8, "p_aurora": pl.Float64, **{c: pl.Float64 for c in classes}},
        )
        errors = base["error"].to_list()
        if readable:
            idx = pl.Series(readable)
            for col in ["pred", "p_aurora", *classes]:
                values = full[col].to_list()
                for i, v in zip(readable, predictions[col].to_list()):
                    values[i] = v
                full = full.with_columns(pl.Series(col, values, dtype=full[col].dtype))
            for i, e in zip(idx.to_list(), predictions["error"].to_list()):
                errors[i] = e
        p = full["p_aurora"].cast(pl.Float64).to_numpy().astype(float)
        calibrated = np.full(len(p), np.nan)
        if self.models.calibrate is not None and np.isfinite(p).any():
            calibrated[np.isfinite(p)] = self.models.calibrate(p[np.isfinite(p)])
        out = pl.concat([base.drop("error"), full], how="horizontal").with_columns(
            pl.Series("p_aurora_calibrated", calibrated).fill_nan(None),
            pl.Series("error", errors, dtype=pl.Utf8),
            pl.lit(None, pl.Boolean).alias("cloud_detected"),
            *[pl.lit(None, pl.Float64).alias(c) for c in _NULL_FLOAT],
        )
        try:
            out = self.magnetometer.merge(out)
        except Exception:  # a magnetometer file being rewritten: these rows go without H, the path goes on
            log.exception("magnetometer not merged into the live rows of %s", self.station.code)
        day = pl.col("time").dt.date().fill_null(pl.col("appeared_at").dt.date())
        return out.with_columns(
            pl.col("time").fill_null(pl.col("appeared_at")),
            day.alias("day"),
            (pl.col("error").is_null() & pl.col("pred").is_not_null()).alias("ok"),
        )

    def _classify(self, paths: list[str]) -> pl.DataFrame:
        """pred, p_<class>, p_aurora, error per frame item (a path or ``<path>#<index>``; the pipeline's
        features + classifier)."""
        clf = self.models.current()
        if not paths:
            return pl.DataFrame(
                {"pred": [], "p_aurora": [], "error": []},
                schema={"pred": pl.Utf8, "p_aurora": pl.Float64, "error": pl.Utf8},
            ).with_columns([pl.lit(None, pl.Float64).alias(f"p_{c}") for c in clf.classes])
        if clf.card.method != "svm" or any(r != 0.0 for r in clf.card.rotations):
            return clf.classify_images(
                paths, batch_size=self.batch_size, max_image_pixels=self.settings.max_image_pixels
            )
        from tame_assets.ml.features import extract_features
        from tame_assets.ml.tables import features_frame, predictions_frame

        result = extract_features(
            paths,
            backbone=clf.card.backbones[0],
            feature_kind=clf.card.feature_kind,
            batch_size=self.batch_size,
            num_workers=0,
            precision=self.precision,
            max_image_pixels=self.settings.max_image_pixels,
        )
        features = features_frame(result).with_columns(pl.Series("file", paths))
        return predictions_frame(features, clf, keys=("file",))

    # ------------------------------------------------------------------ loop
    def run(
        self,
        poll_s: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        idle_exit_s: float | None = None,
        report: Callable[[StepResult], None] | None = None,
    ) -> None:
        """Poll every ``poll_s`` until ``stop()`` is true, or no new frame came for ``idle_exit_s``."""
        poll_s = self.settings.live_poll_s if poll_s is None else poll_s
        last_new = time.monotonic()
        try:
            while not (stop and stop()):
                started = time.monotonic()
                try:
                    result = self.step()
                except Exception:  # a bug or a disk hiccup in one step: logged, the next poll retries
                    log.exception("live step failed; retrying on the next poll")
                    result = StepResult(reachable=self.watcher.reachable)
                if result.new:
                    last_new = time.monotonic()
                if report is not None:
                    report(result)
                if idle_exit_s is not None and time.monotonic() - last_new > idle_exit_s:
                    break
                time.sleep(max(0.0, poll_s - (time.monotonic() - started)))
        finally:
            self.close()

    def close(self) -> None:
        """Draw the figures that are behind, stop the webhook sender (up to 10 s)."""
        self._draw_products(StepResult(), force=True)
        if self.webhook is not None:
            self.webhook.close(timeout_s=10.0)
