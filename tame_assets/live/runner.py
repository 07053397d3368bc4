"""The live path of one station: new frame files → catalog rows, alerts and a rolling keogram.

Each :meth:`LiveRunner.step` polls the watched folder (:class:`~tame_assets.live.watch.FolderWatcher`),
takes the files newly complete that are not done yet (:class:`~tame_assets.live.table.LiveTable`),
featurises and classifies them with the backbone and classifier kept in memory (the same
:func:`~tame_assets.ml.features.extract_features` + :func:`~tame_assets.ml.tables.predictions_frame`
as the ``asim_features`` / ``asim_predictions`` assets; the classifier and the p_aurora calibration
are re-read when their files change), appends the rows to ``live_frames``, evaluates the alert
rules (:mod:`~tame_assets.live.alerts`) and redraws the keogram when due. Frames that cannot be
read keep their row (``ok = false``, ``error`` naming the file, ``local_path`` kept) and are
recorded in ``quarantine``; nothing in one frame stops the path.
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

from tame_assets.config import TameSettings, UsageError
from tame_assets.live.alerts import Alert, AlertEngine, AlertRule, alerts_frame, rules_from_config
from tame_assets.live.delivery import WebhookSender
from tame_assets.live.keogram import RollingKeogram
from tame_assets.live.table import LiveTable
from tame_assets.live.watch import FolderWatcher, SeenFile
from tame_assets.sources.networks import get_network

log = logging.getLogger(__name__)

#: The p_aurora calibration the ``p_aurora_calibration`` asset writes into the models folder.
CALIBRATION_FILE = "p_aurora_calibration.json"
_NULL_FLOAT = ("cbh_m", "ceilometer_dt_s", "h_nt", "dh_dt_nt_per_min", "magnetometer_dt_s")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class StepResult:
    new: int = 0  # rows written
    duplicates: int = 0  # files already done (skipped)
    failed: int = 0  # rows with ok = false
    alerts: list[Alert] = field(default_factory=list)
    reachable: bool = True
    keogram: Path | None = None
    latencies: list[float] = field(default_factory=list)


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

        merged = merge_frames(
            rows.select("file", "station", "time"),
            pl.concat(minutes),
            tolerance_s=self.tolerance_s,
            right_columns=["h_nt", "dh_dt_nt_per_min"],
            key_map={self.station: self.key},
        ).select("file", "h_nt", "dh_dt_nt_per_min", pl.col("dt_s").alias("magnetometer_dt_s"))
        return rows.drop("h_nt", "dh_dt_nt_per_min", "magnetometer_dt_s").join(merged, on="file", how="left")


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
        precision: str = "auto",
    ):
        self.settings = settings
        self.station = settings.station(station)
        self.network = get_network(self.station.network)
        if self.network.multi_frame:
            raise UsageError(
                f"tame live handles single-frame networks (UiO PNG) so far; station {self.station.code} is "
                f"{self.network.name} (multi-frame files)"
            )
        layout = settings.paths
        self.layout = layout
        self.table = LiveTable(layout, self.station.code)
        self.watcher = FolderWatcher(Path(watch_folder), self.network.owns_file)
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
        self.keogram = RollingKeogram(
            self.station.code,
            layout.figures_dir / "live",
            Path(layout.local_root) / "live" / f"{self.station.code}_keogram.npz",
            wavelength=", ".join(f"{w:g} nm" for w in self.station.wavelengths_nm),
        )
        self.keogram_every_s = settings.live_keogram_every_s if keogram_every_s is None else keogram_every_s
        self._last_draw = 0.0
        self.on_commit, self.on_alert = on_commit, on_alert
        self.batch_size, self.precision = batch_size, precision
        self.was_reachable = True
        self._prime_alerts()

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
        if fresh:
            rows = self.catalog_rows(fresh)
            now = _utcnow()
            appeared = rows["appeared_at"].to_numpy()
            rows = rows.with_columns(
                pl.lit(now).cast(pl.Datetime("us")).alias("cataloged_at"),
                pl.Series("latency_s", (np.datetime64(now, "us") - appeared) / np.timedelta64(1, "s")),
            )
            self.table.append(rows)
            result.new, result.failed = rows.height, int((~rows["ok"]).sum())
            result.latencies = rows["latency_s"].to_list()
            result.alerts = self._alerts(rows.filter(pl.col("ok")), now)
            for row in rows.filter(pl.col("ok")).iter_rows(named=True):
                self.keogram.add(row["local_path"], row["time"])
            if self.on_commit is not None:
                try:  # recording the event (the Dagster instance) never stops the live path
                    self.on_commit(self.summary(rows))
                except Exception:
                    log.exception("live commit of %s not reported", self.station.code)
        if self.keogram.times and len(self.keogram.times) != self.keogram.drawn_frames:
            if time.monotonic() - self._last_draw >= self.keogram_every_s:
                self._last_draw = time.monotonic()
                try:
                    result.keogram = self.keogram.draw()
                except Exception:  # a figure never stops the live path; the next redraw tries again
                    log.exception("live keogram of %s not drawn", self.station.code)
        return result

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
    def catalog_rows(self, files: Sequence[SeenFile]) -> pl.DataFrame:
        """Catalog rows of ``files`` (one per file, ok or not)."""
        meta, readable = [], []
        for item in files:
            entry = {
                "network": self.network.name,
                "station": self.station.code,
                "camera": self.station.camera,
                "time": None,
                "wavelength_nm": None,
                "file": item.name,
                "frame_index": 0,
                "local_path": item.path,
                "appeared_at": dt.datetime.fromtimestamp(item.appeared, dt.timezone.utc).replace(tzinfo=None),
                "error": None,
            }
            try:
                parsed = self.network.parse_file_name(item.name)
                entry.update(time=parsed.time, camera=parsed.camera, wavelength_nm=parsed.wavelength_nm)
                readable.append(len(meta))
            except ValueError as exc:
                entry["error"] = str(exc)
            meta.append(entry)
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
        predictions = self._classify([meta[i]["local_path"] for i in readable])
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
        """pred, p_<class>, p_aurora, error per path (the pipeline's features + classifier)."""
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
        if self.keogram.times and len(self.keogram.times) != self.keogram.drawn_frames:
            try:
                self.keogram.draw()
            except Exception:
                log.exception("live keogram of %s not drawn", self.station.code)
        if self.webhook is not None:
            self.webhook.close(timeout_s=10.0)
