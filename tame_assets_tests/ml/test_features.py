"""Fast feature extraction on real images: row ↔ file mapping with unreadable files, agreement with
an independent per-image reference path, in-memory arrays, progress, and the bf16 tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from tame_assets.ml import preprocessing as pp
from tame_assets.ml.backbones import load_backbone
from tame_assets.ml.features import (
    BF16_ARGMAX_AGREEMENT,
    BF16_MAX_RELATIVE_ERROR,
    BF16_RELATIVE_TOLERANCE,
    extract_features,
)
from tame_assets.ml.loading import bf16_supported, choose_precision
from tame_assets.ml.runtime import openvino_version
from tame_assets.sources.frame_reader import load_frame


@pytest.fixture(scope="module")
def uio(real_dir) -> list[str]:
    return [str(p) for p in sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))]


def _reference(paths, feature_kind="logits", green=False) -> tuple[np.ndarray, np.ndarray]:
    """Independent slow path: float64 reference preprocessing, unfused network, one image at a time."""
    model = load_backbone("efficientnet_lite0", feature_kind, device="cpu")
    feats, stats = [], []
    with torch.inference_mode():
        for p in paths:
            unit, s = pp.preprocess_reference(load_frame(p), model.input_size, green=green)
            feats.append(model(torch.from_numpy(pp.to_network_input(unit))[None])[0].numpy())
            stats.append(s)
    return np.array(feats), np.array(stats)


def test_features_match_the_reference_path_in_input_order(uio):
    paths = uio[::40][:7]  # 7 images, batches of 3 over 2 worker processes: order must survive
    seen = []
    result = extract_features(
        paths, precision="fp32", batch_size=3, num_workers=2, progress=lambda d, n: seen.append((d, n))
    )
    ref_features, ref_stats = _reference(paths)
    assert result.paths == paths and result.ok.all() and result.errors == [None] * 7
    assert result.features.shape == (7, 1000) and result.features.dtype == np.float32
    np.testing.assert_allclose(result.features, ref_features, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(result.stats, ref_stats, rtol=1e-5, atol=1e-6)
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_truncated_png_in_the_middle_is_quarantined(uio, tmp_path):
    paths = uio[:6]
    broken = tmp_path / "nya6_20141020_000000_5577_cal.png"
    broken.write_bytes(Path(paths[0]).read_bytes()[:5000])  # valid header, truncated pixel data
    missing = str(tmp_path / "nya6_20141020_000001_5577_cal.png")
    with_bad = paths[:3] + [str(broken)] + paths[3:] + [missing]
    result = extract_features(with_bad, precision="fp32", batch_size=4, num_workers=2)
    clean = extract_features(paths, precision="fp32", batch_size=4, num_workers=0)
    assert result.paths == with_bad and len(result.features) == len(with_bad)
    assert result.ok.tolist() == [True] * 3 + [False] + [True] * 3 + [False]
    assert broken.name in result.errors[3] and "file not found" in result.errors[7]
    assert [e is None for e in result.errors] == result.ok.tolist()
    assert np.isnan(result.features[[3, 7]]).all() and np.isnan(result.stats[[3, 7]]).all()
    good = result.ok
    np.testing.assert_allclose(result.features[good], clean.features, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(result.stats[good], clean.stats)


def test_in_memory_arrays_and_oath_rgb(real_dir):
    oath = sorted((real_dir / "oath" / "images" / "cropped_scaled").glob("*.png"))[:3]
    arrays = [load_frame(p) for p in oath]
    from_files = extract_features(oath, feature_kind="pooled", oath=True, precision="fp32", num_workers=0)
    from_arrays = extract_features(arrays, feature_kind="pooled", oath=True, precision="fp32", num_workers=0)
    green_only = extract_features([a[..., 1] for a in arrays], feature_kind="pooled", precision="fp32", num_workers=0)
    assert from_arrays.paths == ["<array 0>", "<array 1>", "<array 2>"] and from_arrays.features.shape == (3, 1280)
    np.testing.assert_array_equal(from_files.features, from_arrays.features)
    np.testing.assert_allclose(from_arrays.features, green_only.features, rtol=1e-6, atol=1e-6)
    ref_features, ref_stats = _reference(oath, "pooled", green=True)
    np.testing.assert_allclose(from_files.features, ref_features, rtol=1e-4, atol=2e-4)
    # rotation: 180° of a centred disk image is a different picture, the statistics barely change
    rotated = extract_features(
        arrays, feature_kind="pooled", oath=True, precision="fp32", num_workers=0, rotate_deg=[180, 180, 180]
    )
    assert not np.allclose(rotated.features, from_arrays.features, atol=1e-3)
    with pytest.raises(ValueError, match="2 angles for 3 images"):
        extract_features(arrays, rotate_deg=[0, 90], num_workers=0)


def test_empty_input_and_bad_arguments():
    result = extract_features([], precision="fp32")
    assert result.features.shape == (0, 1000) and result.ok.shape == (0,) and result.errors == []
    with pytest.raises(ValueError, match="precision"):
        extract_features([], precision="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        extract_features([], batch_size=0)


def test_auto_precision_is_fp32_where_openvino_runs_else_follows_the_hardware(monkeypatch):
    assert openvino_version() is not None  # a dependency: the CPU network runs on OpenVINO here
    assert {choose_precision(torch.device("cpu"), "auto") for _ in range(3)} == {"fp32"}
    monkeypatch.setattr("tame_assets.ml.loading.openvino_version", lambda: None)
    expected = "bf16" if bf16_supported() else "fp32"  # torch: bf16 where the CPU has it natively
    assert {choose_precision(torch.device("cpu"), "auto") for _ in range(3)} == {expected}
    assert choose_precision(torch.device("cpu"), "fp32") == "fp32"
    assert choose_precision(torch.device("cuda"), "auto") == "bf16"


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16 (AVX512-BF16/AMX): bf16 is never used")
def test_bf16_features_within_the_documented_tolerance(uio, real_dir):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    labels = pl.read_csv(real_dir / "uio_asi_nya6" / "labels.csv")
    label_of = dict(zip(labels["filename"], labels["label"]))
    paths = uio[::5]  # 60 real images, all four labels
    fp32 = extract_features(paths, precision="fp32", batch_size=32).features
    bf16 = extract_features(paths, precision="bf16", batch_size=32).features
    rel = np.linalg.norm(bf16 - fp32, axis=1) / np.linalg.norm(fp32, axis=1)
    assert 0 < np.median(rel) <= BF16_RELATIVE_TOLERANCE and rel.max() <= BF16_MAX_RELATIVE_ERROR
    assert np.mean(bf16.argmax(1) == fp32.argmax(1)) >= BF16_ARGMAX_AGREEMENT
    # what matters downstream: a linear classifier fitted on fp32 features decides the same on bf16
    y = np.array([label_of[Path(p).name] for p in paths])
    scaler = StandardScaler().fit(fp32)
    clf = LogisticRegression(C=0.1, max_iter=3000).fit(scaler.transform(fp32), y)
    assert np.mean(clf.predict(scaler.transform(bf16)) == clf.predict(scaler.transform(fp32))) >= 0.95


def test_cpu_worker_processes_run_the_whole_pipeline_with_the_same_features(uio):
    """On the CPU each loader process decodes, preprocesses and runs the network for its own batches
    (data parallel, one torch thread each): same rows and features as in-process with another batch
    size (network calls of at most CPU_WORKER_BATCH images everywhere, so bf16 logits do not move
    with the batch size), the main process's thread count untouched, and each stage's CPU time
    reported for the benchmark's breakdown."""
    paths = uio[100:120]
    threads = torch.get_num_threads()
    parallel = extract_features(paths, batch_size=10, num_workers=2)
    in_process = extract_features(paths, batch_size=64, num_workers=0)
    assert parallel.extra["data_parallel"] and not in_process.extra["data_parallel"]
    assert torch.get_num_threads() == threads
    assert parallel.paths == paths and parallel.ok.all() and parallel.precision == in_process.precision
    np.testing.assert_allclose(parallel.features, in_process.features, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(parallel.stats, in_process.stats)
    for result in (parallel, in_process):
        seconds = result.extra["stage_seconds"]
        assert seconds["decode"] > 0 and seconds["preprocess"] > 0 and seconds["network"] > 0
    assert parallel.extra["stage_seconds"]["busy"] >= parallel.extra["stage_seconds"]["network"]
