"""Fast, streaming feature extraction: PNG decode + paper preprocessing in DataLoader worker
processes, the network in ``inference_mode`` with channels_last and bf16 autocast where the CPU
supports it (CUDA with fp16 autocast when present).

The file ↔ row mapping always holds: one output row per input path, in input order; rows of
unreadable images are NaN with ``ok = False`` and the reason in ``errors``.

bf16 tolerance (measured by ``tame_assets_tests/test_ml_features.py``): logits within 3 % relative
L2 error of fp32 per image and the same arg-max class.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tame_assets.ml.backbones import DEFAULT_BACKBONE, load_backbone, pick_device
from tame_assets.ml.preprocessing import IMAGENET_MEAN, IMAGENET_STD, STAT_NAMES, preprocess
from tame_assets.sources.images import ImageReadError, load_image_array

PRECISIONS = ("auto", "fp32", "bf16")
BF16_RELATIVE_TOLERANCE = 0.03


@dataclass
class FeatureResult:
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


class ImageDataset(Dataset):
    """Items ``(index, unit image (s, s) float32, stats (9,), error or "")``; never raises."""

    def __init__(self, items: Sequence, size: int, green: bool = False, angles: Sequence[float] | None = None):
        self.items, self.size, self.green = list(items), size, green
        self.angles = list(angles) if angles is not None else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        angle = self.angles[i] if self.angles is not None else 0.0
        try:
            array = item if isinstance(item, np.ndarray) else load_image_array(item)
            unit, stats = preprocess(array, self.size, green=self.green, angle_deg=angle)
            return i, unit, stats, ""
        except ImageReadError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - any decode/preprocess failure is recorded, not raised
            reason = f"{item if not isinstance(item, np.ndarray) else f'array {i}'}: {type(exc).__name__}: {exc}"
        return i, np.zeros((self.size, self.size), np.float32), np.full(len(STAT_NAMES), np.nan, np.float32), reason


def _collate(batch):
    idx = torch.tensor([b[0] for b in batch])
    units = torch.from_numpy(np.stack([b[1] for b in batch]))
    stats = np.stack([b[2] for b in batch])
    return idx, units, stats, [b[3] for b in batch]


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def to_input_batch(units: torch.Tensor) -> torch.Tensor:
    """(N, s, s) unit images → (N, 3, s, s) ImageNet-normalised with grey in G only."""
    n, h, w = units.shape
    mean = torch.from_numpy(IMAGENET_MEAN)[None, :, None, None]
    std = torch.from_numpy(IMAGENET_STD)[None, :, None, None]
    x = torch.zeros((n, 3, h, w), dtype=torch.float32)
    x[:, 1] = units
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def bf16_supported() -> bool:
    """True when this CPU runs bf16 matmuls natively (AVX512-BF16 / AMX)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and torch.backends.mkldnn.is_available()


_AUTO_CHOICE: dict[str, str] = {}


def choose_precision(model: torch.nn.Module, device: torch.device, precision: str) -> str:
    """Resolve ``auto``: bf16 when supported and measured faster than fp32 on this CPU (cached)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    if not bf16_supported():
        return "fp32"
    key = f"{getattr(model, 'name', '')}/{model.input_size}"
    if key not in _AUTO_CHOICE:
        x = torch.randn(16, 3, model.input_size, model.input_size).contiguous(memory_format=torch.channels_last)
        timings = {}
        for p in ("fp32", "bf16", "fp32", "bf16"):
            start = time.perf_counter()
            _forward(model, x, p, device)
            timings[p] = min(timings.get(p, 1e9), time.perf_counter() - start)
        _AUTO_CHOICE[key] = "bf16" if timings["bf16"] < 0.9 * timings["fp32"] else "fp32"
    return _AUTO_CHOICE[key]


def _forward(model: torch.nn.Module, x: torch.Tensor, precision: str, device: torch.device) -> torch.Tensor:
    with torch.inference_mode():
        x = x.to(device, non_blocking=True)
        if precision == "bf16":
            dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
            with torch.autocast(device_type=device.type, dtype=dtype):
                out = model(x)
        else:
            out = model(x)
        return out.float().cpu()


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def extract_features(
    paths: Sequence[str | Path | np.ndarray],
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
) -> FeatureResult:
    """CNN features + histogram statistics for every image (paths or in-memory arrays).

    ``oath=True`` uses the green channel of RGB images; ``rotate_deg`` rotates each image first.
    """
    device = pick_device(device)
    model = load_backbone(backbone, feature_kind, weights_path=weights_path, device=device)
    chosen = choose_precision(model, device, precision)
    n = len(paths)
    items = [p if isinstance(p, np.ndarray) else str(p) for p in paths]
    if num_workers is None:
        num_workers = 0 if n <= batch_size else min(2, os.cpu_count() or 1)
    dataset = ImageDataset(items, model.input_size, green=oath, angles=rotate_deg)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate,
        worker_init_fn=_worker_init if num_workers else None, persistent_workers=False,
        prefetch_factor=4 if num_workers else None, pin_memory=device.type == "cuda",
    )
    features = np.full((n, model.feature_dim), np.nan, dtype=np.float32)
    stats = np.full((n, len(STAT_NAMES)), np.nan, dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    errors: list[str | None] = [None] * n
    started, rss0, peak = time.perf_counter(), _rss_mb(), _rss_mb()
    done = 0
    for idx, units, batch_stats, batch_errors in loader:
        good = torch.tensor([not e for e in batch_errors])
        if good.any():
            out = _forward(model, to_input_batch(units[good]), chosen, device).numpy()
            features[idx[good].numpy()] = out
        stats[idx.numpy()] = batch_stats
        for i, e in zip(idx.tolist(), batch_errors):
            ok[i] = not e
            errors[i] = e or None
        done += len(idx)
        peak = max(peak, _rss_mb())
        if progress:
            progress(done, n)
    return FeatureResult(
        paths=[p if isinstance(p, str) else f"<array {i}>" for i, p in enumerate(items)],
        features=features, stats=stats, ok=ok, errors=errors, precision=chosen,
        seconds=time.perf_counter() - started, peak_rss_mb=peak - rss0 if peak > rss0 else peak,
        backbone=backbone, feature_kind=feature_kind,
    )


def logits_from_pooled(backbone: str, pooled: np.ndarray) -> np.ndarray:
    """ImageNet logits from ``pooled`` features through the backbone's final linear layer (exact
    in eval mode, where dropout is the identity): one extraction pass serves both feature kinds."""
    head = load_backbone(backbone, "pooled", device="cpu")._head
    W = head.weight.detach().float().numpy()
    b = head.bias.detach().float().numpy() if head.bias is not None else 0.0
    return (pooled @ W.T + b).astype(np.float32)
