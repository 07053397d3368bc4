"""The shared SVM recipe on frozen CNN features: features of a recipe (backbones × rotations),
a standardised RBF SVM with C and γ chosen by stratified CV and Platt-scaled probabilities, and
cross-validated metrics. Used by :mod:`~tame_assets.ml.classifier` and :mod:`~tame_assets.ml.finetune`."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tame_assets.labels import OATH_CLASSES

#: Rotations (degrees) whose features ``tame train`` averages (test-time augmentation).
DEFAULT_TRAIN_ROTATIONS = (0.0, 90.0, 180.0, 270.0)


def features_for(
    paths: Sequence,
    backbones: Sequence[str],
    feature_kind: str,
    rotations: Sequence[float],
    batch_size: int = 64,
    oath: bool = False,
    progress: Callable[[int, int], None] | None = None,
    max_image_pixels: int | None = None,
):
    """Features of a recipe: per backbone the mean over ``rotations``, concatenated across backbones.
    Images above ``max_image_pixels`` (default cap: ``sources.images.default_max_pixels``) fail.

    Returns (X float32 [n, d], ok bool [n], errors list)."""
    from tame_assets.ml.features import extract_features

    blocks, ok, errors = [], np.ones(len(paths), bool), [None] * len(paths)
    steps, done = len(backbones) * len(rotations), 0
    for backbone in backbones:
        per_rotation = []
        for angle in rotations:

            def step_progress(d, t, _done=done):
                if progress:
                    progress(int((_done + d / max(t, 1)) * len(paths) / steps), len(paths))

            result = extract_features(
                paths,
                backbone=backbone,
                feature_kind=feature_kind,
                batch_size=batch_size,
                rotate_deg=[angle] * len(paths) if angle else None,
                oath=oath,
                progress=step_progress,
                max_image_pixels=max_image_pixels,
            )
            per_rotation.append(result.features)
            ok &= result.ok
            errors = [e or r for e, r in zip(errors, result.errors)]
            done += 1
        blocks.append(np.mean(per_rotation, axis=0))
    return np.concatenate(blocks, axis=1).astype(np.float32), ok, errors


def label_order(labels: Sequence[str]) -> list[str]:
    """The distinct labels in model order: OATH classes first in their order, then the rest sorted."""
    return sorted(
        set(labels), key=lambda c: (c not in OATH_CLASSES, OATH_CLASSES.index(c) if c in OATH_CLASSES else 0, c)
    )


def probabilistic_svc(calibration_folds: int = 5, **params) -> CalibratedClassifierCV:
    """An SVC with Platt-scaled probabilities (sigmoid calibration on internal ``calibration_folds``-fold
    CV, then one SVC refitted on all data — what ``SVC(probability=True)`` did before its deprecation)."""
    return CalibratedClassifierCV(SVC(**params), method="sigmoid", ensemble=False, cv=calibration_folds)


def proba_in_order(model, X: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``model.predict_proba(X)`` with columns in ``classes`` order."""
    proba = model.predict_proba(np.asarray(X, dtype=np.float32))
    return proba[:, [list(model.classes_).index(c) for c in classes]]


def fit_rbf_svm(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[object, dict]:
    """(standardised RBF SVM with probabilities fitted on (X, y), {C, gamma}): C and γ chosen by
    stratified ``folds``-fold CV on (X, y)."""
    best = choose_rbf_params(X, y, max(2, folds), seed)
    calibration = int(np.clip(np.unique(y, return_counts=True)[1].min(), 2, 5))  # small sets: fewer folds
    return make_pipeline(StandardScaler(), probabilistic_svc(calibration, kernel="rbf", **best)).fit(X, y), best


#: The grid C and γ are chosen from (γ "scale": 1 / (features × variance of the standardised training data)).
RBF_GRID_C = (1, 3, 10, 30, 100)
RBF_GRID_GAMMA = ("scale", 3e-4, 1e-3)


def rbf_kernel(gamma: float, row_sq: np.ndarray, col_sq: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """RBF kernel matrix as libsvm computes it, exp(−γ(|x|² + |x'|² − 2x·x')), from the rows' and
    columns' squared norms and their dot products ``gram`` (rows × columns)."""
    return np.exp(-gamma * (row_sq[:, None] + col_sq[None, :] - 2.0 * gram))


def choose_rbf_params(X: np.ndarray, y: np.ndarray, folds: int, seed: int) -> dict:
    """{C, gamma} of the standardised RBF SVC with the best mean accuracy over stratified ``folds``-fold
    CV (shuffled with ``seed``), the first in grid order (C outer, γ inner) on ties: the choice
    ``GridSearchCV(make_pipeline(StandardScaler(), SVC()), {C, gamma}, cv=…)`` makes. Each split's
    standardised Gram matrix is computed once and the 15 SVCs are fitted on precomputed RBF kernels
    (:func:`rbf_kernel`) instead of libsvm recomputing them from the features."""
    X, y = np.asarray(X), np.asarray(y)  # scaled in their own dtype, then float64, as in the pipeline
    grid = [(c, g) for c in RBF_GRID_C for g in RBF_GRID_GAMMA]
    scores = np.empty((len(grid), folds))
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
    # sklearn's per-call checks cost more than the fits on precomputed kernels; the inputs are checked here
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for split, (train, test) in enumerate(splits):
            scaler = StandardScaler().fit(X[train])
            fit_rows, test_rows = (scaler.transform(X[rows]).astype(np.float64) for rows in (train, test))
            fit_sq, test_sq = (fit_rows**2).sum(axis=1), (test_rows**2).sum(axis=1)
            fit_gram, test_gram = fit_rows @ fit_rows.T, test_rows @ fit_rows.T
            variance = fit_rows.var()  # SVC's gamma="scale"
            scale = 1.0 / (fit_rows.shape[1] * variance) if variance != 0 else 1.0
            kernels = {}
            for gamma in RBF_GRID_GAMMA:
                g = scale if gamma == "scale" else gamma
                kernels[gamma] = rbf_kernel(g, fit_sq, fit_sq, fit_gram), rbf_kernel(g, test_sq, fit_sq, test_gram)
            for point, (c, gamma) in enumerate(grid):
                fit_kernel, test_kernel = kernels[gamma]
                predicted = SVC(kernel="precomputed", C=c).fit(fit_kernel, y[train]).predict(test_kernel)
                scores[point, split] = np.mean(predicted == y[test])
    c, gamma = grid[int(np.argmax(np.average(scores, axis=1)))]  # argmax: the first of equal means
    return {"C": c, "gamma": gamma}


def cross_validated_metrics(
    X: np.ndarray, y: np.ndarray, classes: Sequence[str], auroral: Sequence[str], folds: int = 5, seed: int = 0
) -> dict:
    """Nested stratified CV (hyper-parameters chosen inside each training fold): accuracy per label
    set and aurora vs no aurora, mean ± std over folds, and the pooled confusion matrix."""
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
    pred = np.empty(len(y), dtype=object)
    for train, test in splits:
        best = choose_rbf_params(X[train], y[train], max(2, folds - 1), seed)
        model = make_pipeline(StandardScaler(), SVC(kernel="rbf", **best)).fit(X[train], y[train])
        pred[test] = model.predict(X[test])
    return {"cv_folds": folds, **fold_metrics(y, pred.astype(str), splits, classes, auroral)}


def fold_metrics(y: np.ndarray, pred: np.ndarray, splits, classes: Sequence[str], auroral: Sequence[str]) -> dict:
    """Held-out label predictions ``pred`` (names) vs ``y`` over CV ``splits`` [(train, test)]: accuracy
    per label and aurora vs no aurora per fold, their mean ± std, and the pooled confusion matrix."""
    y, pred = np.asarray(y), np.asarray(pred)
    acc = [float(np.mean(pred[test] == y[test])) for _, test in splits]
    acc2 = [float(np.mean(np.isin(pred[test], auroral) == np.isin(y[test], auroral))) for _, test in splits]
    return {
        "accuracy_mean": float(np.mean(acc)),
        "accuracy_std": float(np.std(acc)),
        "binary_accuracy_mean": float(np.mean(acc2)),
        "binary_accuracy_std": float(np.std(acc2)),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(classes)).tolist(),
        "classes": list(classes),
        "folds": acc,
        "binary_folds": acc2,
    }
