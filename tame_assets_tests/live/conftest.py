"""Fixtures of the live-path tests: a real (small) classifier on the pipeline's features, real UiO PNG
frames of the sample archive, and a data root."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tame_assets.config import TameSettings


def fit_classifier(path: Path, seed: int = 0) -> Path:
    """A six-class linear probabilistic SVM (the OATH recipe's model) fitted on random 1000-d "logit"
    vectors and saved with its card: a real saved classifier that the live path applies to real
    EfficientNet-Lite0 features of real frames (built directly: no library-version probe, no CV)."""
    from tame_assets.labels import AURORAL_CLASSES, OATH_CLASSES
    from tame_assets.ml.classifier import AsimClassifier, ModelCard, data_hash
    from tame_assets.ml.preprocessing import PREPROCESSING_VERSION
    from tame_assets.ml.svm import probabilistic_svc

    rng = np.random.default_rng(seed)
    y = np.repeat(np.asarray(OATH_CLASSES), 6)
    X = rng.normal(0, 1, (y.size, 1000)).astype(np.float32) + np.repeat(np.arange(6), 6)[:, None] * 0.5
    card = ModelCard(
        classes=list(OATH_CLASSES),
        aurora_classes=[c for c in OATH_CLASSES if c in AURORAL_CLASSES],
        backbones=["efficientnet_lite0"],
        feature_kind="logits",
        rotations=[0.0],
        preprocessing_version=PREPROCESSING_VERSION,
        library_versions={},
        training_data_sha256=data_hash(X, y),
        n_train=int(y.size),
        hyperparameters={"kernel": "linear", "C": 1.0},
        metrics={},
    )
    model = probabilistic_svc(kernel="linear", C=1.0).fit(X, y)
    return AsimClassifier(model=model, card=card).save(path)


@pytest.fixture(scope="module")
def live_classifier(tmp_path_factory) -> Path:
    return fit_classifier(tmp_path_factory.mktemp("live_model") / "oath_classifier")


@pytest.fixture(scope="module")
def night_frames(sample_archive) -> list[Path]:
    """Eight UiO 16-bit PNG frames of the sample archive (its first, in time order)."""
    frames = sorted((sample_archive / "asim").rglob("nya4_*.png"), key=lambda p: p.name)[:8]
    assert len(frames) == 8
    return frames


@pytest.fixture()
def live_settings(tmp_path) -> TameSettings:
    return TameSettings(data_root=str(tmp_path / "data"), live_keogram_every_s=1e9)  # drawn on close()


def deliver(frames: list[Path], folder: Path) -> None:
    """Put ``frames`` into ``folder`` the way a finished transfer does (copy to a hidden name, rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        tmp = folder / f".{frame.name}.part"
        shutil.copyfile(frame, tmp)
        tmp.rename(folder / frame.name)
