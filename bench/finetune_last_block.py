"""Accuracy experiment: fine-tuning the last MBConv block of EfficientNet-Lite2
(:mod:`tame_assets.ml.finetune`: ``tame train --fine-tune``, and its blend with the frozen-feature
SVM, ``--blend-svm``) vs the frozen-feature SVM alone (``tame train``) on the 300 real UiO images
(``../shared/data/real/uio_asi_nya6``), with the same stratified 5-fold splits, side by side in one
run, repeated over fold splits (``--seeds``: each seed draws the folds and initialises the networks).

Frozen features: Lite2 logits averaged over 4 rotations, standardised RBF SVM, C and γ chosen inside
each training fold (:func:`tame_assets.ml.classifier.cross_validated_metrics`).

    .venv/bin/python bench/finetune_last_block.py [--seeds 0,1,2,3,4] [--epochs 8] [--trainable-blocks 1]
        [--label-smoothing 0] [--networks 1] [--input-size 260]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from tame_assets.ml.finetune import FineTuneConfig, cross_validate, load_units, trunk_activations
from tame_assets.ml.svm import DEFAULT_TRAIN_ROTATIONS, cross_validated_metrics, features_for, label_order

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "uio_asi_nya6"
METHODS = ("frozen SVM (tame train)", "fine-tuned (--fine-tune)", "fine-tuned + SVM (--blend-svm)")


def per_class_recall(metrics: dict) -> str:
    """'arc 0.59, diffuse 0.38, …': the share of each class's held-out images predicted as that class."""
    cm = np.asarray(metrics["confusion_matrix"], dtype=float)
    return ", ".join(f"{c} {cm[i, i] / cm[i].sum():.2f}" for i, c in enumerate(metrics["classes"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", help="Comma-separated fold-split seeds, e.g. 0,1,2,3,4.")
    ap.add_argument("--epochs", type=int, default=FineTuneConfig.epochs)
    ap.add_argument("--trainable-blocks", type=int, default=FineTuneConfig.trainable_blocks)
    ap.add_argument("--label-smoothing", type=float, default=FineTuneConfig.label_smoothing)
    ap.add_argument("--networks", type=int, default=FineTuneConfig.networks, help="Networks averaged.")
    ap.add_argument("--input-size", type=int, default=None, help="Input side (px); default: the backbone's.")
    args = ap.parse_args(argv)
    if not REAL.exists():
        print(f"{REAL} is absent: this experiment needs the real labelled UiO images")
        return 1
    table = pl.read_csv(REAL / "labels.csv")
    paths = [str(REAL / "images" / f) for f in table["filename"]]
    labels = np.asarray(table["label"].to_list())
    classes = label_order(labels)  # as tame train: the output order changes the initialisation
    auroral = [c for c in classes if c != "aurora-less"]
    y = np.array([classes.index(label) for label in labels])
    config = FineTuneConfig(
        epochs=args.epochs,
        trainable_blocks=args.trainable_blocks,
        label_smoothing=args.label_smoothing,
        networks=args.networks,
        input_size=args.input_size,
    )
    print(f"fine-tuning recipe: {config}")
    started = time.perf_counter()
    X, _, _ = features_for(paths, [config.backbone], "logits", DEFAULT_TRAIN_ROTATIONS)
    acts = trunk_activations(load_units(paths, config.size)[0], config)
    print(f"frozen features and trunk activations: {time.perf_counter() - started:.0f} s")
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        started = time.perf_counter()
        tuned = cross_validate(acts, y, classes, auroral, replace(config, seed=seed), X=X)
        row = [
            cross_validated_metrics(X, labels, classes, auroral, seed=seed),
            tuned["components"]["fine_tuned"],
            tuned,
        ]
        results.append([(m["accuracy_mean"], m["binary_accuracy_mean"]) for m in row])
        print(
            f"split seed {seed} ({time.perf_counter() - started:.0f} s): "
            + "; ".join(f"{name} {a:.1%} / {b:.1%}" for name, (a, b) in zip(METHODS, results[-1]))
        )
        for name, metrics in zip(METHODS, row):  # what bounds per-class retrieval (bench/retrieval_quality.py)
            print(f"  recall per class, {name}: {per_class_recall(metrics)}")
    mean = np.mean(results, axis=0)
    print(
        f"mean over {len(results)} split(s), 4-class / binary: "
        + "; ".join(f"{name} {a:.1%} / {b:.1%}" for name, (a, b) in zip(METHODS, mean))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
