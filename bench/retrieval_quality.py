"""Retrieval quality of frame embeddings on the 300 real labelled UiO images (``../shared``):
precision@10 of same-label neighbours per class and overall, four-class and aurora vs aurora-less,
and novelty AUROC with each class held out of the reference set in turn.

Every trained embedding is scored by cross-validation: the projection is trained on folds that
exclude the query image; the query's neighbours are all other 299 images (``all``), or — stricter —
only images the projection never saw either (``unseen``: 2-fold, neighbours within the held-out half).

Pooled features are extracted once per (backbone, rotation) and cached under
``~/.cache/tame_assets/retrieval/`` (300 images ≈ 30 s per backbone and rotation on 2 cores).

    .venv/bin/python bench/retrieval_quality.py [--backbone efficientnet_lite2] [--kind pooled] [--seeds 0,1,2]

Embeddings scored (cosine neighbours): the CNN features themselves (mean over 4 quarter turns), and
:func:`tame_assets.ml.embeddings.fit_embedding` (PCA appearance part ⊕ logistic-regression label part)
trained on the training folds' features of all 4 quarter turns. ``overlap`` = share of an embedding's
10 neighbours that are also among the raw features' 10 neighbours (how much appearance order is kept).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tame_assets.files import atomic_path
from tame_assets.ml.embeddings import LABEL_WEIGHT, NoveltyModel, fit_embedding, l2_normalise

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "uio_asi_nya6"
CACHE = Path.home() / ".cache" / "tame_assets" / "retrieval"
ROTATIONS = (0.0, 90.0, 180.0, 270.0)


def labelled_set() -> tuple[list[str], np.ndarray]:
    table = pl.read_csv(REAL / "labels.csv")
    return [str(REAL / "images" / f) for f in table["filename"]], np.asarray(table["label"].to_list())


def cached_pooled(paths: list[str], backbone: str, rotation: float) -> np.ndarray:
    """Pooled features (fp32 extraction) of ``paths`` rotated by ``rotation`` degrees, cached on disk."""
    key = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:12]
    target = CACHE / f"{backbone}_pooled_rot{int(rotation)}_{key}.npy"
    if target.exists():
        return np.load(target)
    from tame_assets.ml.features import extract_features

    started = time.perf_counter()
    result = extract_features(
        paths, backbone=backbone, feature_kind="pooled", precision="fp32", rotate_deg=[rotation] * len(paths)
    )
    if not result.ok.all():
        raise SystemExit(f"unreadable image: {next(e for e in result.errors if e)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, result.features)
    print(f"  extracted {backbone} rotation {rotation:g}: {time.perf_counter() - started:.0f} s")
    return result.features


def neighbours(E: np.ndarray, queries, refs_of, k: int = 10) -> np.ndarray:
    """[len(queries), k] indices of each query's k most cosine-similar rows among ``refs_of(i)``."""
    E = l2_normalise(E)
    out = []
    for i in queries:
        refs = np.asarray(refs_of(i))
        refs = refs[refs != i]
        sims = E[refs] @ E[i]
        out.append(refs[np.argsort(-sims, kind="stable")[:k]])
    return np.asarray(out)


def precision(nn: np.ndarray, queries, labels: np.ndarray) -> np.ndarray:
    return np.array([np.mean(labels[row] == labels[q]) for q, row in zip(queries, nn)])


class Experiment:
    def __init__(self, Xr: np.ndarray, y: np.ndarray, backbone: str, kind: str, weight: float):
        self.Xr, self.Xm, self.y = Xr, Xr.mean(axis=0), y
        self.aur = np.where(y == "aurora-less", "aurora-less", "aurora")
        self.classes = sorted(set(y))
        self.backbone, self.kind, self.weight = backbone, kind, weight
        everything = np.arange(len(y))
        self.raw_nn = neighbours(self.Xm, everything, lambda i: everything)

    def fit(self, train: np.ndarray):
        rows = np.concatenate([self.Xr[:, train]]).reshape(-1, self.Xr.shape[2])
        labels = np.tile(self.y[train], len(self.Xr))
        return fit_embedding(rows, labels, backbone=self.backbone, feature_kind=self.kind, label_weight=self.weight)

    def score(self, name: str, nn: np.ndarray, queries) -> dict:
        queries = np.asarray(queries)
        p4, p2 = precision(nn, queries, self.y), precision(nn, queries, self.aur)
        overlap = np.mean([len(set(a) & set(self.raw_nn[q])) / nn.shape[1] for q, a in zip(queries, nn)])
        row = {"embedding": name, "p10_4class": p4.mean(), "p10_aurora": p2.mean(), "overlap_raw": overlap}
        for c in self.classes:
            row[f"p10_{c}"] = p4[self.y[queries] == c].mean()
        return row

    def raw(self) -> dict:
        return self.score(f"{self.kind} features, cosine", self.raw_nn, range(len(self.y)))

    def trained_all_refs(self, seed: int, folds: int = 10) -> dict:
        """Projection trained without the query's fold; neighbours among all other 299 images."""
        n, everything = len(self.y), np.arange(len(self.y))
        nn = np.zeros((n, 10), int)
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(self.Xm, self.y):
            E = self.fit(train).transform(self.Xm)
            nn[test] = neighbours(E, test, lambda i: everything)
        return self.score(f"trained, {folds}-fold, refs = all others (seed {seed})", nn, everything)

    def trained_unseen(self, seed: int) -> dict:
        """2-fold: projection trained on one half; queries and neighbours both in the other half."""
        n = len(self.y)
        nn = np.zeros((n, 10), int)
        for train, test in StratifiedKFold(2, shuffle=True, random_state=seed).split(self.Xm, self.y):
            E = self.fit(train).transform(self.Xm)
            nn[test] = neighbours(E, test, lambda i, refs=test: refs)
        return self.score(f"trained, 2-fold, refs = unseen half (seed {seed})", nn, np.arange(n))

    def novelty(self, held_out: set[str], part: str, seed: int = 0, folds: int = 5) -> float:
        """AUROC of the novelty score separating ``held_out`` labels from the rest: per fold the
        reference set (and projection) = training-fold images of the other labels; scored: test fold."""
        novel = np.isin(self.y, list(held_out))
        scores = np.zeros(len(self.y))
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(self.Xm, self.y):
            ref = train[~novel[train]]
            if part == "raw":
                E = l2_normalise(self.Xm)
            else:
                model = self.fit(ref)
                E = model.transform(self.Xm)
                E = model.appearance_part(E) if part == "appearance" else E
            scores[test] = NoveltyModel.fit(E[ref]).score(E[test])[0]
        return float(roc_auc_score(novel, scores))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite2")
    ap.add_argument("--kind", default="pooled", choices=("pooled", "logits"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--weight", type=float, default=LABEL_WEIGHT, help="Label part's weight in the cosine.")
    args = ap.parse_args(argv)
    if not REAL.exists():
        print(f"{REAL} is absent: this benchmark needs the real labelled UiO images")
        return 1
    paths, y = labelled_set()
    Xr = np.stack([cached_pooled(paths, args.backbone, r) for r in ROTATIONS])
    if args.kind == "logits":
        from tame_assets.ml.features import logits_from_pooled

        Xr = np.stack([logits_from_pooled(args.backbone, x) for x in Xr])
    exp = Experiment(Xr, y, args.backbone, args.kind, args.weight)
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    rows = [exp.raw()]
    rows += [exp.trained_all_refs(s) for s in seeds]
    rows += [exp.trained_unseen(s) for s in seeds]
    table = pl.DataFrame(rows)
    pl.Config.set_tbl_width_chars(200).set_tbl_cols(20).set_fmt_str_lengths(60).set_float_precision(3)
    print(f"{args.backbone} {args.kind}, label weight {args.weight}, {len(y)} images; precision@10, cosine")
    print(table)
    mean = table.filter(pl.col("embedding").str.contains("refs = all")).select(pl.exclude("embedding")).mean()
    print("mean over seeds, refs = all others:", {k: round(v, 3) for k, v in mean.row(0, named=True).items()})
    splits = [{c} for c in exp.classes] + [{"arc", "diffuse", "discrete"}]
    novelty = []
    for held in splits:
        name = "auroral (arc+diffuse+discrete)" if len(held) == 3 else next(iter(held))
        novelty.append(
            {
                "held_out": name,
                "auroc_raw_features": exp.novelty(held, "raw"),
                "auroc_appearance_part": exp.novelty(held, "appearance"),
                "auroc_whole_embedding": exp.novelty(held, "whole"),
            }
        )
    print("novelty AUROC (held-out labels vs the rest; 5-fold, reference = training folds' other labels):")
    print(pl.DataFrame(novelty))
    print(f"retrieval_quality: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
