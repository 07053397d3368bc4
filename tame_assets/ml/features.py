"""Fast, streaming CNN feature extraction with the paper's preprocessing.

Pipeline: PNG decode (:mod:`tame_assets.sources.png` for greyscale PNGs) + preprocessing
(:mod:`tame_assets.ml.preprocessing`, exact histogram path for integer images) → batches of
(N, s, s) unit images → ImageNet input with grey in G only → the network: on the CPU compiled for
this CPU by OpenVINO (:mod:`tame_assets.ml.runtime`; fp32 unless bf16 is asked for), else — OpenVINO
missing or failing — the inference-optimised torch backbone (BatchNorm folded into convolutions,
channels_last, ``torch.inference_mode``); on CUDA torch with bf16/fp16 autocast.

Where it runs: on the CPU with worker processes (the default beyond one batch), every DataLoader
worker runs the *whole* pipeline for its batches of :data:`CPU_WORKER_BATCH` images with one torch
thread — data parallel, so only features (4 KB per image) cross a process boundary and no
multi-threaded network in the main process competes with the loaders for the cores
(``bench/feature_throughput.py`` measures it against the naive path and prints where the time
goes). On CUDA the workers decode and the main process runs the network on the GPU.
``result.extra["stage_seconds"]`` gives the CPU seconds of decoding, preprocessing and the network
(summed over processes).

The file ↔ row mapping always holds: one output row per input, in input order; rows of unreadable
images are NaN with ``ok = False`` and the reason (naming the file) in ``errors``.

Precision: ``auto`` is fp32 on the CPU wherever OpenVINO runs (as fast as torch's bf16 was; the
decisions of the classifier recipe equal the torch fp32 path's on the 300 real images, tested).
bf16 is 2× faster and asked for explicitly (``precision="bf16"``); its tolerance
(EfficientNet-Lite0 logits of the 300 real UiO 16-bit images, bf16 vs fp32, OpenVINO and torch
alike; checked by ``tame_assets_tests/ml/test_features.py``): the relative L2 error ‖bf16 − fp32‖ / ‖fp32‖
per image is 3.8 % in the median, 6.4 % at the 95th percentile, 9.5 % at most (bound: median ≤ 5 %,
every image ≤ 12 %); the ImageNet arg-max class agrees for 95.7 % of images (bound ≥ 90 %: near-ties
on these out-of-domain sky images flip) and a linear classifier fitted on fp32 features makes the
same decision on bf16 features for ≥ 95 %. The error is spread over the whole network (keeping the
stem, head or classifier in fp32 does not reduce it), i.e. bf16's 8-bit mantissa: a
"< 2 %" bound is out of reach for bf16. A classifier fitted on fp32 features decides differently on
bf16 features for 2 % of the real images, and re-fitted under CV on bf16 features its predictions
differ from the fp32 path's for 4.3 % (accuracy +1.7 points): short of the ≥ 99 % agreement asked of
a numerics change, hence not the default.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from tame_assets.ml.backbones import DEFAULT_BACKBONE, load_backbone, pick_device
from tame_assets.ml.loading import (
    ImageDataset,
    bf16_supported,
    choose_precision,
    collate_batch,
    default_workers,
    forward,
    to_input_batch,
    worker_init,
)
from tame_assets.ml.preprocessing import STAT_NAMES
from tame_assets.ml.runtime import OpenVinoNetwork, openvino_network

_log = logging.getLogger(__name__)

#: bf16 vs fp32 logits: bound on the median per-image relative L2 error.
BF16_RELATIVE_TOLERANCE = 0.05
#: bf16 vs fp32 logits: bound on every image's relative L2 error.
BF16_MAX_RELATIVE_ERROR = 0.12
#: bf16 vs fp32: minimum fraction of images with the same ImageNet arg-max class.
BF16_ARGMAX_AGREEMENT = 0.90


@dataclass
class FeatureResult:
    """Features of ``paths`` (row i ↔ ``paths[i]``); ``stats`` columns are ``STAT_NAMES``."""

    paths: list[str]
    features: np.ndarray  # float32 [n, d]; NaN rows where ok is False
    stats: np.ndarray  # float32 [n, 9]
    ok: np.ndarray  # bool [n]
    errors: list[str | None]
    precision: str = "fp32"
    seconds: float = 0.0
    peak_rss_mb: float = float("nan")
    backbone: str = DEFAULT_BACKBONE
    feature_kind: str = "logits"
    extra: dict = field(default_factory=dict)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


#: Images per batch of a CPU worker process, and per torch network call on the CPU: small batches
#: keep the workers evenly loaded (torch's per-image cost for Lite0 is flat from 8 images up on one
#: thread); OpenVINO runs them :data:`~tame_assets.ml.runtime.NETWORK_BATCH` at a time.
CPU_WORKER_BATCH = 16


def _identity(batch):
    return batch


def _network(model, units: torch.Tensor, precision: str, device: torch.device) -> np.ndarray:
    """Features of (N, s, s) unit images. On the CPU in network calls of a fixed size wherever it runs
    (in-process, loader worker, Dask worker): OpenVINO in chunks of ``NETWORK_BATCH``, torch in calls
    of at most :data:`CPU_WORKER_BATCH` images (oneDNN picks kernels by batch size, and in bf16 a larger
    batch's final matmul rounds some logits one bf16 step differently), so features do not depend on
    batch and chunk sizes."""
    if device.type != "cpu":
        return forward(model, to_input_batch(units), precision, device).numpy()
    if isinstance(model, OpenVinoNetwork):
        return model(to_input_batch(units)).numpy()
    step = CPU_WORKER_BATCH
    chunks = (to_input_batch(units[i : i + step]) for i in range(0, len(units), step))
    return torch.cat([forward(model, x, precision, device) for x in chunks]).numpy()


class _WorkerBatches(torch.utils.data.Dataset):
    """Batch ``b`` of the images computed entirely inside one DataLoader worker process: decode,
    preprocessing and the network on one torch thread. Data parallel over processes: only the
    features (4 KB per image) cross a process boundary, and no intra-op thread team has to meet at a
    barrier on a busy machine (with loader processes plus a multi-threaded network in the main
    process, 2 cores ran 4 busy threads)."""

    def __init__(self, dataset: ImageDataset, model, batch: int, precision: str, device: torch.device):
        self.dataset, self.model, self.batch, self.precision, self.device = dataset, model, batch, precision, device

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch)

    def __getitem__(self, b: int):
        started, cpu0 = time.perf_counter(), dict(self.dataset.seconds)
        last = min(len(self.dataset), (b + 1) * self.batch)
        idx, units, stats, errors = collate_batch([self.dataset[i] for i in range(b * self.batch, last)])
        features = np.full((len(idx), self.model.feature_dim), np.nan, dtype=np.float32)
        good = np.array([not e for e in errors], dtype=bool)
        net0 = time.thread_time()
        if good.any():
            batch = units if good.all() else units[torch.from_numpy(good)]
            features[good] = _network(self.model, batch, self.precision, self.device)
        seconds = {k: self.dataset.seconds[k] - cpu0[k] for k in cpu0}
        seconds["network"] = time.thread_time() - net0
        seconds["busy"] = time.perf_counter() - started
        return idx, features, stats, errors, seconds


@lru_cache(maxsize=8)
def _warmed(model, precision: str, batch: int, device: torch.device) -> bool:
    """Run the network once on one thread in this process, so that forked worker processes inherit
    oneDNN's compiled kernels instead of each compiling them again."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        zeros = torch.zeros(batch, model.input_size, model.input_size)
        forward(model, to_input_batch(zeros), precision, device)
    finally:
        torch.set_num_threads(threads)
    return True


def _run(
    items: list,
    names: list[str],
    backbone: str,
    feature_kind: str,
    batch_size: int,
    num_workers: int | None,
    precision: str,
    device,
    progress,
    rotate_deg,
    oath: bool,
    weights_path,
    max_image_pixels: int | None = None,
) -> FeatureResult:
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, not {batch_size}")
    device = pick_device(device)
    chosen = choose_precision(device, precision)
    n = len(items)
    if num_workers is None:
        num_workers = default_workers() if n > batch_size else 0
    num_workers = min(num_workers, max(1, -(-n // batch_size))) if n else 0
    # CPU with worker processes: each worker runs the whole pipeline for its batches (data parallel);
    # CUDA or in-process: workers (if any) decode, the main process runs the network
    parallel = device.type == "cpu" and num_workers > 0
    model = None
    if device.type == "cpu" and n:  # OpenVINO where it runs: compiled for this CPU (ml/runtime.py), else torch
        unfused = load_backbone(backbone, feature_kind, weights_path=weights_path, device=device)
        if chosen == "bf16" and not bf16_supported():  # OpenVINO would quietly run fp32: say so
            _log.warning("precision bf16 asked for, but this CPU has no native bf16 (AVX512-BF16/AMX): fp32")
            chosen = "fp32"
        model = openvino_network(unfused, chosen, 1 if parallel else torch.get_num_threads())
    if model is None:
        model = load_backbone(backbone, feature_kind, weights_path=weights_path, device=device, fused=True)
    dataset = ImageDataset(items, model.input_size, green=oath, angles=rotate_deg, max_pixels=max_image_pixels)
    if parallel:
        batch = min(batch_size, CPU_WORKER_BATCH)
        if not isinstance(model, OpenVinoNetwork):
            _warmed(model, chosen, batch, device)
        source = _WorkerBatches(dataset, model, batch, chosen, device)
        loader_options = dict(batch_size=None, collate_fn=_identity)
    else:
        source = dataset
        loader_options = dict(batch_size=batch_size, collate_fn=collate_batch, pin_memory=device.type == "cuda")
    loader = DataLoader(
        source,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=worker_init if num_workers else None,
        prefetch_factor=2 if num_workers else None,
        **loader_options,
    )
    features = np.full((n, model.feature_dim), np.nan, dtype=np.float32)
    stats = np.full((n, len(STAT_NAMES)), np.nan, dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    errors: list[str | None] = [None] * n
    stage = {"decode": 0.0, "preprocess": 0.0, "network": 0.0, "busy": 0.0}
    started = time.perf_counter()
    rss0 = peak = _rss_mb()
    done = 0
    for item in loader:
        if parallel:
            idx, batch_features, batch_stats, batch_errors, seconds = item
            good = np.array([not e for e in batch_errors], dtype=bool)
            features[idx[good]] = batch_features[good]
        else:
            idx, units, batch_stats, batch_errors = item
            good = np.array([not e for e in batch_errors], dtype=bool)
            net0 = time.perf_counter()
            if good.any():
                batch = units if good.all() else units[torch.from_numpy(good)]
                features[idx[good]] = _network(model, batch, chosen, device)
            seconds = {"network": time.perf_counter() - net0}
        for key, value in seconds.items():
            stage[key] += value
        stats[idx] = batch_stats
        ok[idx] = good
        for i, e in zip(idx.tolist(), batch_errors):
            errors[i] = e or None
        done += len(idx)
        peak = max(peak, _rss_mb())
        if progress is not None:
            progress(done, n)
    seconds = time.perf_counter() - started
    if not num_workers:
        stage.update(dataset.seconds)
    return FeatureResult(
        paths=names,
        features=features,
        stats=stats,
        ok=ok,
        errors=errors,
        precision=chosen,
        seconds=seconds,
        peak_rss_mb=peak - rss0,
        backbone=backbone,
        feature_kind=feature_kind,
        extra={
            "num_workers": num_workers,
            "batch_size": batch_size,
            "device": str(device),
            "data_parallel": parallel,
            "runtime": "openvino" if isinstance(model, OpenVinoNetwork) else "torch",
            "stage_seconds": stage,
        },
    )


def extract_features(
    paths: Sequence[str | Path],
    backbone: str = DEFAULT_BACKBONE,
    feature_kind: str = "logits",
    batch_size: int = 64,
    num_workers: int | None = None,
    precision: str = "auto",
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
    rotate_deg: Sequence[float] | None = None,
    oath: bool = False,
    weights_path: str | Path | None = None,
    max_image_pixels: int | None = None,
) -> FeatureResult:
    """CNN features (``logits``: 1000 ImageNet outputs; ``pooled``: penultimate) and the nine
    histogram statistics of every image file, one row per path in input order.

    ``oath=True`` uses the green channel of RGB images; ``rotate_deg[i]`` rotates image i first
    (degrees counter-clockwise). ``num_workers`` defaults to ``min(2, cpu count)`` worker processes
    (0 when everything fits in one batch); on the CPU each runs decode, preprocessing and the network
    on one thread for its batches, on CUDA they only decode. ``precision``: ``fp32``, ``bf16`` or
    ``auto`` (fp32 on the CPU where OpenVINO runs, bf16 on CUDA: :func:`choose_precision`).
    ``progress(done, total)`` is called after each batch.
    Unreadable files — including those above ``max_image_pixels`` (width × height, default
    the setting ``max_image_pixels``, else 4096², refused from the header) — give NaN features, ``ok = False``
    and the reason in ``errors``. In-memory images ((H, W) uint8/uint16/float or (H, W, 3) numpy arrays)
    may stand in for paths; their ``paths`` in the result are ``"<array i>"`` (use ``num_workers=0``).
    """
    items = [p if isinstance(p, np.ndarray) else str(p) for p in paths]
    names = [p if isinstance(p, str) else f"<array {i}>" for i, p in enumerate(items)]
    return _run(
        items,
        names,
        backbone,
        feature_kind,
        batch_size,
        num_workers,
        precision,
        device,
        progress,
        rotate_deg,
        oath,
        weights_path,
        max_image_pixels,
    )


def logits_from_pooled(backbone: str, pooled: np.ndarray) -> np.ndarray:
    """ImageNet logits from ``pooled`` features through the backbone's final linear layer (exact
    in eval mode, where dropout is the identity): one extraction pass serves both feature kinds."""
    head = load_backbone(backbone, "pooled", device="cpu")._head
    W = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy() if head.bias is not None else 0.0
    return (pooled.astype(np.float64) @ W.T + b).astype(np.float32)
