"""Fast, streaming CNN feature extraction with the paper's preprocessing.

Pipeline: PNG decode + preprocessing (:mod:`tame_assets.ml.preprocessing`, exact histogram path
for integer images) in DataLoader worker processes → batches of (N, s, s) unit images → ImageNet
input with grey in G only → the inference-optimised backbone (BatchNorm folded into convolutions,
channels_last, ``torch.inference_mode``) under bf16 autocast when the CPU supports bf16 and it is
native there (AMX/AVX512-BF16; a per-machine decision, never timing-dependent), CUDA with bf16/fp16 autocast
when present.

The file ↔ row mapping always holds: one output row per input, in input order; rows of unreadable
images are NaN with ``ok = False`` and the reason (naming the file) in ``errors``.

bf16 tolerance (EfficientNet-Lite0 logits of the 300 real UiO 16-bit images, bf16 autocast vs fp32;
checked by ``tame_assets_tests/ml/test_features.py``): the relative L2 error ‖bf16 − fp32‖ / ‖fp32‖
per image is 3.8 % in the median, 6.4 % at the 95th percentile, 9.5 % at most (bound: median ≤ 5 %,
every image ≤ 12 %); the ImageNet arg-max class agrees for 95.7 % of images (bound ≥ 90 %: near-ties
on these out-of-domain sky images flip) and a linear classifier fitted on fp32 features makes the
same decision on bf16 features for ≥ 95 %. The error is spread over the whole network (keeping the
stem, head or classifier in fp32 does not reduce it), i.e. bf16's 8-bit mantissa: a
"< 2 %" bound is out of reach for bf16, so use ``precision="fp32"`` where bit-level
reproducibility across machines matters (``auto`` is bf16 wherever the hardware has it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from tame_assets.ml.backbones import DEFAULT_BACKBONE, load_backbone, pick_device
from tame_assets.ml.loading import (
    ImageDataset,
    choose_precision,
    collate_batch,
    default_workers,
    forward,
    to_input_batch,
    worker_init,
)
from tame_assets.ml.preprocessing import STAT_NAMES

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
    model = load_backbone(backbone, feature_kind, weights_path=weights_path, device=device, fused=True)
    chosen = choose_precision(device, precision)
    n = len(items)
    dataset = ImageDataset(items, model.input_size, green=oath, angles=rotate_deg, max_pixels=max_image_pixels)
    if num_workers is None:
        num_workers = default_workers() if n > batch_size else 0
    num_workers = min(num_workers, max(1, -(-n // batch_size))) if n else 0
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_batch,
        worker_init_fn=worker_init if num_workers else None,
        prefetch_factor=2 if num_workers else None,
        pin_memory=device.type == "cuda",
    )
    features = np.full((n, model.feature_dim), np.nan, dtype=np.float32)
    stats = np.full((n, len(STAT_NAMES)), np.nan, dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    errors: list[str | None] = [None] * n
    started = time.perf_counter()
    rss0 = peak = _rss_mb()
    done = 0
    for idx, units, batch_stats, batch_errors in loader:
        good = np.array([not e for e in batch_errors], dtype=bool)
        if good.any():
            batch = units if good.all() else units[torch.from_numpy(good)]
            features[idx[good]] = forward(model, to_input_batch(batch), chosen, device).numpy()
        stats[idx] = batch_stats
        ok[idx] = good
        for i, e in zip(idx.tolist(), batch_errors):
            errors[i] = e or None
        done += len(idx)
        peak = max(peak, _rss_mb())
        if progress is not None:
            progress(done, n)
    return FeatureResult(
        paths=names,
        features=features,
        stats=stats,
        ok=ok,
        errors=errors,
        precision=chosen,
        seconds=time.perf_counter() - started,
        peak_rss_mb=peak - rss0,
        backbone=backbone,
        feature_kind=feature_kind,
        extra={"num_workers": num_workers, "batch_size": batch_size, "device": str(device)},
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
    (degrees counter-clockwise). ``num_workers`` defaults to ``min(2, cpu count)`` loader processes
    (0 when everything fits in one batch). ``precision``: ``fp32``, ``bf16`` (autocast) or ``auto``
    (bf16 where the hardware has it: :func:`choose_precision`). ``progress(done, total)`` is called after each batch.
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
