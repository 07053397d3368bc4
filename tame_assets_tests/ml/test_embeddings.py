"""Search embeddings and novelty (tame_assets.ml.embeddings) on small synthetic features."""

import numpy as np
import pytest

from tame_assets.ml.embeddings import EmbeddingModel, NoveltyModel, dequantize, fit_embedding, l2_normalise, quantize


def _clusters(rng, n_per=40, dim=50, classes=("arc", "diffuse", "clear"), noise=1.0):
    """Labelled features: a class direction buried in large label-free variation."""
    centres = rng.normal(size=(len(classes), dim)) * 1.2
    nuisance = rng.normal(size=(3, dim)) * 3.0  # strong directions unrelated to the label
    X, y = [], []
    for c, name in enumerate(classes):
        X.append(centres[c] + rng.normal(size=(n_per, 3)) @ nuisance + noise * rng.normal(size=(n_per, dim)))
        y += [name] * n_per
    return np.vstack(X).astype(np.float32), np.array(y)


def _precision_at(E, y, k=5):
    E = l2_normalise(E)
    S = E @ E.T
    np.fill_diagonal(S, -np.inf)
    nn = np.argsort(-S, axis=1)[:, :k]
    return float(np.mean(y[nn] == y[:, None]))


def test_trained_embedding_finds_same_label_neighbours_on_held_out_frames():
    rng = np.random.default_rng(0)
    X, y = _clusters(rng)
    test = np.arange(len(y)) % 4 == 0
    model = fit_embedding(X[~test], y[~test], backbone="b", feature_kind="pooled", appearance_dims=16)
    E = model.transform(X)
    assert E.shape == (len(y), 16 + 3) and np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5)
    raw, trained = _precision_at(X[test], y[test]), _precision_at(E[test], y[test])
    assert trained > raw + 0.2 and trained > 0.65, (raw, trained)


def test_rows_without_features_stay_nan_and_wrong_width_is_refused():
    rng = np.random.default_rng(1)
    X, y = _clusters(rng, n_per=10, dim=12)
    model = fit_embedding(X, y, backbone="b", feature_kind="logits", appearance_dims=4)
    X2 = X[:3].copy()
    X2[1] = np.nan
    E = model.transform(X2)
    assert np.isnan(E[1]).all() and np.isfinite(E[[0, 2]]).all()
    with pytest.raises(ValueError, match="expects 12 columns"):
        model.transform(X[:, :5])


def test_save_load_round_trip_and_version_follows_the_fit(tmp_path):
    rng = np.random.default_rng(2)
    X, y = _clusters(rng, n_per=15, dim=20)
    model = fit_embedding(X, y, backbone="b", feature_kind="pooled", appearance_dims=8)
    loaded = EmbeddingModel.load(model.save(tmp_path / "m.npz"))
    assert loaded.version == model.version and loaded.version.startswith("emb1-b-pooled-11d-")
    np.testing.assert_allclose(loaded.transform(X), model.transform(X), atol=1e-6)
    other = fit_embedding(X[5:], y[5:], backbone="b", feature_kind="pooled", appearance_dims=8)
    assert other.version != model.version
    weighted = fit_embedding(X, y, backbone="b", feature_kind="pooled", appearance_dims=8, label_weight=0.9)
    assert weighted.version != model.version


def test_int8_storage_keeps_cosines():
    rng = np.random.default_rng(3)
    E = l2_normalise(rng.normal(size=(200, 70)))
    codes, scale = quantize(E)
    assert codes.dtype == np.int8 and scale.dtype == np.float32 and np.abs(codes).max() == 127
    D = dequantize(codes, scale)
    assert np.abs(D @ D.T - E @ E.T).max() < 0.01


def test_novelty_ranks_an_unseen_kind_of_frame_above_known_ones(tmp_path):
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(4, 30)) * 2.0  # three known kinds of frame and a new one
    X = np.vstack([c + rng.normal(size=(30, 30)) for c in centres]).astype(np.float32)
    y = np.repeat(["a", "b", "c", "new"], 30)
    known = y != "new"
    train = known & (np.arange(len(y)) % 3 != 0)
    novelty = NoveltyModel.fit(l2_normalise(X[train]))
    novelty = NoveltyModel.load(novelty.save(tmp_path / "n.npz"))
    score, pct = novelty.score(l2_normalise(X))
    held_known, unseen = known & ~train, ~known
    assert np.median(pct[unseen]) > 0.9 and np.median(pct[held_known]) < np.median(pct[unseen])
    assert ((pct >= 0) & (pct <= 1)).all() and np.median(score[unseen]) > np.median(score[held_known])
