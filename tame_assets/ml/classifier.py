"""Aurora image classifiers with model cards: the OATH six-class classifier and classifiers trained
on a user's own labelled images. No Dagster needed::

    from tame_assets import AsimClassifier
    clf = AsimClassifier()                       # the oath_classifier asset's model under ./data
    df = clf.classify_images(glob.glob("imgs/*.png"), batch_size=64)

A saved classifier is a directory holding ``model.joblib`` and ``model_card.json`` (method,
backbones, feature kind, rotations averaged, preprocessing version, library versions, training-data
hash, metrics). Loading one whose preprocessing or backbone does not match what the caller expects fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import joblib
import numpy as np
import polars as pl
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from tame_assets.config import PathLayout, default_data_root
from tame_assets.files import atomic_dir
from tame_assets.labels import AURORAL_CLASSES, NON_AURORAL_LABELS, OATH_CLASSES
from tame_assets.ml.evaluation import binary_accuracy
from tame_assets.ml.preprocessing import PREPROCESSING_VERSION
from tame_assets.ml.svm import (
    DEFAULT_TRAIN_ROTATIONS,
    cross_validated_metrics,
    features_for,
    fit_rbf_svm,
    label_order,
    proba_in_order,
    probabilistic_svc,
)

if TYPE_CHECKING:
    from tame_assets.ml.finetune import FineTuneConfig

MODEL_FILE, CARD_FILE = "model.joblib", "model_card.json"
#: Default recipe of ``AsimClassifier.train`` (chosen on the real UiO set, see README).
DEFAULT_TRAIN_BACKBONES = ("efficientnet_lite2",)


class ClassifierCardMismatch(ValueError):
    """The saved classifier was built for other features than the caller uses."""


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import sklearn
    import torch

    return {
        "torch": torch.__version__,
        "torchvision": version("torchvision"),  # its distribution's version: importing it costs ~2 s (torch._dynamo)
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "tame_assets": version("tame_assets"),
    }


def data_hash(X: np.ndarray, y: Sequence) -> str:
    """sha256 of the training features (float32 bytes) and labels."""
    digest = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    digest.update("\n".join(map(str, y)).encode())
    return digest.hexdigest()


@dataclass
class ModelCard:
    classes: list[str]
    aurora_classes: list[str]
    backbones: list[str]
    feature_kind: str
    rotations: list[float]
    preprocessing_version: str
    library_versions: dict[str, str]
    training_data_sha256: str
    n_train: int
    hyperparameters: dict
    metrics: dict
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    description: str = ""
    #: ``svm``: SVM on frozen features; ``fine_tune``: last backbone stage fine-tuned (:mod:`tame_assets.ml.finetune`).
    method: str = "svm"

    @property
    def backbone(self) -> str:
        return "+".join(self.backbones)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))


class AsimClassifier:
    """A fitted probabilistic SVM on CNN features plus its :class:`ModelCard`."""

    def __init__(
        self,
        path: str | Path | None = None,
        data_root: str | Path | PathLayout | None = None,
        *,
        model=None,
        card: ModelCard | None = None,
    ):
        if model is not None and card is not None:
            self.model, self.card = model, card
            return
        loaded = AsimClassifier.load(path or default_classifier_path(data_root))
        self.model, self.card = loaded.model, loaded.card

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(
        cls,
        path: str | Path,
        expect_backbone: str | None = None,
        expect_feature_kind: str | None = None,
        expect_preprocessing: str = PREPROCESSING_VERSION,
    ) -> "AsimClassifier":
        """Load a saved classifier; refuse one built for other features than expected."""
        path = Path(path)
        if not (path / CARD_FILE).exists():
            raise FileNotFoundError(
                f"no classifier at {path}. Make one with `tame materialize --select oath_classifier` "
                "(fits the OATH classifier under the data root) or `tame train --labels CSV --images DIR --out PATH`."
            )
        raw = json.loads((path / CARD_FILE).read_text())
        card = ModelCard(**raw)
        problems = []
        if card.preprocessing_version != expect_preprocessing:
            problems.append(f"preprocessing {card.preprocessing_version!r} ≠ {expect_preprocessing!r}")
        if expect_backbone and card.backbone != expect_backbone:
            problems.append(f"backbone {card.backbone!r} ≠ {expect_backbone!r}")
        if expect_feature_kind and card.feature_kind != expect_feature_kind:
            problems.append(f"feature kind {card.feature_kind!r} ≠ {expect_feature_kind!r}")
        if problems:
            raise ClassifierCardMismatch(
                f"classifier at {path} was built for other features: {'; '.join(problems)}. "
                "Re-fit it (e.g. re-materialize oath_classifier) for the current configuration."
            )
        return cls(model=joblib.load(path / MODEL_FILE), card=card)

    def save(self, path: str | Path) -> Path:
        """Write ``model.joblib`` + ``model_card.json`` into ``path`` atomically (replaces it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(path) as tmp:
            joblib.dump(self.model, tmp / MODEL_FILE)
            (tmp / CARD_FILE).write_text(json.dumps(asdict(self.card), indent=1, default=_json_default))
        return path

    # ------------------------------------------------------------------ prediction
    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def aurora_classes(self) -> list[str]:
        return list(self.card.aurora_classes)

    def predict_features(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predicted class names, probabilities [n, n_classes] in ``classes`` order)."""
        if self.card.method != "svm":
            raise TypeError(
                f"a {self.card.method!r} classifier classifies images, not feature vectors: use classify_images"
            )
        proba = proba_in_order(self.model, X, self.classes)
        return np.asarray(self.classes)[proba.argmax(axis=1)], proba

    def classify_images(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
        max_image_pixels: int | None = None,
    ) -> pl.DataFrame:
        """One row per input file, in order: file, pred, p_<class>…, p_aurora, error. Unreadable
        images and those above ``max_image_pixels`` (width × height, refused from the header before
        decoding; default 4096²; the setting ``max_image_pixels``) get NULL pred and the reason."""
        paths = [str(p) for p in paths]
        if self.card.method == "fine_tune":
            proba, ok, errors = self.model.predict_proba_images(
                paths, progress=progress, max_image_pixels=max_image_pixels
            )
        else:
            X, ok, errors = features_for(
                paths,
                self.card.backbones,
                self.card.feature_kind,
                self.card.rotations,
                batch_size=batch_size,
                progress=progress,
                max_image_pixels=max_image_pixels,
            )
            proba = np.full((len(paths), len(self.classes)), np.nan)
            if ok.any():
                proba[ok] = self.predict_features(X[ok])[1]
        preds = [self.classes[int(j)] if k else None for j, k in zip(np.nan_to_num(proba).argmax(axis=1), ok)]
        auroral = [j for j, c in enumerate(self.classes) if c in self.aurora_classes]
        frame = pl.DataFrame({"file": paths, "pred": pl.Series(preds, dtype=pl.Utf8)})
        frame = frame.with_columns(
            [pl.Series(f"p_{c}", proba[:, j]).fill_nan(None) for j, c in enumerate(self.classes)]
        )
        return frame.with_columns(
            pl.Series("p_aurora", proba[:, auroral].sum(axis=1)).fill_nan(None),
            pl.Series("error", errors, dtype=pl.Utf8),
        )

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        labels_csv: str | Path,
        image_dir: str | Path,
        backbone: str | Sequence[str] = DEFAULT_TRAIN_BACKBONES,
        feature_kind: str = "logits",
        rotations: Sequence[float] = DEFAULT_TRAIN_ROTATIONS,
        aurora_labels: Sequence[str] | None = None,
        folds: int = 5,
        seed: int = 0,
        fine_tune: bool | FineTuneConfig = False,
        progress: bool | Callable[[int, int], None] = False,
    ) -> "AsimClassifier":
        """Fit a classifier on any labelled image set (``filename,label`` CSV + image folder).

        Default recipe: per-backbone features averaged over ``rotations`` (the sky has no preferred
        azimuth), standardised, RBF SVM with probabilities; C and γ chosen by stratified CV.
        ``fine_tune=True`` (or a :class:`~tame_assets.ml.finetune.FineTuneConfig`) instead fine-tunes
        the last MBConv block of the (single, EfficientNet-Lite) backbone with rotation/mirror
        augmentation and predicts with 4-rotation test-time augmentation (minutes instead of seconds,
        more accurate: README). The card carries the ``folds``-fold CV accuracy (per label and aurora vs no aurora)."""
        from tame_assets.sources.labelled import check_trainable, read_labelled_set

        table = read_labelled_set(Path(labels_csv), Path(image_dir))
        check_trainable(table, str(labels_csv), min_per_label=2)  # before any feature is extracted
        paths, y = table["path"].to_list(), np.asarray(table["label"].to_list())
        backbones = [backbone] if isinstance(backbone, str) else list(backbone)
        classes = label_order(y)
        auroral = (
            list(aurora_labels)
            if aurora_labels is not None
            else [c for c in classes if c.lower() not in NON_AURORAL_LABELS]
        )
        common = dict(
            classes=classes,
            aurora_classes=auroral,
            backbones=backbones,
            preprocessing_version=PREPROCESSING_VERSION,
            library_versions=_versions(),
            n_train=len(y),
            description=f"trained on {labels_csv}",
        )
        if fine_tune is not False:
            return cls._fine_tuned(paths, y, fine_tune, folds, seed, progress, common)
        callback = _tqdm_progress(len(table), "features") if progress is True else (progress or None)
        X, ok, errors = features_for(paths, backbones, feature_kind, rotations, progress=callback)
        if not ok.all():
            bad = [e for e in errors if e]
            raise ValueError(f"{len(bad)} labelled image(s) unreadable, e.g. {bad[0]}")
        metrics = cross_validated_metrics(X, y, classes, auroral, folds=folds, seed=seed)
        model, best = fit_rbf_svm(X, y, folds, seed)
        card = ModelCard(
            feature_kind=feature_kind,
            rotations=[float(r) for r in rotations],
            training_data_sha256=data_hash(X, y),
            hyperparameters={"kernel": "rbf", **best},
            metrics=metrics,
            **common,
        )
        return cls(model=model, card=card)

    @classmethod
    def _fine_tuned(cls, paths, y, config, folds, seed, progress, common) -> "AsimClassifier":
        from tame_assets.ml.finetune import TTA, FineTuneConfig, fine_tune

        if config is True:
            if len(common["backbones"]) != 1:
                raise ValueError(f"fine-tuning takes one backbone, not {'+'.join(common['backbones'])}")
            config = FineTuneConfig(backbone=common["backbones"][0], seed=seed)
        common["backbones"] = [config.backbone]
        callback = _tqdm_progress(None, "fine-tune (trunk passes, epochs)", "step") if progress is True else progress
        network, metrics = fine_tune(
            paths,
            y.tolist(),
            common["classes"],
            common["aurora_classes"],
            config,
            folds=folds,
            progress=callback or None,
        )
        card = ModelCard(
            feature_kind="fine_tuned",
            rotations=[90.0 * k for k, _ in TTA],
            training_data_sha256=files_hash(paths, y),
            hyperparameters=asdict(config),
            metrics=metrics,
            method="fine_tune",
            **common,
        )
        return cls(model=network, card=card)


def files_hash(paths: Sequence[str], labels: Sequence) -> str:
    """sha256 over the training files' bytes and labels, in order."""
    digest = hashlib.sha256()
    for path, label in zip(paths, labels):
        digest.update(Path(path).read_bytes())
        digest.update(f"\n{label}\n".encode())
    return digest.hexdigest()


def _tqdm_progress(total: int | None, desc: str, unit: str = "img") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing a tqdm bar (``total`` may be given by the first call)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit)

    def update(done: int, _total: int) -> None:
        bar.total = _total
        bar.update(max(0, done - bar.n))
        if done >= _total:
            bar.close()

    return update


def default_classifier_path(data_root: str | Path | PathLayout | None = None) -> Path:
    """Where the ``oath_classifier`` asset saves its model for ``data_root`` (a local path, an
    ``s3://`` URL — models then live in the local root — or a :class:`PathLayout`)."""
    if isinstance(data_root, PathLayout):
        return data_root.classifier_path
    return PathLayout.for_root(data_root or default_data_root()).classifier_path


def fit_oath_classifier(
    X: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str] = OATH_CLASSES,
    C: float = 1e-3,
    seed: int = 0,
    backbone: str = "efficientnet_lite0",
    feature_kind: str = "logits",
    test_fraction: float = 0.3,
) -> tuple[AsimClassifier, dict]:
    """Linear SVC with probabilities at ``C`` on unscaled features (as the paper), evaluated on a
    class-balanced held-out set: the same number of images of every class, 30 % of the rarest
    class's count. Returns the classifier (fitted on the training part) and its metrics."""
    rng = np.random.default_rng(seed)
    classes = list(class_names)
    per_class = max(1, int(test_fraction * min(np.sum(y == c) for c in classes)))
    test = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in classes])
    train = np.setdiff1d(np.arange(len(y)), test)
    model = probabilistic_svc(kernel="linear", C=C).fit(X[train], y[train])
    pred = model.predict(X[test])
    cm6 = confusion_matrix(y[test], pred, labels=classes)
    auroral = [c for c in classes if c in AURORAL_CLASSES]
    truth2, pred2 = np.isin(y[test], auroral), np.isin(pred, auroral)
    precision, recall, _, support = precision_recall_fscore_support(y[test], pred, labels=classes, zero_division=0)
    metrics = {
        "accuracy6": float(np.trace(cm6) / cm6.sum()),
        "accuracy2": binary_accuracy(cm6, len(auroral)),
        "precision": dict(zip(classes, precision.round(4).tolist())),
        "recall": dict(zip(classes, recall.round(4).tolist())),
        "confusion_matrix_6": cm6.tolist(),
        "confusion_matrix_2": confusion_matrix(truth2, pred2, labels=[True, False]).tolist(),
        "n_test": int(len(test)),
        "n_train": int(len(train)),
        "test_per_class": per_class,
    }
    card = ModelCard(
        classes=classes,
        aurora_classes=auroral,
        backbones=[backbone],
        feature_kind=feature_kind,
        rotations=[0.0],
        preprocessing_version=PREPROCESSING_VERSION,
        library_versions=_versions(),
        training_data_sha256=data_hash(X[train], y[train]),
        n_train=int(len(train)),
        hyperparameters={"kernel": "linear", "C": float(C)},
        metrics=metrics,
        description="OATH six-class linear SVM (paper recipe)",
    )
    return AsimClassifier(model=model, card=card), metrics


def cross_validated_p_aurora(
    X: np.ndarray, y: np.ndarray, C: float, auroral: Sequence[str] = AURORAL_CLASSES, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Held-out p_aurora of every row under the OATH classifier's recipe (linear SVC with Platt
    probabilities at ``C``, unscaled features): stratified ``folds``-fold CV, each row predicted by
    the model fitted on the other folds. The input of the p_aurora calibration."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    p = np.empty(len(y), dtype=np.float64)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        model = probabilistic_svc(kernel="linear", C=C).fit(X[train], y[train])
        columns = [i for i, c in enumerate(model.classes_) if c in auroral]
        p[test] = model.predict_proba(X[test])[:, columns].sum(axis=1)
    return p
