"""Looking inside the classifier: UMAP embedding with example images, confidence galleries per
class, and a 4×4 occlusion test."""

from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from tame_assets.labels import OATH_CLASSES


def umap_embedding(features: np.ndarray, seed: int = 42, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP of the feature vectors (fixed random_state: reproducible)."""
    import umap

    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(features) - 1), min_dist=0.1, random_state=seed, n_jobs=1)
    return reducer.fit_transform(np.asarray(features, dtype=np.float32))


def cluster_figure(embedding: np.ndarray, labels: Sequence[str], images: Sequence[np.ndarray], examples: int = 8):
    """Embedding coloured by class, with example thumbnails placed around it and linked to their points."""
    labels = np.asarray(labels)
    fig = plt.figure(figsize=(10, 8))
    ax = fig.add_axes([0.2, 0.2, 0.6, 0.6])
    for c in OATH_CLASSES:
        m = labels == c
        ax.scatter(embedding[m, 0], embedding[m, 1], s=6, label=c)
    ax.legend(fontsize=7, markerscale=2)
    ax.set_title("UMAP of CNN features, coloured by predicted class")
    rng = np.random.default_rng(0)
    picks = rng.choice(len(embedding), size=min(examples, len(embedding)), replace=False)
    centre = embedding.mean(axis=0)
    for k, i in enumerate(sorted(picks, key=lambda i: np.arctan2(*(embedding[i] - centre)[::-1]))):
        angle = 2 * np.pi * k / len(picks)
        x, y = 0.5 + 0.42 * np.cos(angle), 0.5 + 0.42 * np.sin(angle)
        inset = fig.add_axes([x - 0.06, y - 0.06, 0.12, 0.12])
        inset.imshow(images[i], cmap="gray")
        inset.set_xticks([]), inset.set_yticks([])
        inset.set_title(str(labels[i]), fontsize=7)
        ax.annotate("", xy=embedding[i], xycoords="data", xytext=(x, y), textcoords="figure fraction",
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"})
    return fig


def entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1)
    return -(p * np.log(p)).sum(axis=1)


def confidence_gallery(predictions: pl.DataFrame, load: Callable[[str], np.ndarray], per_class: int = 4,
                       classes: Sequence[str] = OATH_CLASSES):
    """Per class: the lowest- and highest-confidence images and those of highest entropy."""
    proba_cols = [f"p_{c}" for c in classes]
    p = predictions.filter(pl.col("pred").is_not_null())
    probs = p.select(proba_cols).to_numpy()
    p = p.with_columns(pl.Series("confidence", probs.max(axis=1)), pl.Series("entropy", entropy(probs)))
    kinds = (("lowest confidence", "confidence", False), ("highest confidence", "confidence", True),
             ("highest entropy", "entropy", True))
    fig, axes = plt.subplots(len(classes), per_class * 3, figsize=(per_class * 3 * 1.1, len(classes) * 1.3))
    picked = []
    for r, c in enumerate(classes):
        rows = p.filter(pl.col("pred") == c)
        for k, (title, col, desc) in enumerate(kinds):
            chosen = rows.sort(col, descending=desc).head(per_class)
            for j in range(per_class):
                ax = axes[r, k * per_class + j]
                ax.set_xticks([]), ax.set_yticks([])
                if j < chosen.height:
                    row = chosen.row(j, named=True)
                    ax.imshow(load(row["local_path"]), cmap="gray")
                    ax.set_title(f"{row[col]:.2f}", fontsize=6)
                    picked.append({"class": c, "kind": title, "file": row["file_name"], col: row[col]})
                if j == 0 and k == 0:
                    ax.set_ylabel(c, fontsize=8)
            axes[0, k * per_class].set_title(f"{title}\n" + axes[0, k * per_class].get_title(), fontsize=7)
    fig.tight_layout()
    return fig, pl.DataFrame(picked)


def occlusion_test(image: np.ndarray, predict: Callable[[list[np.ndarray]], np.ndarray], classes: Sequence[str],
                   grid: int = 4) -> tuple[pl.DataFrame, np.ndarray]:
    """Occlude a ``grid`` × ``grid`` tiling: for each tile, predict with only that tile kept and with
    that tile removed (set to the image minimum). Returns a table (row, col, mode, pred, p_pred) and
    the baseline probabilities."""
    h, w = image.shape[:2]
    fill = image.min()
    variants, keys = [], []
    for r in range(grid):
        for c in range(grid):
            ys, xs = slice(r * h // grid, (r + 1) * h // grid), slice(c * w // grid, (c + 1) * w // grid)
            kept = np.full_like(image, fill)
            kept[ys, xs] = image[ys, xs]
            removed = image.copy()
            removed[ys, xs] = fill
            variants += [kept, removed]
            keys += [(r, c, "kept"), (r, c, "removed")]
    proba = predict([image] + variants)
    base, rest = proba[0], proba[1:]
    rows = [{"row": r, "col": c, "mode": m, "pred": classes[int(p.argmax())], "p_pred": float(p.max()),
             "changed": bool(p.argmax() != base.argmax())} for (r, c, m), p in zip(keys, rest)]
    return pl.DataFrame(rows), base


def occlusion_figure(image: np.ndarray, table: pl.DataFrame, base: np.ndarray, classes: Sequence[str], grid: int = 4):
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title(f"image: {classes[int(base.argmax())]} ({base.max():.2f})", fontsize=9)
    for ax, mode in zip(axes[1:], ("kept", "removed")):
        t = table.filter(pl.col("mode") == mode).sort("row", "col")
        changed = t["changed"].to_numpy().reshape(grid, grid)
        ax.imshow(image, cmap="gray")
        h, w = image.shape[:2]
        for (r, c), ch in np.ndenumerate(changed):
            pred = t.filter((pl.col("row") == r) & (pl.col("col") == c))["pred"][0]
            ax.add_patch(plt.Rectangle((c * w / grid, r * h / grid), w / grid, h / grid, fill=ch, alpha=0.35 if ch else 1,
                                       edgecolor="yellow", facecolor="red", lw=0.6))
            ax.text((c + 0.5) * w / grid, (r + 0.5) * h / grid, pred[:4], color="yellow", ha="center", va="center", fontsize=7)
        ax.set_title(f"only tile {mode}: red = prediction changes", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    return fig
