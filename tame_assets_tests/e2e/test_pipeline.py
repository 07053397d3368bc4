"""End to end: real Dagster materializations of the real Definitions over the sample archive."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
from dagster import DagsterInstance, Definitions, materialize

from tame_assets.config import SAMPLE_MONTHS
from tame_assets.defs.checks import all_checks
from tame_assets.defs.definitions import all_assets, defs
from tame_assets.defs.resources import TameResource
from tame_assets.defs.runner import plan_layers, plan_runs, register_stations
from tame_assets.labels import OATH_CLASSES
from tame_assets.warehouse.store import Warehouse, open_views_database, station_file
from tame_assets_tests.shared_roots import cached_root, copy_root, is_intact

pytestmark = pytest.mark.heavy  # the shared materialized root: ~4 min before the first test

RAW_MONTHLY = ["magnetometer", "ceilometer"]
SAMPLE_STATIONS = ["NYA", "GILL"]


def _resources(root) -> dict:
    return {
        "tame": TameResource(
            data_root=str(root),
            benchmark_backbones=["efficientnet_lite0"],
            feature_kinds=["logits", "pooled"],
            labelled_set_dir="oath",
            daily_products_max_days=3,
        )
    }


def _run(root, selection, partition_key=None, instance=None):
    if instance is None:
        instance = DagsterInstance.ephemeral()
        register_stations(instance, SAMPLE_STATIONS)
    result = materialize(
        [*all_assets, *all_checks],
        selection=selection,
        partition_key=partition_key,
        resources=_resources(root),
        instance=instance,
        raise_on_error=True,
    )
    assert result.success
    return result


def _materialize_everything(root) -> None:
    """Every asset materialized for both sample months and both sample stations (UiO NYA, THEMIS GILL),
    in the runner's order (:func:`plan_runs`)."""
    settings = _resources(root)["tame"].settings
    instance = DagsterInstance.ephemeral()
    register_stations(instance, settings.station_table().codes)
    for key, selection in plan_runs(settings, None, SAMPLE_MONTHS):
        _run(root, selection, key, instance)


@pytest.fixture(scope="session")
def pipeline_root():
    """The fully materialized sample data root, built once per package source and shared (cached across
    sessions and xdist workers, see ``tame_assets_tests.shared_roots``). Read only: tests that write use
    ``pipeline_copy``; a test that changes it fails here and the cache is rebuilt next time."""
    root = cached_root("pipeline", _materialize_everything)
    yield root
    assert is_intact(root), f"a test wrote into the shared data root {root}: use pipeline_copy"


@pytest.fixture()
def pipeline_copy(pipeline_root, tmp_path):
    """A private copy of the materialized data root, for tests that materialize into it again."""
    return copy_root(pipeline_root, tmp_path / "data")


def test_plan_covers_every_asset_once_per_partition():
    from tame_assets.config import TameSettings

    runs = plan_runs(TameSettings(data_root="unused"), None, SAMPLE_MONTHS)
    keys = [str(key) for key, _ in runs]
    assert keys[1:3] == ["NYA", "GILL"] and keys[3] == SAMPLE_MONTHS[0]  # skymaps per station, then the month
    assert keys[4:6] == [f"{SAMPLE_MONTHS[0]}|NYA", f"{SAMPLE_MONTHS[0]}|GILL"]
    assert sorted(n for _, selection in runs[:1] + runs[-1:] for n in selection) == sorted(
        n for n in plan_layers(all_assets)[0] + plan_layers(all_assets)[2]
    )
    with pytest.raises(ValueError, match="station 'XYZ' is not configured"):
        plan_runs(TameSettings(data_root="unused"), None, SAMPLE_MONTHS, stations=["XYZ"])


def test_definitions_load():
    Definitions.validate_loadable(defs)
    names = {k.to_user_string() for a in all_assets for k in a.keys}
    assert {"asim_images", "magnetometer", "ceilometer", "oath_images", "asim_predictions"} <= names


def test_duckdb_file_answers_counts_from_a_shell_process(pipeline_root):
    from tame_assets.sources.sample.generator import ensure_sample_archive, read_manifest

    manifest = read_manifest(ensure_sample_archive(pipeline_root))
    db = "tame.duckdb"
    # a separate process in the data root, exactly like `cd data && duckdb -readonly tame.duckdb "select count(*) ..."`
    code = (
        "import duckdb,sys,json; con=duckdb.connect(sys.argv[1], read_only=True);"
        "print(json.dumps({t: con.execute(f'select count(*) from {t}').fetchone()[0] for t in sys.argv[2:]}))"
    )
    tables = ["asim_images", "magnetometer", "ceilometer", "oath_images"]
    out = subprocess.run(
        [sys.executable, "-c", code, db, *tables], capture_output=True, text=True, check=True, cwd=pipeline_root
    )
    import json

    counts = json.loads(out.stdout)
    expected = {t: manifest.expected_rows[t] for t in tables}
    expected["asim_images"] += manifest.expected_rows["themis_frames"]  # both stations' frames
    assert counts == expected


def test_all_six_classes_predicted_and_one_row_per_image(pipeline_root):
    wh = Warehouse(pipeline_root)
    preds = wh.sql("select pred, count(*) n from asim_predictions where pred is not null group by 1")
    assert set(preds["pred"]) == set(OATH_CLASSES)
    per_station = "select network, station, count(*) n from {} group by all order by all"
    assert wh.sql(per_station.format("asim_images")).equals(wh.sql(per_station.format("asim_predictions")))
    assert wh.sql(per_station.format("asim_images"))["station"].to_list() == ["GILL", "NYA"]
    # the frames of a THEMIS file are told apart by their index, through the merges too
    n_frames = wh.sql("select count(*) n from asim_magnetometer where station = 'GILL'")["n"][0]
    distinct = wh.sql("select count(distinct (file_name, frame_index)) n from asim_magnetometer where station = 'GILL'")
    assert n_frames == distinct["n"][0] == wh.sql("select count(*) n from asim_images where station = 'GILL'")["n"][0]


def test_corrupt_sample_image_is_quarantined_not_dropped(pipeline_root):
    wh = Warehouse(pipeline_root)
    q = wh.sql("select * from quarantine where asset = 'asim_features'")
    assert q.height >= 1
    feats = wh.sql("select file_name, ok, error from asim_features where not ok")
    assert set(q["file"]) == set(feats["file_name"])
    assert all(feats["error"].is_not_null())


def test_merged_tables_queryable(pipeline_root):
    con = open_views_database(pipeline_root)
    n, mean_dt = con.execute("select count(*), avg(abs(dt_s)) from asim_magnetometer").fetchone()
    assert n == con.execute("select count(*) from asim_predictions").fetchone()[0]
    assert mean_dt is not None and mean_dt <= 60
    con.close()


#: What the code changed on purpose since the release in previous_release_tables.<simd>.json: a pattern on
#: the lines of :func:`~tame_assets_tests.table_fingerprints.differences` (``table[station].column``)
#: and why. Anything else that differs fails the test.
INTENDED_CHANGES = {
    r"^auroral_maps\[": "a map cell is kept wherever the camera sees it (the field of view was clipped at the edge)",
    r"^\w+\[GILL\]": "sample archive v6: GILL's 24 frames of 2010-12-06 05:00-06:55 show the arc the new overlapping "
    "station CHUR sees too (issue 24), so GILL's images, features, classes and products of those hours changed",
    r"^(asim_features|asim_ceilometer|asim_magnetometer|asim_predictions|aurora_catalog)\[NYA\]\.(features|p_\w+):": (
        "CPU feature extraction runs the network on batches of at most 16 images: a few bf16 logits round one step "
        "differently than in batches of 64 (features and probabilities move in the 4th digit; the classes do not)"
    ),
    r"^(umap_embedding|magnetometer_model_series)\[": "fitted on the features above",
    (
        r"^((asim_features|asim_ceilometer|asim_magnetometer|asim_predictions|aurora_catalog)\[NYA\]\.(features|pred|p_\w+)"
        r"|oath_features\[\*\]\.features"
        r"|(backbone_benchmark|svm_search|labelled_set_evaluation)\[\*\]\.(acc|accuracy_|binary_accuracy_)\w+"
        r"|cloud_validation_by_cbh\[\*\]\.\w+|cloud_validation_daily\[\*\]\.mean_clear_score|p_aurora_calibration\[\*\]\.\w+):"
    ): (
        "issue 21: CPU features are fp32 (OpenVINO; torch's bf16 autocast before, on CPUs with AVX512-BF16): the "
        "features, so a few classes and every score fitted on them, move to the fp32 values the classifiers were "
        "measured with (bf16 changed the decision of a classifier fitted on fp32 features for 2 % of real images)"
    ),
    r"^frame_embeddings\[\w+\]\.(embedding_scale|novelty_score):": (
        "issue 21: OpenVINO runs 4 images per inference (was 16; faster kernels): features move by ~1 ulp, "
        "which the 6th digit of a few embedding scales and novelty scores shows (features, classes and "
        "probabilities keep their 6 digits)"
    ),
    r"^aurora_catalog\[\w+\]\.novelty:": (
        "issue 23: the catalog's novelty percentile (0-100) from frame_embeddings, a new column (an addition, which "
        "differences() does not report; listed for when the previous release has it)"
    ),
}


def test_tables_equal_the_previous_release(pipeline_root):
    """Behaviour unchanged: every table, station and column of the previous release's sample pipeline
    holds the same values now (fingerprints, see tame_assets_tests.table_fingerprints), apart from the
    :data:`INTENDED_CHANGES`; new tables, stations and columns are additions, not changes. After an
    intended change, add it there (or regenerate the file: ``python -m tame_assets_tests.table_fingerprints
    ROOT`` on a root this recipe built)."""
    import json
    import re
    from pathlib import Path

    from tame_assets_tests.table_fingerprints import differences, fingerprints, simd_family

    baseline = Path(__file__).with_name(f"previous_release_tables.{simd_family()}.json")
    assert baseline.exists(), f"no fingerprints for {simd_family()} CPUs: make {baseline.name} from the last release"
    previous = json.loads(baseline.read_text())["tables"]
    found = differences(previous, fingerprints(pipeline_root))
    changed = [line for line in found if not any(re.search(pattern, line) for pattern in INTENDED_CHANGES)]
    assert not changed, "\n".join(changed)


def test_archive_coverage_lists_every_materialized_station_month(pipeline_root):
    """The overview asset the UI user opens to find the materialized partitions among ~200 months."""
    wh = Warehouse(pipeline_root)
    coverage = wh.read_partition("archive_coverage", None)
    catalog = wh.sql("select station, strftime(time, '%Y-%m') as m from aurora_catalog")
    expected = catalog.group_by("station", "m").len().sort("station", "m").rows()
    assert coverage.select("station", "month", "frames").rows() == expected and len(expected) >= 2
    assert (pipeline_root / "figures" / "archive_coverage.png").exists()


def test_rematerializing_a_partition_is_idempotent(pipeline_copy):
    wh = Warehouse(pipeline_copy)
    query = "select * from magnetometer order by month, time, station"  # no float sums: their order varies
    before = wh.sql(query)
    _run(pipeline_copy, ["magnetometer"], SAMPLE_MONTHS[0])
    after = wh.sql(query)
    assert before.height > 0 and before.equals(after)


def test_figures_are_png_and_svg(pipeline_root):
    from PIL import Image

    pngs = sorted((pipeline_root / "figures").glob("*.png"))
    assert len(pngs) >= 6
    for png in pngs:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 100
        assert png.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_two_partitions_in_parallel_processes(tmp_path):
    """The multiprocess executor runs two months at once: no DuckDB lock error, same rows as sequential."""
    from tame_assets.sources.sample.generator import ensure_sample_archive

    ensure_sample_archive(tmp_path)
    code = (
        "import sys; from dagster import materialize, DagsterInstance;"
        "from tame_assets.defs.definitions import all_assets; from tame_assets.defs.resources import TameResource;"
        "r = materialize(all_assets, selection=%r, partition_key=sys.argv[1],"
        " resources={'tame': TameResource(data_root=sys.argv[2])}, instance=DagsterInstance.ephemeral());"
        "sys.exit(0 if r.success else 1)" % RAW_MONTHLY
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, m, str(tmp_path)], stderr=subprocess.PIPE, text=True)
        for m in SAMPLE_MONTHS
    ]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not any("lock" in e.lower() and "error" in e.lower() for e in errors)
    wh = Warehouse(tmp_path)
    assert wh.months("magnetometer") == list(SAMPLE_MONTHS)
    counts = pl.DataFrame(wh.sql("select count(*) n from magnetometer"))
    assert counts["n"][0] > 0


def test_provider_reads_by_time_and_key_with_month_pruning(pipeline_root):
    import datetime as dt

    from tame_assets import Provider

    p = Provider(str(pipeline_root))
    start, end = dt.datetime(2010, 12, 31, 22), dt.datetime(2011, 1, 1, 2)  # across the month boundary
    mag = p.get("magnetometer", start, end, station="NAL")
    assert mag.height == 4 * 60 and mag["station"].unique().to_list() == ["NAL"]  # 1-min IAGA-2002 data
    assert mag["time"].min() == start and mag["time"].max() < end and mag["time"].is_sorted()
    assert set(mag["month"]) == {"2010-12", "2011-01"}
    sql, _ = p.query("magnetometer", "2010-12-05", "2010-12-06")
    assert "month IN ('2010-12')" in sql
    assert p.get("magnetometer", start, end, station="XXX").height == 0
    with pytest.raises(KeyError, match="no table 'nope'"):
        p.get("nope")
    with pytest.raises(ValueError, match="no column"):
        p.get("ceilometer", start, end, station="NYA")  # ceilometer's key is `site`
    assert p.get("oath_images").height > 0  # unpartitioned, no time column

    preds = p.get("asim_predictions", "2010-12-30", "2011-01-02", station="NYA")
    mag = p.get("magnetometer", "2010-12-29T23:00", "2011-01-02T01:00", station="NAL")
    merged = p.merge(preds, mag, ["h_nt"], tolerance=dt.timedelta(seconds=60), key_map={"NYA": "NAL"})
    assert merged.height == preds.height > 0 and merged["h_nt"].null_count() == 0
    assert merged["dt_s"].abs().max() <= 30  # 1-min data: the nearest sample is at most 30 s away


def test_asof_macro_in_the_duckdb_file(pipeline_root):
    """The `asof_nearest` table macro is stored in tame.duckdb and agrees with the Python merge."""
    con = open_views_database(pipeline_root)
    con.execute("SET asof_loop_join_threshold = 0")
    sql = (
        "select file_name, right_h_nt, dt_s from asof_nearest('asim_predictions', 'magnetometer', "
        "'station', 'station', tolerance_s := 60, key_map := MAP {'NYA': 'NAL'}) order by file_name, frame_index"
    )
    by_macro = con.sql(sql).pl()
    con.close()
    by_asset = Warehouse(pipeline_root).sql(
        "select file_name, h_nt, dt_s from asim_magnetometer order by file_name, frame_index"
    )
    assert by_macro.height == by_asset.height > 0
    assert by_macro["right_h_nt"].to_list() == by_asset["h_nt"].to_list()
    assert by_macro["dt_s"].to_list() == by_asset["dt_s"].to_list()


#: Columns that measure the run (wall time, memory, when a record was written), not the data.
RUN_MEASUREMENT_COLUMNS = {"s_per_image", "peak_rss_mb", "peak_mem_mb", "seconds", "recorded_at"}


def _table_digests(root) -> dict[str, list[int]]:
    """Per warehouse table: sorted row hashes (order-independent), run-measurement columns left out."""
    wh = Warehouse(root)
    digests = {}
    for table in wh.row_counts():
        frame = wh.read(table)
        frame = frame.drop([c for c in frame.columns if c in RUN_MEASUREMENT_COLUMNS])
        digests[table] = frame.hash_rows(seed=0).sort().to_list()
    return digests


def test_rerunning_the_pipeline_gives_identical_tables(pipeline_copy):
    """Reproducible demo: the classifier, features of one month, predictions, merges and analyses run
    again on the same data root give identical tables (fixed seeds, deterministic tie-breaks)."""
    before = _table_digests(pipeline_copy)
    _run(
        pipeline_copy, ["oath_classifier"]
    )  # on the stored svm_search table (its grid is tested in test_ml_evaluation)
    month = SAMPLE_MONTHS[0]
    _run(pipeline_copy, ["asim_features", "asim_predictions", "asim_magnetometer", "asim_ceilometer"], f"{month}|NYA")
    _run(pipeline_copy, ["cloud_validation", "magnetometer_model"])
    after = _table_digests(pipeline_copy)
    assert sorted(after) == sorted(before)
    changed = [t for t in before if before[t] != after[t]]
    assert not changed, f"tables differ after a rerun: {changed}"
    assert {"asim_predictions", "asim_features", "magnetometer_model_series", "cloud_validation_daily"} <= set(before)


def test_products_keograms_movies_summaries(pipeline_root):
    import imageio_ffmpeg

    wh = Warehouse(pipeline_root)
    nya = station_file("NYA")
    for month in SAMPLE_MONTHS:
        images = wh.read_partition("asim_images", month, nya).filter(pl.col("valid"))
        keo = wh.read_partition("keograms", month, nya)
        # one time per readable frame, latitude bins around Ny-Ålesund at 110 km
        assert keo["time"].n_unique() == images.height
        assert 74 < keo["lat_deg"].min() < 78.9 < keo["lat_deg"].max() < 84
        movies = wh.read_partition("nightly_movies", month, nya)
        per_day = images.group_by(pl.col("time").dt.date().alias("day")).len()
        assert movies.height == 3  # daily_products_max_days
        assert movies.join(per_day, on="day")["frames"].to_list() == movies.join(per_day, on="day")["len"].to_list()
        first = movies.row(0, named=True)
        frames, seconds = imageio_ffmpeg.count_frames_and_secs(first["path"])
        assert frames == first["frames"] and seconds == pytest.approx(first["seconds"], abs=0.3)
        summaries = sorted((pipeline_root / "figures" / "daily_summary").glob(f"NYA_{month.replace('-', '')}*.png"))
        assert [p.stem.split("_")[1] for p in summaries] == [f"{d:%Y%m%d}" for d in movies["day"].to_list()]
    # auroral maps: each UT day's most auroral frame on the map, inside each station's field of view at 110 km
    maps = wh.sql(
        "SELECT station, count(DISTINCT time) AS n, min(lat_deg) AS lo, max(lat_deg) AS hi FROM auroral_maps "
        "GROUP BY 1 ORDER BY 1"
    )
    assert maps["station"].to_list() == ["GILL", "NYA"]
    assert maps["n"].to_list() == [2 * len(SAMPLE_MONTHS), 3 * len(SAMPLE_MONTHS)]  # THEMIS days; 3 = max days
    (gill_lo, gill_hi), (nya_lo, nya_hi) = maps.select("lo", "hi").rows()
    assert 46 < gill_lo < 56.38 < gill_hi < 67 and 74 < nya_lo < 78.92 < nya_hi < 84
    best = wh.sql(
        "SELECT p.time, p.p_aurora FROM asim_predictions p WHERE station = 'NYA' AND "
        "time::DATE = (SELECT min(time)::DATE FROM auroral_maps WHERE station = 'NYA') "
        "ORDER BY pred IN ('arc', 'diffuse', 'discrete') DESC, p_aurora DESC LIMIT 1"
    )  # auroral class first
    assert wh.sql("SELECT min(time) AS t FROM auroral_maps WHERE station = 'NYA'")["t"][0] == best["time"][0]


def test_catalog_joins_equal_the_asof_merges(pipeline_root):
    wh = Warehouse(pipeline_root)
    month = SAMPLE_MONTHS[0]
    catalog = wh.read_partition("aurora_catalog", month, station_file("NYA"))
    merged = wh.read_partition("asim_ceilometer", month, station_file("NYA"))
    assert catalog.height == merged.height
    assert catalog["cbh_m"].to_list() == merged["cbh_m"].to_list()
    assert catalog["cloud_detected"].to_list() == merged["cloud_detected"].to_list()
    # H and dH/dt: the nearest 1-minute mean of NAL within 60 s, computed here by brute force
    mag = wh.read("magnetometer").filter(pl.col("station") == "NAL").drop_nulls("h_nt").sort("time")
    minutes = mag.group_by_dynamic("time", every="1m").agg(pl.col("h_nt").mean())
    mt, mh = minutes["time"].to_list(), minutes["h_nt"].to_list()
    for row in catalog.sample(40, seed=1).iter_rows(named=True):
        best = min(range(len(mt)), key=lambda i: (abs((mt[i] - row["time"]).total_seconds()), mt[i]))
        if abs((mt[best] - row["time"]).total_seconds()) <= 60:
            assert row["h_nt"] == pytest.approx(mh[best])
        else:
            assert row["h_nt"] is None
    assert catalog["p_aurora_calibrated"].is_not_null().sum() == catalog["p_aurora"].is_not_null().sum()
    assert catalog.filter(pl.col("p_aurora_calibrated").is_not_null())["p_aurora_calibrated"].is_between(0, 1).all()
    from tame_assets.warehouse.store import open_views_database

    con = open_views_database(pipeline_root)  # tame.duckdb's views, as the DuckDB shell sees them
    n = con.execute("SELECT count(*) FROM aurora_catalog WHERE pred = 'discrete' AND NOT cloud_detected").fetchone()[0]
    con.close()
    assert (
        n
        == Warehouse(pipeline_root).sql(
            "SELECT count(*) AS n FROM aurora_catalog WHERE pred = 'discrete' AND NOT cloud_detected"
        )["n"][0]
    )


def test_find_exports_frames_and_a_movie_of_a_catalog_query(pipeline_root, tmp_path):
    import imageio_ffmpeg
    from typer.testing import CliRunner

    from tame_assets.cli import app

    query = (
        "SELECT * FROM aurora_catalog WHERE pred IN ('arc', 'discrete') AND NOT cloud_detected ORDER BY time LIMIT 7"
    )
    out, movie = tmp_path / "frames.csv", tmp_path / "found.mp4"
    result = CliRunner().invoke(
        app, ["find", query, "--out", str(out), "--movie", str(movie), "--data-root", str(pipeline_root)]
    )
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(out)
    assert 0 < rows.height <= 7 and set(rows["pred"].unique()) <= {"arc", "discrete"}
    assert rows["local_path"].null_count() == 0
    assert imageio_ffmpeg.count_frames_and_secs(str(movie))[0] == rows.height
