"""The OpenVINO CPU runtime: fp32 features equal torch's on real images, a frame's features do not
depend on its batch, the IR is converted once and kept, a failed conversion falls back to torch,
and (slow lane) the issue's decision check on all 300 real images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from tame_assets.ml import runtime
from tame_assets.ml.backbones import load_backbone
from tame_assets.ml.features import extract_features
from tame_assets.ml.loading import to_input_batch
from tame_assets.ml.preprocessing import preprocess
from tame_assets.ml.runtime import NETWORK_BATCH, openvino_network
from tame_assets.sources.frame_reader import load_frame


@pytest.fixture(scope="module")
def uio(real_dir) -> list[str]:
    return [str(p) for p in sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))]


def _torch_only(monkeypatch):
    monkeypatch.setattr("tame_assets.ml.features.openvino_network", lambda *a, **k: None)


def _relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def test_fp32_features_equal_torch_fp32_on_real_images(uio, monkeypatch):
    paths = uio[::15]  # 20 images
    ours = extract_features(paths, num_workers=2, batch_size=8)
    assert ours.precision == "fp32" and ours.extra["runtime"] == "openvino"
    _torch_only(monkeypatch)
    reference = extract_features(paths, precision="fp32", num_workers=0)
    assert reference.extra["runtime"] == "torch"
    assert _relative(ours.features, reference.features).max() < 1e-5
    np.testing.assert_array_equal(ours.stats, reference.stats)


def test_a_frames_features_do_not_depend_on_its_batch(uio):
    model = load_backbone("efficientnet_lite0", "logits", device="cpu")
    network = openvino_network(model, "fp32", 1)
    n = 3 * NETWORK_BATCH + 1  # three full chunks and a padded one
    units = torch.from_numpy(np.stack([preprocess(load_frame(p), 224)[0] for p in uio[:n]]))
    full = network(to_input_batch(units))
    assert full.shape == (n, 1000) and full.dtype == torch.float32 and torch.isfinite(full).all()
    for part in (slice(3, 8), slice(n - 1, n), slice(1, n - 2)):
        np.testing.assert_array_equal(network(to_input_batch(units[part])).numpy(), full[part].numpy())
    assert network(torch.zeros(0, 3, 224, 224)).shape == (0, 1000)


def test_the_network_is_converted_once_and_kept(tmp_path, monkeypatch, caplog):
    model = load_backbone("efficientnet_lite0", "pooled", device="cpu")
    network = openvino_network(model, "fp32", 1, cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert [Path(network.ir_path).name] == [f for f in files if f.endswith(".xml")] and len(files) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch folder left
    assert network.feature_dim == 1280
    runtime._converted.cache_clear()  # as a new process: the IR on disk is read, not converted again

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr("openvino.convert_model", no_conversion)
    assert openvino_network(model, "bf16", 1, cache_dir=tmp_path).ir_path == network.ir_path
    # a failed conversion: a warning, and the caller runs torch
    with caplog.at_level(logging.WARNING, logger="tame_assets.ml.runtime"):
        assert openvino_network(model, "fp32", 1, cache_dir=tmp_path / "elsewhere") is None
    assert "OpenVINO conversion of efficientnet_lite0-pooled" in caplog.text and "using torch" in caplog.text


def test_without_openvino_torch_computes_the_features(uio, monkeypatch):
    monkeypatch.setattr(runtime, "openvino_version", lambda: None)
    result = extract_features(uio[:3], precision="fp32", num_workers=0)
    assert result.extra["runtime"] == "torch" and result.ok.all()


@pytest.mark.e2e
def test_decisions_equal_the_torch_fp32_path_on_all_300_real_images(uio, real_dir, monkeypatch):
    """The issue's check of a numerics change: the shipped classifier recipe (standardised RBF SVM,
    C and γ chosen inside each training fold), 5-fold CV on the 300 real images, trained and tested on
    each path's features: predictions agree on ≥ 99 % of images, accuracy moves by ≤ 1 point."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from tame_assets.ml.svm import choose_rbf_params

    labels = pl.read_csv(real_dir / "uio_asi_nya6" / "labels.csv")
    label_of = dict(zip(labels["filename"], labels["label"]))
    y = np.array([label_of[Path(p).name] for p in uio])
    ours = extract_features(uio).features
    _torch_only(monkeypatch)
    reference = extract_features(uio, precision="fp32").features

    def predictions(X: np.ndarray) -> np.ndarray:
        pred = np.empty(len(y), dtype=object)
        for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
            best = choose_rbf_params(X[train], y[train], 4, 0)
            pred[test] = (
                make_pipeline(StandardScaler(), SVC(kernel="rbf", **best)).fit(X[train], y[train]).predict(X[test])
            )
        return pred

    ours_pred, reference_pred = predictions(ours), predictions(reference)
    assert np.mean(ours_pred == reference_pred) >= 0.99
    assert abs(np.mean(ours_pred == y) - np.mean(reference_pred == y)) <= 0.01


def test_bf16_on_a_cpu_without_native_bf16_runs_and_says_fp32(uio, monkeypatch, caplog):
    """OpenVINO quietly runs fp32 where the CPU has no bf16: the result and the log say so."""
    monkeypatch.setattr("tame_assets.ml.features.bf16_supported", lambda: False)
    with caplog.at_level(logging.WARNING, logger="tame_assets.ml.features"):
        asked = extract_features(uio[:5], precision="bf16", num_workers=0)
    assert asked.precision == "fp32" and asked.extra["runtime"] == "openvino"
    assert "this CPU has no native bf16" in caplog.text
    np.testing.assert_array_equal(asked.features, extract_features(uio[:5], precision="fp32", num_workers=0).features)
