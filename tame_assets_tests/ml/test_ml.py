"""Preprocessing on arrays with known results, backbones, fast extraction, classifier cards and the API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.ml import preprocessing as pp
from tame_assets.ml.backbones import WeightsUnavailableError, list_backbones, load_backbone
from tame_assets.ml.classifier import AsimClassifier, ClassifierCardMismatch
from tame_assets.ml.features import extract_features


# ----------------------------------------------------------------------------- preprocessing
def test_disk_mask_radius():
    mask = pp.disk_mask(9, 9)  # radius 4 around (4, 4)
    assert mask[4, 0] and mask[0, 4] and mask[8, 4] and not mask[0, 0] and not mask[1, 1]
    assert mask.sum() == sum(1 for y in range(9) for x in range(9) if (y - 4) ** 2 + (x - 4) ** 2 <= 16)


def test_percentile_clip_and_scaling_on_a_known_ramp():
    h = 41
    mask = pp.disk_mask(h, h)
    n = int(mask.sum())
    grey = np.zeros((h, h), np.float32)
    grey[mask] = np.arange(n) * 100.0  # 16-bit range values 0 … 100·(n−1), each once
    lo, hi = 0.005 * (n - 1) * 100.0, 0.995 * (n - 1) * 100.0  # linear-interpolated percentiles of a ramp
    unit = pp.scale_to_unit(grey, mask)
    expected = np.clip((grey[mask] - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(unit[mask], expected, atol=1e-6)
    assert (unit[~mask] == 0).all() and unit.max() == 1.0 and unit.min() == 0.0


def test_16bit_input_is_not_saturated_and_matches_8bit():
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, (64, 64)).astype(np.uint8)
    img16 = img8.astype(np.uint16) * 257  # same image on the full 16-bit scale (max 65535)
    u8, s8 = pp.preprocess(img8, 32)
    u16, s16 = pp.preprocess(img16, 32)
    np.testing.assert_allclose(u8, u16, atol=1e-5)
    np.testing.assert_allclose(s8, s16, atol=1e-4)
    # a 16-bit image whose signal lives above 255 keeps its structure (the paper's code clipped it away)
    ramp = np.tile(np.linspace(1000, 65535, 64, dtype=np.float32), (64, 1)).astype(np.uint16)
    unit, _ = pp.preprocess(ramp, 64)
    inside = unit[pp.disk_mask(64, 64)]
    assert inside.std() > 0.2 and len(np.unique(np.round(inside, 3))) > 50


def test_green_channel_only_and_imagenet_normalisation():
    chw = pp.to_network_input(np.ones((4, 4), np.float32))
    np.testing.assert_allclose(chw[0], -0.485 / 0.229, rtol=1e-6)  # R = 0 before normalisation
    np.testing.assert_allclose(chw[1], (1 - 0.456) / 0.224, rtol=1e-6)
    np.testing.assert_allclose(chw[2], -0.406 / 0.225, rtol=1e-6)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 200
    rgb[..., 0] = 50
    assert (pp.to_grey(rgb, green=True) == 200).all()


def test_histogram_stats_against_scipy():
    rng = np.random.default_rng(3)
    unit = rng.beta(2, 5, (50, 50)).astype(np.float32)
    mask = pp.disk_mask(50, 50)
    v = unit[mask].astype(np.float64)
    got = dict(zip(pp.STAT_NAMES, pp.histogram_stats(unit, mask)))
    counts, _ = np.histogram(v, bins=128, range=(0, 1))
    p = counts / counts.sum()
    assert got["min"] == pytest.approx(v.min()) and got["max"] == pytest.approx(v.max())
    assert got["median"] == pytest.approx(np.median(v)) and got["mean"] == pytest.approx(v.mean(), rel=1e-5)
    assert got["variance"] == pytest.approx(v.var(), rel=1e-4)
    assert got["skewness"] == pytest.approx(scipy_stats.skew(v), rel=1e-4)
    assert got["kurtosis"] == pytest.approx(scipy_stats.kurtosis(v), rel=1e-4)
    assert got["entropy"] == pytest.approx(scipy_stats.entropy(p, base=2), rel=1e-5)
    assert got["energy"] == pytest.approx((p**2).sum(), rel=1e-5)


# ----------------------------------------------------------------------------- backbones
def _real_images(real_dir, n):
    return sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))[:n]


def test_lite0_weights_give_same_logits_twice(real_dir):
    model = load_backbone("efficientnet_lite0", "logits", device="cpu")
    assert model.input_size == 224 and model.feature_dim == 1000
    unit, _ = pp.preprocess(np.asarray(Image.open(_real_images(real_dir, 1)[0])), 224)
    x = torch.from_numpy(pp.to_network_input(unit))[None]
    with torch.inference_mode():
        a, b = model(x), model(x)
    assert torch.equal(a, b)
    assert torch.softmax(a, 1).max() > 0.01 and a.std() > 0.5  # real ImageNet weights, not a random head


def test_torchvision_backbones_need_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    infos = {b.name: b for b in list_backbones()}
    assert infos["efficientnet_lite0"].available and not infos["shufflenet_v2_x1_0"].available
    with pytest.raises(WeightsUnavailableError, match=r"shufflenet_v2_x1_0.*checkpoints.*weights_path"):
        load_backbone("shufflenet_v2_x1_0")
    import torchvision

    weights = tmp_path / "mnv3.pth"
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(), weights)
    model = load_backbone("mobilenet_v3_small", "pooled", weights_path=weights, device="cpu")
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 224, 224)).shape == (2, model.feature_dim)


# ----------------------------------------------------------------------------- extraction
def test_quarantine_keeps_file_row_mapping(real_dir, tmp_path):
    paths = [str(p) for p in _real_images(real_dir, 6)]
    broken = tmp_path / "nya6_20141020_000000_5577_cal.png"
    broken.write_bytes(Path(paths[0]).read_bytes()[:5000])
    with_bad = paths[:3] + [str(broken)] + paths[3:]
    result = extract_features(with_bad, precision="fp32", batch_size=4, num_workers=2)
    clean = extract_features(paths, precision="fp32", batch_size=4, num_workers=0)
    assert result.paths == with_bad and result.ok.tolist() == [True] * 3 + [False] + [True] * 3
    assert broken.name in result.errors[3] and np.isnan(result.features[3]).all()
    np.testing.assert_allclose(np.delete(result.features, 3, axis=0), clean.features, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- classifier and API
def test_classify_images_one_row_per_file(small_classifier, sample_archive, tmp_path):
    path, metrics = small_classifier
    images = sorted((sample_archive / "asim").rglob("*.png"))[:7]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    files = [str(p) for p in images[:3]] + [str(broken)] + [str(p) for p in images[3:]]
    df = AsimClassifier(path).classify_images(files, batch_size=4)
    assert df["file"].to_list() == files and df.height == len(files)
    bad = df.row(3, named=True)
    assert bad["pred"] is None and "broken.png" in bad["error"]
    good = df.filter(pl.col("error").is_null())
    probs = good.select([f"p_{c}" for c in ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")]).to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(good["p_aurora"], probs[:, :3].sum(axis=1), atol=1e-9)
    assert 0 <= metrics["accuracy6"] <= 1 and metrics["n_test"] == 6 * 3


def test_card_mismatch_is_refused(small_classifier, tmp_path):
    path, _ = small_classifier
    with pytest.raises(ClassifierCardMismatch, match="backbone 'efficientnet_lite0' ≠ 'efficientnet_lite1'"):
        AsimClassifier.load(path, expect_backbone="efficientnet_lite1")
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    card = json.loads((copy / "model_card.json").read_text())
    card["preprocessing_version"] = "paper-8bit"
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ClassifierCardMismatch, match="preprocessing 'paper-8bit'"):
        AsimClassifier(copy)
    reloaded = AsimClassifier(path)
    X = np.random.default_rng(0).normal(size=(3, 1000)).astype(np.float32)
    assert np.allclose(reloaded.predict_features(X)[1], AsimClassifier.load(path).predict_features(X)[1])


def test_missing_classifier_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="tame materialize --select oath_classifier"):
        AsimClassifier(data_root=tmp_path)


def test_tame_classify_cli_writes_one_row_per_image(small_classifier, sample_image_folder, tmp_path):
    path, _ = small_classifier
    folder = sample_image_folder(5)
    out = tmp_path / "preds.parquet"
    run = CliRunner().invoke(app, ["classify", str(folder), "--model", str(path), "--out", str(out)])
    assert run.exit_code == 0, run.output
    preds = pl.read_parquet(out)
    assert sorted(Path(f).name for f in preds["file"]) == sorted(p.name for p in folder.iterdir())
    assert "5 rows" in run.stdout
