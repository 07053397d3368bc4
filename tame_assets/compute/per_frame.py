"""Per-frame work on an :class:`~tame_assets.compute.engine.Engine`: CNN feature extraction and
classification of a partition's frames, chunk by chunk, with results identical to the in-process
path (same rows in the same order, same features to float rounding, same predictions).

Workers read the image files and the saved classifier by path, so on a cluster those paths must be
on a filesystem every worker sees (the usual shared /cluster or /home of an HPC system; a volume in
Kubernetes). Each worker process builds a backbone once (``load_backbone``'s per-process cache)
and a classifier once per saved model version (:func:`_cached_classifier`), not once per chunk.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from tame_assets.compute.engine import ChunkProgress, Engine, split_chunks

if TYPE_CHECKING:
    import polars as pl

    from tame_assets.ml.features import FeatureResult

#: Default frames per chunk (4 batches of 64: batches then coincide with the in-process path's).
DEFAULT_CHUNK_FRAMES = 256


def _extract_chunk(job: tuple[list[str], list[float] | None], options: dict) -> "FeatureResult":
    """Runs on a worker: features of one chunk, decoding in the worker's own process (Dask worker
    processes are daemonic and cannot start DataLoader processes; parallelism comes from workers)."""
    from tame_assets.ml.features import extract_features

    paths, angles = job
    return extract_features(paths, rotate_deg=angles, num_workers=0, **options)


def concat_feature_results(
    parts: Sequence["FeatureResult"], seconds: float, extra: dict | None = None
) -> "FeatureResult":
    """One :class:`FeatureResult` from chunk results in order; refuses chunks computed at
    different precisions (workers whose ``auto`` resolved differently: pin ``precision``)."""
    import numpy as np

    from tame_assets.ml.features import FeatureResult

    precisions = sorted({p.precision for p in parts})
    if len(precisions) > 1:
        raise ValueError(
            f"chunks were computed at different precisions {precisions} (heterogeneous workers); "
            "set precision='fp32' (or 'bf16') explicitly"
        )
    first = parts[0]
    return FeatureResult(
        paths=[p for part in parts for p in part.paths],
        features=np.concatenate([p.features for p in parts]),
        stats=np.concatenate([p.stats for p in parts]),
        ok=np.concatenate([p.ok for p in parts]),
        errors=[e for part in parts for e in part.errors],
        precision=first.precision,
        seconds=seconds,
        peak_rss_mb=max(p.peak_rss_mb for p in parts),
        backbone=first.backbone,
        feature_kind=first.feature_kind,
        extra={
            "device": first.extra.get("device"),
            "batch_size": first.extra.get("batch_size"),
            "chunk_seconds": float(sum(p.seconds for p in parts)),
            **(extra or {}),
        },
    )


def extract_features_distributed(
    paths: Sequence[str | Path],
    engine: Engine,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    on_progress: ChunkProgress | None = None,
    retries: int = 2,
    rotate_deg: Sequence[float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> "FeatureResult":
    """:func:`tame_assets.ml.features.extract_features` of ``paths`` on ``engine``: the same
    :class:`FeatureResult` (one row per path, input order).

    On the local engine this *is* one ``extract_features`` call (``progress(done, total)`` per
    batch, DataLoader decoding processes). On Dask the paths are cut into chunks of
    ``chunk_frames``; ``on_progress(chunks done, chunks total, worker address)`` reports each
    finished chunk; a chunk is retried ``retries`` times on failure or worker loss. ``options``
    are ``extract_features`` keywords (``backbone``, ``feature_kind``, ``batch_size``,
    ``precision``, ``oath``, ``weights_path``, ``device``); ``rotate_deg`` (degrees, one per path)
    travels with its chunk. ``result.seconds`` is the wall time of the whole call.
    """
    from tame_assets.ml.features import extract_features

    if "num_workers" in options:
        raise TypeError("num_workers is chosen by the engine (DataLoader processes locally, 0 on Dask workers)")
    items = [str(p) for p in paths]
    if rotate_deg is not None and len(rotate_deg) != len(items):
        raise ValueError(f"rotate_deg has {len(rotate_deg)} angles for {len(items)} images")
    if not engine.distributed or not items:
        result = extract_features(items, rotate_deg=rotate_deg, progress=progress, **options)
        if on_progress is not None:
            on_progress(1, 1, "local")
        return result
    items = [os.path.abspath(p) for p in items]  # workers may run in another working directory
    angles = list(map(float, rotate_deg)) if rotate_deg is not None else None
    jobs = [
        (chunk, angles[i : i + chunk_frames] if angles is not None else None)
        for i, chunk in zip(range(0, len(items), chunk_frames), split_chunks(items, chunk_frames))
    ]
    started = time.perf_counter()
    parts = engine.map_chunks(partial(_extract_chunk, options=options), jobs, on_progress=on_progress, retries=retries)
    return concat_feature_results(
        parts,
        time.perf_counter() - started,
        {"chunks": len(jobs), "chunk_frames": chunk_frames, "engine": engine.description},
    )


@lru_cache(maxsize=4)
def _cached_classifier(path: str, card_mtime_ns: int, expect_backbone: str | None, expect_feature_kind: str | None):
    from tame_assets.ml.classifier import AsimClassifier

    return AsimClassifier.load(path, expect_backbone=expect_backbone, expect_feature_kind=expect_feature_kind)


def load_classifier_cached(
    path: str | Path, expect_backbone: str | None = None, expect_feature_kind: str | None = None
):
    """``AsimClassifier.load`` cached per process and per saved version (the model card's mtime):
    a re-fitted classifier is picked up, an unchanged one is loaded once per worker."""
    from tame_assets.ml.classifier import CARD_FILE

    path = Path(path)
    card = path / CARD_FILE
    mtime = card.stat().st_mtime_ns if card.exists() else -1
    return _cached_classifier(str(path), mtime, expect_backbone, expect_feature_kind)


def _classify_chunk(
    table: "pl.DataFrame", classifier_dir: str, expect_backbone, expect_feature_kind, keys
) -> "pl.DataFrame":
    from tame_assets.ml.tables import predictions_frame

    return predictions_frame(table, load_classifier_cached(classifier_dir, expect_backbone, expect_feature_kind), keys)


def classify_features_distributed(
    features: "pl.DataFrame",
    classifier_dir: str | Path,
    engine: Engine,
    *,
    expect_backbone: str | None = None,
    expect_feature_kind: str | None = None,
    keys: Sequence[str] = ("time", "station", "file_name"),
    chunk_rows: int = 4096,
    on_progress: ChunkProgress | None = None,
    retries: int = 2,
) -> "pl.DataFrame":
    """:func:`tame_assets.ml.tables.predictions_frame` of an ``asim_features`` table with the
    classifier saved at ``classifier_dir``, one output row per input row in order; on Dask in
    chunks of ``chunk_rows`` rows (each worker loads the classifier once, from the shared path)."""
    import polars as pl

    run = partial(
        _classify_chunk,
        classifier_dir=os.path.abspath(classifier_dir),
        expect_backbone=expect_backbone,
        expect_feature_kind=expect_feature_kind,
        keys=tuple(keys),
    )
    if not engine.distributed or features.height == 0:
        out = run(features)
        if on_progress is not None:
            on_progress(1, 1, "local")
        return out
    chunks = [features.slice(i, chunk_rows) for i in range(0, features.height, chunk_rows)]
    return pl.concat(engine.map_chunks(run, chunks, on_progress=on_progress, retries=retries), how="vertical")
