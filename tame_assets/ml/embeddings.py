"""Frame embeddings fit for search by example, and novelty scores.

An embedding is computed from a frame's stored CNN features (``asim_features``: the configured
backbone's logits or pooled features) by a projection fitted once on a labelled set:

1. standardise (per-feature mean and scale of the labelled set) and reduce by PCA to
   ``appearance_dims`` dimensions — the *appearance* part, which orders frames by how they look;
2. a multinomial logistic regression on the PCA coordinates, its class probabilities the *label*
   part (one dimension per class), which pulls frames of one label together;
3. both parts L2-normalised, weighted (``label_weight`` and ``1 − label_weight`` of the squared norm)
   and concatenated, then L2-normalised: the cosine of two embeddings is
   ``w · cos(label parts) + (1 − w) · cos(appearance parts)``.

Chosen by ``bench/retrieval_quality.py`` on the 300 real UiO images (cross-validated; the numbers are
in docs/search.md): the label part lifts precision@10 of same-label neighbours from 0.70 (raw pooled
features) to the goal, the appearance part keeps neighbours ordered by appearance within a label
(a pure label embedding would rank every frame of a class alike). No torch is needed.

Stored as int8 codes with one float32 scale per frame (``quantize``); the version string names the
recipe, backbone, feature kind and a digest of the fitted parameters, so indexes built from other
embeddings are detected and rebuilt.

Novelty (:class:`NoveltyModel`): mean cosine distance of a frame's CNN features (L2-normalised,
not the embedding) to its ``k`` nearest reference frames (the labelled set's), calibrated to the
percentile of the reference frames' own leave-one-out scores: 0.5 is a typical frame, 0.99 stranger
than 99 % of the reference set, 1.0 beyond every one of them. Not the embedding, measured: a
projection fitted without a kind of frame drops the directions that set it apart (AUROC of the
aurora-less frames held out of the reference: 0.78 on raw features, 0.40 on the appearance part).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tame_assets.files import atomic_path

#: Version of the embedding recipe (projection, normalisation, quantisation); part of every
#: embedding's version string and of the assets' code versions.
EMBEDDING_RECIPE = "1"
#: Default PCA dimensions of the appearance part.
APPEARANCE_DIMS = 64
#: Default weight of the label part in the cosine (chosen on the real UiO set: docs/search.md).
LABEL_WEIGHT = 0.5
#: Inverse L2 regularisation of the label part's logistic regression.
LABEL_C = 0.1
#: Neighbours whose mean distance is the novelty score.
NOVELTY_K = 10
#: The fitted models' files in the models folder (``embedding_model`` asset).
EMBEDDING_MODEL_FILE = "frame_embedding.npz"
NOVELTY_MODEL_FILE = "frame_novelty.npz"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def quantize(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes [n, d], float32 scale [n]) with ``codes * scale ≈ embeddings``: one scale per row,
    ``max |x| / 127`` (rows of zeros get scale 0)."""
    e = np.asarray(embeddings, dtype=np.float32)
    peak = np.abs(e).max(axis=1) if e.size else np.zeros(len(e), np.float32)
    scale = (peak / 127.0).astype(np.float32)
    codes = np.rint(e / np.where(scale > 0, scale, 1.0)[:, None]).clip(-127, 127).astype(np.int8)
    return codes, scale


def dequantize(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 [n, d] L2-normalised embeddings from int8 codes and their per-row scales."""
    return l2_normalise(np.asarray(codes, dtype=np.float32) * np.asarray(scale, dtype=np.float32)[:, None])


@dataclass
class EmbeddingModel:
    """A fitted projection from CNN features to search embeddings (see the module docstring)."""

    backbone: str
    feature_kind: str
    mean: np.ndarray  # [d]
    scale: np.ndarray  # [d]
    components: np.ndarray  # [d, a] PCA axes (appearance part)
    label_axes: np.ndarray  # [a, c] logistic-regression weights on the PCA coordinates (c = 0: no label part)
    label_center: np.ndarray  # [c] intercepts
    label_weight: float
    classes: list[str]
    provenance: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1] + self.label_axes.shape[1])

    @property
    def version(self) -> str:
        """``emb<recipe>-<backbone>-<kind>-<dim>d-<digest>``: changes with any fitted parameter."""
        digest = hashlib.sha256()
        for a in (self.mean, self.scale, self.components, self.label_axes, self.label_center):
            digest.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        digest.update(f"{self.label_weight:.6f}|{'|'.join(self.classes)}".encode())
        return f"emb{EMBEDDING_RECIPE}-{self.backbone}-{self.feature_kind}-{self.dim}d-{digest.hexdigest()[:10]}"

    def transform(self, features: np.ndarray) -> np.ndarray:
        """float32 [n, dim] L2-normalised embeddings of ``features`` [n, d] (rows with NaN → NaN)."""
        X = np.asarray(features, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.mean):
            raise ValueError(
                f"features have shape {X.shape}, the embedding expects {len(self.mean)} columns "
                f"({self.backbone} {self.feature_kind})"
            )
        bad = ~np.isfinite(X).all(axis=1)
        Z = ((np.nan_to_num(X) - self.mean) / self.scale) @ self.components
        appearance = l2_normalise(Z)
        if self.label_axes.shape[1]:
            logits = Z @ self.label_axes + self.label_center
            proba = np.exp(logits - logits.max(axis=1, keepdims=True))
            label = l2_normalise(proba / proba.sum(axis=1, keepdims=True))
            out = np.hstack([np.sqrt(self.label_weight) * label, np.sqrt(1.0 - self.label_weight) * appearance])
        else:
            out = appearance
        out = l2_normalise(out)
        out[bad] = np.nan
        return out

    def appearance_part(self, embeddings: np.ndarray) -> np.ndarray:
        """The appearance part of ``embeddings`` (their last ``components.shape[1]`` columns), L2-normalised:
        what novelty is measured on (the label part maps an unseen kind of frame onto a known label)."""
        return l2_normalise(np.asarray(embeddings, np.float32)[:, self.label_axes.shape[1] :])

    def save(self, target: str | Path) -> Path:
        """One ``.npz`` file (arrays + JSON metadata), written atomically."""
        target = Path(target)
        info = {
            "backbone": self.backbone,
            "feature_kind": self.feature_kind,
            "label_weight": self.label_weight,
            "classes": self.classes,
            "provenance": self.provenance,
            "meta": self.meta,
            "version": self.version,
        }
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                mean=self.mean,
                scale=self.scale,
                components=self.components,
                label_axes=self.label_axes,
                label_center=self.label_center,
                info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8),
            )
        return target

    @classmethod
    def load(cls, path: str | Path) -> "EmbeddingModel":
        with np.load(Path(path)) as z:
            info = json.loads(z["info"].tobytes().decode())
            arrays = {k: z[k] for k in ("mean", "scale", "components", "label_axes", "label_center")}
        return cls(
            backbone=info["backbone"],
            feature_kind=info["feature_kind"],
            label_weight=float(info["label_weight"]),
            classes=list(info["classes"]),
            provenance=info.get("provenance", ""),
            meta=info.get("meta", {}),
            **arrays,
        )


def fit_embedding(
    features: np.ndarray,
    labels,
    *,
    backbone: str,
    feature_kind: str,
    appearance_dims: int = APPEARANCE_DIMS,
    label_weight: float = LABEL_WEIGHT,
    label_c: float = LABEL_C,
    provenance: str = "",
) -> EmbeddingModel:
    """Fit the projection on labelled ``features`` [n, d] (rows may repeat an image under several
    rotations). With fewer than two labels the embedding is the appearance part alone."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small matrices: BLAS threads cost 10× more CPU than they save (measured)
        return _fit(features, labels, backbone, feature_kind, appearance_dims, label_weight, label_c, provenance)


def _fit(features, labels, backbone, feature_kind, appearance_dims, label_weight, label_c, provenance):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(str)
    keep = np.isfinite(X).all(axis=1)
    X, y = X[keep], y[keep]
    if len(X) < 3:
        raise ValueError(f"fitting an embedding needs at least 3 labelled feature rows, got {len(X)}")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    S = (X - mean) / scale
    dims = int(min(appearance_dims, len(S) - 1, S.shape[1]))
    pca = PCA(dims, svd_solver="full", random_state=0).fit(S)
    components = pca.components_.T
    Z = S @ components
    classes = sorted(set(y.tolist()))
    label_dims = len(classes) if len(classes) >= 2 else 0
    if label_dims:
        model = LogisticRegression(C=label_c, max_iter=3000).fit(Z, y)
        coef, intercept = model.coef_, model.intercept_
        if len(classes) == 2:  # binary: one weight vector → the two classes' logits (−z/2, z/2)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        order = [list(model.classes_).index(c) for c in classes]
        axes, center = coef[order].T, intercept[order]
    else:
        axes, center = np.zeros((dims, 0)), np.zeros(0)
    return EmbeddingModel(
        backbone=backbone,
        feature_kind=feature_kind,
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        components=components.astype(np.float32),
        label_axes=np.asarray(axes, dtype=np.float32),
        label_center=np.asarray(center, dtype=np.float32),
        label_weight=float(label_weight) if label_dims >= 1 else 0.0,
        classes=classes,
        provenance=provenance,
        meta={"n_train": int(len(X)), "appearance_dims": dims, "label_dims": int(label_dims)},
    )


def knn_mean_distance(queries: np.ndarray, reference: np.ndarray, k: int = NOVELTY_K, exclude_self: bool = False):
    """Mean cosine distance (1 − cos) of each query row to its ``k`` nearest ``reference`` rows
    (both L2-normalised); ``exclude_self``: queries are the reference rows themselves (leave-one-out)."""
    Q, R = np.asarray(queries, np.float32), np.asarray(reference, np.float32)
    k = int(min(k, len(R) - (1 if exclude_self else 0)))
    if k < 1:
        raise ValueError("novelty needs at least 2 reference frames")
    out = np.empty(len(Q), np.float32)
    for start in range(0, len(Q), 4096):
        sims = Q[start : start + 4096] @ R.T
        if exclude_self:
            idx = np.arange(start, start + len(sims))
            sims[np.arange(len(sims)), idx] = -np.inf
        top = -np.partition(-sims, k - 1, axis=1)[:, :k]
        out[start : start + len(sims)] = 1.0 - top.mean(axis=1)
    return out


@dataclass
class NoveltyModel:
    """Reference embeddings and the sorted leave-one-out scores that calibrate a score to a percentile."""

    reference: np.ndarray  # [m, dim] L2-normalised
    reference_scores: np.ndarray  # [m] sorted
    k: int = NOVELTY_K

    @classmethod
    def fit(cls, reference: np.ndarray, k: int = NOVELTY_K) -> "NoveltyModel":
        R = l2_normalise(np.asarray(reference, np.float32)[np.isfinite(reference).all(axis=1)])
        return cls(R, np.sort(knn_mean_distance(R, R, k, exclude_self=True)), k)

    def score(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance score, percentile 0..1) per row; NaN rows give NaN."""
        E = np.asarray(embeddings, np.float32)
        good = np.isfinite(E).all(axis=1)
        dist = np.full(len(E), np.nan, np.float32)
        pct = np.full(len(E), np.nan, np.float32)
        if good.any():
            dist[good] = knn_mean_distance(E[good], self.reference, self.k)
            pct[good] = np.searchsorted(self.reference_scores, dist[good], side="right") / len(self.reference_scores)
        return dist, pct

    def save(self, target: str | Path) -> Path:
        """One ``.npz`` file, written atomically."""
        target = Path(target)
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, reference=self.reference, reference_scores=self.reference_scores, k=np.int64(self.k))
        return target

    @classmethod
    def load(cls, path: str | Path) -> "NoveltyModel":
        with np.load(Path(path)) as z:
            return cls(z["reference"], z["reference_scores"], int(z["k"]))
