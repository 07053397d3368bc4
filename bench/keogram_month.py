"""Keogram of a month-sized frame stream: frames/s and peak memory, flat in month size.

Frames (256×256 uint16, one every 10 s; a month is 259,200) are generated on the fly — each one a
fresh array, as a decoder would return — and streamed once through
:func:`tame_assets.products.keogram.keogram_array` in pixel mode (the image column through the
zenith) and geographic mode (meridian pixels binned in 0.1° latitude at 110 km, ideal fisheye
skymap). Peak memory is traced with ``tracemalloc`` (numpy allocations included) in a second pass;
"overhead" is the peak minus the keogram's own output arrays, which must not grow with the number of frames.

Side by side, on a smaller N, the naive baseline: decode every frame into a list, ``np.stack`` them
and slice the zenith column — the ratio of times and of peak memory is printed.

    .venv/bin/python bench/keogram_month.py                  # < 1 min: 10k and 40k frames, baseline at 1k
    .venv/bin/python bench/keogram_month.py --sizes 10000 259200   # up to a full month (a few minutes)
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tame_assets.products.keogram import keogram_array, meridian_path  # noqa: E402
from tame_assets_tests.synthetic_skymap import ideal_skymap  # noqa: E402

SIZE = 256
CADENCE = np.timedelta64(10, "s")
START = np.datetime64("2024-01-01T00:00:00", "us")


def frame_stream(n: int, pool_size: int = 16, seed: int = 0):
    """``(time, frame)`` pairs; every frame a new uint16 array (copied from a small random pool)."""
    rng = np.random.default_rng(seed)
    pool = [rng.integers(0, 4000, (SIZE, SIZE), dtype=np.uint16) for _ in range(pool_size)]
    for i in range(n):
        yield START + i * CADENCE, pool[i % pool_size].copy()


def naive_keogram(n: int) -> np.ndarray:
    """Baseline: hold every frame, stack, then slice the zenith column."""
    pairs = list(frame_stream(n))
    cube = np.stack([f for _, f in pairs])
    return cube[:, :, SIZE // 2].astype(np.float32)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def traced_peak(fn, *args, **kwargs) -> tuple[object, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, peak


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:8.1f} MiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000], help="stream lengths (frames)")
    parser.add_argument("--baseline", type=int, default=1_000, help="N for the side-by-side naive baseline")
    args = parser.parse_args(argv)
    sky = ideal_skymap(SIZE, altitude_km=110.0)
    path = meridian_path(sky, "ns", bin_deg=0.1)
    print(
        f"frames {SIZE}×{SIZE} uint16 ({mib(SIZE * SIZE * 2).strip()} each), cadence 10 s; "
        f"month = 259,200 frames = {mib(259_200 * SIZE * SIZE * 2).strip()} of pixels"
    )
    print(f"geographic path: {path.rows.size} meridian pixels → {path.coordinate.size} latitude bins of 0.1°")

    n_gen = min(args.sizes)
    _, gen_s = timed(lambda: sum(1 for _ in frame_stream(n_gen)))
    print(f"frame generation alone: {n_gen / gen_s:,.0f} frames/s ({gen_s / n_gen * 1e6:.0f} µs/frame, included below)")
    print("\nstreaming keogram (frames read once, slices kept; peak traced in a second pass):")
    print(f"{'mode':<10}{'frames':>9}{'frames/s':>10}{'µs/frame':>10}{'peak':>13}{'output':>13}{'peak−output':>13}")
    overheads = {}
    for mode, kwargs in (("pixel", {}), ("latitude", {"path": path})):
        for n in args.sizes:
            keo, seconds = timed(keogram_array, frame_stream(n), **kwargs)
            assert keo.intensity.shape[0] == n
            _, peak = traced_peak(keogram_array, frame_stream(n), **kwargs)
            output = keo.intensity.nbytes + keo.time.nbytes
            overheads.setdefault(mode, []).append((n, peak - output))
            own_us = (seconds / n - gen_s / n_gen) * 1e6
            print(
                f"{mode:<10}{n:>9,}{n / seconds:>10,.0f}{own_us:>10.0f}{mib(peak):>13}{mib(output):>13}"
                f"{mib(peak - output):>13}"
            )
    for mode, values in overheads.items():
        (n_a, o_a), (n_b, o_b) = values[0], values[-1]
        print(
            f"  {mode}: peak − output {mib(o_a).strip()} at {n_a:,} frames, {mib(o_b).strip()} at {n_b:,} "
            f"(the in-place growth margin, ≤ 25 % of the slices; one frame is {mib(SIZE * SIZE * 2).strip()})"
        )

    n = args.baseline
    print(f"\nside by side on {n:,} frames, zenith column (pixel mode):")
    naive, naive_s = timed(naive_keogram, n)
    stream, stream_s = timed(keogram_array, frame_stream(n))
    np.testing.assert_array_equal(naive, stream.intensity)  # same keogram
    _, naive_peak = traced_peak(naive_keogram, n)
    _, stream_peak = traced_peak(keogram_array, frame_stream(n))
    print(f"  naive (stack all, slice): {naive_s:7.2f} s  {n / naive_s:>9,.0f} frames/s  peak {mib(naive_peak)}")
    print(f"  streaming keogram       : {stream_s:7.2f} s  {n / stream_s:>9,.0f} frames/s  peak {mib(stream_peak)}")
    print(f"  ratio naive/streaming   : time {naive_s / stream_s:5.2f}×   peak memory {naive_peak / stream_peak:7.1f}×")
    month_naive = naive_peak / n * 259_200
    print(f"  naive at a month (259,200 frames) would need ≈ {month_naive / 2**30:.0f} GiB; this machine has 24 GiB")
    print(f"\nprocess max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
