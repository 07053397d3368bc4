"""Training classifiers on a user's labelled images: frozen-feature SVM and fine-tuned last block,
through the API and ``tame train`` / ``tame classify``, on a class-balanced subset of the real UiO set."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tame_assets.ml.classifier import AsimClassifier
from tame_assets.ml.finetune import AUGMENTATIONS, SVM_ROTATIONS, FineTuneConfig, FineTunedNetwork, augment
from tame_assets.ml.labelled_eval import evaluate_labelled_set
from tame_assets.ml.svm import features_for, proba_in_order

PER_LABEL = 8


@pytest.fixture(scope="module")
def real_subset(real_dir, tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """(labels.csv of the first ``PER_LABEL`` images of each label, the real images folder, rows)."""
    folder = real_dir / "uio_asi_nya6"
    with open(folder / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    subset, seen = [], Counter()
    for row in rows:
        seen[row["label"]] += 1
        if seen[row["label"]] <= PER_LABEL:
            subset.append(row)
    labels_csv = tmp_path_factory.mktemp("subset") / "labels.csv"
    with open(labels_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(subset)
    return labels_csv, folder / "images", subset


def test_augmentations_are_exact_quarter_turns_and_mirrors():
    units = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    assert np.array_equal(augment(units, 0, False), units)
    assert np.array_equal(augment(units, 1, False)[0], [[2, 5, 8], [1, 4, 7], [0, 3, 6]])  # counter-clockwise
    assert np.array_equal(augment(units, 0, True)[1], units[1][:, ::-1])
    assert np.array_equal(augment(augment(units, 2, False), 2, False), units)  # four quarter turns
    assert len(set(AUGMENTATIONS)) == 8  # the dihedral group of the square: all distinct
    with pytest.raises(ValueError, match="fine-tuning supports"):
        FineTuneConfig(backbone="shufflenet_v2_x1_0")


@pytest.mark.e2e
def test_fine_tuned_classifier_trains_saves_and_classifies(real_subset, tmp_path):
    labels_csv, images, rows = real_subset
    config = FineTuneConfig(epochs=3, blend_frozen_svm=True, networks=2)
    clf = AsimClassifier.train(labels_csv, images, fine_tune=config, folds=2)
    card = clf.card
    assert card.method == "fine_tune" and card.feature_kind == "fine_tuned" and card.backbones == [config.backbone]
    assert card.classes == ["arc", "diffuse", "discrete", "aurora-less"] and card.aurora_classes == card.classes[:3]
    assert card.hyperparameters["epochs"] == 3 and card.n_train == len(rows) == 4 * PER_LABEL
    m = card.metrics
    assert m["cv_folds"] == 2 and len(m["folds"]) == 2 and set(m["components"]) == {"fine_tuned", "frozen_svm"}
    assert np.asarray(m["confusion_matrix"]).sum() == len(rows)
    assert 0 <= m["accuracy_mean"] <= m["binary_accuracy_mean"] <= 1  # a right label is a right aurora/no-aurora

    saved = clf.save(tmp_path / "model")
    reloaded = AsimClassifier(saved)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    files = [str(images / r["filename"]) for r in rows] + [str(broken)]
    df = reloaded.classify_images(files)
    assert df["file"].to_list() == files
    assert df.row(-1, named=True)["pred"] is None and "broken.png" in df.row(-1, named=True)["error"]
    good = df.head(len(rows))
    probs = good.select([f"p_{c}" for c in card.classes]).to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(good["p_aurora"], probs[:, :3].sum(axis=1), atol=1e-9)
    # the network learned its training images (chance is 25 %), and the reload predicts what was saved
    assert np.mean(good["pred"].to_numpy() == np.array([r["label"] for r in rows])) >= 0.75
    np.testing.assert_allclose(
        clf.classify_images(files[:4]).select(f"p_{card.classes[0]}").to_numpy(),
        good.head(4).select(f"p_{card.classes[0]}").to_numpy(),
        atol=1e-6,
    )
    # the probabilities are the mean of the fine-tuned network's and the frozen-feature SVM's
    net = reloaded.model
    alone = FineTunedNetwork(net.config, net.classes, net.states).predict_proba_images(files[:4])[0]
    # … and the network part is the mean of its two differently initialised networks
    assert len(net.states) == 2
    members = [
        FineTunedNetwork(net.config, net.classes, [state]).predict_proba_images(files[:4])[0] for state in net.states
    ]
    assert not np.allclose(*members, atol=1e-3)
    np.testing.assert_allclose(alone, np.mean(members, axis=0), atol=1e-6)
    legacy = FineTunedNetwork.__new__(FineTunedNetwork)  # a model saved before ensembles: one "state"
    legacy.__setstate__({"config": asdict(net.config), "classes": net.classes, "state": net.states[0], "svm": None})
    np.testing.assert_allclose(legacy.predict_proba_images(files[:4])[0], members[0], atol=1e-6)
    X = features_for(files[:4], [net.config.backbone], "logits", SVM_ROTATIONS)[0]
    np.testing.assert_allclose(probs[:4], (alone + proba_in_order(net.svm, X, net.classes)) / 2, atol=1e-6)
    with pytest.raises(TypeError, match="classify_images"):
        reloaded.predict_features(np.zeros((1, 1000), np.float32))


@pytest.mark.e2e
def test_tame_train_then_classify_cli(real_subset, tmp_path):
    labels_csv, images, rows = real_subset
    tame = Path(sys.executable).with_name("tame")
    model = tmp_path / "svm"
    run = subprocess.run(
        [
            str(tame),
            "train",
            "--labels",
            str(labels_csv),
            "--images",
            str(images),
            "--out",
            str(model),
            "--backbone",
            "efficientnet_lite0",
            "--rotation",
            "0",
            "--folds",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "method: svm on efficientnet_lite0" in run.stdout and "binary_accuracy_mean: " in run.stdout
    assert AsimClassifier(model).card.n_train == len(rows)

    folder = tmp_path / "imgs"
    folder.mkdir()
    for r in rows[:5]:
        (folder / r["filename"]).symlink_to(images / r["filename"])
    out = tmp_path / "preds.parquet"
    run = subprocess.run(
        [str(tame), "classify", str(folder), "--model", str(model), "--out", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    preds = pl.read_parquet(out)
    assert sorted(Path(f).name for f in preds["file"]) == sorted(r["filename"] for r in rows[:5])
    assert preds["pred"].is_in(["arc", "diffuse", "discrete", "aurora-less"]).all()

    bad = subprocess.run(
        [
            str(tame),
            "train",
            "--labels",
            str(labels_csv),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "x"),
            "--fine-tune",
            "--backbone",
            "resnet18",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "fine-tuning supports" in bad.stderr
    bad = subprocess.run(
        [
            str(tame),
            "train",
            "--labels",
            str(labels_csv),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "x"),
            "--fine-tune",
            "--networks",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "networks must be ≥ 1" in bad.stderr


@pytest.mark.e2e
def test_labelled_set_evaluation_adds_the_fine_tuned_row(real_subset):
    labels_csv, images, rows = real_subset
    paths = [str(images / r["filename"]) for r in rows]
    result = evaluate_labelled_set(
        paths,
        [r["label"] for r in rows],
        backbones=["efficientnet_lite0"],
        feature_kinds=["logits"],
        rotations=[0.0],
        folds=2,
        fine_tune=FineTuneConfig(epochs=1),
    )
    table = result.table
    assert table.select("feature_kind", "rotations").rows() == [("logits", 1), ("fine_tuned", 4)]
    assert table["backbone"].to_list() == ["efficientnet_lite0", "efficientnet_lite2"]
    assert set(result.confusion) == {"efficientnet_lite0 / logits", "efficientnet_lite2 / fine-tuned"}
    assert all(cm.sum() == len(rows) for cm in result.confusion.values())
