"""Feature extraction throughput: the in-process path vs a 2-worker Dask LocalCluster, side by side.

The same ``--n`` frames (the 300 real UiO images in ``../shared`` repeated to ``--n``, else the
sample archive's images) go through

- local: :func:`tame_assets.ml.features.extract_features` (2 DataLoader worker processes, each
  decoding, preprocessing and running the network on one torch thread for its batches), i.e. the
  in-process path;
- dask: :func:`tame_assets.compute.extract_features_distributed` on a ``LocalCluster`` of
  ``--workers`` processes × 1 thread, torch 1 thread per worker, decoding inside each worker, for
  each ``--chunk-frames``.

Both are warmed up first (backbone built in this process and in every worker); rounds are
interleaved so both see the same machine noise and the best round of each counts. Cluster start-up
is timed separately (paid once per run or once per long-lived cluster). Features are checked equal.
Besides the best round of each path, the ratio within each round (Dask and local measured one
right after the other) is printed with its median: on a machine whose load drifts, the best rounds
of the two paths may come from different minutes.

    .venv/bin/python bench/dask_features.py --n 500 --chunk-frames 64 128 256 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "uio_asi_nya6" / "images"


def frame_paths(n: int, scratch: Path) -> tuple[list[str], str]:
    """``n`` image paths (a file list repeated as needed) and where they came from."""
    files = sorted(str(p) for p in REAL.glob("*.png")) if REAL.is_dir() else []
    origin = f"{len(files)} real UiO nya6 16-bit images ({REAL})"
    if not files:
        from tame_assets.sources.sample.generator import ensure_sample_archive

        files = sorted(str(p) for p in (ensure_sample_archive(scratch) / "asim").rglob("*.png"))
        origin = f"{len(files)} sample-archive images (synthetic; ../shared absent)"
    return [files[i % len(files)] for i in range(n)], origin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="frames per measurement")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (1 thread each)")
    parser.add_argument("--chunk-frames", type=int, nargs="+", default=[128], help="frames per Dask task")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each path counts")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args()

    import torch

    from tame_assets.compute import ComputeSettings, extract_features_distributed, open_engine
    from tame_assets.ml.features import extract_features

    with tempfile.TemporaryDirectory() as scratch:
        paths, origin = frame_paths(args.n, Path(scratch))
        print(
            f"{args.n} frames from {origin}; {os.cpu_count()} cores; torch {torch.__version__}, "
            f"{torch.get_num_threads()} intra-op threads in this process"
        )
        extract_features(paths[:16], backbone=args.backbone)  # warm-up: backbone built, pages cached
        settings = ComputeSettings(mode="dask-local", n_workers=args.workers, threads_per_worker=1, torch_threads=1)
        started = time.perf_counter()
        with open_engine(settings) as engine:
            ready = time.perf_counter() - started
            extract_features_distributed(paths[: 2 * args.workers], engine, chunk_frames=1, backbone=args.backbone)
            warm = time.perf_counter() - started
            print(
                f"LocalCluster {args.workers}×1 thread: started in {ready:.1f} s, backbone built in every worker "
                f"after {warm:.1f} s"
            )
            best: dict[str, float] = {}
            paired: dict[str, list[float]] = {}  # per round: Dask rate / the same round's local rate
            reference = None
            for r in range(args.rounds):
                t0 = time.perf_counter()
                local = extract_features(paths, backbone=args.backbone)
                rate = args.n / (time.perf_counter() - t0)
                best["local"] = max(best.get("local", 0.0), rate)
                local_rate = rate
                reference = local.features if reference is None else reference
                print(f"round {r + 1}: local                     {rate:6.1f} images/s")
                for chunk in args.chunk_frames:
                    t0 = time.perf_counter()
                    result = extract_features_distributed(paths, engine, chunk_frames=chunk, backbone=args.backbone)
                    rate = args.n / (time.perf_counter() - t0)
                    key = f"dask chunk {chunk}"
                    best[key] = max(best.get(key, 0.0), rate)
                    paired.setdefault(key, []).append(rate / local_rate)
                    diff = float(np.nanmax(np.abs(result.features - reference)))
                    print(f"round {r + 1}: {key:<25} {rate:6.1f} images/s  (max |Δfeature| vs local {diff:.1e})")
    classify_seconds = classification_cost(paths, reference)
    decode_seconds = decode_cost(paths[:100])
    print("best of rounds:")
    for key, rate in best.items():
        ratio = rate / best["local"]
        print(f"  {key:<25} {rate:6.1f} images/s  {1 / rate:.3f} s/frame  ratio to local {ratio:.2f}")
    print("ratio to local within each round (adjacent in time, so drifting machine load cancels better):")
    for key, ratios in paired.items():
        listed = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"  {key:<25} {listed}  → median {float(np.median(ratios)):.2f}")
    print(f"decode + preprocessing alone (1 process, 1 thread): {decode_seconds:.4f} s/frame")
    if classify_seconds is not None:
        print(
            "classification (probabilistic linear SVM on the features, 1 thread): "
            f"{classify_seconds * 1e3:.3f} ms/frame"
        )


def decode_cost(paths: list[str]) -> float:
    """Seconds per frame of PNG decode + the paper's preprocessing alone (the CPU work a GPU node
    still does per frame), in this process."""
    from tame_assets.ml.loading import ImageDataset

    dataset = ImageDataset(paths, 224)
    t0 = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return (time.perf_counter() - t0) / len(dataset)


def classification_cost(paths: list[str], features: np.ndarray) -> float | None:
    """Seconds per frame of the classifier step on ``features``: the paper's probabilistic linear SVM
    fitted on the real labelled UiO images' features with their human labels (None without them)."""
    import polars as pl
    from threadpoolctl import threadpool_limits

    from tame_assets.ml.classifier import fit_oath_classifier

    labels_csv = REAL.parent / "labels.csv"
    if not labels_csv.exists():
        return None
    labels = dict(pl.read_csv(labels_csv).select("filename", "label").iter_rows())
    n = len({p for p in paths})
    X, y = features[:n], np.asarray([labels[Path(p).name] for p in paths[:n]])
    clf, _ = fit_oath_classifier(X, y, class_names=sorted(set(y)), C=1e-3)
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for _ in range(5):
            clf.predict_features(features)
    return (time.perf_counter() - t0) / (5 * len(features))


if __name__ == "__main__":
    main()
