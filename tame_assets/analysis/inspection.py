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

    keep_numba_compilations("umap", "pynndescent")
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(features) - 1), min_dist=0.1, random_state=seed, n_jobs=1)
    return reducer.fit_transform(np.asarray(features, dtype=np.float32))


def keep_numba_compilations(*packages: str) -> int:
    """Let numba keep on disk what it compiles for the loaded modules of ``packages`` (its cache next
    to their sources, else the user cache), as it does for functions declared ``cache=True``. umap
    declares one of its ~250 compiled functions so: without this every process compiles them again
    (18 s of a 19 s UMAP of 300 images here); with it only the first process in an environment does
    (0.8 s after). Same machine code, same embedding. Returns how many functions were switched on."""
    import sys

    from numba.core.dispatcher import Dispatcher

    enabled = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and value.__module__ == name:
                value.enable_caching()  # idempotent; a function numba cannot cache is compiled as before
                enabled += 1
    return enabled


def spread_examples(embedding: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """``k`` representative row indices spread over the embedding: the point nearest to each
    k-means centre (fixed seed: deterministic), ordered by angle around the centroid."""
    from sklearn.cluster import KMeans

    embedding = np.asarray(embedding, dtype=float)
    k = min(k, len(embedding))
    if k == 0:
        return []
    centres = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(embedding).cluster_centers_
    picks = list(dict.fromkeys(int(np.argmin(((embedding - c) ** 2).sum(axis=1))) for c in centres))
    offset = embedding[picks] - embedding.mean(axis=0)
    return [picks[i] for i in np.argsort(-np.arctan2(offset[:, 1], offset[:, 0]))]


def cluster_figure(
    embedding: np.ndarray,
    labels: Sequence[str],
    images: Sequence[np.ndarray],
    examples: int = 8,
    times=None,
    station: str | Sequence[str] = "",
):
    """Embedding coloured by predicted class (left) with numbered example points whose thumbnails
    (class, station and UTC time, captions ≥ 8 pt) sit in a separate panel on the right: nothing covers
    the data or the axes. ``times`` (naive UTC, one per row) date the examples and the title;
    ``station``: one code for all rows, or one per row."""
    from tame_assets.analysis.figures import MIN_FONT_PT, as_datetime64, period_text, station_label

    labels = np.asarray([str(label) for label in labels])
    stations = [str(station)] * len(labels) if isinstance(station, str) else [str(s) for s in station]
    picks = spread_examples(embedding, examples)
    cols = 3 if len(picks) > 4 else max(1, len(picks))
    rows = max(1, int(np.ceil(len(picks) / cols)))
    fig = plt.figure(figsize=(7.5 + 1.9 * cols, max(6.5, 2.2 * rows + 1.2)), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[7.5, 1.9 * cols], wspace=0.02)
    ax = left.subplots()
    for c in list(OATH_CLASSES) + sorted(set(labels) - set(OATH_CLASSES)):
        m = labels == c
        if m.any():
            ax.scatter(embedding[m, 0], embedding[m, 1], s=6, label=f"{c} ({int(m.sum())})")
    ax.scatter(embedding[picks, 0], embedding[picks, 1], s=40, facecolors="none", edgecolors="k", lw=0.8)
    for k, i in enumerate(picks, start=1):
        ax.annotate(str(k), embedding[i], xytext=(4, 4), textcoords="offset points", fontsize=8, weight="bold")
    ax.set(xlabel="UMAP 1 (arbitrary units)", ylabel="UMAP 2 (arbitrary units)")
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        markerscale=2,
        title="predicted class (n)",
        title_fontsize=8,
    )
    tiles = right.subplots(rows, cols, squeeze=False)
    stamps = as_datetime64(times) if times is not None else None
    for k, tile in enumerate(tiles.flat):
        tile.set_xticks([]), tile.set_yticks([])
        if k >= len(picks):
            tile.axis("off")
            continue
        tile.imshow(images[picks[k]], cmap="gray")
        tile.set_title(f"{k + 1}: {labels[picks[k]]}", fontsize=MIN_FONT_PT + 1)
        caption = stations[picks[k]]
        if stamps is not None:
            stamp = str(stamps[picks[k]].astype("datetime64[s]"))
            caption = f"{caption} {stamp[:10]}\n{stamp[11:]} UTC".strip()
        tile.set_xlabel(caption, fontsize=MIN_FONT_PT, labelpad=2)
    right.suptitle("numbered examples:\nclass; station, time (UTC)", fontsize=9)
    when = f", {period_text(times)} (UTC)" if times is not None else ""
    names = ", ".join(station_label(s) for s in dict.fromkeys(stations) if s)
    fig.suptitle(
        f"UMAP of CNN features, coloured by predicted class: {names or 'all-sky'} images{when}, {len(labels)} images",
        fontsize=10,
    )
    return fig


def entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1)
    return -(p * np.log(p)).sum(axis=1)


KIND_HEADERS = {
    "lowest confidence": "lowest confidence\n(confidence = max class probability)",
    "highest confidence": "highest confidence\n(confidence = max class probability)",
    "highest entropy": "highest entropy\n(H = −Σ p ln p, nats; max ln 6 ≈ 1.79)",
}


def confidence_gallery(
    predictions: pl.DataFrame,
    load: Callable[[str], np.ndarray],
    per_class: int = 4,
    classes: Sequence[str] = OATH_CLASSES,
):
    """Per predicted class (rows): the ``per_class`` lowest- and highest-confidence images and those of
    highest entropy (three panels). Above each tile its number ("conf" = max class probability, "H" =
    entropy in nats), below it the image time (UTC). ``predictions``: ``asim_predictions`` rows with
    ``local_path`` (``load(local_path)`` gives the image). Returns the figure and the picked images
    (class, kind, file, time, confidence or entropy)."""
    from tame_assets.analysis.figures import MIN_FONT_PT, as_datetime64, period_text, station_label

    proba_cols = [f"p_{c}" for c in classes]
    p = predictions.filter(pl.col("pred").is_not_null())
    probs = p.select(proba_cols).to_numpy()
    p = p.with_columns(pl.Series("confidence", probs.max(axis=1)), pl.Series("entropy", entropy(probs)))
    kinds = (
        ("lowest confidence", "confidence", False),
        ("highest confidence", "confidence", True),
        ("highest entropy", "entropy", True),
    )
    fig = plt.figure(figsize=(per_class * 3 * 1.45 + 1.2, len(classes) * 1.85 + 1.4), layout="constrained")
    panels = fig.subfigures(1, len(kinds), wspace=0.03)
    picked = []
    for panel, (kind, col, desc) in zip(panels, kinds):
        panel.suptitle(KIND_HEADERS[kind], fontsize=8)
        axes = panel.subplots(len(classes), per_class, squeeze=False)
        for r, c in enumerate(classes):
            chosen = p.filter(pl.col("pred") == c).sort(col, descending=desc).head(per_class)
            for j, ax in enumerate(axes[r]):
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(c, fontsize=8)
                if j >= chosen.height:
                    ax.set_frame_on(False)
                    continue
                row = chosen.row(j, named=True)
                ax.imshow(load(row["local_path"]), cmap="gray")
                ax.set_title(
                    f"conf {row[col]:.2f}" if col == "confidence" else f"H {row[col]:.2f}", fontsize=MIN_FONT_PT, pad=2
                )
                stamp = str(as_datetime64([row["time"]])[0].astype("datetime64[s]"))
                where = str(row.get("station") or "")
                ax.set_xlabel(f"{where} {stamp[:10]}\n{stamp[11:]}".strip(), fontsize=MIN_FONT_PT, labelpad=1)
                picked.append(
                    {"class": c, "kind": kind, "file_name": row["file_name"], "time": row["time"], col: row[col]}
                )
    station = (
        ", ".join(station_label(s) for s in sorted(set(map(str, p["station"].unique()))))
        if "station" in p.columns
        else ""
    )
    fig.suptitle(
        f"Confidence galleries: {station or 'all-sky'} image predictions, {period_text(p['time'])} (UTC); "
        "rows: predicted class\nabove each tile: conf = confidence or H = entropy; "
        "below: station, image date and time (UTC)",
        fontsize=9,
    )
    return fig, pl.DataFrame(picked)


def occlusion_test(
    image: np.ndarray, predict: Callable[[list[np.ndarray]], np.ndarray], classes: Sequence[str], grid: int = 4
) -> tuple[pl.DataFrame, np.ndarray]:
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
    rows = [
        {
            "row": r,
            "col": c,
            "mode": m,
            "pred": classes[int(p.argmax())],
            "p_pred": float(p.max()),
            "changed": bool(p.argmax() != base.argmax()),
        }
        for (r, c, m), p in zip(keys, rest)
    ]
    return pl.DataFrame(rows), base


def occlusion_figure(
    image: np.ndarray,
    table: pl.DataFrame,
    base: np.ndarray,
    classes: Sequence[str],
    grid: int = 4,
    image_label: str = "the image",
):
    """The image and two occlusion maps (only a tile kept / a tile removed) with the class predicted
    for each variant; red tiles change the prediction. ``image_label`` (e.g. file and UTC time)
    goes into the title."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 4.0), layout="constrained")
    fig.suptitle(f"{grid}×{grid} occlusion test of {image_label}", fontsize=10)
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title(f"image: predicted {classes[int(base.argmax())]}, p = {base.max():.2f}", fontsize=9)
    for ax, mode in zip(axes[1:], ("kept", "removed")):
        t = table.filter(pl.col("mode") == mode).sort("row", "col")
        changed = t["changed"].to_numpy().reshape(grid, grid)
        ax.imshow(image, cmap="gray")
        h, w = image.shape[:2]
        for (r, c), ch in np.ndenumerate(changed):
            pred = t.filter((pl.col("row") == r) & (pl.col("col") == c))["pred"][0]
            ax.add_patch(
                plt.Rectangle(
                    (c * w / grid, r * h / grid),
                    w / grid,
                    h / grid,
                    fill=ch,
                    alpha=0.35 if ch else 1,
                    edgecolor="yellow",
                    facecolor="red",
                    lw=0.6,
                )
            )
            ax.text(
                (c + 0.5) * w / grid,
                (r + 0.5) * h / grid,
                pred[:4],
                color="yellow",
                ha="center",
                va="center",
                fontsize=8,
            )
        ax.set_title(f"only tile {mode}: red = prediction changes", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    return fig
