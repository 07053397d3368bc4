"""Accuracy experiment: fine-tuning the last MBConv block of EfficientNet-Lite2
(:mod:`tame_assets.ml.finetune`: ``tame train --fine-tune``, and its blend with the frozen-feature
SVM, ``--blend-svm``) vs the frozen-feature SVM alone (``tame train``) on the 300 real UiO images
(``../shared/data/real/uio_asi_nya6``), with the same stratified 5-fold splits, side by side in one
run; ``--seed`` picks other splits (a check free of the choices made on seed 0).

Frozen features: Lite2 logits averaged over 4 rotations, standardised RBF SVM, C and γ chosen inside
each training fold (:func:`tame_assets.ml.classifier.cross_validated_metrics`).

    .venv/bin/python bench/finetune_last_block.py [--epochs 8] [--trainable-blocks 1] [--label-smoothing 0] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from tame_assets.ml.classifier import DEFAULT_TRAIN_ROTATIONS, cross_validated_metrics, features_for, label_order
from tame_assets.ml.finetune import FineTuneConfig, fine_tune

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "uio_asi_nya6"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=FineTuneConfig.epochs)
    ap.add_argument("--trainable-blocks", type=int, default=FineTuneConfig.trainable_blocks)
    ap.add_argument("--label-smoothing", type=float, default=FineTuneConfig.label_smoothing)
    ap.add_argument("--seed", type=int, default=0, help="Fold split and initialisation seed.")
    args = ap.parse_args(argv)
    if not REAL.exists():
        print(f"{REAL} is absent: this experiment needs the real labelled UiO images")
        return 1
    table = pl.read_csv(REAL / "labels.csv")
    paths = [str(REAL / "images" / f) for f in table["filename"]]
    labels = np.asarray(table["label"].to_list())
    classes = label_order(labels)  # as tame train: the output order changes the initialisation
    auroral = [c for c in classes if c != "aurora-less"]
    config = FineTuneConfig(epochs=args.epochs, trainable_blocks=args.trainable_blocks,
                            label_smoothing=args.label_smoothing, seed=args.seed, blend_frozen_svm=True)
    started = time.perf_counter()
    X, _, _ = features_for(paths, [config.backbone], "logits", DEFAULT_TRAIN_ROTATIONS)
    frozen = cross_validated_metrics(X, labels, classes, auroral, seed=args.seed)
    t_frozen = time.perf_counter() - started
    started = time.perf_counter()
    _, tuned = fine_tune(paths, labels.tolist(), classes, auroral, config, fit_final=False,
                         progress=lambda done, total: print(f"\rfine-tune step {done}/{total}", end="", flush=True))
    t_tuned = time.perf_counter() - started
    print()
    print(f"fine-tuning recipe: {config}")
    rows = [("frozen Lite2 logits + RBF SVM (decision)", frozen, f"{t_frozen:.0f} s"),
            *[(f"  {name} alone", m, "") for name, m in tuned["components"].items()],
            ("fine-tuned + SVM, probabilities averaged (--blend-svm)", tuned,
             f"{t_tuned:.0f} s")]
    for name, m, seconds in rows:
        print(f"{name}: 4-class {m['accuracy_mean']:.1%} ± {m['accuracy_std']:.1%}, "
              f"binary {m['binary_accuracy_mean']:.1%} ± {m['binary_accuracy_std']:.1%}  {seconds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
