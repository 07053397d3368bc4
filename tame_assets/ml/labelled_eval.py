"""Cross-validated accuracy of the offline backbones on a labelled image set (e.g. the real UiO set)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import polars as pl

from tame_assets.config import OFFLINE_BACKBONES
from tame_assets.labels import NON_AURORAL_LABELS
from tame_assets.ml import finetune
from tame_assets.ml.features import logits_from_pooled
from tame_assets.ml.finetune import FineTuneConfig
from tame_assets.ml.svm import DEFAULT_TRAIN_ROTATIONS, cross_validated_metrics, features_for, label_order


@dataclass
class LabelledSetEvaluation:
    table: pl.DataFrame
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)


def evaluate_labelled_set(
    paths: Sequence[str],
    labels: Sequence[str],
    backbones: Sequence[str] = OFFLINE_BACKBONES,
    feature_kinds: Sequence[str] = ("logits", "pooled"),
    rotations: Sequence[float] = DEFAULT_TRAIN_ROTATIONS,
    folds: int = 5,
    seed: int = 0,
    oath: bool = False,
    fine_tune: FineTuneConfig | None = None,
) -> LabelledSetEvaluation:
    """Stratified ``folds``-fold nested CV (standardised RBF SVM, C/γ chosen inside each training fold)
    per backbone and feature kind, with features averaged over ``rotations``; label accuracy and
    aurora vs no-aurora accuracy, mean ± std over folds. With ``fine_tune``, rows for the fine-tuned
    network (feature kind ``fine_tuned``: ``tame train --fine-tune``) and, when ``fine_tune`` blends,
    network + frozen-feature SVM (``fine_tuned+svm``: ``--blend-svm``) on the same folds."""
    y = np.asarray(labels)
    classes = label_order(y)
    auroral = [c for c in classes if c.lower() not in NON_AURORAL_LABELS]
    rows, confusion = [], {}
    for backbone in backbones:
        pooled, ok, errors = features_for(list(paths), [backbone], "pooled", rotations, oath=oath)
        if not ok.all():
            raise ValueError(f"unreadable labelled images, e.g. {next(e for e in errors if e)}")
        for kind in feature_kinds:
            X = logits_from_pooled(backbone, pooled) if kind == "logits" else pooled
            m = cross_validated_metrics(X, y, classes, auroral, folds=folds, seed=seed)
            rows.append(_row(backbone, kind, len(rotations), len(y), m))
            confusion[f"{backbone} / {kind}"] = np.asarray(m["confusion_matrix"])
    if fine_tune is not None:
        config = replace(fine_tune, seed=seed)
        _, m = finetune.fine_tune(
            list(paths), y.tolist(), classes, auroral, config, folds=folds, fit_final=False, oath=oath
        )
        rows.append(_row(config.backbone, "fine_tuned", len(finetune.TTA), len(y), m["components"]["fine_tuned"]))
        if config.blend_frozen_svm:
            rows.append(_row(config.backbone, "fine_tuned+svm", len(finetune.TTA), len(y), m))
        confusion[f"{config.backbone} / fine-tuned{' + SVM' if config.blend_frozen_svm else ''}"] = np.asarray(
            m["confusion_matrix"]
        )
    return LabelledSetEvaluation(pl.DataFrame(rows), confusion, classes)


def _row(backbone: str, kind: str, rotations: int, n_images: int, metrics: dict) -> dict:
    return {
        "backbone": backbone,
        "feature_kind": kind,
        "rotations": rotations,
        "n_images": n_images,
        **{k: metrics[k] for k in ("accuracy_mean", "accuracy_std", "binary_accuracy_mean", "binary_accuracy_std")},
    }
