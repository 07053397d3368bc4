"""Loading images into batches and choosing the numeric precision — shared by feature extraction
(:mod:`tame_assets.ml.features`), fine-tuning (:mod:`tame_assets.ml.finetune`) and the benchmarks."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tame_assets.ml.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    STAT_NAMES,
    preprocess,
)
from tame_assets.ml.preprocessing import prepare as prepare_preprocessing
from tame_assets.ml.runtime import openvino_version
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.frame_reader import load_frame
from tame_assets.sources.images import unclassifiable_reason
from tame_assets.sources.png import prepare_decoder

PRECISIONS = ("auto", "fp32", "bf16")


class ImageDataset(Dataset):
    """Items ``(index, unit image (s, s) float32, stats (9,), error or "")``; never raises: a read or
    preprocessing failure becomes an error string naming the file (or the array's index). Files
    above the pixel cap ``max_pixels`` (default: ``sources.images.default_max_pixels``) are refused
    from their header, before decoding."""

    def __init__(
        self,
        items: Sequence,
        size: int,
        green: bool = False,
        angles: Sequence[float] | None = None,
        max_pixels: int | None = None,
    ):
        self.items, self.size, self.green, self.max_pixels = list(items), size, green, max_pixels
        self.angles = list(angles) if angles is not None else None
        #: CPU seconds of this process spent decoding and preprocessing (benchmark breakdown)
        self.seconds = {"decode": 0.0, "preprocess": 0.0}
        if self.angles is not None and len(self.angles) != len(self.items):
            raise ValueError(f"rotate_deg has {len(self.angles)} angles for {len(self.items)} images")
        # compiled loops loaded here, in the parent: forked loader workers inherit them
        prepare_preprocessing()
        if any(isinstance(item, str) and item.lower().endswith(".png") for item in self.items):
            prepare_decoder()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        angle = float(self.angles[i]) if self.angles is not None else 0.0
        name = f"array {i}" if isinstance(item, np.ndarray) else str(item)
        started = time.thread_time()
        try:
            array = item if isinstance(item, np.ndarray) else load_frame(item, max_pixels=self.max_pixels)
            decoded = time.thread_time()
            self.seconds["decode"] += decoded - started
            problem = unclassifiable_reason(array)
            if problem:
                raise ImageReadError(name, problem)
            unit, stats = preprocess(array, self.size, green=self.green, angle_deg=angle)
            self.seconds["preprocess"] += time.thread_time() - decoded
            return i, unit, stats, ""
        except ImageReadError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - any decode/preprocess failure is recorded, not raised
            reason = f"{name}: {type(exc).__name__}: {exc}"
        return i, np.zeros((self.size, self.size), np.float32), np.full(len(STAT_NAMES), np.nan, np.float32), reason


def collate_batch(batch):
    """DataLoader ``collate_fn`` for :class:`ImageDataset` items: (indices, (N, s, s) tensor, stats, errors)."""
    idx = np.array([b[0] for b in batch], dtype=np.int64)
    units = torch.from_numpy(np.stack([b[1] for b in batch]))
    stats = np.stack([b[2] for b in batch])
    return idx, units, stats, [b[3] for b in batch]


def worker_init(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one torch thread per loader process (the main process owns the cores)."""
    torch.set_num_threads(1)


def to_input_batch(units: torch.Tensor) -> torch.Tensor:
    """(N, s, s) unit images → (N, 3, s, s) channels_last, ImageNet-normalised, grey in G only
    (R and B are the normalised zero, −mean/std)."""
    n, h, w = units.shape
    x = torch.empty((n, h, w, 3), dtype=torch.float32)  # NHWC storage = channels_last of NCHW
    x[..., 0] = float(-IMAGENET_MEAN[0] / IMAGENET_STD[0])
    x[..., 2] = float(-IMAGENET_MEAN[2] / IMAGENET_STD[2])
    torch.mul(units, float(1 / IMAGENET_STD[1]), out=x[..., 1])
    x[..., 1] -= float(IMAGENET_MEAN[1] / IMAGENET_STD[1])
    return x.permute(0, 3, 1, 2)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (``avx2``, ``avx512f``, ``amx_bf16``, …) from /proc/cpuinfo; empty
    where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as fh:
            return frozenset(fh.read().split())
    except OSError:
        return frozenset()


@lru_cache(maxsize=1)
def bf16_supported() -> bool:
    """True when this CPU runs bf16 natively (AVX512-BF16 or AMX flags, oneDNN present, and a tiny
    bf16 matmul gives the right answer)."""
    if not ({"avx512_bf16", "amx_bf16"} & cpu_flags() and torch.backends.mkldnn.is_available()):
        return False
    try:
        a = torch.ones(4, 4, dtype=torch.bfloat16)
        return bool(torch.equal((a @ a).float(), torch.full((4, 4), 4.0)))
    except RuntimeError:
        return False


def choose_precision(device: torch.device, precision: str) -> str:
    """Resolve ``auto`` deterministically (the same choice on every run on a machine, so a partition
    re-materialized anywhere on it gives identical features): bf16 on CUDA; on the CPU fp32 where
    OpenVINO runs the network (as fast there as torch's bf16: :mod:`tame_assets.ml.runtime`), else
    bf16 on CPUs with native bf16 (AVX512-BF16/AMX, where torch's bf16 measured ~2× faster than fp32)
    and fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    return "fp32" if openvino_version() is not None or not bf16_supported() else "bf16"


def half_dtype(device: torch.device) -> torch.dtype:
    """The 16-bit autocast type: bf16, or fp16 on CUDA devices without bf16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def forward(model: torch.nn.Module, x: torch.Tensor, precision: str, device: torch.device) -> torch.Tensor:
    """``model(x)`` on ``device`` in inference mode, under 16-bit autocast when ``precision == "bf16"``;
    float32 on the CPU."""
    with torch.inference_mode():
        x = x.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=half_dtype(device), enabled=precision == "bf16"):
            out = model(x)
        return out.float().cpu()


def default_workers() -> int:
    """DataLoader worker processes: ``min(2, cpu count)``. Measured on the 2-core machine
    (bench/feature_throughput.py): 2 workers overlap decoding with the network (fork start-up
    ~0.1 s) — faster than loading in the main process once there are more than a few batches."""
    return min(2, os.cpu_count() or 1)
