"""Declarative Automation and up-to-date skipping on a real instance (a temp DAGSTER_HOME) with the real
Definitions: raw partitions written by a tick end in the products without a hand-started run, and adding
a station does not recompute the up-to-date unpartitioned chain."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import pytest
from dagster import AssetKey, DagsterInstance, evaluate_automation_conditions, materialize

from tame_assets.config import TameSettings
from tame_assets.defs.checks import all_checks
from tame_assets.defs.definitions import all_assets, defs
from tame_assets.defs.resources import TameResource
from tame_assets.defs.runner import dagster_home, materialize_selection, up_to_date
from tame_assets.warehouse.store import Warehouse, station_file

pytestmark = pytest.mark.e2e

MONTH = "2010-12"
#: The unpartitioned upstream chain the products need (classifier, calibration) plus the benchmark.
CHAIN = ["oath_images", "oath_features", "svm_search", "oath_classifier", "p_aurora_calibration", "backbone_benchmark"]
#: What a schedule or sensor tick writes for a station × month.
RAW = ["asim_images", "magnetometer", "ceilometer"]
#: What automation must derive from them (same station × month).
DERIVED = [
    "asim_features",
    "asim_predictions",
    "asim_ceilometer",
    "asim_magnetometer",
    "keograms",
    "daily_summaries",
    "auroral_maps",
    "mosaics",
    "nightly_movies",
    "aurora_catalog",
]
#: Never requested by automation for a new partition.
NOT_AUTOMATED = [*CHAIN, "labelled_set_evaluation", "svm_hyperparameter_maps", "backbone_tradeoff"]
ANALYSES = [
    "cloud_validation",
    "cloud_examples",
    "magnetometer_model",
    "umap_embedding",
    "confidence_galleries",
    "occlusion_test",
]


def _count(instance: DagsterInstance, name: str) -> int:
    return len(instance.fetch_materializations(AssetKey(name), limit=1000).records)


def _requested(tick, names) -> dict[str, set]:
    return {n: set(tick.get_requested_partitions(AssetKey(n))) for n in names if tick.get_num_requested(AssetKey(n))}


@pytest.fixture(scope="module")
def chain_root(tmp_path_factory):
    """(settings, instance, cursor): the chain materialized by ``materialize_selection`` (registering only
    NYA) on the instance in the data root, and the automation sensor's first tick evaluated on it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        root = tmp_path_factory.mktemp("automation")
        settings = TameSettings(
            data_root=str(root),
            benchmark_backbones=("efficientnet_lite0",),
            feature_kinds=("logits",),
            daily_products_max_days=1,
        )
        assert materialize_selection(settings, CHAIN, [], echo=print, stations=["NYA"])
        instance = DagsterInstance.from_config(str(dagster_home(settings)))
        first = evaluate_automation_conditions(defs, instance)  # the sensor's first tick: nothing derived
        assert not _requested(first, DERIVED + NOT_AUTOMATED + ANALYSES)
        yield settings, instance, first.cursor
        instance.dispose()


def test_a_tick_on_raw_partitions_ends_in_the_products(chain_root):
    settings, instance, cursor = chain_root
    key = f"{MONTH}|NYA"
    assert materialize_selection(settings, RAW, [MONTH], echo=print, stations=["NYA"])  # as a schedule tick
    tick = evaluate_automation_conditions(defs, instance, cursor=cursor)
    requested = _requested(tick, [k.to_user_string() for k in defs.resolve_asset_graph().toposorted_asset_keys])
    assert {n: requested.get(n) for n in DERIVED} == {n: {key} for n in DERIVED}
    assert requested.get("skymaps") == {"NYA"}  # the registered station's geometry
    assert not set(requested) & set(NOT_AUTOMATED + ANALYSES + RAW)

    # execute what the tick requests, one run per partition key as the sensor's runs
    resources = {"tame": TameResource.from_settings(settings)}
    for partition in sorted({p for parts in requested.values() for p in parts}, key=lambda p: "|" in p):
        selection = [n for n, parts in requested.items() if partition in parts]
        result = materialize(
            [*all_assets, *all_checks],
            selection=selection,
            partition_key=partition,
            instance=instance,
            resources=resources,
        )
        assert result.success
    wh = Warehouse(settings.paths)
    images = wh.read_partition("asim_images", MONTH, station_file("NYA"))
    catalog = wh.read_partition("aurora_catalog", MONTH, station_file("NYA"))
    assert catalog.height == images.height > 0 and catalog["pred"].is_not_null().sum() > 0
    summaries = sorted((settings.paths.figures_dir / "daily_summary").glob("NYA_201012*.png"))
    assert len(summaries) == 1  # daily_products_max_days = 1

    settled = evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
    assert not _requested(settled, DERIVED + NOT_AUTOMATED)  # handled: no second run of the same partition
    assert "archive_coverage" in _requested(settled, ["archive_coverage"])  # the overview follows the catalog
    # the analyses over all months follow once, after the next 06:00 UTC tick; the ML chain never
    tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    daily = evaluate_automation_conditions(defs, instance, cursor=settled.cursor, evaluation_time=tomorrow)
    assert set(_requested(daily, ANALYSES)) == set(ANALYSES)
    assert not _requested(daily, DERIVED + NOT_AUTOMATED)


def test_adding_a_station_recomputes_none_of_the_up_to_date_chain(chain_root):
    settings, instance, _ = chain_root
    before = {n: _count(instance, n) for n in CHAIN}
    assert before == {n: 1 for n in CHAIN}
    fresh = up_to_date(settings, CHAIN, instance)
    assert sorted(fresh) == sorted(CHAIN) and fresh[0] == "oath_images"  # dependency order
    lines: list[str] = []
    started = time.perf_counter()
    assert materialize_selection(
        settings, ["skymaps", *CHAIN, *RAW, *DERIVED], [MONTH], echo=lines.append, stations=["GILL"]
    )
    print(f"GILL {MONTH}: {time.perf_counter() - started:.0f} s", *lines, sep="\n")
    assert {n: _count(instance, n) for n in CHAIN} == before  # nothing of the chain recomputed
    (skip_line,) = [line for line in lines if "up to date, skipped" in line]
    assert all(n in skip_line for n in CHAIN)
    catalog = Warehouse(settings.paths).read_partition("aurora_catalog", MONTH, station_file("GILL"))
    assert catalog.height > 0 and set(catalog["station"]) == {"GILL"}
    partitions = {r.partition_key for r in instance.fetch_materializations(AssetKey("asim_images"), limit=100).records}
    assert f"{MONTH}|GILL" in partitions

    # a setting that changes content at run time is not skipped: the changed asset and everything after it run
    lite1 = replace(settings, backbone="efficientnet_lite1")
    assert up_to_date(lite1, CHAIN, instance) == ["oath_images"]
    assert up_to_date(replace(settings, oath_sha256="0" * 64), CHAIN, instance) == []  # another OATH tarball
    # a different data root on the same instance is never "up to date"
    assert up_to_date(replace(settings, data_root=str(settings.paths.local_root / "elsewhere")), CHAIN, instance) == []
