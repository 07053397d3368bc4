"""The embedded sample archive: determinism, physical plausibility of its contents, generation
under concurrency, and the round trip archive → loopback server → real clients → tables."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tame_assets.config import PathLayout
from tame_assets.months import month_bounds
from tame_assets.sources import ceilometer, magnetometer, oath, uio_asi
from tame_assets.sources.http import HttpClient
from tame_assets.sources.images import check_image
from tame_assets.sources.locations import SAMPLE_IMAGE_REQUESTER
from tame_assets.sources.sample import generator as sample

SMALL = dict(months=("2010-12",), images_per_day=1, oath_images=12, size=64)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.e2e
def test_same_seed_gives_byte_identical_archives(tmp_path):
    a = sample.generate_sample_archive(tmp_path / "a", seed=3, **SMALL)
    b = sample.generate_sample_archive(tmp_path / "b", seed=3, **SMALL)
    c = sample.generate_sample_archive(tmp_path / "c", seed=4, **SMALL)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a == files_b and a == b
    assert files_a != _files(tmp_path / "c") and a.image_classes != c.image_classes
    assert len([n for n in files_a if n.endswith(".png")]) == 31
    assert sample.read_manifest(tmp_path / "a") == a


def _image_table(archive: Path) -> pl.DataFrame:
    manifest = sample.read_manifest(archive)
    rows = [(uio_asi.parse_asi_filename(n).time, n, c) for n, c in manifest.image_classes.items()]
    return pl.DataFrame(rows, schema=["time", "file_name", "label"], orient="row").sort("time")


def test_archive_layout_and_formats(sample_archive):
    manifest = sample.read_manifest(sample_archive)
    assert manifest.version == sample.GENERATOR_VERSION and manifest.months == ["2010-12", "2011-01"]
    pngs = sorted((sample_archive / "asim").rglob("*.png"))
    assert len(pngs) == manifest.expected_rows["asim_images"] == len(manifest.image_classes)
    assert all(p.parts[-2] == f"ut{uio_asi.parse_asi_filename(p.name).time:%H}" for p in pngs)
    broken = sorted(p.name for p in pngs if check_image(p) is not None)
    assert broken == sorted(manifest.corrupt_images) and len(broken) == len(manifest.months)
    modes = {Image.open(p).mode for p in pngs if p.name not in broken}
    assert modes == {"L", "I;16"}
    size_mb = sum(p.stat().st_size for p in sample_archive.rglob("*") if p.is_file()) / 1e6
    assert size_mb < 60  # 13 MB of it are the THEMIS CDF frames, stored uncompressed (byte-identical reruns)
    cdfs = sorted((sample_archive / "themis" / "cdf").rglob("thg_l1_asf_gill_*.cdf"))
    pgms = sorted((sample_archive / "themis" / "pgm").rglob("*_gill_themis19_full.pgm.gz"))
    per_month = len(sample.THEMIS_DAYS) * len(sample.THEMIS_HOURS)
    assert len(cdfs) == per_month * len(manifest.months) and len(pgms) == 1
    assert manifest.expected_rows["themis_frames"] == len(cdfs) * sample.THEMIS_FRAMES_PER_HOUR
    overlap = sorted((sample_archive / "themis" / "cdf").rglob("thg_l1_asf_chur_*.cdf"))  # the overlapping station
    assert len(overlap) == len(sample.OVERLAP_HOURS) and len(manifest.overlap_heights_km) == 24
    # + the PGM minute and the overlapping station's frames
    assert len(manifest.themis_classes) == manifest.expected_rows["themis_frames"] + 20 + 24


def test_classes_persist_in_time(sample_archive):
    labels = _image_table(sample_archive)["label"].to_list()
    same = np.mean([a == b for a, b in zip(labels, labels[1:])])
    assert set(labels) == {"arc", "diffuse", "discrete", "cloudy", "moon", "clear"}
    assert same > 0.5  # independent draws would agree 1/6 of the time


def test_magnetometer_follows_auroral_activity(sample_archive):
    files = sorted((sample_archive / "image" / "iaga2002" / "NAL").rglob("*.min"))
    mag = pl.concat([magnetometer.parse_iaga2002(f) for f in files])
    header = files[0].read_text().splitlines()
    assert any("Reported" in ln and "XYZF" in ln for ln in header) and mag["f_nt"].null_count() == mag.height
    quiet_x = mag["x_nt"].median()
    assert 7800 < quiet_x < 8000 and 700 < mag["y_nt"].median() < 900 and 52500 < mag["z_nt"].median() < 52700
    images = _image_table(sample_archive).with_columns(pl.col("time").dt.truncate("1m"))
    joined = images.join(mag, on="time", how="inner").drop_nulls("x_nt")
    depression = joined.group_by("label").agg((quiet_x - pl.col("x_nt")).mean().alias("bay_nt"))
    bay = dict(depression.iter_rows())
    assert min(bay["arc"], bay["discrete"]) > bay["diffuse"] > max(bay["clear"], bay["moon"])
    assert bay["discrete"] > 150  # bays of hundreds of nT
    assert mag["x_nt"].null_count() > 0  # 99999.00 gaps became NULL


def test_cloud_base_follows_cloudy_images(sample_archive):
    ceil = pl.concat(
        [
            ceilometer.parse_pangaea_tab(
                sample.pangaea_dataset_path(sample_archive, sample.ceilometer_child_id(month)),
                "NYA",
                grid=month_bounds(month),
            )
            for month in sample.read_manifest(sample_archive).months
        ]
    )
    images = _image_table(sample_archive).with_columns(pl.col("time").dt.truncate("5m"))
    joined = images.join(ceil, on="time", how="inner").filter(~pl.col("missing"))
    low = joined.with_columns((pl.col("cbh_m") < 2000).fill_null(False).alias("low"))
    share = dict(low.group_by(pl.col("label") == "cloudy").agg(pl.col("low").mean()).iter_rows())
    assert share[True] > 0.8 and share[False] < 0.2
    assert ceil["missing"].sum() > 0 and (~ceil["cloud_detected"].fill_null(True)).sum() > 0


@pytest.mark.e2e
def test_round_trip_through_loopback_server_and_clients(sample_archive, tmp_path):
    manifest = sample.read_manifest(sample_archive)
    root = sample_archive.parent
    server = sample.SampleArchiveServer.for_root(root)
    assert sample.SampleArchiveServer.for_root(root) is server and server.url.startswith("http://127.0.0.1:")
    urls = sample.sample_locations(root)
    client = HttpClient()
    for month in manifest.months:
        expected, truth = manifest.rows_per_month[month], manifest.truth_per_month[month]
        images, quarantine = uio_asi.fetch_month(
            client, urls["uio_base_url"], "nya4", [557.7], month, tmp_path / "asim"
        )
        mag = magnetometer.fetch_month(
            client, urls["image_base_url"], "NAL", month, tmp_path / "mag", SAMPLE_IMAGE_REQUESTER
        )
        ceil = ceilometer.fetch_month(client, urls["pangaea_url"], "NYA", month, tmp_path / "ceil").table
        assert images.height == expected["asim_images"] and mag.height == expected["magnetometer"]
        assert ceil.height == expected["ceilometer"]
        assert quarantine["file"].to_list() == [n for n in manifest.corrupt_images if month.replace("-", "") in n]
        assert images.filter(~pl.col("valid"))["file_name"].to_list() == quarantine["file"].to_list()
        assert quarantine.height == truth["corrupt_images"] == 1
        assert mag["x_nt"].null_count() == truth["magnetometer_missing_x"]
        assert ceil["missing"].sum() == truth["ceilometer_missing"]
        assert ceil["cloud_detected"].sum() == truth["ceilometer_cloud"]
        assert set(images["file_name"]) == {n for n in manifest.image_classes if month.replace("-", "") in n}
    labels = oath.fetch_oath(client, urls["oath_url"], tmp_path / "oath")
    assert labels.height == manifest.expected_rows["oath_images"]
    assert dict(labels.group_by("label").len().iter_rows()) == manifest.oath_class_counts
    assert len(set(manifest.oath_class_counts.values())) == 1  # balanced
    crop = np.asarray(Image.open(labels["path"][0]))
    assert crop.ndim == 3 and not crop[..., 0].any() and not crop[..., 2].any() and crop[..., 1].any()
    assert all(Path(p).exists() for p in labels["path_rotated"])


@pytest.mark.e2e
def test_ensure_generates_once_under_concurrency(tmp_path, monkeypatch):
    root = PathLayout.for_root(tmp_path, sample_cache="off")  # setting sample_cache: generated in the data root itself
    calls = []
    original = sample.generate_sample_archive

    def small(dest, **kw):
        calls.append(dest)
        return original(dest, **SMALL)

    monkeypatch.setattr(sample, "generate_sample_archive", small)
    results, errors = [], []

    def worker():
        try:
            results.append(sample.ensure_sample_archive(root))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1 and set(results) == {tmp_path.resolve() / "sample_archive"}
    archive = results[0]
    assert sample.read_manifest(archive).expected_rows["asim_images"] == 31
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["sample_archive"]
    # an archive written by another generator version is replaced
    manifest = json.loads((archive / "manifest.json").read_text())
    (archive / "manifest.json").write_text(json.dumps({**manifest, "version": 1}))
    (archive / "stale.txt").write_text("old")
    assert sample.ensure_sample_archive(root) == archive and len(calls) == 2
    assert not (archive / "stale.txt").exists() and sample.read_manifest(archive).version == sample.GENERATOR_VERSION
    assert sample.ensure_sample_archive(root) == archive and len(calls) == 2  # current: kept


def test_ensure_copies_the_cached_archive_generated_once_per_version(tmp_path, monkeypatch):
    calls = []
    original = sample.generate_sample_archive
    monkeypatch.setattr(
        sample, "generate_sample_archive", lambda dest, **kw: calls.append(dest) or original(dest, **SMALL)
    )
    first, second = (
        sample.ensure_sample_archive(PathLayout.for_root(tmp_path / name, sample_cache=str(tmp_path / "cache")))
        for name in ("one", "two")
    )
    cache = sample.sample_cache_dir(PathLayout.for_root(tmp_path / "one", sample_cache=str(tmp_path / "cache")))
    assert cache == tmp_path / "cache" / f"sample_archive-v{sample.GENERATOR_VERSION}" and calls == [calls[0]]

    def tree(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(first) == tree(second) == tree(cache) and len(tree(cache)) > 30
    day = next(second.rglob("*vmin.min"))
    day.write_text("changed")  # a test editing its archive edits a copy, never the cache
    assert next(cache.rglob(day.name)).read_text() != "changed"
