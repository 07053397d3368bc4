"""Frame streams and time grids shared by the products.

A frame stream is either an iterable of 2-D arrays (H×W, uint8/uint16/float) with a parallel
iterable of times, or an iterable of ``(time, frame)`` pairs (``times=None``). Times are naive UTC
(``datetime.datetime`` without tzinfo, ``numpy.datetime64`` or anything ``numpy.datetime64``
accepts); they are returned as ``numpy.datetime64[us]``. Nothing is buffered: each frame is read
from the iterable exactly once.
"""

from __future__ import annotations

import datetime as dt
from itertools import zip_longest
from typing import Any, Iterable, Iterator

import numpy as np

_MISSING = object()

#: Largest regular time grid :func:`regular_time_grid` builds (about 3 years at 10 s).
MAX_GRID_SLOTS = 10_000_000


def to_datetime64(value: Any, where: str = "time") -> np.datetime64:
    """One naive-UTC time as ``datetime64[us]``; a timezone-aware time is refused (ValueError)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        raise ValueError(f"{where}: timezone-aware time {value!r}; pass naive UTC")
    try:
        out = np.datetime64(value, "us")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a time ({value!r}: {exc})") from None
    if np.isnat(out):
        raise ValueError(f"{where}: missing time (NaT)")
    return out


def to_datetime64_array(values: Any, where: str = "times") -> np.ndarray:
    """Naive-UTC times (sequence, numpy array or polars Series) as a ``datetime64[us]`` array."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):  # polars / pandas Series
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[us]")
        if np.isnat(out).any():
            raise ValueError(f"{where}: missing time (NaT) at index {int(np.flatnonzero(np.isnat(out))[0])}")
        return out
    return np.array([to_datetime64(v, f"{where}[{i}]") for i, v in enumerate(arr.ravel())], dtype="datetime64[us]")


def timed_frames(frames: Iterable, times: Iterable | None = None) -> Iterator[tuple[np.datetime64, np.ndarray]]:
    """Yield ``(datetime64[us], 2-D frame)`` from ``frames`` (and ``times``, or pairs when ``times`` is None).

    Raises ValueError naming the frame index when a frame is not 2-D or the two iterables differ in length.
    """
    pairs = iter(frames) if times is None else zip_longest(times, frames, fillvalue=_MISSING)
    for index, pair in enumerate(pairs):
        try:
            time, frame = pair
        except (TypeError, ValueError):
            raise ValueError(f"frame {index}: expected a (time, frame) pair, got {type(pair).__name__}") from None
        if time is _MISSING or frame is _MISSING:
            raise ValueError(f"frame {index}: frames and times differ in length")
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f"frame {index} ({time}): expected a 2-D greyscale frame, got shape {frame.shape}")
        yield to_datetime64(time, f"frame {index}"), frame


def infer_cadence_s(times: np.ndarray) -> float:
    """Median spacing (s) of the distinct sorted times; ValueError when fewer than two distinct times."""
    t = np.unique(to_datetime64_array(times)).astype("int64")
    if t.size < 2:
        raise ValueError("cannot infer a cadence from fewer than two distinct times")
    return float(np.median(np.diff(t))) / 1e6


def regular_time_grid(times: np.ndarray, cadence_s: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Place ``times`` on a regular grid: ``(grid, slot_of_each_time, cadence_s)``.

    The grid starts at the earliest time with step ``cadence_s`` (default: :func:`infer_cadence_s`)
    and ends at the slot of the latest time. Each time goes to its nearest slot, so a spacing of more
    than 1.5 cadences leaves an empty slot (a gap) and shorter jitter does not. ``slot`` is -1 for
    times that share a slot with an earlier time (the first one keeps the slot).
    """
    t = to_datetime64_array(times)
    if t.size == 0:
        return np.array([], dtype="datetime64[us]"), np.array([], dtype=np.int64), float(cadence_s or np.nan)
    cadence = infer_cadence_s(t) if cadence_s is None else float(cadence_s)
    if not cadence > 0:
        raise ValueError(f"cadence must be positive seconds, got {cadence}")
    step_us = max(int(round(cadence * 1e6)), 1)
    t0 = t.min()
    slot = np.rint((t - t0).astype("int64") / step_us).astype(np.int64)
    n_slots = int(slot.max()) + 1
    if n_slots > MAX_GRID_SLOTS:
        raise ValueError(
            f"a {cadence:g} s grid from {t0} to {t.max()} would have {n_slots} slots (limit {MAX_GRID_SLOTS})"
        )
    order = np.argsort(t, kind="stable")
    first = np.full(t.size, -1, dtype=np.int64)
    _, first_index = np.unique(slot[order], return_index=True)
    keep = order[first_index]
    first[keep] = slot[keep]
    grid = t0 + np.arange(n_slots, dtype=np.int64) * np.timedelta64(step_us, "us")
    return grid, first, cadence
