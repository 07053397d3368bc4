"""End-to-end feature throughput (PNG decode + paper preprocessing + network), images/s.

Compares, on the same images in the same process (rounds interleaved so both see the same machine
noise; each path warmed up first; the best round counts):

- naive: single-process loading batch by batch (Pillow decoding), the straightforward reference
  preprocessing (float64, ``np.percentile``, sort-based statistics), the unmodified network in fp32
  NCHW under ``torch.no_grad``;
- optimised: :func:`tame_assets.ml.features.extract_features` as shipped (greyscale PNGs inflated by
  libdeflate and unfiltered by a compiled loop, exact histogram preprocessing with compiled loops,
  the network compiled for this CPU by OpenVINO in fp32, and data parallel over 2 worker processes:
  each decodes, preprocesses and runs the network on one thread for its batches, so only features
  cross a process boundary);
- optimised, bf16: the same with ``precision="bf16"`` (opt-in: 2× faster network, but decisions
  differ from fp32 for ~2 % of images, see :mod:`tame_assets.ml.features`).

After the timing, one more optimised run prints where each image's time went (CPU seconds per image
measured inside the workers: PNG decode, preprocessing, network; plus the hand-off/idle time of the
workers and the time they were runnable but waiting for a core), and the share of this CPU's peak
multiply-add rate that the network reaches (MACs counted on the network itself).

``--ablation`` adds the steps in between, to show what each optimisation contributes. The script
also checks that both paths give the same features (relative L2 difference, fp32 ≈ 1e-6, bf16 a few %).

    .venv/bin/python bench/feature_throughput.py --n 96 --backbone efficientnet_lite0 [--ablation]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tame_assets.ml import preprocessing as pp
from tame_assets.ml.backbones import load_backbone
from tame_assets.ml.features import extract_features
from tame_assets.ml.loading import (
    bf16_supported,
    choose_precision,
    collate_batch,
    cpu_flags,
    forward,
    to_input_batch,
    worker_init,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "uio_asi_nya6" / "images"


def pillow_frame(path: str) -> np.ndarray:
    """The straightforward decode: Pillow, as the naive path always did (the pipeline's
    ``load_frame`` now inflates greyscale PNGs with libdeflate: ``tame_assets.sources.png``)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def naive(paths: list[str], backbone: str, batch_size: int) -> np.ndarray:
    """Baseline: decode + reference preprocessing one by one, fp32 NCHW network per batch."""
    model = load_backbone(backbone, "logits", device="cpu")  # unfused, NCHW weights
    out = []
    for i in range(0, len(paths), batch_size):
        batch = [
            pp.to_network_input(pp.preprocess_reference(pillow_frame(p), model.input_size)[0])
            for p in paths[i : i + batch_size]
        ]
        with torch.no_grad():
            out.append(model(torch.from_numpy(np.stack(batch))).numpy())
    return np.concatenate(out)


class _Items(Dataset):
    def __init__(self, paths, size, fn):
        self.paths, self.size, self.fn = paths, size, fn

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        unit, stats = self.fn(pillow_frame(self.paths[i]), self.size)
        return i, unit, stats, ""


def step(fast_preprocessing: bool, fused: bool, precision: str, workers: int) -> Callable:
    """One rung of the ablation ladder between the naive and the optimised path."""

    def run(paths: list[str], backbone: str, batch_size: int) -> np.ndarray:
        model = load_backbone(backbone, "logits", device="cpu", fused=fused)
        fn = pp.preprocess if fast_preprocessing else pp.preprocess_reference
        loader = DataLoader(
            _Items(paths, model.input_size, fn),
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=collate_batch,
            worker_init_fn=worker_init if workers else None,
        )
        cpu = torch.device("cpu")
        out = []
        for _, units, _, _ in loader:
            x = to_input_batch(units) if fused else to_input_batch(units).contiguous()
            out.append(forward(model, x, precision, cpu).numpy())
        return np.concatenate(out)

    return run


def optimised(paths: list[str], backbone: str, batch_size: int) -> np.ndarray:
    return extract_features(paths, backbone=backbone, batch_size=batch_size, precision="auto").features


def optimised_bf16(paths: list[str], backbone: str, batch_size: int) -> np.ndarray:
    return extract_features(paths, backbone=backbone, batch_size=batch_size, precision="bf16").features


def images(n: int) -> tuple[list[str], str]:
    if REAL.exists():
        found = sorted(str(p) for p in REAL.glob("*.png"))
        return (found * (n // len(found) + 1))[:n], "real UiO nya6, 16-bit ~469×469"
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="tame_bench_"))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:469, :469]
    out = []
    for i in range(n):  # 16-bit skies: a bright arc plus noise inside the field of view
        arc = np.exp(-((yy - 150 - 2 * i % 150) ** 2) / 400.0) * 40000
        img = np.clip(arc + rng.normal(3000, 800, (469, 469)), 0, 65535).astype(np.uint16)
        path = folder / f"img{i:04d}.png"
        Image.fromarray(img).save(path)
        out.append(str(path))
    return out, f"synthetic 16-bit 469×469 in {folder}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=96, help="number of images (real ones repeated if needed)")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ablation", action="store_true", help="also time each optimisation step")
    args = ap.parse_args(argv)
    paths, what = images(args.n)
    load_backbone(args.backbone, device="cpu", fused=True)  # build (and cache) the fused network before timing
    precision = choose_precision(torch.device("cpu"), "auto")
    print(
        f"{len(paths)} images ({what}), backbone {args.backbone}, batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}, auto precision → {precision}"
    )
    paths_ = {"naive": naive}
    if args.ablation:
        paths_.update(
            {
                "+ histogram preprocessing": step(True, False, "fp32", 0),
                "+ BN folding, channels_last": step(True, True, "fp32", 0),
            }
        )
        if bf16_supported():  # the previous default on such CPUs (auto is fp32 now: the rung above)
            paths_["+ torch bf16 autocast"] = step(True, True, "bf16", 0)
    paths_[OPTIMISED] = optimised
    if bf16_supported():
        paths_[OPTIMISED_BF16] = optimised_bf16
    else:
        print("bf16 (opt-in) not timed: this CPU has no native bf16 (AVX512-BF16/AMX), so bf16 would run as fp32")
    outputs = {}
    for name, fn in paths_.items():  # warm-up: weights, oneDNN primitives, precision choice
        outputs[name] = fn(paths[: min(len(paths), args.batch_size)], args.backbone, args.batch_size)
    best = dict.fromkeys(paths_, float("inf"))
    for _ in range(args.rounds):
        for name, fn in paths_.items():
            start = time.perf_counter()
            fn(paths, args.backbone, args.batch_size)
            best[name] = min(best[name], time.perf_counter() - start)
    base = len(paths) / best["naive"]
    ref = outputs["naive"]
    for name in paths_:
        rate = len(paths) / best[name]
        rel = np.median(np.linalg.norm(outputs[name] - ref, axis=1) / np.linalg.norm(ref, axis=1))
        print(f"{name:34s} {rate:7.2f} images/s  ×{rate / base:5.2f}   (median rel. L2 vs naive {rel:.1e})")
    print(f"ratio optimised / naive: {len(paths) / best[OPTIMISED] / base:.2f}x ({precision}, the default)")
    if OPTIMISED_BF16 in best:
        print(f"ratio optimised bf16 / naive: {len(paths) / best[OPTIMISED_BF16] / base:.2f}x (opt-in)")
    breakdown(paths, args.backbone, args.batch_size, precision)
    return 0


OPTIMISED = "optimised (2 data-parallel workers)"
OPTIMISED_BF16 = "optimised, bf16 (opt-in)"


def network_macs(backbone: str) -> float:
    """Multiply-adds of one image through the network (convolutions and linear layers)."""
    model = load_backbone(backbone, "logits", device="cpu")
    total = [0.0]

    def count(module, _inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            total[0] += output.numel() * k
        elif isinstance(module, torch.nn.Linear):
            total[0] += output.numel() * module.in_features

    hooks = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, model.input_size, model.input_size))
    for h in hooks:
        h.remove()
    return total[0]


def cpu_ghz() -> float:
    try:
        mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
        return max(mhz) / 1e3
    except (OSError, ValueError):
        return float("nan")


def peak_macs_per_cycle() -> dict[str, int]:
    """Peak multiply-adds per cycle and core of the vector units this CPU has (its /proc/cpuinfo
    flags): fp32 FMA on 2 ports × 16 lanes (AVX-512) or × 8 (AVX2), AVX512-BF16 (vdpbf16ps: 2 ports
    × 32), AMX-BF16 (1024 bf16 ops = 512 MACs per cycle)."""
    flags = cpu_flags()
    peaks = {}
    if "avx512f" in flags:
        peaks["avx512 fp32"] = 32
    elif {"avx2", "fma"} <= flags:
        peaks["avx2 fp32"] = 16
    if "avx512_bf16" in flags:
        peaks["avx512_bf16"] = 64
    if "amx_bf16" in flags:
        peaks["amx_bf16"] = 512
    return peaks


def breakdown(paths: list[str], backbone: str, batch_size: int, precision: str) -> None:
    """One more optimised run: per-image CPU time by stage inside the workers, and the network's share
    of the CPU's peak."""
    result = extract_features(paths, backbone=backbone, batch_size=batch_size, precision="auto")
    n, wall, workers = len(paths), result.seconds, max(1, result.extra["num_workers"])
    s = result.extra["stage_seconds"]
    work = s["decode"] + s["preprocess"] + s["network"]
    handoff = wall * workers - s.get("busy", work)
    waiting = s.get("busy", work) - work
    print(f"where the time goes ({workers} worker processes, {wall:.2f} s wall, {n / wall:.1f} images/s):")
    for name, seconds in (
        ("PNG decode", s["decode"]),
        ("preprocessing", s["preprocess"]),
        (f"network ({result.extra['runtime']} {result.precision}, 1 thread per worker)", s["network"]),
        ("hand-off + start-up (workers idle)", handoff),
        ("runnable, waiting for a core (load)", waiting),
    ):
        print(f"  {name:42s} {seconds / n * 1e3:7.2f} ms/image  ({seconds / (wall * workers):5.1%} of worker time)")
    macs = network_macs(backbone)
    ghz = cpu_ghz()
    rate = macs * n / s["network"]  # per core: each worker runs the network on one thread
    shares = ", ".join(
        f"{rate / (per_cycle * ghz * 1e9):.1%} of {name} ({per_cycle * ghz:.0f} GMAC/s)"
        for name, per_cycle in peak_macs_per_cycle().items()
    )
    print(
        f"network: {macs / 1e9:.3f} GMAC/image, {rate / 1e9:.1f} GMAC/s per core at {ghz:.2f} GHz = {shares} per core"
    )


if __name__ == "__main__":
    sys.exit(main())
