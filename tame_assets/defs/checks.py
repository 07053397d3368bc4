"""Data-quality checks: pure functions (usable without Dagster) and their Dagster asset checks.

Each ``check_*`` function takes tables and returns a :class:`CheckOutcome`; the ``@asset_check``
wrappers below read the partition from the warehouse and report it. Blocking checks stop
downstream assets from running on bad data (the checked partition itself is already written).
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    PreviewWarning,
    asset_check,
)

from tame_assets.defs.assets.common import Partition, monthly_partitions, station_month_partitions
from tame_assets.defs.assets.search import search_checks
from tame_assets.defs.resources import TameResource
from tame_assets.labels import OATH_CLASSES
from tame_assets.months import month_bounds
from tame_assets.warehouse.store import PART_FILE, Warehouse

#: Plausible bounds for the geomagnetic field at the surface, nT (|B| is 22,000–67,000 nT on Earth).
FIELD_MAGNITUDE_BOUNDS_NT = (20_000.0, 70_000.0)
#: Largest plausible single component, nT.
COMPONENT_LIMIT_NT = 70_000.0
MAX_MAGNETOMETER_GAP_FRACTION = 0.2
MAX_CEILOMETER_MISSING_FRACTION = 0.3
#: Jensen–Shannon distance (base 2, 0..1) above which predicted classes have drifted from OATH's.
MAX_CLASS_DRIFT_JS = 0.5


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def check_row_counts_match(images: pl.DataFrame, features: pl.DataFrame) -> CheckOutcome:
    """Every image of the index has exactly one feature row, same files in the same order."""
    same = images.height == features.height and images["file_name"].to_list() == features["file_name"].to_list()
    return CheckOutcome(
        same,
        f"{images.height} images, {features.height} feature rows" + ("" if same else " — rows lost or reordered"),
        {"images": images.height, "feature_rows": features.height},
    )


def check_feature_vectors(features: pl.DataFrame) -> CheckOutcome:
    """Rows marked ok have a feature vector without NULL/NaN; others are NULL and explain why."""
    ok = features.filter(pl.col("ok"))
    bad_ok = ok.filter(
        pl.col("features").is_null()
        | pl.col("features").list.eval(pl.element().is_nan() | pl.element().is_null()).list.any()
    ).height
    unexplained = features.filter(~pl.col("ok") & pl.col("error").is_null()).height
    passed = bad_ok == 0 and unexplained == 0
    return CheckOutcome(
        passed,
        f"{bad_ok} ok rows with NULL/NaN features, {unexplained} failed rows without a reason",
        {"bad_vectors": bad_ok, "unexplained_failures": unexplained, "failed_rows": features.height - ok.height},
    )


def check_times_in_partition(table: pl.DataFrame, month: str) -> CheckOutcome:
    """All ``time`` values are inside the month [start, end) (UTC) and sorted ascending."""
    start, end = month_bounds(month)
    times = table["time"]
    outside = table.filter((pl.col("time") < start) | (pl.col("time") >= end) | pl.col("time").is_null()).height
    is_sorted = bool(times.is_sorted()) if times.null_count() == 0 else False
    return CheckOutcome(
        outside == 0 and is_sorted,
        f"{outside} rows outside {month}; sorted: {is_sorted}",
        {"rows_outside_partition": outside, "sorted": is_sorted, "rows": table.height},
    )


def check_partition_readable(
    warehouse: Warehouse, table: str, month: str | None, name: str = PART_FILE
) -> CheckOutcome:
    """The partition's Parquet file exists and every page of it decodes (a truncated or corrupt
    file is named; other tables and partitions stay queryable, see ``tame info``)."""
    path = warehouse.partition_file(table, month, name)
    reason = warehouse.unreadable_reason(path, full=True)
    return CheckOutcome(
        reason is None,
        f"{path} readable" if reason is None else f"{path} unreadable: {reason}",
        {"file": path, "reason": reason},
    )


def check_magnetometer_plausible(table: pl.DataFrame) -> CheckOutcome:
    """|B| = √(x²+y²+z²) within FIELD_MAGNITUDE_BOUNDS_NT and every component within ±70,000 nT."""
    lo, hi = FIELD_MAGNITUDE_BOUNDS_NT
    valid = table.drop_nulls(["x_nt", "y_nt", "z_nt"])
    magnitude = (valid["x_nt"] ** 2 + valid["y_nt"] ** 2 + valid["z_nt"] ** 2).sqrt()
    bad = int(((magnitude < lo) | (magnitude > hi)).sum())
    bad += int(
        valid.filter(
            (pl.col("x_nt").abs() > COMPONENT_LIMIT_NT)
            | (pl.col("y_nt").abs() > COMPONENT_LIMIT_NT)
            | (pl.col("z_nt").abs() > COMPONENT_LIMIT_NT)
        ).height
    )
    return CheckOutcome(
        bad == 0 and valid.height > 0,
        f"{bad} implausible samples of {valid.height}",
        {
            "implausible": bad,
            "valid_samples": valid.height,
            "min_B_nt": float(magnitude.min()) if valid.height else math.nan,
            "max_B_nt": float(magnitude.max()) if valid.height else math.nan,
        },
    )


def check_gap_fraction(table: pl.DataFrame, column: str, limit: float) -> CheckOutcome:
    """Fraction of NULL ``column`` values is at most ``limit``."""
    fraction = table[column].null_count() / table.height if table.height else 1.0
    return CheckOutcome(
        fraction <= limit, f"{fraction:.1%} missing (limit {limit:.0%})", {"missing_fraction": fraction, "limit": limit}
    )


def check_missing_flag_fraction(table: pl.DataFrame, limit: float) -> CheckOutcome:
    """Fraction of ceilometer rows flagged ``missing`` is at most ``limit``."""
    fraction = float(table["missing"].mean()) if table.height else 1.0
    return CheckOutcome(
        fraction <= limit, f"{fraction:.1%} missing (limit {limit:.0%})", {"missing_fraction": fraction, "limit": limit}
    )


def check_accuracy_floor(accuracy: float, floor: float) -> CheckOutcome:
    """Held-out six-class accuracy of the classifier is at least ``floor``."""
    return CheckOutcome(
        accuracy >= floor,
        f"held-out accuracy {accuracy:.3f} (floor {floor:.3f})",
        {"accuracy": accuracy, "floor": floor},
    )


def class_distribution(labels: pl.Series, classes=OATH_CLASSES) -> np.ndarray:
    counts = labels.drop_nulls().value_counts()
    lookup = dict(zip(counts[counts.columns[0]].to_list(), counts["count"].to_list()))
    p = np.array([lookup.get(c, 0) for c in classes], dtype=float)
    return p / p.sum() if p.sum() else p


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two distributions."""
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(p, q, base=2))


def check_class_drift(predicted: pl.Series, reference: pl.Series, limit: float = MAX_CLASS_DRIFT_JS) -> CheckOutcome:
    """Predicted class distribution stays within ``limit`` (JS distance) of the OATH label distribution."""
    p, q = class_distribution(predicted), class_distribution(reference)
    if not p.sum() or not q.sum():
        return CheckOutcome(False, "no predictions or no reference labels", {})
    distance = jensen_shannon(p, q)
    return CheckOutcome(
        distance <= limit,
        f"Jensen–Shannon distance {distance:.3f} vs OATH (limit {limit})",
        {
            "js_distance": distance,
            "predicted": dict(zip(OATH_CLASSES, p.round(4).tolist())),
            "oath": dict(zip(OATH_CLASSES, q.round(4).tolist())),
        },
    )


def per_station_metadata(metadata: dict, station: str | None, month: str | None = None) -> dict:
    """Check metadata with every number keyed by station (``js_distance [NYA]``), plus ``station`` and
    ``month``. The UI's check "Plots" draw one line per numeric key over all executions: keyed this way,
    each station's history is its own line instead of one line zig-zagging between stations."""
    if not station:
        return dict(metadata)
    out = {
        (f"{key} [{station}]" if isinstance(value, (int, float)) and not isinstance(value, bool) else key): value
        for key, value in metadata.items()
    }
    out["station"] = station
    if month:
        out["month"] = month
    return out


def _result(
    outcome: CheckOutcome, severity: AssetCheckSeverity = AssetCheckSeverity.ERROR, partition: Partition | None = None
) -> AssetCheckResult:
    metadata = {k: v for k, v in outcome.metadata.items() if v is not None}
    if partition is not None:
        metadata = per_station_metadata(metadata, partition.station, partition.month)
    return AssetCheckResult(
        passed=bool(outcome.passed),
        severity=severity,
        description=outcome.description,
        metadata=metadata,
    )


def empty_month_outcome(table: str, month: str) -> CheckOutcome:
    """A month the configured archive has no data for: nothing to check, and the check says why
    (it passes, so downstream assets run on — and write — empty partitions instead of a failure)."""
    return CheckOutcome(
        True,
        f"no {table} rows for {month}: the configured archive has no data for this month "
        f"(`tame months` lists the months it has)",
        {"rows": 0},
    )


# ---------------------------------------------------------------- Dagster asset checks
#: Assets partitioned by station × month (the rest of the partitioned ones by month).
STATION_MONTH_ASSETS = ("asim_images", "asim_features", "asim_predictions")


def monthly_check(**kwargs):
    """``@asset_check`` on the asset's partitions (station × month or month). Dagster marks partitioned
    checks as a preview feature; its PreviewWarning (about Dagster's API, printed by every process that
    loads the definitions) is silenced for these definitions only."""
    partitions = station_month_partitions if kwargs["asset"] in STATION_MONTH_ASSETS else monthly_partitions

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
            return asset_check(partitions_def=partitions, **kwargs)(fn)

    return decorate


def _checked(tame: TameResource, table: str, key: str, check, severity=AssetCheckSeverity.ERROR) -> AssetCheckResult:
    """Report ``check(frame)`` on the partition ``key`` of ``table``; an empty partition (no rows)
    reports :func:`empty_month_outcome` instead."""
    partition = Partition.of(key)
    frame = partition.read(tame.warehouse, table)
    return _result(
        empty_month_outcome(table, partition.label) if frame.height == 0 else check(frame), severity, partition
    )


@monthly_check(asset="asim_features", blocking=True)
def asim_features_rows_match_images(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """Nothing lost: one feature row per indexed image, same order."""
    partition = Partition.of(context.partition_key)  # 0 images and 0 feature rows also match: no empty shortcut
    return _result(
        check_row_counts_match(
            partition.read(tame.warehouse, "asim_images"), partition.read(tame.warehouse, "asim_features")
        ),
        partition=partition,
    )


@monthly_check(asset="asim_features", blocking=True)
def asim_features_vectors_valid(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """No NULL/NaN feature vectors on rows marked ok; failed rows carry their reason."""
    return _checked(tame, "asim_features", context.partition_key, check_feature_vectors)


def _times_check(table: str):
    @monthly_check(asset=table, name=f"{table}_times_in_partition", blocking=True)
    def _check(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
        month = Partition.of(context.partition_key).month
        return _checked(tame, table, context.partition_key, lambda frame: check_times_in_partition(frame, month))

    _check.__doc__ = f"Timestamps of {table} lie inside the partition's month (UTC) and are sorted."
    return _check


times_checks = [_times_check(t) for t in ("asim_images", "magnetometer", "ceilometer")]


def _readable_check(table: str):
    @monthly_check(asset=table, name=f"{table}_partition_readable", blocking=True)
    def _check(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
        partition = Partition.of(context.partition_key)
        return _result(
            check_partition_readable(tame.warehouse, table, partition.month, partition.file), partition=partition
        )

    _check.__doc__ = (
        f"The {table} partition's Parquet file decodes completely (re-run this check to find a "
        "partition damaged after it was written; `tame info` lists unreadable tables)."
    )
    return _check


readable_checks = [_readable_check(t) for t in ("asim_images", "magnetometer", "ceilometer")]


@monthly_check(asset="magnetometer", blocking=True)
def magnetometer_plausible(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """Field values physically plausible: 20,000 ≤ |B| ≤ 70,000 nT."""
    return _checked(tame, "magnetometer", context.partition_key, check_magnetometer_plausible)


@monthly_check(asset="magnetometer")
def magnetometer_gap_fraction(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """At most 20 % of the month's samples missing (warning)."""
    return _checked(
        tame,
        "magnetometer",
        context.partition_key,
        lambda t: check_gap_fraction(t, "h_nt", MAX_MAGNETOMETER_GAP_FRACTION),
        AssetCheckSeverity.WARN,
    )


@monthly_check(asset="ceilometer")
def ceilometer_missing_fraction(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """At most 30 % of the month's ceilometer records missing (warning)."""
    return _checked(
        tame,
        "ceilometer",
        context.partition_key,
        lambda t: check_missing_flag_fraction(t, MAX_CEILOMETER_MISSING_FRACTION),
        AssetCheckSeverity.WARN,
    )


@asset_check(asset="oath_classifier", blocking=True)
def oath_classifier_accuracy_floor(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """Held-out six-class accuracy at least the configured floor (``min_classifier_accuracy``)."""
    from tame_assets.ml.classifier import AsimClassifier

    card = AsimClassifier.load(tame.paths.classifier_path).card
    return _result(check_accuracy_floor(float(card.metrics["accuracy6"]), tame.settings.min_classifier_accuracy))


@monthly_check(asset="asim_predictions")
def asim_predictions_class_drift(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
    """Predicted class distribution vs the OATH label distribution (warning on drift)."""
    if "oath_images" not in tame.warehouse.tables():  # e.g. a classifier brought from elsewhere
        return _result(
            CheckOutcome(True, "no oath_images table to compare with: drift not checked", {}), AssetCheckSeverity.WARN
        )
    oath = tame.warehouse.read_partition("oath_images", None)
    return _checked(
        tame,
        "asim_predictions",
        context.partition_key,
        lambda predictions: check_class_drift(predictions["pred"], oath["label"]),
        AssetCheckSeverity.WARN,
    )


all_checks = [
    asim_features_rows_match_images,
    asim_features_vectors_valid,
    *times_checks,
    *readable_checks,
    magnetometer_plausible,
    magnetometer_gap_fraction,
    ceilometer_missing_fraction,
    oath_classifier_accuracy_floor,
    asim_predictions_class_drift,
    *search_checks,
]
